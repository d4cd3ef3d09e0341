package partnerclient

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    envelope
		wantErr bool
	}{
		{
			name: "success",
			give: `{"code":"success","detailMessage":"","requestId":"r1","result":{"a":1},"status":200,"extra":[1]}`,
			want: envelope{Code: "success", RequestID: "r1", Result: json.RawMessage(`{"a":1}`), Status: 200},
		},
		{
			name: "error with numbers as strings",
			give: ` {"code":"parameter_validation_failed","detailMessage":"bad","requestId":12,"result":{"billingId":"required"},"status":"400"}`,
			want: envelope{Code: "parameter_validation_failed", DetailMessage: "bad", RequestID: "12", Result: json.RawMessage(`{"billingId":"required"}`), Status: 400},
		},
		{
			name: "odd statuses read as absent",
			give: `{"code":"x","status":"OK"}`,
			want: envelope{Code: "x"},
		},
		{name: "status out of range", give: `{"code":"x","status":2000}`, want: envelope{Code: "x"}},
		{name: "status float", give: `{"code":"x","status":5.0e2}`, want: envelope{Code: "x"}},
		{name: "status object", give: `{"code":"x","status":{"http":500}}`, want: envelope{Code: "x"}},
		{name: "status null", give: `{"code":"x","status":null}`, want: envelope{Code: "x"}},
		{name: "status 503", give: `{"code":"x","status":503}`, want: envelope{Code: "x", Status: 503}},
		{name: "empty", give: ``, wantErr: true},
		{name: "html", give: `<html>502 Bad Gateway</html>`, wantErr: true},
		{name: "array", give: `[]`, wantErr: true},
		{name: "truncated", give: `{"code":"success","result":{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEnvelope([]byte(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeLists(t *testing.T) {
	want := []BillingContact{{BillingContactID: 3197218168379846218, EmailAddress: "b@x"}}
	item := `{"billingContactId":"3197218168379846218","emailAddress":"b@x","unknown":true}`
	tests := []struct {
		name    string
		give    string
		want    []BillingContact
		wantErr bool
	}{
		{name: "array", give: `[` + item + `]`, want: want},
		{name: "number id", give: `[{"billingContactId":3197218168379846218,"emailAddress":"b@x"}]`, want: want},
		{name: "wrapped results", give: `{"results":[` + item + `],"total":1}`, want: want},
		{name: "wrapped list", give: `{"list":[` + item + `]}`, want: want},
		{name: "only field", give: `{"contacts":[` + item + `]}`, want: want},
		{name: "single object", give: item, want: want},
		{name: "null", give: `null`, want: []BillingContact{}},
		{name: "empty array", give: `[]`, want: []BillingContact{}},
		{name: "string", give: `"x"`, wantErr: true},
		{name: "bad id", give: `[{"billingContactId":"abc"}]`, wantErr: true},
		{name: "float id", give: `[{"billingContactId":1.5}]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBillingContacts(json.RawMessage(tt.give), driftSink{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodePage(t *testing.T) {
	give := `{"count":"2","pageNo":1,"pageSize":25,"total":2,"totalPage":"1","results":[
		{"id":"1282391","orderNo":"ZC1","orderStatus":"succeed","createTime":1701927971000,"poNumber":"PO-1","productId":"12"},
		{"id":1282392,"orderNo":"ZC2","orderStatus":"pending","createTime":"1701927972000"}]}`
	got, err := decodeOrderPage(json.RawMessage(give), driftSink{})
	if err != nil {
		t.Fatal(err)
	}
	want := Page[OrderSummary]{Count: 2, PageNo: 1, PageSize: 25, Total: 2, TotalPage: 1, Results: []OrderSummary{
		{ID: 1282391, OrderNo: "ZC1", OrderStatus: "succeed", CreateTime: 1701927971000, PONumber: "PO-1", ProductID: 12},
		{ID: 1282392, OrderNo: "ZC2", OrderStatus: "pending", CreateTime: 1701927972000},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := decodeOrderPage(json.RawMessage(`[]`), driftSink{}); err == nil {
		t.Error("a list is not a page")
	}
}

func TestDecodeBool(t *testing.T) {
	tests := []struct {
		give    string
		want    bool
		wantErr bool
	}{
		{give: `true`, want: true},
		{give: `false`, want: false},
		{give: `"true"`, want: true},
		{give: `1`, want: true},
		{give: `{"autoRenew":true}`, want: true},
		{give: `{"autoRenew":"false"}`, want: false},
		{give: `{"other":true}`, wantErr: true},
		{give: `null`, wantErr: true},
		{give: `"yes please"`, wantErr: true},
		{give: ``, wantErr: true},
	}
	for _, tt := range tests {
		got, err := decodeAutoRenewStatus(json.RawMessage(tt.give), driftSink{})
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("decodeAutoRenewStatus(%s, driftSink{}) = %v, %v; want %v, err %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantTTL time.Duration
		wantErr bool
	}{
		{name: "documented", give: `{"token":"a","refreshToken":"r","tokenHead":"Bearer ","expiresIn":"1800"}`, wantTTL: 30 * time.Minute},
		{name: "number", give: `{"token":"a","expiresIn":60}`, wantTTL: time.Minute},
		{name: "missing expiry", give: `{"token":"a"}`, wantTTL: 30 * time.Minute},
		{name: "no token", give: `{"token":"","expiresIn":"1800"}`, wantErr: true},
		{name: "not an object", give: `"a"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ttl, err := decodeToken(json.RawMessage(tt.give), driftSink{})
			if (err != nil) != tt.wantErr || ttl != tt.wantTTL {
				t.Errorf("ttl, err = %v, %v; want %v, err %v", ttl, err, tt.wantTTL, tt.wantErr)
			}
		})
	}
}

func TestDecodeAssumedShapes(t *testing.T) {
	// The shapes assumed in docs/partner-api.md, verbatim.
	details := `{"basicInformation":{"productId":"12","productName":"P-Series Software Edition","productNo":"3651E1292455"},
	  "orderInformation":{"id":"1282391","orderNo":"ZC3206258125675945984","orderStatus":"succeed","poNumber":"PO-77812","createTime":1701927971000,"operationType":"purchase_plan"},
	  "billingInformation":{"billingContactId":"3197218168379846218","emailAddress":"billing@reseller.example"},
	  "orderSummary":{"serviceList":[{"serviceType":"plan","serviceId":"3049041101760282624","quantity":100,"multiCycle":2}]}}`
	d, err := decodeOrderDetails(json.RawMessage(details), driftSink{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Basic.ProductNo != "3651E1292455" || d.Order.ID != 1282391 || d.Order.PONumber != "PO-77812" ||
		d.Billing.BillingContactID != 3197218168379846218 || d.Summary.ServiceList[0].ServiceID != 3049041101760282624 ||
		d.Summary.ServiceList[0].Quantity != 100 {
		t.Errorf("order details decoded as %+v", d)
	}

	info := `{"offeringId":"5012","productId":12,"productName":"P-Series Software Edition",
	  "planList":[{"planId":"3049041101760282624","planName":"Ultimate Plan","purchaseType":"purchase","billingModel":"recurring","billingCycle":"annually","minQuantity":1,"maxQuantity":100000}],
	  "serviceList":[{"serviceId":"3129372068699893760","serviceName":"Disaster Recovery","purchaseType":"purchase","connectionPlanIds":["3049041101760282624"]}]}`
	p, err := decodePurchaseInfo(json.RawMessage(info), driftSink{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Plans[0].PlanID != 3049041101760282624 || p.Services[0].ConnectionPlanIDs[0] != 3049041101760282624 || p.ProductID != 12 {
		t.Errorf("purchase info decoded as %+v", p)
	}

	order := `{"instanceId":"1282391","orderNo":"ZC3206258125675945984","orderStatus":"succeed","productNo":"3651E1292455","transactionNo":"AK3206258126833573889"}`
	o, err := decodeOrderResult(json.RawMessage(order), driftSink{})
	want := OrderResult{InstanceID: "1282391", OrderNo: "ZC3206258125675945984", OrderStatus: OrderSucceed, ProductNo: "3651E1292455", TransactionNo: "AK3206258126833573889"}
	if err != nil || o != want {
		t.Errorf("order result = %+v, %v; want %+v", o, err, want)
	}
}

// FuzzDecodeEnvelope checks that no body makes the envelope or result decoders panic,
// and that a decoded envelope's result is valid JSON.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"code":"success","detailMessage":"","requestId":"r","result":{"results":[{"id":"1"}],"total":"1"},"status":200}`,
		`{"code":"success","result":[{"billingContactId":1}]}`,
		`{"code":"success","result":{"autoRenew":true}}`,
		`{"code":"parameter_validation_failed","detailMessage":"x","result":{"f":"required"},"status":400}`,
		`{"code":1,"requestId":null,"result":null}`,
		`{"code":"success","result":{"results":[{"productNo":"S","planAutoRenewal":true,"serviceList":[{"serviceAutoRenewal":"1","serviceId":1.5}]}]},"status":"200"}`,
		`{"code":"success","result":{"planList":[{"planId":"1","planName":"U","billingCycle":7}],"serviceList":{"x":1}}}`,
		`{"code":"success","result":{"orderInformation":{"id":1,"createTime":"x"},"orderSummary":{"serviceList":[{"serviceId":"2","price":{}}]}}}`,
		`<html></html>`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope(body)
		if err != nil {
			return
		}
		if len(env.Result) > 0 && !json.Valid(env.Result) {
			t.Fatalf("result %q is not valid JSON", env.Result)
		}
		d := driftSink{ep: EndpointProductList, rec: new(driftRecorder)}
		_, _ = decodeProductPage(env.Result, d)
		_, _ = decodeProduct(env.Result, d)
		_, _ = decodeOrderPage(env.Result, d)
		_, _ = decodeBillingContacts(env.Result, d)
		_, _ = decodeSubordinateUsers(env.Result, d)
		_, _ = decodePurchaseInfo(env.Result, d)
		_, _ = decodeOrderResult(env.Result, d)
		_, _ = decodeOrderDetails(env.Result, d)
		_, _ = decodeActivationCode(env.Result, d)
		_, _ = decodeAutoRenewStatus(env.Result, d)
		_, _ = decodeEnableAutoRenewal(env.Result, d)
		_, _, _ = decodeToken(env.Result, d)
	})
}

// FuzzUnquote checks that unquote's direct path agrees with json.Unmarshal on every literal.
func FuzzUnquote(f *testing.F) {
	for _, seed := range []string{
		`"3049041101760282624"`, `""`, `"ZC1"`, `"a\"b"`, `"tab\tx"`, `"\u00e9t\u00e9"`, `"été"`,
		"\"\xff\"", "\"a\x01\"", `"`, `"""`, `x`, `12`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want string
		wantErr := json.Unmarshal(b, &want)
		got, err := unquote(b)
		if (err != nil) != (wantErr != nil) || (err == nil && got != want) {
			t.Fatalf("unquote(%q) = %q, %v; json.Unmarshal: %q, %v", b, got, err, want, wantErr)
		}
	})
}

// BenchmarkDecodeProductPage decodes a product list answer: in one go (the fast path every
// answer takes), and with a Boolean planAutoRenewal in every item (the lenient path).
func BenchmarkDecodeProductPage(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(fixtureDir, "product_list.json"))
	if err != nil {
		b.Fatal(err)
	}
	drifted := bytes.ReplaceAll(body, []byte(`"planAutoRenewal": 0`), []byte(`"planAutoRenewal": false`))
	if bytes.Equal(body, drifted) {
		b.Fatal("the fixture has no planAutoRenewal 0 to replace")
	}
	for _, bm := range []struct {
		name string
		body []byte
	}{{"fast", body}, {"lenient", drifted}} {
		b.Run(bm.name, func(b *testing.B) {
			d := driftSink{ep: EndpointProductList, rec: new(driftRecorder)}
			b.ReportAllocs()
			for b.Loop() {
				env, err := decodeEnvelope(bm.body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := decodeProductPage(env.Result, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
