package partnercheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

var updateFixtures = flag.Bool("update-fixtures", false, "rewrite testdata/fixtures from the simulator")

// TestCheckSimulator runs Check against the simulator holding one order, so that every
// read-only endpoint is called. With -update-fixtures it rewrites testdata/fixtures.
func TestCheckSimulator(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, sim)
	ctx := context.Background()
	if _, err := c.CreateOrder(ctx, newLicence("PO-CHECK-1")); err != nil {
		t.Fatal(err)
	}
	before := sim.CallCounts()
	dir := t.TempDir()
	if *updateFixtures {
		dir = filepath.Join("..", "..", "partnerclient", "testdata", "fixtures")
	}

	r, err := check(ctx, newClient(t, sim), Options{FixtureDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.productID != 12 {
		t.Errorf("OK() = %v, product %d, want true, 12:\n%s", r.OK(), r.productID, &out)
	}
	var got []partnerclient.Endpoint
	for _, e := range r.endpoints {
		got = append(got, e.Endpoint)
		wantStatus := "ok"
		if e.Endpoint.SideEffect() {
			wantStatus = "skipped"
		}
		if e.Status() != wantStatus {
			t.Errorf("%s: status %s, want %s (%v)", e.Endpoint, e.Status(), wantStatus, e.Err)
		}
		if wantStatus == "ok" && (e.RequestID == "" || e.StatusCode != http.StatusOK || e.Fixture == "" || len(e.Body) == 0) {
			t.Errorf("%s: request_id %q, status %d, fixture %q, %d bytes", e.Endpoint, e.RequestID, e.StatusCode, e.Fixture, len(e.Body))
		}
		for _, f := range e.Findings {
			if f.Kind == FindingMismatch {
				t.Errorf("%s: %s", e.Endpoint, f)
			}
		}
	}
	if !slices.Equal(got, partnerclient.AllEndpoints) {
		t.Errorf("report lists %v, want %v", got, partnerclient.AllEndpoints)
	}
	after := sim.CallCounts()
	for _, ep := range partnerclient.AllEndpoints {
		called := after[ep] - before[ep]
		if ep.SideEffect() && called != 0 || !ep.SideEffect() && called != 1 {
			t.Errorf("%s called %d times by Check", ep, called)
		}
	}
	for _, want := range []string{"ENDPOINT", "REQUEST_ID", "UNEXPECTED FIELDS", "MISSING FIELDS", "order_details", "\nOK: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &out)
		}
	}
	assertNoSecrets(t, dir, append(sim.IssuedTokens(), partnertest.DefaultClientSecret))
	token := readFixture(t, filepath.Join(dir, "token.json"))
	if token.Result["token"] != "REDACTED" || token.Result["refreshToken"] != "REDACTED" {
		t.Errorf("token fixture: %v", token.Result)
	}
}

type fixture struct {
	Code   string         `json:"code"`
	Result map[string]any `json:"result"`
}

func readFixture(t *testing.T, path string) fixture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// assertNoSecrets fails if a file in dir contains one of secrets; dir must hold files.
func assertNoSecrets(t *testing.T, dir string, secrets []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 || len(secrets) < 3 {
		t.Fatalf("nothing to check: %d files (%v), %d secrets", len(files), err, len(secrets))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret", f)
			}
		}
	}
}

// oddAPI serves the simulator, except that a path listed in results answers a success
// envelope with that result. The access token and the client secret are available to
// results as {{token}} and {{secret}}, to test redaction.
func oddAPI(t *testing.T, results map[string]string) (*partnertest.Server, *httptest.Server) {
	t.Helper()
	sim := newSim(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		result, ok := results[r.URL.Path]
		if !ok {
			sim.ServeHTTP(w, r)
			return
		}
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		result = strings.NewReplacer("{{token}}", tok, "{{secret}}", partnertest.DefaultClientSecret).Replace(result)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"success","detailMessage":"","requestId":"odd-1","result":` + result + `}`))
	}))
	t.Cleanup(srv.Close)
	return sim, srv
}

func TestCheckOddShapes(t *testing.T) {
	const contact = `"emailAddress":"a@b.example","company":"C","firstName":"F","lastName":"L","country":"X"`
	tests := []struct {
		name       string
		path       string
		give       string
		ep         partnerclient.Endpoint
		wantStatus string
		want       []Finding
	}{
		{
			name: "extra field", path: partnerclient.PathBillingContacts, ep: partnerclient.EndpointBillingContacts,
			give:       `[{"billingContactId":"1",` + contact + `,"taxNum":"T"}]`,
			wantStatus: "ok",
			want:       []Finding{{Kind: FindingUnexpected, Path: "[].taxNum"}},
		},
		{
			name: "missing field", path: partnerclient.PathActivationCode, ep: partnerclient.EndpointActivationCode,
			give:       `{"code":"ABCDE"}`,
			wantStatus: "ok",
			want:       []Finding{{Kind: FindingMissing, Path: "generateTime"}},
		},
		{
			name: "float ID", path: partnerclient.PathBillingContacts, ep: partnerclient.EndpointBillingContacts,
			give:       `{"list":[{"billingContactId":3.197218168379846e18,` + contact + `}]}`,
			wantStatus: "failed",
			want: []Finding{{Kind: FindingMismatch, Path: "list[].billingContactId",
				Want: "integer or numeric string", Got: "float"}},
		},
		{
			name: "object where a string is expected", path: partnerclient.PathActivationCode, ep: partnerclient.EndpointActivationCode,
			give:       `{"code":{"value":"ABCDE"},"generateTime":1}`,
			wantStatus: "failed",
			want:       []Finding{{Kind: FindingMismatch, Path: "code", Want: "string", Got: "object"}},
		},
		{
			name: "numeric string where an int is expected", path: partnerclient.PathPurchaseInfo, ep: partnerclient.EndpointPurchaseInfo,
			give: `{"offeringId":"5012","productId":12,"productName":"P","serviceList":[],"planList":[{"planId":1,"planName":"U",` +
				`"purchaseType":"purchase","billingModel":"recurring","billingCycle":"annually","minQuantity":"1","maxQuantity":10}]}`,
			wantStatus: "failed",
			want: []Finding{{Kind: FindingMismatch, Path: "planList[].minQuantity",
				Want: "integer", Got: "numeric string"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := oddAPI(t, map[string]string{tt.path: tt.give})
			c, err := newCheckClient(srv.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
			if err != nil {
				t.Fatal(err)
			}
			r, err := check(context.Background(), c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := endpoint(t, r, tt.ep)
			if e.Status() != tt.wantStatus || !slices.Equal(e.Findings, tt.want) || e.RequestID != "odd-1" {
				t.Errorf("%s: status %s (%v), request_id %q, findings %v; want %s, %v", tt.ep, e.Status(), e.Err, e.RequestID, e.Findings, tt.wantStatus, tt.want)
			}
			if wantOK := tt.wantStatus == "ok"; r.OK() != wantOK {
				t.Errorf("OK() = %v, want %v", r.OK(), wantOK)
			}
			var out bytes.Buffer
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want[0].Path) {
				t.Errorf("report lacks %q:\n%s", tt.want[0].Path, &out)
			}
			if n := sim.Calls(partnerclient.EndpointCreateOrder) + sim.Calls(partnerclient.EndpointEnableAutoRenewal); n != 0 {
				t.Errorf("%d side-effecting calls", n)
			}
		})
	}
}

func endpoint(t *testing.T, r *Report, ep partnerclient.Endpoint) endpointCheck {
	t.Helper()
	for _, e := range r.endpoints {
		if e.Endpoint == ep {
			return e
		}
	}
	t.Fatalf("report lacks %s", ep)
	return endpointCheck{}
}

// A server that echoes the access token and the client secret in a result gets both
// redacted in the fixture and in the report's Body.
func TestCheckRedactsEchoedSecrets(t *testing.T) {
	sim, srv := oddAPI(t, map[string]string{
		partnerclient.PathSubordinateUsers: `[{"partnerId":1,"email":"it@customer.example","company":"Bearer {{token}}","remark":"{{secret}}"}]`,
	})
	c, err := newCheckClient(srv.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := check(context.Background(), c, Options{FixtureDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, dir, append(sim.IssuedTokens(), partnertest.DefaultClientSecret))
	e := endpoint(t, r, partnerclient.EndpointSubordinateUsers)
	for _, want := range []string{`"company": "Bearer REDACTED"`, `"remark": "REDACTED"`, `"email": "it@customer.example"`} {
		if !strings.Contains(string(e.Body), want) {
			t.Errorf("body lacks %s:\n%s", want, e.Body)
		}
	}
	saved, err := os.ReadFile(filepath.Join(dir, "subordinate_user_list.json"))
	if err != nil || !bytes.Equal(saved, e.Body) {
		t.Errorf("fixture differs from the report's body (%v)", err)
	}
}

func TestCheckFailuresArePerEndpoint(t *testing.T) {
	sim := newSim(t, partnertest.WithoutSeedData())
	sim.FailNext(partnerclient.EndpointPurchaseInfo, 1, partnertest.Fault503)
	dir := t.TempDir()
	r, err := check(context.Background(), newClient(t, sim), Options{ProductID: 99, FixtureDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.productID != 99 {
		t.Errorf("OK() = %v, product %d; want false, 99", r.OK(), r.productID)
	}
	want := map[partnerclient.Endpoint]string{
		partnerclient.EndpointToken:             "ok",
		partnerclient.EndpointProductList:       "ok",
		partnerclient.EndpointProductDetails:    "skipped",
		partnerclient.EndpointPurchaseInfo:      "failed",
		partnerclient.EndpointBillingContacts:   "ok",
		partnerclient.EndpointSubordinateUsers:  "ok",
		partnerclient.EndpointCreateOrder:       "skipped",
		partnerclient.EndpointOrderList:         "ok",
		partnerclient.EndpointOrderDetails:      "skipped",
		partnerclient.EndpointAutoRenewStatus:   "skipped",
		partnerclient.EndpointEnableAutoRenewal: "skipped",
		partnerclient.EndpointActivationCode:    "skipped",
	}
	for _, e := range r.endpoints {
		if e.Status() != want[e.Endpoint] {
			t.Errorf("%s: status %s, want %s", e.Endpoint, e.Status(), want[e.Endpoint])
		}
	}
	failed := endpoint(t, r, partnerclient.EndpointPurchaseInfo)
	var pe *partnerclient.Error
	if !errors.As(failed.Err, &pe) || failed.StatusCode != http.StatusServiceUnavailable || failed.RequestID == "" || failed.Fixture != "" {
		t.Errorf("purchase info: err %v, status %d, request_id %q, fixture %q", failed.Err, failed.StatusCode, failed.RequestID, failed.Fixture)
	}
	if _, err := os.Stat(filepath.Join(dir, "purchase_product_info.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed response was saved: %v", err)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NOT OK: 1 call(s) failed", "product_details: skipped: no licence in the product list",
		"order_details: skipped: no order in the order list", "purchase_product_info: partner purchase_product_info: 503"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &out)
		}
	}
}

func TestCheckArguments(t *testing.T) {
	sim := newSim(t)
	tests := []struct {
		name string
		opts []partnerclient.Option
		give Options
		want error
	}{
		{"no credentials", []partnerclient.Option{partnerclient.WithCredentials("", "")}, Options{}, partnerclient.ErrMissingCredentials},
		{"negative product", nil, Options{ProductID: -1}, partnerclient.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := check(context.Background(), newClient(t, sim, tt.opts...), tt.give)
			if !errors.Is(err, tt.want) || r != nil {
				t.Errorf("Check = %v, %v; want nil, %v", r, err, tt.want)
			}
		})
	}
	if n := len(sim.Requests(partnerclient.EndpointToken)); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := check(context.Background(), newClient(t, sim), Options{FixtureDir: filepath.Join(blocker, "dir")}); err == nil {
		t.Error("Check wrote into a file")
	}
}
