package partnercheck

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
)

func unexpected(path string) Finding { return Finding{Kind: FindingUnexpected, Path: path} }
func missing(path string) Finding    { return Finding{Kind: FindingMissing, Path: path} }
func mismatch(path, want, got string) Finding {
	return Finding{Kind: FindingMismatch, Path: path, Want: want, Got: got}
}
func drift(path, want, got string) Finding {
	return Finding{Kind: FindingDrift, Path: path, Want: want, Got: got}
}

const (
	wantID  = "integer or numeric string"
	allCode = `{"code":"A","generateTime":1}`
)

func TestCompareResult(t *testing.T) {
	tests := []struct {
		name string
		ep   partnerclient.Endpoint
		give string
		want []Finding
	}{
		{"exact object", partnerclient.EndpointActivationCode, allCode, nil},
		{"null result", partnerclient.EndpointActivationCode, `null`, nil},
		{"numeric string and null fit", partnerclient.EndpointActivationCode, `{"code":null,"generateTime":"17"}`, nil},
		{"extra field", partnerclient.EndpointActivationCode, `{"code":"A","generateTime":1,"expireTime":2}`,
			[]Finding{unexpected("expireTime")}},
		{"missing field", partnerclient.EndpointActivationCode, `{"code":"A"}`, []Finding{missing("generateTime")}},
		{"float time is drift", partnerclient.EndpointActivationCode, `{"code":"A","generateTime":1.5}`,
			[]Finding{drift("generateTime", wantID, "float")}},
		{"number for a string", partnerclient.EndpointActivationCode, `{"code":7,"generateTime":1}`,
			[]Finding{mismatch("code", "string", "integer")}},
		{"object for the result", partnerclient.EndpointActivationCode, `["A"]`,
			[]Finding{mismatch("", "object", "array")}},
		{"nested struct and slice", partnerclient.EndpointOrderDetails,
			`{"basicInformation":{"productId":"12","productName":"P","productNo":"S"},` +
				`"orderInformation":{"id":1.0,"orderNo":"Z","orderStatus":"succeed","poNumber":"P","createTime":1,` +
				`"operationType":"x","transactionNo":"T","instanceId":{}},` +
				`"billingInformation":{"billingContactId":"x1","emailAddress":"a@b"},` +
				`"orderSummary":{"serviceList":[{"serviceType":"plan","serviceId":1,"quantity":"2","multiCycle":1,` +
				`"purchaseType":"p","billingModel":"m","billingCycle":"c","price":3}]}}`,
			[]Finding{
				mismatch("billingInformation.billingContactId", wantID, "string"),
				mismatch("orderInformation.id", wantID, "float"),
				drift("orderInformation.instanceId", "string or number", "object"),
				unexpected("orderSummary.serviceList[].price"),
				mismatch("orderSummary.serviceList[].quantity", "integer", "numeric string"),
			}},
		{"omitempty field may be absent; missing nested struct reported once", partnerclient.EndpointOrderDetails,
			`{"basicInformation":{"productId":12,"productName":"P","productNo":"S"},"billingInformation":null,` +
				`"orderSummary":{"serviceList":[]}}`,
			[]Finding{missing("orderInformation")}},
		{"page counters as strings, items deduplicated", partnerclient.EndpointOrderList,
			`{"count":"2","pageNo":"1","pageSize":"25","total":"2","totalPage":"1","results":[` +
				`{"id":1,"orderNo":"A","orderStatus":"s","createTime":1,"currencyCode":"USD","customReferenceNo":"",` +
				`"invoiceNo":"","productId":12,"productNo":"S","operationType":"o","extra":1},` +
				`{"id":2.5,"orderNo":"B","orderStatus":"s","createTime":1,"currencyCode":"USD","customReferenceNo":"",` +
				`"invoiceNo":"","productId":12,"productNo":"S","operationType":"o","extra":2}]}`,
			[]Finding{
				unexpected("results[].extra"),
				mismatch("results[].id", wantID, "float"),
				missing("results[].poNumber"),
			}},
		{"page with a wrapped list", partnerclient.EndpointProductList, `{"count":0,"pageNo":1,"pageSize":25,"total":0,"totalPage":0,"results":{"list":["x"]}}`,
			[]Finding{mismatch("results.list[]", "object", "string")}},
		{"list as an array", partnerclient.EndpointBillingContacts,
			`[{"billingContactId":1,"emailAddress":"a","company":"c","firstName":"f","lastName":"l","country":"x","city":"y"}]`,
			[]Finding{unexpected("[].city")}},
		{"list wrapped in an object", partnerclient.EndpointSubordinateUsers,
			`{"records":[{"partnerId":"1","email":"a","company":"c","firstName":"f","lastName":"l","userType":"u","country":"x"}],"size":1}`,
			nil},
		{"list as a single object", partnerclient.EndpointBillingContacts, `{"billingContactId":1e3}`,
			[]Finding{
				mismatch("billingContactId", wantID, "float"),
				missing("company"), missing("country"), missing("emailAddress"), missing("firstName"), missing("lastName"),
			}},
		{"list of the wrong kind", partnerclient.EndpointBillingContacts, `"none"`, []Finding{mismatch("", "array or object", "string")}},
		{"Boolean as a value", partnerclient.EndpointAutoRenewStatus, `true`, nil},
		{"Boolean in an object", partnerclient.EndpointAutoRenewStatus, `{"autoRenew":"true","productNo":"S"}`, []Finding{unexpected("productNo")}},
		{"list of IDs", partnerclient.EndpointPurchaseInfo,
			`{"offeringId":5012,"productId":12,"productName":"P","planList":[],"serviceList":[{"serviceId":"1","serviceName":"s",` +
				`"purchaseType":"p","connectionPlanIds":["1",2,"x"]}]}`,
			[]Finding{mismatch("serviceList[].connectionPlanIds[]", wantID, "string")}},
		{"integer too large for an ID", partnerclient.EndpointBillingContacts, `[{"billingContactId":99999999999999999999,"emailAddress":"a","company":"c","firstName":"f","lastName":"l","country":"x"}]`,
			[]Finding{mismatch("[].billingContactId", wantID, "integer out of range")}},
		{"flags of another type are drift", partnerclient.EndpointProductList,
			`{"count":4,"pageNo":1,"pageSize":25,"total":4,"totalPage":1,"results":[` + productItem(`true`, `"1"`) + `,` +
				productItem(`1`, `0`) + `,` + productItem(`{}`, `"on"`) + `]}`,
			[]Finding{
				drift("results[].planAutoRenewal", "number", "boolean"),
				drift("results[].planAutoRenewal", "number", "object"),
				drift("results[].serviceList[].serviceAutoRenewal", "number", "numeric string"),
				drift("results[].serviceList[].serviceAutoRenewal", "number", "string"),
			}},
		{"other product fields are drift, productNo is not", partnerclient.EndpointProductDetails,
			`{"productNo":3651,"activationCode":"A","activationStatus":"activated","comment":"","createTime":"soon","planId":"x",` +
				`"planName":"P","planStatus":"s","planExpireDate":1,"planAutoRenewal":0,"quantity":"20","customerEmail":"","url":"","yeastarId":""}`,
			[]Finding{
				drift("createTime", wantID, "string"),
				drift("planId", wantID, "string"),
				mismatch("productNo", "string", "integer"),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareResult(tt.ep, json.RawMessage(tt.give))
			if !slices.Equal(got, tt.want) {
				t.Errorf("compareResult(%s, %s)\n got %v\nwant %v", tt.ep, tt.give, got, tt.want)
			}
		})
	}
}

func TestResultSpecsCoverEveryEndpoint(t *testing.T) {
	for _, ep := range partnerclient.AllEndpoints {
		if spec, ok := resultSpecs[ep]; !ok || spec.typ == nil {
			t.Errorf("no result spec for %s", ep)
		}
	}
	if len(resultSpecs) != len(partnerclient.AllEndpoints) {
		t.Errorf("%d result specs for %d endpoints", len(resultSpecs), len(partnerclient.AllEndpoints))
	}
}

func TestCheckBody(t *testing.T) {
	tests := []struct {
		name         string
		ep           partnerclient.Endpoint
		give         string
		wantErr      string
		wantFindings []Finding
	}{
		{"decodes", partnerclient.EndpointActivationCode, `{"code":"success","result":` + allCode + `}`, "", nil},
		{"decoder refuses an object for the code", partnerclient.EndpointActivationCode, `{"code":"success","result":{"code":{"v":"A"},"generateTime":1}}`,
			"decode result: code: want string, got object", []Finding{mismatch("code", "string", "object")}},
		{"decoder tolerates a float time", partnerclient.EndpointActivationCode, `{"code":"success","result":{"code":"A","generateTime":1.5}}`,
			"", []Finding{drift("generateTime", wantID, "float")}},
		{"not a success", partnerclient.EndpointActivationCode, `{"code":"resource_not_found","result":null}`, `envelope code "resource_not_found"`, nil},
		{"not JSON", partnerclient.EndpointActivationCode, `<html>`, "not a JSON object", nil},
		{"unknown endpoint", partnerclient.Endpoint("nope"), `{}`, "no decoder", nil},
		{"token without a token", partnerclient.EndpointToken, `{"code":"success","result":{"expiresIn":"1800"}}`, "no access token",
			[]Finding{missing("refreshToken"), missing("token"), missing("tokenHead")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkAndDecode(t, tt.ep, []byte(tt.give))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkBody error %v, want %q", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.wantFindings) {
				t.Errorf("findings %v, want %v", got, tt.wantFindings)
			}
		})
	}
}

func TestRedactBody(t *testing.T) {
	secrets := []string{"s3cret", "", "tok-A"}
	tests := []struct {
		name  string
		give  string
		token bool
		want  string
	}{
		{"token keys in a token response", `{"result":{"token":"x","refreshToken":"y","expiresIn":1800,"n":12345678901234567890}}`, true,
			`{"result":{"expiresIn":1800,"n":12345678901234567890,"refreshToken":"REDACTED","token":"REDACTED"}}`},
		{"token keys elsewhere are kept", `{"result":{"token":"x"}}`, false, `{"result":{"token":"x"}}`},
		{"secrets in any string", `{"a":["Bearer tok-A",{"b":"s3cret"}],"c":"<&>"}`, false,
			`{"a":["Bearer REDACTED",{"b":"REDACTED"}],"c":"<&>"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(redactBody([]byte(tt.give), tt.token, secrets))
			if normalize(t, got) != normalize(t, tt.want) {
				t.Errorf("redactBody = %s, want %s", got, tt.want)
			}
		})
	}
	if got := string(redactBody([]byte("oops s3cret"), false, secrets)); got != "oops REDACTED" {
		t.Errorf("redactBody of text = %q", got)
	}
}

// normalize returns the compact form of a JSON text, keys sorted, numbers exact.
func normalize(t *testing.T, s string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// productItem is a product list item with the given planAutoRenewal and one service with the
// given serviceAutoRenewal (raw JSON values).
func productItem(plan, service string) string {
	return `{"productNo":"SN","activationCode":"A","activationStatus":"activated","comment":"","createTime":1,"planId":"1",` +
		`"planName":"P","planStatus":"s","planExpireDate":1,"planAutoRenewal":` + plan + `,"quantity":"20","customerEmail":"",` +
		`"url":"","yeastarId":"","serviceList":[{"serviceId":"2","serviceName":"S","quantity":"1","serviceAutoRenewal":` + service +
		`,"serviceExpireDate":1,"serviceStatus":"s"}]}`
}
