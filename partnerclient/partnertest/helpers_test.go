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
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

const testUA = "fulfil-test/1"

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
	return c.send(http.MethodPost, partnerclient.PathToken, nil, "application/x-www-form-urlencoded",
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
	return c.send(http.MethodPost, partnerclient.PathToken, nil, mw.FormDataContentType(), buf.Bytes(), nil)
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
	if c.token != "" && path != partnerclient.PathToken {
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
func planLine(plan partnerclient.ID, quantity, years int) partnerclient.OrderLine {
	return partnerclient.OrderLine{
		ServiceType: partnerclient.ServiceTypePlan, ServiceID: plan, Quantity: quantity,
		PurchaseType: partnerclient.PurchaseTypePurchase, BillingModel: partnerclient.BillingModelRecurring,
		BillingCycle: partnerclient.BillingCycleAnnually, MultiCycle: years,
	}
}

// serviceLine is an order line for service connected to plan.
func serviceLine(service, plan partnerclient.ID, years int) partnerclient.OrderLine {
	l := planLine(service, 0, years)
	l.ServiceType = partnerclient.ServiceTypeService
	l.ConnectionPlanID = plan
	return l
}

// newOrder is a valid order for a new Enterprise licence of 20 extensions for one year.
func newOrder(po string) partnerclient.OrderRequest {
	return partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan,
		ProductID:     partnertest.ProductID,
		BillingID:     partnertest.BillingContactID,
		PONumber:      po,
		ServiceList:   []partnerclient.OrderLine{planLine(partnertest.PlanEnterpriseID, 20, 1)},
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
	a := c.postJSON(partnerclient.PathCreateOrder, req)
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
