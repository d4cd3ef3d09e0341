package partnertest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// rawAnswer is an answer decoded as generic JSON, numbers kept as json.Number.
type rawAnswer struct {
	HTTPStatus int
	Header     http.Header
	Body       []byte
	Envelope   map[string]any
}

// raw makes one request with plain net/http and decodes the body, if any, as generic JSON. It
// does not follow redirects and checks nothing.
func (c *apiClient) raw(method, path string, q url.Values, contentType string, body []byte) rawAnswer {
	c.t.Helper()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("User-Agent", testUA)
	if c.token != "" && path != docToken {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	a := rawAnswer{HTTPStatus: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
	if buf.Len() > 0 {
		dec := json.NewDecoder(bytes.NewReader(a.Body))
		dec.UseNumber()
		if err := dec.Decode(&a.Envelope); err != nil {
			c.t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, a.Body, err)
		}
	}
	return a
}

func (c *apiClient) rawGet(path string, q url.Values) rawAnswer {
	c.t.Helper()
	return c.raw(http.MethodGet, path, q, "", nil)
}

func (c *apiClient) rawPost(path string, body any) rawAnswer {
	c.t.Helper()
	return c.raw(http.MethodPost, path, nil, "application/json", mustJSON(c.t, body))
}

// result returns the envelope's result as an object.
func (a rawAnswer) result(t *testing.T) map[string]any {
	t.Helper()
	m, ok := a.Envelope["result"].(map[string]any)
	if !ok {
		t.Fatalf("result %#v is not an object (body %s)", a.Envelope["result"], a.Body)
	}
	return m
}

// jsonType names the JSON type of a generically decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	default:
		return "?"
	}
}

// wantFields fails unless obj has exactly the fields of want, each of the JSON type want gives.
func wantFields(t *testing.T, what string, obj map[string]any, want map[string]string) {
	t.Helper()
	for name, typ := range want {
		v, ok := obj[name]
		if !ok {
			t.Errorf("%s: field %s missing", what, name)
			continue
		}
		if got := jsonType(v); got != typ {
			t.Errorf("%s: %s is a JSON %s (%v), documented as %s", what, name, got, v, typ)
		}
	}
	var extra []string
	for name := range obj {
		if _, ok := want[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("%s: undocumented fields %v", what, extra)
	}
}

// envelopeFields are the documented envelope fields of a success.
var envelopeFields = func(result string) map[string]string {
	return map[string]string{"code": "string", "detailMessage": "string", "requestId": "string",
		"result": result, "status": "number"}
}

// productFields are the fields of Get Product Details' Details, with their JSON types; the
// date fields documented as String are filled only while a plan is switching.
var productFields = map[string]string{
	"activationCode": "string", "activationStatus": "string", "comment": "string", "createTime": "number",
	"currentPlan": "string", "currentPlanExpireDate": "string", "customerEmail": "string",
	"endUserInfo": "object", "model": "string", "nextPlan": "string", "nextPlanExpireDate": "string",
	"nextPlanStartDate": "string", "partnerEmail": "string", "planAutoRenewal": "number",
	"planExpireDate": "number", "planId": "string", "planName": "string", "planStatus": "string",
	"productAdminEmail": "string", "productNo": "string", "quantity": "string", "referrer": "string",
	"serviceList": "array", "url": "string", "yeastarId": "string",
}

var endUserFields = map[string]string{"address": "string", "companyName": "string", "contactName": "string",
	"email": "string"}

// serviceFields are Service_Info's; servicePeriod is returned for P-Series Software Edition.
var serviceFields = map[string]string{
	"quantity": "string", "serviceAutoRenewal": "number", "serviceExpireDate": "number", "serviceId": "string",
	"serviceName": "string", "servicePeriod": "number", "serviceStatus": "string",
}

var pageFields = map[string]string{"count": "number", "pageNo": "number", "pageSize": "number",
	"results": "array", "total": "number", "totalPage": "number"}

// checkProduct checks one product object against the Get Product Details page.
func checkProduct(t *testing.T, what string, p map[string]any) {
	t.Helper()
	wantFields(t, what, p, productFields)
	if eu, ok := p["endUserInfo"].(map[string]any); ok {
		wantFields(t, what+".endUserInfo", eu, endUserFields)
	}
	if v := p["planAutoRenewal"]; v != json.Number("0") && v != json.Number("1") {
		t.Errorf("%s: planAutoRenewal %v, want 0 or 1", what, v)
	}
	if !slices.Contains([]string{"trialing", "subscribing", "purchased", "expiring", "expired", "switching"},
		p["planStatus"].(string)) {
		t.Errorf("%s: planStatus %v is not a documented value", what, p["planStatus"])
	}
	if !slices.Contains([]string{"unknown", "unactivated", "activated"}, p["activationStatus"].(string)) {
		t.Errorf("%s: activationStatus %v is not a documented value", what, p["activationStatus"])
	}
	list, _ := p["serviceList"].([]any)
	for _, sv := range list {
		wantFields(t, what+".serviceList[]", sv.(map[string]any), serviceFields)
	}
}

// TestRoutesAreTheDocumentedPaths calls every documented path with its method and checks that
// the simulator serves it as the endpoint it names; a path one character off is unknown.
func TestRoutesAreTheDocumentedPaths(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	routes := []struct {
		ep     partnerclient.Endpoint
		method string
		path   string
	}{
		{partnerclient.EndpointToken, http.MethodPost, "/auth/openapi/v1/oauth/token"},
		{partnerclient.EndpointProductList, http.MethodGet, "/product/openapi/instance_product/v1/client/instance_product_list"},
		{partnerclient.EndpointProductDetails, http.MethodGet, "/product/openapi/instance_product/v1/detail"},
		{partnerclient.EndpointPurchaseInfo, http.MethodGet, "/pricing/openapi/purchase/v1/purchase_product_info"},
		{partnerclient.EndpointBillingContacts, http.MethodGet, "/user/openapi/user/v1/client/billing_contact_list"},
		{partnerclient.EndpointSubordinateUsers, http.MethodGet, "/user/openapi/user/v1/client/partner_list"},
		{partnerclient.EndpointCreateOrder, http.MethodPost, "/order/openapi/order/v1/save"},
		{partnerclient.EndpointOrderList, http.MethodGet, "/order/openapi/order/v1/page"},
		{partnerclient.EndpointOrderDetails, http.MethodGet, "/order/openapi/order/v1/get/1282391"},
		{partnerclient.EndpointAutoRenewStatus, http.MethodGet, "/order/openapi/order/v1/check/existed_auto_renew"},
		{partnerclient.EndpointEnableAutoRenewal, http.MethodPost, "/product/openapi/instance_subscription/v1/active"},
		{partnerclient.EndpointActivationCode, http.MethodGet, "/product/openapi/instance_product/v1/activation_code"},
	}
	for _, rt := range routes {
		t.Run(string(rt.ep), func(t *testing.T) {
			before := srv.Calls(rt.ep)
			a := c.raw(rt.method, rt.path, nil, "application/json", nil)
			if srv.Calls(rt.ep) != before+1 {
				t.Errorf("%s %s was not served as %s: %d %s", rt.method, rt.path, rt.ep, a.HTTPStatus, a.Body)
			}
			if a.HTTPStatus == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: method not allowed", rt.method, rt.path)
			}
			// The same path with its last letter changed is not a route.
			wrong := rt.path[:len(rt.path)-1] + "X"
			if a := c.raw(rt.method, wrong, nil, "application/json", nil); a.HTTPStatus != http.StatusNotFound ||
				a.Envelope["code"] != partnertest.CodeNotFound {
				t.Errorf("%s %s: %d %s, want 404 resource_not_found", rt.method, wrong, a.HTTPStatus, a.Body)
			}
		})
	}
	if n := len(partnerclient.AllEndpoints); n != len(routes) {
		t.Errorf("%d endpoints, %d documented routes tested", n, len(routes))
	}
}

// TestDocumentedWireTypes decodes every answer as generic JSON and checks each field's JSON
// type against the documentation: quantity is a string, planAutoRenewal a number, IDs strings
// where the pages say String, times numbers.
func TestDocumentedWireTypes(t *testing.T) {
	srv, c := newServer(t, partnertest.WithSeed(3))
	tok := c.raw(http.MethodPost, docToken, nil, "application/x-www-form-urlencoded", []byte(url.Values{
		"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret},
	}.Encode()))
	wantFields(t, "token envelope", tok.Envelope, envelopeFields("object"))
	wantFields(t, "token", tok.result(t), map[string]string{"expiresIn": "string", "refreshToken": "string",
		"token": "string", "tokenHead": "string"})
	c.token = tok.result(t)["token"].(string)

	check := func(name string, a rawAnswer, result string) {
		t.Helper()
		wantFields(t, name+" envelope", a.Envelope, envelopeFields(result))
		if a.Envelope["status"] != json.Number(itoa(a.HTTPStatus)) || a.HTTPStatus != http.StatusOK {
			t.Errorf("%s: HTTP %d, status field %v", name, a.HTTPStatus, a.Envelope["status"])
		}
	}

	list := c.rawGet(docProductList, url.Values{"productId": {"12"}, "pageSize": {"100"}})
	check("product list", list, "object")
	wantFields(t, "product list page", list.result(t), pageFields)
	items := list.result(t)["results"].([]any)
	if len(items) != partnertest.SeedProductCount {
		t.Fatalf("%d products", len(items))
	}
	for _, it := range items {
		checkProduct(t, "product list item", it.(map[string]any))
	}

	det := c.rawGet(docProductDetails, productQuery(partnertest.ExistingUltimateSN, 12))
	check("product details", det, "object")
	p := det.result(t)
	checkProduct(t, "product details", p)
	if p["quantity"] != "50" || p["planAutoRenewal"] != json.Number("1") ||
		p["serviceList"].([]any)[0].(map[string]any)["serviceAutoRenewal"] != json.Number("1") {
		t.Errorf("product details = %s", det.Body)
	}

	contacts := c.rawGet(docBillingContacts, nil)
	check("billing contacts", contacts, "array")
	for _, ct := range contacts.Envelope["result"].([]any) {
		f := map[string]string{}
		for _, k := range []string{"billingContactId", "city", "company", "country", "emailAddress", "firstName",
			"lastName", "phoneNumber", "remark", "stateProvince", "street", "taxNum", "zipCode"} {
			f[k] = "string"
		}
		wantFields(t, "billing contact", ct.(map[string]any), f)
	}

	users := c.rawGet(docSubordinateUsers, nil)
	check("subordinate users", users, "array")
	for _, u := range users.Envelope["result"].([]any) {
		f := map[string]string{}
		for _, k := range []string{"city", "company", "country", "email", "firstName", "lastName", "partnerId",
			"phoneNumber", "remark", "stateProvince", "street", "taxNum", "userType", "zipCode"} {
			f[k] = "string"
		}
		wantFields(t, "subordinate user", u.(map[string]any), f)
	}

	info := c.rawGet(docPurchaseInfo, url.Values{"productId": {"12"}})
	check("purchase info", info, "object")
	wantFields(t, "purchase info", info.result(t), map[string]string{"offeringId": "string", "productId": "number",
		"productName": "string", "planList": "array", "serviceList": "array"})

	order := c.rawPost(docCreateOrder, newOrder("PO-types"))
	check("create order", order, "object")
	res := order.result(t)
	wantFields(t, "create order", res, map[string]string{"instanceId": "string", "orderNo": "string",
		"orderStatus": "string", "productNo": "string", "transactionNo": "string"})

	orders := c.rawGet(docOrderList, nil)
	check("order list", orders, "object")
	wantFields(t, "order list page", orders.result(t), pageFields)
	wantFields(t, "order list item", orders.result(t)["results"].([]any)[0].(map[string]any), map[string]string{
		"createTime": "number", "currencyCode": "string", "customReferenceNo": "string", "id": "string",
		"invoiceNo": "string", "orderNo": "string", "orderStatus": "string", "poNumber": "string",
		"productId": "number", "productNo": "string", "operationType": "string",
	})

	details := c.rawGet(docOrderDetailsPrefix+res["orderNo"].(string), nil)
	check("order details", details, "object")
	d := details.result(t)
	basic := d["basicInformation"].(map[string]any)
	wantFields(t, "order basicInformation", basic, map[string]string{"productId": "string", "productName": "string",
		"productNo": "string"})
	oi := d["orderInformation"].(map[string]any)
	for k, typ := range map[string]string{"id": "string", "orderNo": "string", "orderStatus": "string",
		"poNumber": "string", "createTime": "number", "operationType": "string"} {
		if got := jsonType(oi[k]); got != typ {
			t.Errorf("orderInformation.%s is a JSON %s, want %s", k, got, typ)
		}
	}
	if got := jsonType(d["billingInformation"].(map[string]any)["billingContactId"]); got != "string" {
		t.Errorf("billingInformation.billingContactId is a JSON %s", got)
	}

	sn := res["productNo"].(string)
	code := c.rawGet(docActivationCode, productQuery(sn, 12))
	check("activation code", code, "object")
	wantFields(t, "activation code", code.result(t), map[string]string{"code": "string", "generateTime": "number"})

	renew := c.rawGet(docAutoRenewStatus, productQuery(sn, 12))
	check("auto renew status", renew, "object")
	wantFields(t, "auto renew status", renew.result(t), map[string]string{"autoRenew": "boolean"})

	enable := c.rawPost(docEnableAutoRenewal, map[string]any{"productNo": sn, "productId": "12",
		"planOrServiceId": int64(partnertest.PlanEnterpriseID)})
	check("enable auto-renewal", enable, "boolean")

	bad := c.rawGet(docProductList, nil)
	wantFields(t, "error envelope", bad.Envelope, envelopeFields("object"))
	if bad.HTTPStatus != http.StatusBadRequest || bad.Envelope["status"] != json.Number("400") {
		t.Errorf("error: HTTP %d, status %v", bad.HTTPStatus, bad.Envelope["status"])
	}
	_ = srv
}

// TestOrderBodyFieldNames checks that Create an Order reads the documented body names: the
// same order with billingId spelt differently is refused.
func TestOrderBodyFieldNames(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	b := mustJSON(t, newOrder("PO-names"))
	misspelt := bytes.Replace(b, []byte(`"billingId"`), []byte(`"billingID"`), 1)
	a := c.postJSON(docCreateOrder, misspelt)
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
	if a.fields(t)["billingId"] != "required" || len(srv.Orders()) != 0 {
		t.Fatalf("misspelt billingId: %s %s, %d orders", a.Code, a.Result, len(srv.Orders()))
	}
	// IDs as documented (numbers) and as numeric strings are both read.
	asStrings := bytes.Replace(b, []byte(`"billingId":3197218168379846218`), []byte(`"billingId":"3197218168379846218"`), 1)
	if bytes.Equal(asStrings, b) {
		t.Fatalf("body %s", b)
	}
	wantCode(t, c.postJSON(docCreateOrder, asStrings), http.StatusOK, partnertest.CodeSuccess)
}
