package partnertest

import (
	"maps"
	"slices"
	"testing"
)

// TestRouteTableIsTheDocumentedList compares the simulator's route table with the paths of the
// Partner Portal API guide, written out here: a route added, dropped or misspelt fails.
func TestRouteTableIsTheDocumentedList(t *testing.T) {
	documented := map[string]string{
		"/auth/openapi/v1/oauth/token":                                      "POST",
		"/product/openapi/instance_product/v1/client/instance_product_list": "GET",
		"/product/openapi/instance_product/v1/detail":                       "GET",
		"/pricing/openapi/purchase/v1/purchase_product_info":                "GET",
		"/user/openapi/user/v1/client/billing_contact_list":                 "GET",
		"/user/openapi/user/v1/client/partner_list":                         "GET",
		"/order/openapi/order/v1/save":                                      "POST",
		"/order/openapi/order/v1/page":                                      "GET",
		"/order/openapi/order/v1/check/existed_auto_renew":                  "GET",
		"/product/openapi/instance_subscription/v1/active":                  "POST",
		"/product/openapi/instance_product/v1/activation_code":              "GET",
	}
	got := map[string]string{}
	for path, rt := range routes {
		got[path] = rt.method
	}
	if !maps.Equal(got, documented) {
		paths := slices.Sorted(maps.Keys(got))
		t.Errorf("routes %v differ from the documented list", paths)
		for p, m := range documented {
			if got[p] != m {
				t.Errorf("documented %s %s: simulator has %q", m, p, got[p])
			}
		}
	}
	if pathOrderDetailsPrefix != "/order/openapi/order/v1/get/" || orderDetailsRoute.method != "GET" {
		t.Errorf("order details route %s %s", orderDetailsRoute.method, pathOrderDetailsPrefix)
	}
}
