package partnertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/clocktest"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

const testUA = "fulfil-test/1"

// The paths of the Partner Portal API guide, written here independently of partnerclient and of
// the simulator: a route that differs from the documentation fails these tests.
const (
	docToken              = "/auth/openapi/v1/oauth/token"
	docProductList        = "/product/openapi/instance_product/v1/client/instance_product_list"
	docProductDetails     = "/product/openapi/instance_product/v1/detail"
	docPurchaseInfo       = "/pricing/openapi/purchase/v1/purchase_product_info"
	docBillingContacts    = "/user/openapi/user/v1/client/billing_contact_list"
	docSubordinateUsers   = "/user/openapi/user/v1/client/partner_list"
	docCreateOrder        = "/order/openapi/order/v1/save"
	docOrderList          = "/order/openapi/order/v1/page"
	docOrderDetailsPrefix = "/order/openapi/order/v1/get/"
	docAutoRenewStatus    = "/order/openapi/order/v1/check/existed_auto_renew"
	docEnableAutoRenewal  = "/product/openapi/instance_subscription/v1/active"
	docActivationCode     = "/product/openapi/instance_product/v1/activation_code"
)

// The wire types of the tests, written from the documentation (and the assumed shapes where it
// is cut off), with the documented JSON types: a field the simulator encodes with another type fails
// to decode.

// pageOf is the documented paging wrapper.
type pageOf[T any] struct {
	Count     int `json:"count"`
	PageNo    int `json:"pageNo"`
	PageSize  int `json:"pageSize"`
	Results   []T `json:"results"`
	Total     int `json:"total"`
	TotalPage int `json:"totalPage"`
}

// orderRequest is the body of Create an Order.
type orderRequest struct {
	OperationType string      `json:"operationType"`
	ProductID     int64       `json:"productId"`
	ProductNo     string      `json:"productNo,omitempty"`
	PartnerID     int64       `json:"partnerId,omitempty"`
	AssignID      string      `json:"assignId,omitempty"`
	BillingID     int64       `json:"billingId"`
	PONumber      string      `json:"poNumber,omitempty"`
	ServiceList   []orderLine `json:"serviceList"`
}

// orderLine is a Service_List item of Create an Order.
type orderLine struct {
	ServiceType      string `json:"serviceType"`
	ServiceID        int64  `json:"serviceId"`
	ConnectionPlanID int64  `json:"connectionPlanId,omitempty"`
	Quantity         int    `json:"quantity,omitempty"`
	PurchaseType     string `json:"purchaseType"`
	BillingModel     string `json:"billingModel"`
	BillingCycle     string `json:"billingCycle"`
	MultiCycle       int    `json:"multiCycle"`
}

// orderItem is an Order_Info of Query Order List: id is a String, createTime a Long.
type orderItem struct {
	CreateTime        int64  `json:"createTime"`
	CurrencyCode      string `json:"currencyCode"`
	CustomReferenceNo string `json:"customReferenceNo"`
	ID                string `json:"id"`
	InvoiceNo         string `json:"invoiceNo"`
	OrderNo           string `json:"orderNo"`
	OrderStatus       string `json:"orderStatus"`
	PONumber          string `json:"poNumber"`
	ProductID         int64  `json:"productId"`
	ProductNo         string `json:"productNo"`
	OperationType     string `json:"operationType"`
}

// orderDetails is the result of Get Order Details (assumed shape): productId, id and
// billingContactId are Strings.
type orderDetails struct {
	Basic struct {
		ProductID   string `json:"productId"`
		ProductName string `json:"productName"`
		ProductNo   string `json:"productNo"`
	} `json:"basicInformation"`
	Order struct {
		ID            string `json:"id"`
		OrderNo       string `json:"orderNo"`
		OrderStatus   string `json:"orderStatus"`
		PONumber      string `json:"poNumber"`
		CreateTime    int64  `json:"createTime"`
		OperationType string `json:"operationType"`
		TransactionNo string `json:"transactionNo"`
	} `json:"orderInformation"`
	Billing struct {
		BillingContactID string `json:"billingContactId"`
		EmailAddress     string `json:"emailAddress"`
	} `json:"billingInformation"`
	Summary struct {
		ServiceList []struct {
			ServiceType string `json:"serviceType"`
			ServiceID   string `json:"serviceId"`
			Quantity    int    `json:"quantity"`
			MultiCycle  int    `json:"multiCycle"`
		} `json:"serviceList"`
	} `json:"orderSummary"`
}

// activationCode is the documented Code_Info.
type activationCode struct {
	Code         string `json:"code"`
	GenerateTime int64  `json:"generateTime"`
}

// fakeClock is a controllable clock for WithClock.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) }

// answer is a decoded envelope.
type answer struct {
	HTTPStatus    int
	Header        http.Header
	Code          string          `json:"code"`
	DetailMessage string          `json:"detailMessage"`
	RequestID     string          `json:"requestId"`
	Result        json.RawMessage `json:"result"`
	Status        int             `json:"status"`
}

// decode unmarshals the result into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Result, v); err != nil {
		t.Fatalf("decode result %s: %v", a.Result, err)
	}
}

// fields returns the result of a validation error as field → tag.
func (a answer) fields(t *testing.T) map[string]string {
	t.Helper()
	var m map[string]string
	a.decode(t, &m)
	return m
}

// apiClient talks to a simulator with plain net/http.
type apiClient struct {
	t     *testing.T
	base  string
	hc    *http.Client
	token string
}

func newServer(t *testing.T, opts ...partnertest.Option) (*partnertest.Server, *apiClient) {
	t.Helper()
	srv := partnertest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv, &apiClient{t: t, base: srv.URL, hc: &http.Client{Timeout: 10 * time.Second}}
}

// login fetches an access token with the default credentials and keeps it.
func (c *apiClient) login() tokenResult {
	c.t.Helper()
	a := c.tokenForm(url.Values{
		"grant_type":    {"pp_credentials"},
		"client_id":     {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret},
	})
	if a.Code != partnertest.CodeSuccess {
		c.t.Fatalf("login: %d %s %s", a.HTTPStatus, a.Code, a.DetailMessage)
	}
	var tok tokenResult
	a.decode(c.t, &tok)
	c.token = tok.Token
	return tok
}

type tokenResult struct {
	ExpiresIn    string `json:"expiresIn"`
	RefreshToken string `json:"refreshToken"`
	Token        string `json:"token"`
	TokenHead    string `json:"tokenHead"`
}

func (c *apiClient) tokenForm(form url.Values) answer {
	c.t.Helper()
	return c.send(http.MethodPost, docToken, nil, "application/x-www-form-urlencoded",
		[]byte(form.Encode()), nil)
}

func (c *apiClient) tokenMultipart(form url.Values) answer {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range form {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	if err := mw.Close(); err != nil {
		c.t.Fatal(err)
	}
	return c.send(http.MethodPost, docToken, nil, mw.FormDataContentType(), buf.Bytes(), nil)
}

func (c *apiClient) get(path string, q url.Values) answer {
	c.t.Helper()
	return c.send(http.MethodGet, path, q, "", nil, nil)
}

func (c *apiClient) postJSON(path string, body any) answer {
	c.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.send(http.MethodPost, path, nil, "application/json", b, nil)
}

// send makes one request with the client's token and User-Agent; edit may change the request.
// A transport error fails the test; use do for calls that may be reset.
func (c *apiClient) send(method, path string, q url.Values, contentType string, body []byte,
	edit func(*http.Request)) answer {
	c.t.Helper()
	a, err := c.do(method, path, q, contentType, body, edit)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// do makes one request and returns the decoded envelope or the transport error. It is safe to
// call from any goroutine: a status field that differs from the HTTP status, or a malformed
// requestId, is reported with t.Errorf.
func (c *apiClient) do(method, path string, q url.Values, contentType string, body []byte,
	edit func(*http.Request)) (answer, error) {
	c.t.Helper()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("User-Agent", testUA)
	if c.token != "" && path != docToken {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{HTTPStatus: resp.StatusCode, Header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return answer{}, fmt.Errorf("decode envelope: %w", err)
	}
	if a.Status != a.HTTPStatus {
		c.t.Errorf("%s %s: status field %d, HTTP status %d", method, path, a.Status, a.HTTPStatus)
	}
	if len(a.RequestID) != 32 || strings.Trim(a.RequestID, "0123456789abcdef") != "" {
		c.t.Errorf("%s %s: requestId %q is not 32 hex characters", method, path, a.RequestID)
	}
	return a, nil
}

// wantCode fails the test unless a has the HTTP status and code.
func wantCode(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.HTTPStatus != status || a.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", a.HTTPStatus, a.Code, a.DetailMessage, status, code)
	}
}

// planLine is an order line for plan with the fixed values of an annual purchase.
func planLine(plan int64, quantity, years int) orderLine {
	return orderLine{
		ServiceType: "plan", ServiceID: plan, Quantity: quantity,
		PurchaseType: "purchase", BillingModel: "recurring",
		BillingCycle: "annually", MultiCycle: years,
	}
}

// serviceLine is an order line for service connected to plan.
func serviceLine(service, plan int64, years int) orderLine {
	l := planLine(service, 0, years)
	l.ServiceType = "service"
	l.ConnectionPlanID = plan
	return l
}

// newOrder is a valid order for a new Enterprise licence of 20 extensions for one year.
func newOrder(po string) orderRequest {
	return orderRequest{
		OperationType: "purchase_plan",
		ProductID:     partnertest.ProductID,
		BillingID:     partnertest.BillingContactID,
		PONumber:      po,
		ServiceList:   []orderLine{planLine(partnertest.PlanEnterpriseID, 20, 1)},
	}
}

// orderResult is the result of Create an Order.
type orderResult struct {
	InstanceID    string `json:"instanceId"`
	OrderNo       string `json:"orderNo"`
	OrderStatus   string `json:"orderStatus"`
	ProductNo     string `json:"productNo"`
	TransactionNo string `json:"transactionNo"`
}

func (c *apiClient) createOrder(req any) orderResult {
	c.t.Helper()
	a := c.postJSON(docCreateOrder, req)
	wantCode(c.t, a, http.StatusOK, partnertest.CodeSuccess)
	var res orderResult
	a.decode(c.t, &res)
	return res
}

func productQuery(sn string, productID int) url.Values {
	return url.Values{"productNo": {sn}, "productId": {itoa(productID)}}
}

func itoa(n int) string { return strconv.Itoa(n) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
