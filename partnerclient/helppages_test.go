package partnerclient

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// helpPageDir holds the response examples of Yeastar's help pages, verbatim.
const helpPageDir = "testdata/helppages"

// serveHelpPage answers every business request with the help-page example for ep, byte for
// byte, behind the fake API's token check.
func serveHelpPage(t *testing.T, ep Endpoint) (*Client, []byte) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(helpPageDir, string(ep)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	return f.client(t), body
}

// TestHelpPageExamples decodes every response example of the help pages through a real
// HTTP exchange and checks the values the client reads.
func TestHelpPageExamples(t *testing.T) {
	ctx := context.Background()
	t.Run("activation code", func(t *testing.T) {
		c, _ := serveHelpPage(t, EndpointActivationCode)
		got, err := c.ActivationCode(ctx, 12, "3651Exxxx415")
		want := ActivationCode{
			Code:         "su71kZxxxxxxx0dbctakLMtNcNjIsSBbb6V1EqpuYyVvBuL0hlaUcJ0wTmZU2EczUpcYA/XlGJOSN0d6bOZrU+AUlCYUsTkgfjEd=",
			GenerateTime: 1701927971000,
		}
		if err != nil || got != want {
			t.Errorf("ActivationCode = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("product details", func(t *testing.T) {
		c, _ := serveHelpPage(t, EndpointProductDetails)
		got, err := c.ProductDetails(ctx, 13, "658B43xxxx6WEFY")
		if err != nil {
			t.Fatal(err)
		}
		want := Product{
			ProductNo:        "3658B4311196WEFY",
			ActivationCode:   "GLFV-CGDV-CFKF-26K2-GKJJ",
			ActivationStatus: "activated",
			CreateTime:       1704854634000,
			PlanID:           3048572026291630080,
			PlanName:         "Ultimate Plan",
			PlanStatus:       "switching",
			PlanExpireDate:   1736390176000,
			PlanAutoRenewal:  0,
			Quantity:         "20",
			URL:              "docstest.test3.yeastarcloud.com",
			YeastarID:        "example@outlook.com",
			ServiceList: []ProductService{{
				ServiceID:         3048573759449317376,
				ServiceName:       "Recording Minutes",
				Quantity:          "100",
				ServiceExpireDate: 1713421999000,
				ServiceStatus:     "switching",
			}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ProductDetails =\n%+v\nwant\n%+v", got, want)
		}
		if drift := c.Drift(); len(drift) != 0 {
			t.Errorf("drift in the documented example: %v", drift)
		}
	})
	t.Run("enable auto-renewal", func(t *testing.T) {
		c, _ := serveHelpPage(t, EndpointEnableAutoRenewal)
		got, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{ProductNo: "3651E0529415", ProductID: "12", PlanOrServiceID: 3049040650094403584})
		if err != nil || !got {
			t.Errorf("EnableAutoRenewal = %v, %v; want true", got, err)
		}
	})
	t.Run("create order", func(t *testing.T) {
		c, _ := serveHelpPage(t, EndpointCreateOrder)
		got, err := c.CreateOrder(ctx, OrderRequest{OperationType: OperationPurchasePlan, ProductID: 12, ProductNo: "3651E1292455", BillingID: 3197218168379846218})
		want := OrderResult{
			InstanceID:    "1282391",
			OrderNo:       "ZC3206258125675945984",
			OrderStatus:   OrderSucceed,
			ProductNo:     "3651E1292455",
			TransactionNo: "AK3206258126833573889",
		}
		if err != nil || got != want {
			t.Errorf("CreateOrder = %+v, %v; want %+v", got, err, want)
		}
	})
}

// Every help-page example is a success envelope with status 200 whose result its decoder
// takes. (internal/partnercheck checks that it fits the types: no kind mismatch and no
// drift.)
func TestHelpPageExamplesFitTheTypes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(helpPageDir, "*.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("%d help-page examples (%v), want 4", len(files), err)
	}
	for _, file := range files {
		ep := Endpoint(strings.TrimSuffix(filepath.Base(file), ".json"))
		t.Run(string(ep), func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			env, err := decodeEnvelope(body)
			if err != nil || env.Code != CodeSuccess || env.Status != http.StatusOK || env.RequestID == "" {
				t.Fatalf("envelope %+v, %v", env, err)
			}
			if err := decodeBody(ep, body); err != nil {
				t.Fatal(err)
			}
		})
	}
}
