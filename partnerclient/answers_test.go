package partnerclient

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// resultAPI is a fake partner API whose business endpoints answer HTTP 200, code success
// and the raw result given for their path.
func resultAPI(t *testing.T, results map[string]string) *fakeAPI {
	t.Helper()
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if strings.HasPrefix(path, PathOrderDetailsPrefix) {
			path = PathOrderDetailsPrefix
		}
		result, ok := results[path]
		if !ok {
			writeEnvelope(w, http.StatusNotFound, CodeNotFound, "no result for "+path, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"success","detailMessage":"","requestId":"req-7","result":` + result + `,"status":200}`))
	})
}

// callEndpoint calls ep on c and returns its result and error.
func callEndpoint(c *Client, ep Endpoint) (any, error) {
	ctx := context.Background()
	switch ep {
	case EndpointProductList:
		return c.ListProducts(ctx, ListProductsParams{ProductID: 12})
	case EndpointProductDetails:
		return c.ProductDetails(ctx, 12, "SN")
	case EndpointPurchaseInfo:
		return c.PurchaseInfo(ctx, 12, "")
	case EndpointBillingContacts:
		return c.BillingContacts(ctx)
	case EndpointSubordinateUsers:
		return c.SubordinateUsers(ctx)
	case EndpointCreateOrder:
		return c.CreateOrder(ctx, OrderRequest{ProductID: 12})
	case EndpointOrderList:
		return c.ListOrders(ctx, ListOrdersParams{})
	case EndpointOrderDetails:
		return c.OrderDetails(ctx, "ZC1")
	case EndpointAutoRenewStatus:
		return c.AutoRenewStatus(ctx, 12, "SN")
	case EndpointEnableAutoRenewal:
		return c.EnableAutoRenewal(ctx, AutoRenewalRequest{ProductNo: "SN", ProductID: "12", PlanOrServiceID: 1})
	case EndpointActivationCode:
		return c.ActivationCode(ctx, 12, "SN")
	}
	panic("unknown endpoint " + ep)
}

var endpointPaths = map[Endpoint]string{
	EndpointProductList: PathProductList, EndpointProductDetails: PathProductDetails,
	EndpointPurchaseInfo: PathPurchaseInfo, EndpointBillingContacts: PathBillingContacts,
	EndpointSubordinateUsers: PathSubordinateUsers, EndpointCreateOrder: PathCreateOrder,
	EndpointOrderList: PathOrderList, EndpointOrderDetails: PathOrderDetailsPrefix,
	EndpointAutoRenewStatus: PathAutoRenewStatus, EndpointEnableAutoRenewal: PathEnableAutoRenewal,
	EndpointActivationCode: PathActivationCode,
}

// An answer that lacks a field the saga relies on is an undecodable answer: retryable for a
// lookup, never a zero ID handed to the saga.
func TestAnswersLackingRequiredFields(t *testing.T) {
	const page = `{"count":1,"pageNo":1,"pageSize":25,"total":1,"totalPage":1,"results":%s}`
	pageOf := func(items string) string { return strings.Replace(page, "%s", items, 1) }
	tests := []struct {
		name    string
		ep      Endpoint
		give    string
		wantErr string // "" for success
	}{
		{"empty billing contact answer", EndpointBillingContacts, `{}`, "billing contact without billingContactId"},
		{"billing contact object without an ID", EndpointBillingContacts, `{"emailAddress":"b@x","total":1}`, "billing contact without billingContactId"},
		{"billing contact with ID 0", EndpointBillingContacts, `[{"billingContactId":0,"emailAddress":"b@x"}]`, "[0]: billing contact without billingContactId"},
		{"second billing contact without an ID", EndpointBillingContacts, `{"list":[{"billingContactId":"1"},{"emailAddress":"b@x"}]}`, "list[1]: billing contact"},
		{"billing contacts", EndpointBillingContacts, `[{"billingContactId":"3197218168379846218","emailAddress":"b@x"}]`, ""},
		{"single billing contact", EndpointBillingContacts, `{"billingContactId":"3197218168379846218"}`, ""},
		{"no billing contacts", EndpointBillingContacts, `[]`, ""},
		{"user without email", EndpointSubordinateUsers, `[{"partnerId":"5"}]`, "subordinate user without partnerId or email"},
		{"user without partnerId", EndpointSubordinateUsers, `[{"email":"it@customer.example"}]`, "subordinate user without partnerId or email"},
		{"empty user answer", EndpointSubordinateUsers, `{}`, "subordinate user"},
		{"users", EndpointSubordinateUsers, `[{"partnerId":"5","email":"it@customer.example"}]`, ""},
		{"product without productNo", EndpointProductList, pageOf(`[{"planId":"1","planName":"U"}]`), "results[0]: product without productNo"},
		{"empty product details", EndpointProductDetails, `{}`, "product without productNo"},
		{"products", EndpointProductList, pageOf(`[{"productNo":"3651E1292455"}]`), ""},
		{"plan without planId", EndpointPurchaseInfo, `{"planList":[{"planName":"Ultimate Plan"}],"serviceList":[]}`, "planList[0]: a plan needs planId and planName"},
		{"plan without planName", EndpointPurchaseInfo, `{"planList":[{"planId":"1"}]}`, "planList[0]"},
		{"service without serviceName", EndpointPurchaseInfo, `{"planList":[{"planId":"1","planName":"U"}],"serviceList":[{"serviceId":"2"}]}`, "serviceList[0]: a service needs serviceId and serviceName"},
		{"service without serviceId", EndpointPurchaseInfo, `{"planList":[{"planId":"1","planName":"U"}],"serviceList":[{"serviceName":"Disaster Recovery"}]}`, "serviceList[0]"},
		{"no planList", EndpointPurchaseInfo, `{"serviceList":[]}`, "no plans: planList is missing or empty"},
		{"empty purchase info", EndpointPurchaseInfo, `{}`, "no plans"},
		{"purchase info", EndpointPurchaseInfo, `{"planList":[{"planId":"1","planName":"U"}],"serviceList":[{"serviceId":"2","serviceName":"D"}]}`, ""},
		{"order without id or orderNo", EndpointOrderList, pageOf(`[{"orderStatus":"succeed","poNumber":"PO-1"}]`), "results[0]: order without id or orderNo"},
		{"order with an id only", EndpointOrderList, pageOf(`[{"id":"1282391"}]`), ""},
		{"order with an orderNo only", EndpointOrderList, pageOf(`[{"orderNo":"ZC1"}]`), ""},
		{"order details without order information", EndpointOrderDetails, `{"basicInformation":{"productNo":"SN"}}`, "order details without orderInformation.orderNo or id"},
		{"order details with an id", EndpointOrderDetails, `{"orderInformation":{"id":1282391}}`, ""},
		{"activation code without code", EndpointActivationCode, `{}`, ""}, // the caller waits for it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := resultAPI(t, map[string]string{endpointPaths[tt.ep]: tt.give})
			_, err := callEndpoint(f.client(t), tt.ep)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want an undecodable *Error saying %q", err, tt.wantErr)
			}
			if e.StatusCode != 200 || e.Code != CodeSuccess || e.RequestID != "req-7" || e.EnvelopeStatus != 200 {
				t.Errorf("status %d code %q request %q envelope status %d", e.StatusCode, e.Code, e.RequestID, e.EnvelopeStatus)
			}
			if o, reason := Classify(err); o != OutcomeRetryable {
				t.Errorf("Classify = %v (%s), want retryable", o, reason)
			}
		})
	}
}

// A create-order success without orderNo is returned, not refused: the order may exist, so
// the caller must reconcile. An orderNo of the wrong type is an undecodable answer: unknown.
func TestCreateOrderWithoutOrderNo(t *testing.T) {
	f := resultAPI(t, map[string]string{PathCreateOrder: `{"orderStatus":"succeed","productNo":"3651E1292455"}`})
	res, err := f.client(t).CreateOrder(context.Background(), OrderRequest{ProductID: 12})
	if err != nil {
		t.Fatal(err)
	}
	if want := (OrderResult{OrderStatus: OrderSucceed, ProductNo: "3651E1292455"}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}

	for _, give := range []string{`{}`, `{"orderNo":null}`, `{"orderNo":""}`} {
		f := resultAPI(t, map[string]string{PathCreateOrder: give})
		res, err := f.client(t).CreateOrder(context.Background(), OrderRequest{ProductID: 12})
		if err != nil || res.OrderNo != "" {
			t.Errorf("%s: %+v, %v; want an empty OrderNo and no error", give, res, err)
		}
	}

	f = resultAPI(t, map[string]string{PathCreateOrder: `{"orderNo":3206258125675945984,"orderStatus":"succeed"}`})
	_, err = f.client(t).CreateOrder(context.Background(), OrderRequest{ProductID: 12})
	if o, _ := Classify(err); o != OutcomeUnknown || !strings.Contains(err.Error(), "orderNo: want string, got integer") {
		t.Errorf("err = %v (%v), want an unknown outcome naming orderNo", err, o)
	}
}

// One value of an unexpected type in a field the saga does not use is tolerated and
// recorded; the same in a field it uses fails the answer.
func TestDriftTolerated(t *testing.T) {
	items := `[` +
		`{"productNo":"3651E1292455","planAutoRenewal":true,"quantity":"20","planId":"1","serviceList":[{"serviceId":"2","serviceAutoRenewal":"1"}]},` +
		`{"productNo":"3651E0529415","planAutoRenewal":false,"createTime":"yesterday","planName":7,"endUserInfo":"n/a"},` +
		`{"productNo":"3651E0774102","planAutoRenewal":"1","serviceList":{"serviceId":"2"}},` +
		`{"productNo":"3651E0318820","planAutoRenewal":1,"planExpireDate":1.5e12}` +
		`]`
	page := `{"count":4,"pageNo":1,"pageSize":25,"total":4,"totalPage":1,"results":` + items + `}`
	f := resultAPI(t, map[string]string{PathProductList: page})
	core, logs := observer.New(zapcore.WarnLevel)
	c := f.client(t, WithLogger(zap.New(core)))
	for range 2 {
		got, err := c.ListProducts(context.Background(), ListProductsParams{ProductID: 12})
		if err != nil {
			t.Fatal(err)
		}
		want := Page[Product]{Count: 4, PageNo: 1, PageSize: 25, Total: 4, TotalPage: 1, Results: []Product{
			{ProductNo: "3651E1292455", PlanAutoRenewal: 1, Quantity: "20", PlanID: 1,
				ServiceList: []ProductService{{ServiceID: 2, ServiceAutoRenewal: 1}}},
			{ProductNo: "3651E0529415"},
			{ProductNo: "3651E0774102", PlanAutoRenewal: 1},
			{ProductNo: "3651E0318820", PlanAutoRenewal: 1},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	}
	wantDrift := []Drift{
		{EndpointProductList, "results[].createTime", "integer or numeric string", "string", 2},
		{EndpointProductList, "results[].planAutoRenewal", "number", "boolean", 4},
		{EndpointProductList, "results[].planAutoRenewal", "number", "numeric string", 2},
		{EndpointProductList, "results[].planExpireDate", "integer or numeric string", "float", 2},
		{EndpointProductList, "results[].planName", "string", "integer", 2},
		{EndpointProductList, "results[].serviceList", "array", "object", 2},
		{EndpointProductList, "results[].serviceList[].serviceAutoRenewal", "number", "numeric string", 2},
	}
	if got := c.Drift(); !reflect.DeepEqual(got, wantDrift) {
		t.Errorf("Drift() =\n%v\nwant\n%v", got, wantDrift)
	}
	if got := wantDrift[1].String(); got != "product_list: results[].planAutoRenewal: want number, got boolean" {
		t.Errorf("String() = %q", got)
	}
	if n := logs.FilterMessageSnippet("unexpected type").Len(); n != len(wantDrift) {
		t.Errorf("%d drift warnings logged, want one per kind of drift (%d)", n, len(wantDrift))
	}

	// productNo is what the saga uses: a number there fails the answer.
	f = resultAPI(t, map[string]string{PathProductList: `{"results":[{"productNo":3651,"planAutoRenewal":true}]}`})
	_, err := f.client(t).ListProducts(context.Background(), ListProductsParams{ProductID: 12})
	if o, _ := Classify(err); o != OutcomeRetryable || !strings.Contains(err.Error(), "results[].productNo: want string, got integer") {
		t.Errorf("err = %v (%v), want a retryable error naming productNo", err, o)
	}
}
