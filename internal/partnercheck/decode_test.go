package partnercheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
)

// checkAndDecode is checkBody followed by the endpoint's decoder, run the only way it runs:
// by a client reading body as the answer of ep (and a made-up token before it).
func checkAndDecode(t *testing.T, ep partnerclient.Endpoint, body []byte) ([]Finding, error) {
	t.Helper()
	findings, err := checkBody(ep, body)
	if err != nil {
		return findings, err
	}
	return findings, decodeBody(t, ep, body)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const tokenBody = `{"code":"success","requestId":"r","result":{"token":"tok","refreshToken":"ref","tokenHead":"Bearer ","expiresIn":1800}}`

func decodeBody(t *testing.T, ep partnerclient.Endpoint, body []byte) error {
	t.Helper()
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b := body
		if ep != partnerclient.EndpointToken && strings.HasSuffix(r.URL.Path, partnerclient.PathToken) {
			b = []byte(tokenBody)
		}
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: r}, nil
	})
	c, err := partnerclient.New("http://127.0.0.1", partnerclient.WithCredentials("id", "secret"),
		partnerclient.WithRateLimit(0, 0), partnerclient.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch ep {
	case partnerclient.EndpointToken:
		return c.Authenticate(ctx)
	case partnerclient.EndpointProductList:
		_, err = c.ListProducts(ctx, partnerclient.ListProductsParams{ProductID: 12})
	case partnerclient.EndpointProductDetails:
		_, err = c.ProductDetails(ctx, 12, "SN")
	case partnerclient.EndpointPurchaseInfo:
		_, err = c.PurchaseInfo(ctx, 12, "")
	case partnerclient.EndpointBillingContacts:
		_, err = c.BillingContacts(ctx)
	case partnerclient.EndpointSubordinateUsers:
		_, err = c.SubordinateUsers(ctx)
	case partnerclient.EndpointOrderList:
		_, err = c.ListOrders(ctx, partnerclient.ListOrdersParams{})
	case partnerclient.EndpointOrderDetails:
		_, err = c.OrderDetails(ctx, "ORDER")
	case partnerclient.EndpointAutoRenewStatus:
		_, err = c.AutoRenewStatus(ctx, 12, "SN")
	case partnerclient.EndpointActivationCode:
		_, err = c.ActivationCode(ctx, 12, "SN")
	default:
		return fmt.Errorf("no decoder for endpoint %q", ep)
	}
	return err
}

// The fixtures (partnerclient/testdata/fixtures) fit their types: no kind mismatch.
// Unexpected and missing fields and drift, which the decoders tolerate, are logged.
func TestFixturesFitTheTypes(t *testing.T) {
	dir := filepath.Join("..", "..", "partnerclient", "testdata", "fixtures")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s (%v)", dir, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			ep := partnerclient.Endpoint(strings.TrimSuffix(name, ".json"))
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			findings, err := checkAndDecode(t, ep, body)
			if err != nil {
				t.Errorf("decode %s: %v", name, err)
			}
			for _, f := range findings {
				if f.Kind == FindingMismatch {
					t.Errorf("%s: %s", name, f)
					continue
				}
				t.Logf("%s: %s (warning)", name, f)
			}
		})
	}
}

// Every help-page example (partnerclient/testdata/helppages) fits the decoder's types: no
// kind mismatch and no drift. Fields the types do not declare are logged.
func TestHelpPageExamplesFitTheTypes(t *testing.T) {
	dir := filepath.Join("..", "..", "partnerclient", "testdata", "helppages")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("%d help-page examples (%v), want 4", len(files), err)
	}
	for _, file := range files {
		ep := partnerclient.Endpoint(strings.TrimSuffix(filepath.Base(file), ".json"))
		t.Run(string(ep), func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			findings, err := checkBody(ep, body)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				switch f.Kind {
				case FindingMismatch, FindingDrift:
					t.Errorf("%s", f)
				default:
					t.Logf("%s (warning)", f)
				}
			}
		})
	}
}

func FuzzCompareResult(f *testing.F) {
	for _, seed := range []string{`{}`, `null`, `[]`, `{"results":[{"planId":1.5}],"count":"1"}`, `{"list":[{"x":true}]}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		for _, ep := range partnerclient.AllEndpoints {
			_ = compareResult(ep, json.RawMessage(s))
		}
	})
}
