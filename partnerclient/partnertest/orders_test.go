package partnertest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

var (
	orderNoRE = regexp.MustCompile(`^ZC\d{19}$`)
	transRE   = regexp.MustCompile(`^AK\d{19}$`)
	snRE      = regexp.MustCompile(`^3651E\d{7}$`)
)

func TestCreateOrderNewLicence(t *testing.T) {
	clk := newFakeClock()
	srv, c := newServer(t, partnertest.WithClock(clk.Now), partnertest.WithSeed(7))
	c.login()
	req := newOrder("PO-77812")
	res := c.createOrder(req)

	if !orderNoRE.MatchString(res.OrderNo) || !transRE.MatchString(res.TransactionNo) || !snRE.MatchString(res.ProductNo) ||
		res.OrderStatus != "succeed" || res.InstanceID == "" {
		t.Fatalf("result = %+v", res)
	}
	p, ok := srv.Product(res.ProductNo)
	if !ok || p.PlanID != partnertest.PlanEnterpriseID || p.Quantity != "20" || p.ActivationCode == "" ||
		p.ActivationStatus != "unactivated" || p.CustomerEmail != "" || p.PlanAutoRenewal != 0 {
		t.Fatalf("product = %+v", p)
	}
	if want := clk.Now().AddDate(1, 0, 0); !p.PlanExpireDate.Time().Equal(want) {
		t.Fatalf("plan expires %v, want %v", p.PlanExpireDate.Time(), want)
	}

	orders := srv.OrdersByPONumber("PO-77812")
	if len(orders) != 1 {
		t.Fatalf("ledger has %d orders for the PO", len(orders))
	}
	o := orders[0]
	sent, _ := json.Marshal(req)
	if o.OrderNo != res.OrderNo || o.ProductNo != res.ProductNo || o.BillingID != partnertest.BillingContactID ||
		o.InstanceID != res.InstanceID || o.OperationType != "purchase_plan" || !o.CreateTime.Equal(clk.Now()) ||
		len(o.Lines) != 1 || o.Lines[0].Quantity != 20 || !bytes.Equal(o.Body, sent) {
		t.Fatalf("ledger order = %+v", o)
	}

	// The new PBX is the newest in the product list.
	var page pageOf[productItem]
	c.get(docProductList, url.Values{"productId": {"12"}}).decode(t, &page)
	if page.Total != partnertest.SeedProductCount+1 || page.Results[0].ProductNo != res.ProductNo {
		t.Fatalf("product list = %+v", page)
	}
}

func TestCreateOrderExistingPBX(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	req := newOrder("PO-existing")
	req.ProductNo = partnertest.ExistingSN
	req.ServiceList = []orderLine{
		planLine(partnertest.PlanUltimateID, 100, 2),
		serviceLine(partnertest.ServiceDisasterRecoveryID, partnertest.PlanUltimateID, 2),
	}
	res := c.createOrder(req)
	if res.ProductNo != partnertest.ExistingSN {
		t.Fatalf("productNo = %s", res.ProductNo)
	}
	p, _ := srv.Product(partnertest.ExistingSN)
	if p.PlanID != partnertest.PlanUltimateID || p.PlanName != "Ultimate Plan" || p.Quantity != "100" ||
		len(p.ServiceList) != 1 || p.ServiceList[0].ServiceID != partnertest.ServiceDisasterRecoveryID {
		t.Fatalf("product = %+v", p)
	}
	if n := len(srv.Orders()); n != 1 {
		t.Fatalf("ledger has %d orders", n)
	}
	var page pageOf[productItem]
	c.get(docProductList, url.Values{"productId": {"12"}}).decode(t, &page)
	if page.Total != partnertest.SeedProductCount {
		t.Fatalf("an order for an existing PBX created a PBX: total %d", page.Total)
	}
}

func TestCreateOrderForSubordinateUser(t *testing.T) {
	tests := []struct {
		name string
		give string // body key
	}{
		{"partnerId", "partnerId"},
		{"assignId", "assignId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			c.login()
			body := map[string]any{
				"operationType": "purchase_plan", "productId": 12, "billingId": "3197218168379846218",
				tt.give:       "3201938902319804416", // the hotel, as a string
				"serviceList": []orderLine{planLine(partnertest.PlanEnterpriseID, 5, 1)},
			}
			res := c.createOrder(body)
			p, _ := srv.Product(res.ProductNo)
			if p.CustomerEmail != partnertest.HotelEmail {
				t.Fatalf("customerEmail = %q", p.CustomerEmail)
			}
			if o := srv.Orders()[0]; o.PartnerID != partnertest.HotelPartnerID {
				t.Fatalf("ledger partnerId = %d", o.PartnerID)
			}
		})
	}
}

func TestCreateOrderPlanAndService(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	req := newOrder("PO-ps")
	req.ServiceList = []orderLine{
		planLine(partnertest.PlanUltimateID, 50, 3),
		serviceLine(partnertest.ServiceDisasterRecoveryID, partnertest.PlanUltimateID, 3),
		serviceLine(partnertest.ServiceHotStandbyID, partnertest.PlanUltimateID, 3),
	}
	res := c.createOrder(req)
	p, _ := srv.Product(res.ProductNo)
	if len(p.ServiceList) != 2 || p.ServiceList[1].ServiceName != partnertest.ServiceHotStandbyName {
		t.Fatalf("services = %+v", p.ServiceList)
	}
}

func TestCreateOrderIncompatibleService(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	req := newOrder("PO-dr")
	req.ServiceList = append(req.ServiceList,
		serviceLine(partnertest.ServiceDisasterRecoveryID, partnertest.PlanEnterpriseID, 1))
	a := c.postJSON(docCreateOrder, req)
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
	if !strings.Contains(a.DetailMessage, "Disaster Recovery") || !strings.Contains(a.DetailMessage, "Ultimate Plan") {
		t.Fatalf("detailMessage %q does not explain the conflict", a.DetailMessage)
	}
	if _, ok := a.fields(t)["serviceList[1].serviceId"]; !ok {
		t.Fatalf("result %s", a.Result)
	}
	if n := len(srv.Orders()); n != 0 {
		t.Fatalf("ledger has %d orders", n)
	}
}

func TestCreateOrderValidation(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*orderRequest)
		wantStatus int
		wantField  string
	}{
		{"no operationType", func(r *orderRequest) { r.OperationType = "" }, 400, "operationType"},
		{"unknown operationType", func(r *orderRequest) { r.OperationType = "buy" }, 400, "operationType"},
		{"unsupported operationType", func(r *orderRequest) { r.OperationType = "renew_plan" }, 400,
			"operationType"},
		{"no productId", func(r *orderRequest) { r.ProductID = 0 }, 400, "productId"},
		{"unknown productId", func(r *orderRequest) { r.ProductID = 77 }, 400, "productId"},
		{"no billingId", func(r *orderRequest) { r.BillingID = 0 }, 400, "billingId"},
		{"unknown billingId", func(r *orderRequest) { r.BillingID = 42 }, 400, "billingId"},
		{"unknown partnerId", func(r *orderRequest) { r.PartnerID = 42 }, 400, "partnerId"},
		{"unknown assignId", func(r *orderRequest) { r.AssignID = "42" }, 400, "assignId"},
		{"no lines", func(r *orderRequest) { r.ServiceList = nil }, 400, "serviceList"},
		{"no plan line", func(r *orderRequest) {
			r.ServiceList = []orderLine{serviceLine(partnertest.ServiceHotStandbyID, partnertest.PlanEnterpriseID, 1)}
		}, 400, "serviceList"},
		{"two plan lines", func(r *orderRequest) {
			r.ServiceList = append(r.ServiceList, planLine(partnertest.PlanUltimateID, 5, 1))
		}, 400, "serviceList"},
		{"unknown plan", func(r *orderRequest) { r.ServiceList[0].ServiceID = 1 }, 400,
			"serviceList[0].serviceId"},
		{"quantity 0", func(r *orderRequest) { r.ServiceList[0].Quantity = 0 }, 400,
			"serviceList[0].quantity"},
		{"quantity too big", func(r *orderRequest) { r.ServiceList[0].Quantity = 100001 }, 400,
			"serviceList[0].quantity"},
		{"bad serviceType", func(r *orderRequest) { r.ServiceList[0].ServiceType = "addon" }, 400,
			"serviceList[0].serviceType"},
		{"trial purchaseType", func(r *orderRequest) { r.ServiceList[0].PurchaseType = "trial" }, 400,
			"serviceList[0].purchaseType"},
		{"bad billingModel", func(r *orderRequest) { r.ServiceList[0].BillingModel = "once" }, 400,
			"serviceList[0].billingModel"},
		{"monthly", func(r *orderRequest) { r.ServiceList[0].BillingCycle = "monthly" }, 400,
			"serviceList[0].billingCycle"},
		{"multiCycle 0", func(r *orderRequest) { r.ServiceList[0].MultiCycle = 0 }, 400,
			"serviceList[0].multiCycle"},
		{"multiCycle 6", func(r *orderRequest) { r.ServiceList[0].MultiCycle = 6 }, 400,
			"serviceList[0].multiCycle"},
		{"multiCycle differs", func(r *orderRequest) {
			r.ServiceList = append(r.ServiceList, serviceLine(partnertest.ServiceHotStandbyID, partnertest.PlanEnterpriseID, 2))
		}, 400, "serviceList[1].multiCycle"},
		{"service without connectionPlanId", func(r *orderRequest) {
			r.ServiceList = append(r.ServiceList, serviceLine(partnertest.ServiceHotStandbyID, 0, 1))
		}, 400, "serviceList[1].connectionPlanId"},
		{"service connected to another plan", func(r *orderRequest) {
			r.ServiceList = append(r.ServiceList, serviceLine(partnertest.ServiceHotStandbyID, partnertest.PlanUltimateID, 1))
		}, 400, "serviceList[1].connectionPlanId"},
		{"unknown service", func(r *orderRequest) {
			r.ServiceList = append(r.ServiceList, serviceLine(5, partnertest.PlanEnterpriseID, 1))
		}, 400, "serviceList[1].serviceId"},
		{"service twice", func(r *orderRequest) {
			l := serviceLine(partnertest.ServiceHotStandbyID, partnertest.PlanEnterpriseID, 1)
			r.ServiceList = append(r.ServiceList, l, l)
		}, 400, "serviceList[2].serviceId"},
		{"unknown SN", func(r *orderRequest) { r.ProductNo = "3651E0000000" }, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			c.login()
			req := newOrder("PO-invalid")
			tt.edit(&req)
			a := c.postJSON(docCreateOrder, req)
			if a.HTTPStatus != tt.wantStatus || a.Code == partnertest.CodeSuccess {
				t.Fatalf("got %d %s (%s), want %d", a.HTTPStatus, a.Code, a.DetailMessage, tt.wantStatus)
			}
			if tt.wantField != "" {
				if _, ok := a.fields(t)[tt.wantField]; !ok {
					t.Fatalf("result %s does not name %s (%s)", a.Result, tt.wantField, a.DetailMessage)
				}
			}
			if n := len(srv.Orders()); n != 0 {
				t.Fatalf("an invalid order was committed (%d orders)", n)
			}
		})
	}
}

func TestCreateOrderBodyErrors(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		give        string
		wantField   string
	}{
		{"not JSON content", "text/plain", `{}`, "Content-Type"},
		{"bad JSON", "application/json", `{"operationType":`, "body"},
		{"quantity as text", "application/json",
			`{"operationType":"purchase_plan","productId":12,"serviceList":[{"quantity":"x"}]}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			a := c.send(http.MethodPost, docCreateOrder, nil, tt.contentType, []byte(tt.give), nil)
			wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
			if _, ok := a.fields(t)[tt.wantField]; !ok {
				t.Fatalf("result %s does not name %s", a.Result, tt.wantField)
			}
		})
	}
}

func TestOrderRefusal(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	srv.SetOrderRefusal("insufficient_balance", "account balance too low")
	a := c.postJSON(docCreateOrder, newOrder("PO-r"))
	wantCode(t, a, http.StatusOK, "insufficient_balance")
	if a.DetailMessage != "account balance too low" || len(srv.Orders()) != 0 {
		t.Fatalf("refusal: %q, %d orders", a.DetailMessage, len(srv.Orders()))
	}
	srv.SetOrderRefusal("", "")
	c.createOrder(newOrder("PO-r"))
	if n := len(srv.OrdersByPONumber("PO-r")); n != 1 {
		t.Fatalf("%d orders after clearing the refusal", n)
	}
}

func TestOrderStatusPending(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	srv.SetOrderStatus("pending")
	res := c.createOrder(newOrder("PO-p"))
	if res.OrderStatus != "pending" || srv.Orders()[0].OrderStatus != "pending" {
		t.Fatalf("status %s", res.OrderStatus)
	}
	if !srv.UpdateOrderStatus(res.OrderNo, "succeed") {
		t.Fatal("order not found")
	}
	var d orderDetails
	c.get(docOrderDetailsPrefix+res.OrderNo, nil).decode(t, &d)
	if d.Order.OrderStatus != "succeed" {
		t.Fatalf("status after payment %s", d.Order.OrderStatus)
	}
}

func TestPONumberNotUnique(t *testing.T) {
	srv, c := newServer(t)
	c.login()
	a, b := c.createOrder(newOrder("PO-same")), c.createOrder(newOrder("PO-same"))
	if a.OrderNo == b.OrderNo || a.ProductNo == b.ProductNo || len(srv.OrdersByPONumber("PO-same")) != 2 {
		t.Fatalf("orders %+v and %+v", a, b)
	}
}

func TestOrderListAndDetails(t *testing.T) {
	clk := newFakeClock()
	_, c := newServer(t, partnertest.WithClock(clk.Now))
	c.login()
	var placed []orderResult
	for _, po := range []string{"PO-1", "PO-2", "PO-3"} {
		placed = append(placed, c.createOrder(newOrder(po)))
		clk.Advance(time.Minute)
	}

	list := func(q url.Values) pageOf[orderItem] {
		t.Helper()
		a := c.get(docOrderList, q)
		wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
		var p pageOf[orderItem]
		a.decode(t, &p)
		return p
	}
	tests := []struct {
		name     string
		give     url.Values
		wantPOs  []string
		wantPage int
	}{
		{"default newest first", nil, []string{"PO-3", "PO-2", "PO-1"}, 1},
		{"-id", url.Values{"sort": {"-id"}}, []string{"PO-3", "PO-2", "PO-1"}, 1},
		{"id oldest first", url.Values{"sort": {"id"}}, []string{"PO-1", "PO-2", "PO-3"}, 1},
		{"page 2 of 2", url.Values{"pageNo": {"2"}, "pageSize": {"2"}}, []string{"PO-1"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := list(tt.give)
			var pos []string
			for _, o := range p.Results {
				pos = append(pos, o.PONumber)
			}
			if strings.Join(pos, ",") != strings.Join(tt.wantPOs, ",") || p.Total != 3 || p.TotalPage != tt.wantPage {
				t.Fatalf("page = %+v", p)
			}
		})
	}

	newest := list(nil).Results[0]
	if newest.OrderNo != placed[2].OrderNo || newest.CurrencyCode != "USD" || newest.ProductID != 12 ||
		newest.ProductNo != placed[2].ProductNo || newest.OperationType != "purchase_plan" || newest.InvoiceNo == "" ||
		newest.CreateTime != clk.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("newest = %+v", newest)
	}

	for _, key := range []string{newest.ID, newest.OrderNo} {
		t.Run("details by "+key, func(t *testing.T) {
			a := c.get(docOrderDetailsPrefix+key, nil)
			wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
			var d orderDetails
			a.decode(t, &d)
			if d.Basic.ProductID != "12" || d.Basic.ProductNo != placed[2].ProductNo || d.Basic.ProductName != partnertest.ProductName ||
				d.Order.OrderNo != newest.OrderNo || d.Order.PONumber != "PO-3" || d.Order.ID != newest.ID ||
				d.Order.TransactionNo != placed[2].TransactionNo ||
				d.Billing.BillingContactID != "3197218168379846218" || d.Billing.EmailAddress != partnertest.BillingEmail ||
				len(d.Summary.ServiceList) != 1 || d.Summary.ServiceList[0].ServiceID != "3049040650094403584" ||
				d.Summary.ServiceList[0].Quantity != 20 {
				t.Fatalf("details = %+v", d)
			}
			var raw struct {
				BasicInformation map[string]any `json:"basicInformation"`
			}
			a.decode(t, &raw)
			if raw.BasicInformation["productId"] != "12" {
				t.Fatalf("basicInformation.productId = %v, want the string \"12\"", raw.BasicInformation["productId"])
			}
		})
	}
	wantCode(t, c.get(docOrderDetailsPrefix+"ZC0000000000000000000", nil), http.StatusNotFound,
		partnertest.CodeNotFound)
	wantCode(t, c.get(docOrderDetailsPrefix+"999", nil), http.StatusNotFound, partnertest.CodeNotFound)
}
