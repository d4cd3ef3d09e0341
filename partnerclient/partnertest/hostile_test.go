package partnertest_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func TestHostileOrderErrorEnvelope(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{OrderErrorEnvelopeRate: 1}))
	c.login()
	a := c.rawPost(docCreateOrder, newOrder("PO-env"))
	if a.HTTPStatus != http.StatusOK || a.Envelope["code"] != partnertest.CodeSystemError ||
		a.Envelope["status"] != json.Number("500") || a.Envelope["result"] != nil {
		t.Fatalf("answer %d %s", a.HTTPStatus, a.Body)
	}
	for _, k := range []string{"code", "detailMessage", "requestId", "result", "status"} {
		if _, ok := a.Envelope[k]; !ok {
			t.Errorf("envelope lacks %s", k)
		}
	}
	if got := srv.OrdersByPONumber("PO-env"); len(got) != 1 {
		t.Fatalf("%d orders committed, want 1", len(got))
	}

	// Off: the documented success.
	srv.SetHostile(partnertest.Hostile{})
	if a := c.rawPost(docCreateOrder, newOrder("PO-ok")); a.Envelope["code"] != partnertest.CodeSuccess {
		t.Fatalf("answer without the knob: %s", a.Body)
	}
}

func TestHostileOrderErrorEnvelopeRateIsSeeded(t *testing.T) {
	run := func() string {
		_, c := newServer(t, partnertest.WithSeed(42),
			partnertest.WithHostile(partnertest.Hostile{OrderErrorEnvelopeRate: 0.5}))
		c.login()
		var b strings.Builder
		for i := range 20 {
			a := c.rawPost(docCreateOrder, newOrder("PO-"+itoa(i)))
			b.WriteString(a.Envelope["code"].(string)[:2])
		}
		return b.String()
	}
	first := run()
	if second := run(); second != first {
		t.Fatalf("same seed, different answers:\n%s\n%s", first, second)
	}
	if !strings.Contains(first, "sy") || !strings.Contains(first, "su") {
		t.Fatalf("rate 0.5 over 20 orders gave %s", first)
	}
}

func TestHostileOrderWithoutOrderNo(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{OrderNoOrderNoRate: 1}))
	c.login()
	a := c.rawPost(docCreateOrder, newOrder("PO-noorder"))
	if a.Envelope["code"] != partnertest.CodeSuccess {
		t.Fatalf("answer %s", a.Body)
	}
	res := a.result(t)
	if _, ok := res["orderNo"]; ok {
		t.Fatalf("result has orderNo: %s", a.Body)
	}
	for _, k := range []string{"instanceId", "orderStatus", "productNo", "transactionNo"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %s: %s", k, a.Body)
		}
	}
	if got := srv.OrdersByPONumber("PO-noorder"); len(got) != 1 || got[0].ProductNo != res["productNo"] {
		t.Fatalf("orders %+v", got)
	}
}

func TestHostileUndocumentedStatus(t *testing.T) {
	clk := newFakeClock()
	srv, c := newServer(t, partnertest.WithClock(clk.Now), partnertest.WithHostile(partnertest.Hostile{
		UndocumentedStatusRate: 1, UndocumentedStatusFor: time.Minute,
	}))
	c.login()
	res := c.createOrder(newOrder("PO-review"))
	status := func() (list, details, ledger string) {
		var p pageOf[orderItem]
		c.get(docOrderList, nil).decode(t, &p)
		var d orderDetails
		c.get(docOrderDetailsPrefix+res.OrderNo, nil).decode(t, &d)
		return p.Results[0].OrderStatus, d.Order.OrderStatus, srv.Orders()[0].OrderStatus
	}
	if res.OrderStatus != partnertest.DefaultUndocumentedStatus {
		t.Fatalf("create answer status %q", res.OrderStatus)
	}
	if l, d, g := status(); l != "in_review" || d != "in_review" || g != "in_review" {
		t.Fatalf("during the window: list %q, details %q, ledger %q", l, d, g)
	}
	clk.Advance(time.Minute)
	if l, d, g := status(); l != "succeed" || d != "succeed" || g != "succeed" {
		t.Fatalf("after the window: list %q, details %q, ledger %q", l, d, g)
	}

	// A custom status, and an order created with the knob off keeps the documented one.
	srv.SetHostile(partnertest.Hostile{UndocumentedStatusRate: 1, UndocumentedStatus: "processing"})
	if res := c.createOrder(newOrder("PO-proc")); res.OrderStatus != "processing" {
		t.Fatalf("custom status %q", res.OrderStatus)
	}
	srv.SetHostile(partnertest.Hostile{})
	if res := c.createOrder(newOrder("PO-plain")); res.OrderStatus != "succeed" {
		t.Fatalf("knob off: status %q", res.OrderStatus)
	}
}

func TestHostileRedirect(t *testing.T) {
	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	clk := newFakeClock()
	srv, c := newServer(t, partnertest.WithClock(clk.Now), partnertest.WithHostile(partnertest.Hostile{
		RedirectTo: trap.URL + "/", RedirectFor: 10 * time.Second,
	}))
	tokenBody := []byte(url.Values{"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret}}.Encode())
	a := c.raw(http.MethodPost, docToken, nil, "application/x-www-form-urlencoded", tokenBody)
	if a.HTTPStatus != http.StatusTemporaryRedirect || a.Header.Get("Location") != trap.URL+docToken {
		t.Fatalf("token: %d Location %q", a.HTTPStatus, a.Header.Get("Location"))
	}
	c.token = "whatever"
	q := url.Values{"productId": {"12"}, "pageNo": {"2"}}
	a = c.rawGet(docProductList, q)
	if a.HTTPStatus != http.StatusTemporaryRedirect || a.Header.Get("Location") != trap.URL+docProductList+"?"+q.Encode() {
		t.Fatalf("product list: %d Location %q", a.HTTPStatus, a.Header.Get("Location"))
	}
	if a := c.rawPost(docCreateOrder, newOrder("PO-redirect")); a.HTTPStatus != http.StatusTemporaryRedirect {
		t.Fatalf("create order: %d", a.HTTPStatus)
	}
	if n := len(srv.Orders()); n != 0 {
		t.Fatalf("%d orders committed during the redirect", n)
	}
	if n := len(srv.IssuedTokens()); n != 0 {
		t.Fatalf("%d tokens issued during the redirect", n)
	}
	if got := srv.Requests(partnerclient.EndpointCreateOrder); len(got) != 1 || got[0].Status != http.StatusTemporaryRedirect {
		t.Fatalf("recorded %+v", got)
	}

	// Another status, from SetHostile on.
	srv.SetHostile(partnertest.Hostile{RedirectTo: trap.URL, RedirectFor: 10 * time.Second, RedirectStatus: http.StatusFound})
	clk.Advance(9 * time.Second)
	if a := c.rawGet(docBillingContacts, nil); a.HTTPStatus != http.StatusFound {
		t.Fatalf("302 knob: %d", a.HTTPStatus)
	}
	// After RedirectFor the API answers again.
	clk.Advance(time.Second)
	c.login()
	if a := c.rawGet(docBillingContacts, nil); a.HTTPStatus != http.StatusOK {
		t.Fatalf("after the redirect window: %d %s", a.HTTPStatus, a.Body)
	}
	if got := trap.Requests(); len(got) != 0 {
		t.Fatalf("the trap was reached without following a redirect: %+v", got)
	}
}

// TestHostileRedirectFollowedLeaksToTrap shows what the Trap is for: a client that follows the
// redirect hands the trap its credentials.
func TestHostileRedirectFollowedLeaksToTrap(t *testing.T) {
	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	_, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{RedirectTo: trap.URL}))
	form := url.Values{"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret}}
	a, err := c.do(http.MethodPost, docToken, nil, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if err != nil || a.HTTPStatus != http.StatusMisdirectedRequest || a.Code != partnertest.CodeMisdirected {
		t.Fatalf("followed token request: %+v, %v", a, err)
	}
	c.token = "some-token"
	if _, err := c.do(http.MethodGet, docBillingContacts, nil, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	got := trap.Requests()
	if len(got) != 2 || got[0].Path != docToken || got[1].Path != docBillingContacts {
		t.Fatalf("trap requests %+v", got)
	}
	if !trap.SawClientSecret() || !trap.SawAuthorization() || !trap.SawCredentials() {
		t.Fatalf("secret %v, authorization %v", trap.SawClientSecret(), trap.SawAuthorization())
	}
	for _, r := range got {
		for _, secret := range []string{partnertest.DefaultClientSecret, "some-token"} {
			if strings.Contains(string(r.Body)+r.RawQuery, secret) {
				t.Errorf("trap kept a secret: %+v", r)
			}
		}
	}
}

// TestHostileRedirectThroughClient: partnerclient refuses the redirect and nothing reaches the
// trap.
func TestHostileRedirectThroughClient(t *testing.T) {
	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	srv := partnertest.NewServer(partnertest.WithHostile(partnertest.Hostile{RedirectTo: trap.URL}))
	t.Cleanup(srv.Close)
	cl, err := partnerclient.New(srv.URL,
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.BillingContacts(context.Background())
	if !errors.Is(err, partnerclient.ErrRedirect) {
		t.Fatalf("err = %v, want ErrRedirect", err)
	}
	if got := trap.Requests(); len(got) != 0 {
		t.Fatalf("the client followed the redirect: %+v", got)
	}
}

func TestHostileEmptyBillingContacts(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{EmptyBillingContacts: true}))
	c.login()
	a := c.rawGet(docBillingContacts, nil)
	if a.Envelope["code"] != partnertest.CodeSuccess || len(a.result(t)) != 0 {
		t.Fatalf("answer %s", a.Body)
	}
	if !strings.Contains(string(a.Body), `"result":{}`) {
		t.Fatalf("body %s", a.Body)
	}
	srv.SetHostile(partnertest.Hostile{})
	if a := c.rawGet(docBillingContacts, nil); len(a.Envelope["result"].([]any)) != 1 {
		t.Fatalf("knob off: %s", a.Body)
	}
}

func TestHostileAutoRenewalAsBool(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{AutoRenewalAsBool: true}))
	c.login()
	det := c.rawGet(docProductDetails, productQuery(partnertest.ExistingUltimateSN, 12)).result(t)
	sv := det["serviceList"].([]any)[0].(map[string]any)
	if det["planAutoRenewal"] != true || sv["serviceAutoRenewal"] != true {
		t.Fatalf("details: planAutoRenewal %v, serviceAutoRenewal %v", det["planAutoRenewal"], sv["serviceAutoRenewal"])
	}
	list := c.rawGet(docProductList, url.Values{"productId": {"12"}, "pageSize": {"100"}}).result(t)
	seen := map[any]bool{}
	for _, it := range list["results"].([]any) {
		seen[it.(map[string]any)["planAutoRenewal"]] = true
	}
	if len(seen) != 2 || !seen[true] || !seen[false] {
		t.Fatalf("list planAutoRenewal values %v", seen)
	}
	srv.SetHostile(partnertest.Hostile{})
	if det := c.rawGet(docProductDetails, productQuery(partnertest.ExistingUltimateSN, 12)).result(t); det["planAutoRenewal"] != json.Number("1") {
		t.Fatalf("knob off: %v", det["planAutoRenewal"])
	}
}

// placeOrders creates n orders PO-1 … PO-n and returns their order numbers, oldest first.
func placeOrders(c *apiClient, n int) []string {
	c.t.Helper()
	out := make([]string, n)
	for i := range n {
		out[i] = c.createOrder(newOrder("PO-" + itoa(i+1))).OrderNo
	}
	return out
}

func orderPage(c *apiClient, q url.Values) pageOf[orderItem] {
	c.t.Helper()
	var p pageOf[orderItem]
	c.get(docOrderList, q).decode(c.t, &p)
	return p
}

func orderNos(items []orderItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.OrderNo
	}
	return out
}

func TestHostileOrderListOldestFirst(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	placed := placeOrders(c, 3)
	if got := orderNos(orderPage(c, nil).Results); got[0] != placed[2] {
		t.Fatalf("documented default: %v, want newest (%s) first", got, placed[2])
	}
	srv.SetHostile(partnertest.Hostile{OrderListOldestFirst: true})
	for _, q := range []url.Values{nil, {"sort": {"-id"}}} {
		if got := orderNos(orderPage(c, q).Results); got[0] != placed[0] || got[2] != placed[2] {
			t.Fatalf("oldest first (%v): %v, placed %v", q, got, placed)
		}
	}
}

func TestHostileOrderListShift(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{OrderListShift: 2}))
	c.login()
	placed := placeOrders(c, 7) // newest first: PO-7 … PO-1
	q := func(n int) url.Values { return url.Values{"pageNo": {itoa(n)}, "pageSize": {"3"}} }
	p1, p2, p3 := orderPage(c, q(1)), orderPage(c, q(2)), orderPage(c, q(3))
	// Page 1 holds PO-7, PO-6, PO-5; page 2 starts two earlier: PO-6, PO-5, PO-4.
	if got := orderNos(p1.Results); got[0] != placed[6] || got[2] != placed[4] {
		t.Fatalf("page 1 %v", got)
	}
	if got := orderNos(p2.Results); len(got) != 3 || got[0] != placed[5] || got[1] != placed[4] || got[2] != placed[3] {
		t.Fatalf("page 2 %v, placed %v", got, placed)
	}
	if got := orderNos(p3.Results); len(got) != 3 || got[0] != placed[2] {
		t.Fatalf("page 3 %v", got)
	}
	for _, p := range []pageOf[orderItem]{p1, p2, p3} {
		if p.Total != 7 || p.Count != 7 || p.TotalPage != 3 {
			t.Fatalf("totals changed: %+v", p)
		}
	}
	srv.SetHostile(partnertest.Hostile{})
	if got := orderNos(orderPage(c, q(2)).Results); got[0] != placed[3] {
		t.Fatalf("knob off: page 2 %v", got)
	}
}

func TestHostileOrderListWithoutPONumber(t *testing.T) {
	srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{OrderListWithoutPONumber: true}))
	c.login()
	res := c.createOrder(newOrder("PO-hidden"))
	item := c.rawGet(docOrderList, nil).result(t)["results"].([]any)[0].(map[string]any)
	if _, ok := item["poNumber"]; ok || item["orderNo"] != res.OrderNo {
		t.Fatalf("list item %v", item)
	}
	var d orderDetails
	c.get(docOrderDetailsPrefix+res.OrderNo, nil).decode(t, &d)
	if d.Order.PONumber != "PO-hidden" {
		t.Fatalf("details poNumber %q", d.Order.PONumber)
	}
	srv.SetHostile(partnertest.Hostile{})
	if item := c.rawGet(docOrderList, nil).result(t)["results"].([]any)[0].(map[string]any); item["poNumber"] != "PO-hidden" {
		t.Fatalf("knob off: %v", item)
	}
}

func TestHostileGetter(t *testing.T) {
	h := partnertest.Hostile{OrderListShift: 3, RedirectTo: "http://127.0.0.1:1"}
	sim := partnertest.New(partnertest.WithHostile(h))
	if got := sim.Hostile(); got != h {
		t.Fatalf("Hostile() = %+v", got)
	}
}

// EnableWhenOn changes only the answer to enabling an auto-renewal that is already on; one that
// is off is enabled and answers true.
func TestHostileEnableWhenOn(t *testing.T) {
	const on = `{"productNo":"` + partnertest.ExistingUltimateSN + `","productId":"12","planOrServiceId":3049041101760282624}`
	const off = `{"productNo":"` + partnertest.ExistingSN + `","productId":"12","planOrServiceId":3049040650094403584}`
	tests := []struct {
		give       string
		wantStatus int
		wantCode   string
		wantResult string
	}{
		{give: "", wantStatus: http.StatusOK, wantCode: partnertest.CodeSuccess, wantResult: "true"},
		{give: partnertest.EnableWhenOnFalse, wantStatus: http.StatusOK, wantCode: partnertest.CodeSuccess, wantResult: "false"},
		{give: partnertest.EnableWhenOnRefused, wantStatus: http.StatusOK, wantCode: partnertest.CodeAlreadyEnabled, wantResult: "null"},
	}
	for _, tt := range tests {
		t.Run(cmp.Or(tt.give, "documented"), func(t *testing.T) {
			srv, c := newServer(t, partnertest.WithHostile(partnertest.Hostile{EnableWhenOn: tt.give}))
			c.login()
			a := c.raw(http.MethodPost, docEnableAutoRenewal, nil, "application/json", []byte(on))
			env := a.Envelope
			if a.HTTPStatus != tt.wantStatus || env["code"] != tt.wantCode {
				t.Fatalf("answer %d %v (%s), want %d %s", a.HTTPStatus, env["code"], a.Body, tt.wantStatus, tt.wantCode)
			}
			if got, _ := json.Marshal(env["result"]); string(got) != tt.wantResult {
				t.Errorf("result %s, want %s", got, tt.wantResult)
			}
			if tt.give == partnertest.EnableWhenOnRefused && fmt.Sprint(env["status"]) != "400" {
				t.Errorf("envelope status %v, want 400", env["status"])
			}
			if !srv.AutoRenewal(partnertest.ExistingUltimateSN) {
				t.Error("auto-renewal turned off")
			}
			b := c.postJSON(docEnableAutoRenewal, []byte(off))
			wantCode(t, b, http.StatusOK, partnertest.CodeSuccess)
			if string(b.Result) != "true" || !srv.AutoRenewal(partnertest.ExistingSN) {
				t.Errorf("enabling an auto-renewal that is off answered %s", b.Result)
			}
		})
	}
}
