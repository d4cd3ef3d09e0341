package partnertest_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// productItem holds the product fields the tests look at, with the types of the Get Product
// Details page: IDs and quantities are Strings, planAutoRenewal an Integer.
type productItem struct {
	ProductNo        string `json:"productNo"`
	ActivationCode   string `json:"activationCode"`
	ActivationStatus string `json:"activationStatus"`
	CreateTime       int64  `json:"createTime"`
	PlanID           string `json:"planId"`
	PlanName         string `json:"planName"`
	PlanAutoRenewal  int    `json:"planAutoRenewal"`
	Quantity         string `json:"quantity"`
	CustomerEmail    string `json:"customerEmail"`
	ServiceList      []struct {
		ServiceID   string `json:"serviceId"`
		ServiceName string `json:"serviceName"`
		Quantity    string `json:"quantity"`
	} `json:"serviceList"`
}

func TestProductListPaging(t *testing.T) {
	tests := []struct {
		name          string
		give          url.Values
		wantPageSize  int
		wantCount     int
		wantTotalPage int
	}{
		{"defaults", url.Values{"productId": {"12"}}, 25, partnertest.SeedProductCount, 1},
		{"first page of 5", url.Values{"productId": {"12"}, "pageSize": {"5"}}, 5, 5, 2},
		{"second page of 5", url.Values{"productId": {"12"}, "pageSize": {"5"}, "pageNo": {"2"}}, 5,
			partnertest.SeedProductCount - 5, 2},
		{"past the end", url.Values{"productId": {"12"}, "pageSize": {"5"}, "pageNo": {"9"}}, 5, 0, 2},
		{"other product", url.Values{"productId": {"13"}}, 25, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			a := c.get(docProductList, tt.give)
			wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
			var p pageOf[productItem]
			a.decode(t, &p)
			wantTotal := partnertest.SeedProductCount
			if tt.give.Get("productId") != "12" {
				wantTotal = 0
			}
			if p.PageSize != tt.wantPageSize || len(p.Results) != tt.wantCount || p.TotalPage != tt.wantTotalPage ||
				p.Total != wantTotal || p.Count != wantTotal {
				t.Fatalf("page = %+v", p)
			}
		})
	}
}

func TestProductListNewestFirst(t *testing.T) {
	_, c := newServer(t)
	c.login()
	var all []productItem
	for pageNo := 1; pageNo <= 2; pageNo++ {
		a := c.get(docProductList, url.Values{"productId": {"12"}, "pageSize": {"5"},
			"pageNo": {itoa(pageNo)}})
		var p pageOf[productItem]
		a.decode(t, &p)
		all = append(all, p.Results...)
	}
	if len(all) != partnertest.SeedProductCount {
		t.Fatalf("got %d products over two pages", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b productItem) int { return int(b.CreateTime - a.CreateTime) }) {
		t.Fatal("products are not newest first")
	}
	i := slices.IndexFunc(all, func(p productItem) bool { return p.ProductNo == partnertest.ExistingSN })
	if i < 0 {
		t.Fatalf("%s missing", partnertest.ExistingSN)
	}
	got := all[i]
	if got.PlanID != "3049040650094403584" || got.PlanName != partnertest.PlanEnterpriseName ||
		got.Quantity != "20" || got.CustomerEmail != partnertest.CustomerEmail || got.ActivationCode == "" {
		t.Fatalf("%s = %+v (planId %s)", partnertest.ExistingSN, got, got.PlanID)
	}
}

func TestProductListErrors(t *testing.T) {
	tests := []struct {
		name      string
		give      url.Values
		wantField string
	}{
		{"no productId", url.Values{}, "productId"},
		{"productId not a number", url.Values{"productId": {"PSE"}}, "productId"},
		{"pageNo zero", url.Values{"productId": {"12"}, "pageNo": {"0"}}, "pageNo"},
		{"pageSize not a number", url.Values{"productId": {"12"}, "pageSize": {"x"}}, "pageSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			a := c.get(docProductList, tt.give)
			wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
			if _, ok := a.fields(t)[tt.wantField]; !ok {
				t.Fatalf("result %s does not name %s", a.Result, tt.wantField)
			}
		})
	}
}

func TestProductDetails(t *testing.T) {
	tests := []struct {
		name       string
		give       url.Values
		wantStatus int
		wantCode   string
	}{
		{"existing", productQuery(partnertest.ExistingUltimateSN, 12), http.StatusOK, partnertest.CodeSuccess},
		{"unknown SN", productQuery("3651E9999999", 12), http.StatusNotFound, partnertest.CodeNotFound},
		{"other product", productQuery(partnertest.ExistingSN, 13), http.StatusNotFound, partnertest.CodeNotFound},
		{"no productNo", url.Values{"productId": {"12"}}, http.StatusBadRequest, partnertest.CodeValidationFailed},
		{"no productId", url.Values{"productNo": {partnertest.ExistingSN}}, http.StatusBadRequest,
			partnertest.CodeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			wantCode(t, c.get(docProductDetails, tt.give), tt.wantStatus, tt.wantCode)
		})
	}
}

func TestProductDetailsContent(t *testing.T) {
	_, c := newServer(t)
	c.login()
	a := c.get(docProductDetails, productQuery(partnertest.ExistingUltimateSN, 12))
	var p productItem
	a.decode(t, &p)
	if p.PlanID != "3049041101760282624" || p.Quantity != "50" || p.PlanAutoRenewal != 1 ||
		len(p.ServiceList) != 1 || p.ServiceList[0].ServiceName != partnertest.ServiceDisasterRecoveryName {
		t.Fatalf("product = %+v", p)
	}
}

// purchaseInfo mirrors the assumed shape with the IDs kept as strings, as the wire has them.
type purchaseInfo struct {
	OfferingID  string `json:"offeringId"`
	ProductID   int64  `json:"productId"`
	ProductName string `json:"productName"`
	PlanList    []struct {
		PlanID       string `json:"planId"`
		PlanName     string `json:"planName"`
		PurchaseType string `json:"purchaseType"`
		BillingModel string `json:"billingModel"`
		BillingCycle string `json:"billingCycle"`
		MinQuantity  int    `json:"minQuantity"`
		MaxQuantity  int    `json:"maxQuantity"`
	} `json:"planList"`
	ServiceList []struct {
		ServiceID         string   `json:"serviceId"`
		ServiceName       string   `json:"serviceName"`
		PurchaseType      string   `json:"purchaseType"`
		ConnectionPlanIDs []string `json:"connectionPlanIds"`
	} `json:"serviceList"`
}

func TestPurchaseInfo(t *testing.T) {
	_, c := newServer(t)
	c.login()
	a := c.get(docPurchaseInfo, url.Values{"productId": {"12"}})
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	var info purchaseInfo
	a.decode(t, &info)
	if info.OfferingID != partnertest.OfferingID || info.ProductID != 12 || info.ProductName != partnertest.ProductName {
		t.Fatalf("info = %+v", info)
	}
	if len(info.PlanList) != 2 || info.PlanList[1].PlanID != "3049041101760282624" ||
		info.PlanList[1].PlanName != "Ultimate Plan" || info.PlanList[1].MinQuantity != 1 ||
		info.PlanList[1].MaxQuantity != 100000 || info.PlanList[1].BillingCycle != "annually" ||
		info.PlanList[1].BillingModel != "recurring" || info.PlanList[1].PurchaseType != "purchase" {
		t.Fatalf("plans = %+v", info.PlanList)
	}
	if len(info.ServiceList) != 4 || info.ServiceList[0].ServiceID != "3129372068699893760" ||
		!slices.Equal(info.ServiceList[0].ConnectionPlanIDs, []string{"3049041101760282624"}) {
		t.Fatalf("services = %+v", info.ServiceList)
	}
}

func TestPurchaseInfoErrors(t *testing.T) {
	tests := []struct {
		name       string
		give       url.Values
		wantStatus int
		wantCode   string
	}{
		{"with existing SN", url.Values{"productId": {"12"}, "productNo": {partnertest.ExistingSN}}, http.StatusOK,
			partnertest.CodeSuccess},
		{"unknown SN", url.Values{"productId": {"12"}, "productNo": {"3651E0000000"}}, http.StatusNotFound,
			partnertest.CodeNotFound},
		{"unknown product", url.Values{"productId": {"77"}}, http.StatusNotFound, partnertest.CodeNotFound},
		{"no productId", url.Values{}, http.StatusBadRequest, partnertest.CodeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			wantCode(t, c.get(docPurchaseInfo, tt.give), tt.wantStatus, tt.wantCode)
		})
	}
}

func TestBillingContactsAndUsers(t *testing.T) {
	_, c := newServer(t)
	c.login()
	a := c.get(docBillingContacts, nil)
	var contacts []map[string]any
	a.decode(t, &contacts)
	if len(contacts) != 1 || contacts[0]["billingContactId"] != "3197218168379846218" ||
		contacts[0]["emailAddress"] != partnertest.BillingEmail || contacts[0]["company"] != partnertest.BillingCompany {
		t.Fatalf("contacts = %v", contacts)
	}
	for _, f := range []string{"city", "country", "firstName", "lastName", "phoneNumber", "remark", "stateProvince",
		"street", "taxNum", "zipCode"} {
		if _, ok := contacts[0][f]; !ok {
			t.Errorf("contact lacks %s", f)
		}
	}

	a = c.get(docSubordinateUsers, nil)
	var users []struct {
		PartnerID string `json:"partnerId"`
		Email     string `json:"email"`
		UserType  string `json:"userType"`
	}
	a.decode(t, &users)
	if len(users) != 2 || users[0].Email != partnertest.CustomerEmail || users[0].PartnerID != "3201938471602884608" ||
		users[0].UserType != "Enduser" {
		t.Fatalf("users = %+v", users)
	}
	var raw []map[string]any
	a.decode(t, &raw)
	if _, isString := raw[0]["partnerId"].(string); !isString {
		t.Fatalf("partnerId %v is not a string", raw[0]["partnerId"])
	}
}

func TestWithoutSeedData(t *testing.T) {
	srv, c := newServer(t, partnertest.WithoutSeedData())
	c.login()
	wantCode(t, c.get(docPurchaseInfo, url.Values{"productId": {"12"}}), http.StatusNotFound,
		partnertest.CodeNotFound)
	var contacts []any
	c.get(docBillingContacts, nil).decode(t, &contacts)
	if len(contacts) != 0 {
		t.Fatalf("contacts = %v", contacts)
	}

	srv.AddPlan(12, partnerclient.PlanInfo{PlanID: 11, PlanName: "Tiny Plan", MaxQuantity: 10})
	srv.AddBillingContact(partnerclient.BillingContact{BillingContactID: 21, EmailAddress: "b@example.com"})
	srv.AddProduct(12, partnerclient.Product{ProductNo: "3651E0000001", PlanID: 11, Quantity: "3"})
	order := orderRequest{
		OperationType: "purchase_plan", ProductID: 12, BillingID: 21,
		ProductNo:   "3651E0000001",
		ServiceList: []orderLine{planLine(11, 11, 1)},
	}
	a := c.postJSON(docCreateOrder, order)
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
	if a.fields(t)["serviceList[0].quantity"] != "max" {
		t.Fatalf("result %s", a.Result)
	}
	order.ServiceList[0].Quantity = 10
	c.createOrder(order)
	p, ok := srv.Product("3651E0000001")
	if !ok || p.PlanName != "Tiny Plan" || p.Quantity != "10" {
		t.Fatalf("product = %+v, %v", p, ok)
	}
}

func TestAutoRenewal(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	status := func(sn string) bool {
		t.Helper()
		a := c.get(docAutoRenewStatus, productQuery(sn, 12))
		wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
		var r struct {
			AutoRenew bool `json:"autoRenew"`
		}
		a.decode(t, &r)
		return r.AutoRenew
	}
	if status(partnertest.ExistingSN) || !status(partnertest.ExistingUltimateSN) {
		t.Fatal("seeded auto-renewal flags are wrong")
	}
	for _, body := range []string{
		`{"productNo":"3651E1292455","productId":"12","planOrServiceId":3049040650094403584}`,
		`{"productNo":"3651E1292455","productId":12,"planOrServiceId":"3049040650094403584"}`, // again: still true
	} {
		a := c.postJSON(docEnableAutoRenewal, []byte(body))
		wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
		if string(a.Result) != "true" {
			t.Fatalf("result = %s", a.Result)
		}
	}
	if !status(partnertest.ExistingSN) || !srv.AutoRenewal(partnertest.ExistingSN) {
		t.Fatal("auto-renewal not enabled")
	}
	wantCode(t, c.get(docAutoRenewStatus, productQuery("3651E0000000", 12)), http.StatusNotFound,
		partnertest.CodeNotFound)
}

func TestEnableAutoRenewalErrors(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantStatus int
		wantField  string
	}{
		{"other plan", `{"productNo":"3651E1292455","productId":"12","planOrServiceId":3049041101760282624}`,
			http.StatusBadRequest, "planOrServiceId"},
		{"no plan", `{"productNo":"3651E1292455","productId":"12"}`, http.StatusBadRequest, "planOrServiceId"},
		{"no productNo", `{"productId":"12","planOrServiceId":3049040650094403584}`, http.StatusBadRequest, "productNo"},
		{"productId not a number", `{"productNo":"3651E1292455","productId":"PSE","planOrServiceId":1}`,
			http.StatusBadRequest, "productId"},
		{"bad JSON", `{"productNo":`, http.StatusBadRequest, "body"},
		{"unknown SN", `{"productNo":"3651E0000000","productId":"12","planOrServiceId":3049040650094403584}`,
			http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			c.login()
			a := c.postJSON(docEnableAutoRenewal, []byte(tt.give))
			if a.HTTPStatus != tt.wantStatus {
				t.Fatalf("status %d %s, want %d", a.HTTPStatus, a.Code, tt.wantStatus)
			}
			if tt.wantField != "" {
				if _, ok := a.fields(t)[tt.wantField]; !ok {
					t.Fatalf("result %s does not name %s", a.Result, tt.wantField)
				}
			}
			if srv.AutoRenewal(partnertest.ExistingSN) {
				t.Fatal("a failed call enabled auto-renewal")
			}
		})
	}
}

func TestEnableAutoRenewalNeedsJSON(t *testing.T) {
	_, c := newServer(t)
	c.login()
	a := c.send(http.MethodPost, docEnableAutoRenewal, nil, "text/plain",
		[]byte(`{"productNo":"3651E1292455","productId":"12","planOrServiceId":3049040650094403584}`), nil)
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
}

func TestActivationCode(t *testing.T) {
	tests := []struct {
		name       string
		give       url.Values
		wantStatus int
		wantCode   string
	}{
		{"existing", productQuery(partnertest.ExistingSN, 12), http.StatusOK, partnertest.CodeSuccess},
		{"other product", productQuery(partnertest.ExistingSN, 13), http.StatusBadRequest, partnertest.CodeValidationFailed},
		{"unknown SN", productQuery("3651E0000000", 12), http.StatusNotFound, partnertest.CodeNotFound},
		{"no productNo", url.Values{"productId": {"12"}}, http.StatusBadRequest, partnertest.CodeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			c.login()
			a := c.get(docActivationCode, tt.give)
			wantCode(t, a, tt.wantStatus, tt.wantCode)
			if a.Code != partnertest.CodeSuccess {
				return
			}
			var code activationCode
			a.decode(t, &code)
			p, _ := srv.Product(partnertest.ExistingSN)
			if code.Code != p.ActivationCode || code.Code == "" || code.GenerateTime == 0 {
				t.Fatalf("code = %+v, product code %q", code, p.ActivationCode)
			}
		})
	}
}

func TestActivationDelay(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	srv.SetActivationDelay(2)
	res := c.createOrder(newOrder("PO-delay"))
	q := productQuery(res.ProductNo, 12)
	wantCode(t, c.get(docActivationCode, q), http.StatusNotFound, partnertest.CodeNotFound)
	wantCode(t, c.get(docActivationCode, q), http.StatusNotFound, partnertest.CodeNotFound)
	a := c.get(docActivationCode, q)
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	var code activationCode
	a.decode(t, &code)
	if code.Code == "" {
		t.Fatal("empty activation code")
	}
	// Existing PBXs are not delayed.
	wantCode(t, c.get(docActivationCode, productQuery(partnertest.ExistingSN, 12)), http.StatusOK,
		partnertest.CodeSuccess)
}
