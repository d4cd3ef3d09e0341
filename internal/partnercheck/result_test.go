package partnercheck

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// The JSON form of a report against a simulator that sends planAutoRenewal as a Boolean and
// fails one call: one result per endpoint with its HTTP status, envelope code, request ID,
// error and findings, the drift among them, and no body or secret.
func TestReportJSON(t *testing.T) {
	sim := newSim(t, partnertest.WithHostile(partnertest.Hostile{AutoRenewalAsBool: true}))
	ctx := context.Background()
	if _, err := newClient(t, sim).CreateOrder(ctx, newLicence("PO-JSON-1")); err != nil {
		t.Fatal(err)
	}
	sim.FailNext(partnerclient.EndpointPurchaseInfo, 1, partnertest.Fault503)
	r, err := check(ctx, newClient(t, sim), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(sim.IssuedTokens(), partnertest.DefaultClientSecret) {
		if strings.Contains(string(b), s) {
			t.Fatalf("the JSON contains a secret:\n%s", b)
		}
	}
	var got Result
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if got.OK || got.ProductID != 12 || got.Failed != 1 || got.Mismatches != 0 || got.Drift == 0 {
		t.Errorf("ok %v, productId %d, failed %d, mismatches %d, drift %d; want false, 12, 1, 0, >0\n%s",
			got.OK, got.ProductID, got.Failed, got.Mismatches, got.Drift, b)
	}
	var eps []partnerclient.Endpoint
	byEndpoint := map[partnerclient.Endpoint]EndpointResult{}
	for _, e := range got.Endpoints {
		eps = append(eps, e.Endpoint)
		byEndpoint[e.Endpoint] = e
	}
	if !slices.Equal(eps, partnerclient.AllEndpoints) {
		t.Fatalf("endpoints %v, want %v", eps, partnerclient.AllEndpoints)
	}

	drift := Finding{Kind: FindingDrift, Path: "results[].planAutoRenewal", Want: "number", Got: "boolean"}
	pl := byEndpoint[partnerclient.EndpointProductList]
	if pl.Status != "ok" || pl.HTTPStatus != http.StatusOK || pl.Code != partnerclient.CodeSuccess || pl.RequestID == "" ||
		pl.Error != "" || !slices.Contains(pl.Findings, drift) {
		t.Errorf("product_list: %+v, want ok, 200, success, a request ID and the finding %+v", pl, drift)
	}
	if pd := byEndpoint[partnerclient.EndpointProductDetails]; !slices.Contains(pd.Findings,
		Finding{Kind: FindingDrift, Path: "planAutoRenewal", Want: "number", Got: "boolean"}) {
		t.Errorf("product_details: %+v, want the drift of planAutoRenewal", pd)
	}
	pi := byEndpoint[partnerclient.EndpointPurchaseInfo]
	if pi.Status != "failed" || pi.HTTPStatus != http.StatusServiceUnavailable || pi.Error == "" || pi.RequestID == "" {
		t.Errorf("purchase_product_info: %+v, want failed, 503, an error and a request ID", pi)
	}
	co := byEndpoint[partnerclient.EndpointCreateOrder]
	if co.Status != "skipped" || co.Skipped == "" || co.HTTPStatus != 0 || co.Code != "" || co.Findings != nil {
		t.Errorf("create_order: %+v, want skipped with a reason and nothing else", co)
	}
	od := byEndpoint[partnerclient.EndpointOrderDetails]
	if od.Status != "ok" || od.Code != partnerclient.CodeSuccess {
		t.Errorf("order_details: %+v, want ok", od)
	}

	// The names of the JSON form.
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "productId", "failed", "mismatches", "drift", "endpoints"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	for _, want := range []string{`"endpoint":"product_list","status":"ok","httpStatus":200,"code":"success","requestId":"`,
		`{"kind":"drift","path":"results[].planAutoRenewal","want":"number","got":"boolean"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the JSON lacks %s:\n%s", want, b)
		}
	}
}

// A kind mismatch is counted and makes the result not OK; the decoder refuses the result too,
// so the call failed.
func TestReportJSONMismatch(t *testing.T) {
	_, srv := oddAPI(t, map[string]string{partnerclient.PathProductList: `{"count":1,"pageNo":1,"pageSize":25,"total":1,"totalPage":1,` +
		`"results":[{"productNo":3651,"planAutoRenewal":1}]}`})
	c, err := newCheckClient(srv.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	r, err := check(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Result()
	pl := got.Endpoints[slices.Index(partnerclient.AllEndpoints, partnerclient.EndpointProductList)]
	want := Finding{Kind: FindingMismatch, Path: "results[].productNo", Want: "string", Got: "integer"}
	if got.OK || got.Mismatches != 1 || got.Failed != 1 || pl.Status != "failed" || pl.Error == "" || !slices.Contains(pl.Findings, want) {
		t.Errorf("ok %v, mismatches %d, failed %d, product_list %+v; want false, 1, 1, failed with %+v", got.OK, got.Mismatches, got.Failed, pl, want)
	}
}
