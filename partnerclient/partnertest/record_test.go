package partnertest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func TestRequestsRecorded(t *testing.T) {
	srv, c := newServer(t)
	tok := c.login()
	refresh := c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	wantCode(t, refresh, http.StatusOK, partnertest.CodeSuccess)
	body := mustJSON(t, newOrder("PO-rec"))
	c.createOrder(body)
	c.get(docProductList, url.Values{"productId": {"12"}, "pageSize": {"5"}})

	orders := srv.Requests(partnerclient.EndpointCreateOrder)
	if len(orders) != 1 {
		t.Fatalf("%d create_order requests", len(orders))
	}
	o := orders[0]
	if o.Method != http.MethodPost || o.Path != docCreateOrder || o.UserAgent != testUA ||
		o.Status != http.StatusOK || !bytes.Equal(o.Body, body) || o.Time.IsZero() {
		t.Fatalf("recorded order = %+v", o)
	}
	if got := srv.Requests(partnerclient.EndpointProductList)[0].RawQuery; got != "pageSize=5&productId=12" {
		t.Fatalf("raw query = %q", got)
	}

	tokens := srv.Requests(partnerclient.EndpointToken)
	if len(tokens) != 2 || string(tokens[0].Body) != "client_id=fulfil-sim&grant_type=pp_credentials" ||
		string(tokens[1].Body) != "grant_type=refresh_token" {
		t.Fatalf("token requests = %+v", tokens)
	}
	secrets := []string{partnertest.DefaultClientSecret, tok.Token, tok.RefreshToken}
	for _, ep := range partnerclient.AllEndpoints {
		for _, r := range srv.Requests(ep) {
			for _, s := range secrets {
				if bytes.Contains(r.Body, []byte(s)) || bytes.Contains([]byte(r.RawQuery+r.Path+r.UserAgent), []byte(s)) {
					t.Fatalf("recorded %s request holds a secret", ep)
				}
			}
		}
	}

	want := map[partnerclient.Endpoint]int{
		partnerclient.EndpointToken: 2, partnerclient.EndpointCreateOrder: 1, partnerclient.EndpointProductList: 1,
	}
	got := srv.CallCounts()
	for ep, n := range want {
		if got[ep] != n || srv.Calls(ep) != n {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

func TestRefusedCallsAreRecorded(t *testing.T) {
	srv, c := newServer(t)
	c.get(docBillingContacts, nil) // no token
	rec := srv.Requests(partnerclient.EndpointBillingContacts)
	if len(rec) != 1 || rec[0].Status != http.StatusUnauthorized {
		t.Fatalf("recorded = %+v", rec)
	}
}

func TestWithRequestLimit(t *testing.T) {
	srv, c := newServer(t, partnertest.WithRequestLimit(2))
	c.login()
	for range 4 {
		c.get(docBillingContacts, nil)
	}
	if n := len(srv.Requests(partnerclient.EndpointBillingContacts)); n != 2 {
		t.Fatalf("kept %d requests, want 2", n)
	}
	if n := srv.Calls(partnerclient.EndpointBillingContacts); n != 4 {
		t.Fatalf("calls = %d, want 4", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	const workers, perWorker = 8, 10
	srv, c := newServer(t)
	c.login()
	var wg sync.WaitGroup
	results := make(chan orderResult, workers*perWorker)
	call := func(method, path string, q url.Values, body []byte) answer {
		a, err := c.do(method, path, q, "application/json", body, nil)
		if err != nil || a.Code != partnertest.CodeSuccess {
			t.Errorf("%s %s: %v %s %s", method, path, err, a.Code, a.DetailMessage)
		}
		return a
	}
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				body := mustJSON(t, newOrder("PO-c-"+itoa(w)+"-"+itoa(i)))
				var r orderResult
				_ = json.Unmarshal(call(http.MethodPost, docCreateOrder, nil, body).Result, &r)
				results <- r
				call(http.MethodGet, docOrderList, url.Values{"pageSize": {"5"}}, nil)
				call(http.MethodGet, docProductList, url.Values{"productId": {"12"}}, nil)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			srv.SetFaults(partnerclient.EndpointSubordinateUsers, partnertest.Faults{ErrorRate: 0.5})
			_ = srv.Orders()
			_ = srv.CallCounts()
			srv.ClearFaults()
		}
	})
	wg.Wait()
	close(results)

	orderNos, sns := map[string]bool{}, map[string]bool{}
	for r := range results {
		if orderNos[r.OrderNo] || sns[r.ProductNo] {
			t.Fatalf("duplicate order number or SN: %+v", r)
		}
		orderNos[r.OrderNo], sns[r.ProductNo] = true, true
	}
	if len(orderNos) != workers*perWorker || len(srv.Orders()) != workers*perWorker {
		t.Fatalf("%d results, %d ledger orders", len(orderNos), len(srv.Orders()))
	}
	if _, ok := srv.Product(partnertest.ExistingSN); !ok {
		t.Fatal("seed PBX lost")
	}
}
