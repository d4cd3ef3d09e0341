package partnertest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// firstOrderID is the ID of the first order placed on a Sim.
const firstOrderID = 1282391

// Limits of multiCycle for an annual P-Series Software Edition purchase.
const (
	minMultiCycle = 1
	maxMultiCycle = 5
)

// operationTypes are the documented operationType values; only purchase_plan is simulated.
var operationTypes = []string{
	"trial_plan", "trial_service", opPurchasePlan, "purchase_service",
	"switch_plan", "switchTrial_plan", "renew_plan", "renew_service",
}

// LedgerOrder is an order committed by the simulator.
type LedgerOrder struct {
	ID            int64
	OrderNo       string // "ZC" + 19 digits
	TransactionNo string // "AK" + 19 digits
	InstanceID    string
	OrderStatus   string
	PONumber      string
	OperationType string
	ProductID     int64
	ProductNo     string // the SN the order was for, new or existing
	PartnerID     int64  // partnerId (or assignId) of the subordinate user, 0 if none
	BillingID     int64
	Lines         []partnerclient.OrderLine
	CreateTime    time.Time
	Body          []byte // the raw request body
}

// order is a ledger entry with what the order views need.
type order struct {
	LedgerOrder
	billing     partnerclient.BillingContact
	productName string
	lineNames   []string
	// undocumented is the orderStatus shown instead of OrderStatus until undocumentedUntil
	// (zero: until UpdateOrderStatus); see Hostile.UndocumentedStatusRate.
	undocumented      string
	undocumentedUntil time.Time
}

// ledger returns a copy of o with the status the API shows now. The caller holds s.mu.
func (s *Sim) ledger(o *order) LedgerOrder {
	l := o.LedgerOrder
	l.OrderStatus = s.statusOf(o)
	l.Lines = slices.Clone(l.Lines)
	l.Body = slices.Clone(l.Body)
	return l
}

// validOrder is an order body that passed validation, with what it refers to.
type validOrder struct {
	body     orderBody
	offering *offering
	plan     partnerclient.PlanInfo
	planLine orderLineBody
	services []partnerclient.ServiceInfo // one per service line, in order
	contact  partnerclient.BillingContact
	customer *partnerclient.SubordinateUser
	target   *product // nil: a new PBX
}

func (s *Sim) handleCreateOrder(r *http.Request, body []byte) reply {
	if !isJSON(r) {
		return invalid(fieldContentType, tagOneOf, "Content-Type must be application/json")
	}
	var b orderBody
	if err := decodeBody(body, &b); err != nil {
		return invalid("body", tagJSON, "body is not valid JSON: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, rep, ok := s.validateOrder(b)
	if !ok {
		return rep
	}
	if s.refusalCode != "" {
		return reply{status: http.StatusOK, code: s.refusalCode, detail: s.refusalMessage}
	}
	res := s.commitOrder(v, body)
	switch {
	case s.draw(s.hostile.OrderErrorEnvelopeRate):
		return orderErrorEnvelope()
	case s.draw(s.hostile.OrderNoOrderNoRate):
		res.OrderNo = nil
	}
	return success(res)
}

// ledgerLines converts the lines of an order body for LedgerOrder.
func ledgerLines(lines []orderLineBody) []partnerclient.OrderLine {
	out := make([]partnerclient.OrderLine, len(lines))
	for i, l := range lines {
		out[i] = partnerclient.OrderLine{
			ServiceType: l.ServiceType, ServiceID: partnerclient.ID(l.ServiceID),
			ConnectionPlanID: partnerclient.ID(l.ConnectionPlanID), Quantity: l.Quantity,
			PurchaseType: l.PurchaseType, BillingModel: l.BillingModel, BillingCycle: l.BillingCycle,
			MultiCycle: l.MultiCycle,
		}
	}
	return out
}

// validateOrder checks an order body against the catalogue and the account. The caller holds
// s.mu.
func (s *Sim) validateOrder(b orderBody) (validOrder, reply, bool) {
	v := validOrder{body: b}
	switch {
	case b.OperationType == "":
		return v, invalid("operationType", tagRequired, "operationType is required"), false
	case !slices.Contains(operationTypes, b.OperationType):
		return v, invalid("operationType", tagOneOf, "operationType %q is not one of %s",
			b.OperationType, strings.Join(operationTypes, ", ")), false
	case b.OperationType != opPurchasePlan:
		return v, invalid("operationType", tagOneOf, "operationType %s is not supported by the simulator; use purchase_plan",
			b.OperationType), false
	case b.ProductID == 0:
		return v, invalid("productId", tagRequired, "productId is required"), false
	}
	v.offering = s.offerings[int64(b.ProductID)]
	if v.offering == nil || len(v.offering.plans) == 0 {
		return v, invalid("productId", tagExists, "product %d is not available for purchase", b.ProductID), false
	}
	if b.BillingID == 0 {
		return v, invalid("billingId", tagRequired, "billingId is required"), false
	}
	i := slices.IndexFunc(s.contacts, func(c partnerclient.BillingContact) bool { return int64(c.BillingContactID) == int64(b.BillingID) })
	if i < 0 {
		return v, invalid("billingId", tagExists, "billing contact %s not found", b.BillingID), false
	}
	v.contact = s.contacts[i]
	for _, f := range []struct {
		name string
		id   wireID
	}{{"partnerId", b.PartnerID}, {"assignId", b.AssignID}} {
		if f.id == 0 {
			continue
		}
		i := slices.IndexFunc(s.users, func(u partnerclient.SubordinateUser) bool { return int64(u.PartnerID) == int64(f.id) })
		if i < 0 {
			return v, invalid(f.name, tagExists, "subordinate user %s not found", f.id), false
		}
		if v.customer == nil {
			u := s.users[i]
			v.customer = &u
		}
	}
	if rep, ok := s.validateLines(&v); !ok {
		return v, rep, false
	}
	if b.ProductNo != "" {
		p, rep, ok := s.findProduct(b.ProductNo, int64(b.ProductID))
		if !ok {
			return v, rep, false
		}
		v.target = p
	}
	return v, reply{}, true
}

// validateLines checks serviceList: exactly one plan line of the product, services that
// connect to that plan, and the fixed values of an annual purchase. The caller holds s.mu.
func (s *Sim) validateLines(v *validOrder) (reply, bool) {
	lines := v.body.ServiceList
	if len(lines) == 0 {
		return invalid("serviceList", tagRequired, "serviceList is required"), false
	}
	planLines, planIdx := 0, 0
	for i, l := range lines {
		field := fmt.Sprintf("serviceList[%d].", i)
		switch {
		case l.ServiceType != serviceTypePlan && l.ServiceType != serviceTypeService:
			return invalid(field+"serviceType", tagOneOf, "serviceType must be plan or service"), false
		case l.PurchaseType != purchaseTypePurchase:
			return invalid(field+"purchaseType", tagOneOf, "purchaseType must be purchase for purchase_plan"), false
		case l.BillingModel != billingModelRecurring:
			return invalid(field+"billingModel", tagOneOf, "billingModel must be recurring"), false
		case l.BillingCycle != billingCycleAnnually:
			return invalid(field+"billingCycle", tagOneOf, "billingCycle must be annually"), false
		case l.MultiCycle < minMultiCycle:
			return invalid(field+"multiCycle", tagMin, "multiCycle must be at least %d", minMultiCycle), false
		case l.MultiCycle > maxMultiCycle:
			return invalid(field+"multiCycle", tagMax, "multiCycle must be at most %d", maxMultiCycle), false
		case l.MultiCycle != lines[0].MultiCycle:
			return invalid(field+"multiCycle", tagEqual, "multiCycle must be the same on every line"), false
		case l.ServiceType == serviceTypePlan:
			planLines++
			planIdx = i
			v.planLine = l
		}
	}
	if planLines != 1 {
		return invalid("serviceList", tagUnique, "serviceList must hold exactly one plan line, got %d", planLines), false
	}
	planField := fmt.Sprintf("serviceList[%d].", planIdx)
	plan, ok := v.offering.plan(partnerclient.ID(v.planLine.ServiceID))
	if !ok {
		return invalid(planField+"serviceId", tagExists, "plan %s is not a plan of product %d", v.planLine.ServiceID,
			v.offering.productID), false
	}
	v.plan = plan
	switch q := v.planLine.Quantity; {
	case q < plan.MinQuantity:
		return invalid(planField+"quantity", tagMin, "quantity of %s must be at least %d", plan.PlanName, plan.MinQuantity), false
	case q > plan.MaxQuantity:
		return invalid(planField+"quantity", tagMax, "quantity of %s must be at most %d", plan.PlanName, plan.MaxQuantity), false
	}
	seen := map[wireID]bool{}
	for i, l := range lines {
		if l.ServiceType != serviceTypeService {
			continue
		}
		field := fmt.Sprintf("serviceList[%d].", i)
		sv, ok := v.offering.service(partnerclient.ID(l.ServiceID))
		switch {
		case !ok:
			return invalid(field+"serviceId", tagExists, "service %s is not a service of product %d", l.ServiceID,
				v.offering.productID), false
		case seen[l.ServiceID]:
			return invalid(field+"serviceId", tagUnique, "service %s is ordered twice", sv.ServiceName), false
		case l.ConnectionPlanID == 0:
			return invalid(field+"connectionPlanId", tagRequired, "connectionPlanId of %s is required when a plan is ordered with it",
				sv.ServiceName), false
		case int64(l.ConnectionPlanID) != int64(plan.PlanID):
			return invalid(field+"connectionPlanId", tagEqual, "connectionPlanId of %s must be the ordered plan %s",
				sv.ServiceName, plan.PlanID), false
		case !slices.Contains(sv.ConnectionPlanIDs, plan.PlanID):
			return invalid(field+"serviceId", "connectionPlanIds", "service %s cannot be ordered with %s; it needs one of: %s",
				sv.ServiceName, plan.PlanName, v.offering.planNames(sv.ConnectionPlanIDs)), false
		case l.Quantity < 0:
			return invalid(field+"quantity", tagMin, "quantity of %s must not be negative", sv.ServiceName), false
		}
		seen[l.ServiceID] = true
		v.services = append(v.services, sv)
	}
	return reply{}, true
}

// planNames lists the names of the plans ids, for messages.
func (o *offering) planNames(ids []partnerclient.ID) string {
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if p, ok := o.plan(id); ok {
			names = append(names, p.PlanName)
		} else {
			names = append(names, id.String())
		}
	}
	return strings.Join(names, ", ")
}

// commitOrder stores a validated order and applies it to its PBX, creating the PBX for a new
// licence. The caller holds s.mu.
func (s *Sim) commitOrder(v validOrder, body []byte) orderResultJSON {
	now := s.clock()
	id := s.nextOrderID
	s.nextOrderID++
	productID := int64(v.body.ProductID)

	p := v.target
	if p == nil {
		s.prodSeq++
		p = &product{
			productID: productID,
			seq:       s.prodSeq,
			p: partnerclient.Product{
				ProductNo:        s.newSN(),
				ActivationCode:   s.newActivationCode(),
				ActivationStatus: "unactivated",
				CreateTime:       partnerclient.FromTime(now),
				PlanStatus:       statusSubscribing,
			},
			codeMisses: s.activationDelay,
		}
		s.products[p.p.ProductNo] = p
	}
	years := v.planLine.MultiCycle
	expiry := now
	if p.p.PlanID == v.plan.PlanID && p.p.PlanExpireDate.Time().After(now) {
		expiry = p.p.PlanExpireDate.Time() // buying the same plan again extends it
	} else {
		p.p.PlanAutoRenewal = 0 // auto-renewal belongs to the previous plan
	}
	p.p.PlanID = v.plan.PlanID
	p.p.PlanName = v.plan.PlanName
	p.p.PlanExpireDate = partnerclient.FromTime(expiry.AddDate(years, 0, 0))
	p.p.Quantity = partnerclient.FlexString(strconv.Itoa(v.planLine.Quantity))
	if v.customer != nil {
		p.p.CustomerEmail = v.customer.Email
	}

	lineNames := make([]string, len(v.body.ServiceList))
	svIdx := 0
	for i, l := range v.body.ServiceList {
		if l.ServiceType == serviceTypePlan {
			lineNames[i] = v.plan.PlanName
			continue
		}
		sv := v.services[svIdx]
		svIdx++
		lineNames[i] = sv.ServiceName
		ps := partnerclient.ProductService{
			ServiceID:          sv.ServiceID,
			ServiceName:        sv.ServiceName,
			Quantity:           partnerclient.FlexString(strconv.Itoa(max(1, l.Quantity))),
			ServiceAutoRenewal: p.p.PlanAutoRenewal,
			ServiceExpireDate:  p.p.PlanExpireDate,
			ServiceStatus:      statusSubscribing,
		}
		p.p.ServiceList = upsert(p.p.ServiceList, ps, func(q partnerclient.ProductService) bool {
			return q.ServiceID == sv.ServiceID
		})
	}

	var partnerID int64
	if v.customer != nil {
		partnerID = int64(v.customer.PartnerID)
	}
	o := &order{
		LedgerOrder: LedgerOrder{
			ID:            id,
			OrderNo:       s.newNumber("ZC"),
			TransactionNo: s.newNumber("AK"),
			InstanceID:    itoa(id),
			OrderStatus:   s.orderStatus,
			PONumber:      v.body.PONumber,
			OperationType: v.body.OperationType,
			ProductID:     productID,
			ProductNo:     p.p.ProductNo,
			PartnerID:     partnerID,
			BillingID:     int64(v.body.BillingID),
			Lines:         ledgerLines(v.body.ServiceList),
			CreateTime:    now,
			Body:          slices.Clone(body),
		},
		billing:     v.contact,
		productName: v.offering.name,
		lineNames:   lineNames,
	}
	s.markUndocumented(o, now)
	s.orders = append(s.orders, o)
	orderNo := o.OrderNo
	return orderResultJSON{
		InstanceID:    o.InstanceID,
		OrderNo:       &orderNo,
		OrderStatus:   s.statusOf(o),
		ProductNo:     o.ProductNo,
		TransactionNo: o.TransactionNo,
	}
}

// newNumber returns an unused order or transaction number: prefix and 19 digits.
// The caller holds s.mu.
func (s *Sim) newNumber(prefix string) string {
	for {
		n := prefix + strconv.FormatInt(3_000_000_000_000_000_000+s.rng.Int64N(1_000_000_000_000_000_000), 10)
		if !s.numbers[n] {
			s.numbers[n] = true
			return n
		}
	}
}

const currencyUSD = "USD"

// invoiceNo is set once an order is paid, i.e. shows status succeed.
func (o *order) invoiceNo(status string) string {
	if status != statusSucceed {
		return ""
	}
	return "INV" + o.CreateTime.UTC().Format("20060102") + itoa(o.ID)
}

func (s *Sim) handleOrderList(r *http.Request, _ []byte) reply {
	q := r.URL.Query()
	pageNo, pageSize, rep, ok := paging(q)
	if !ok {
		return rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hostile
	items := make([]orderSummaryJSON, 0, len(s.orders))
	for _, o := range s.orders {
		status := s.statusOf(o)
		item := orderSummaryJSON{
			CreateTime:    o.CreateTime.UnixMilli(),
			CurrencyCode:  currencyUSD,
			ID:            itoa(o.ID),
			InvoiceNo:     o.invoiceNo(status),
			OperationType: o.OperationType,
			OrderNo:       o.OrderNo,
			OrderStatus:   status,
			ProductID:     o.ProductID,
			ProductNo:     o.ProductNo,
		}
		if !h.OrderListWithoutPONumber {
			item.PONumber = &o.PONumber
		}
		items = append(items, item)
	}
	// s.orders is oldest first. Default and "-id": newest first; "id": oldest first.
	if q.Get("sort") != "id" && !h.OrderListOldestFirst {
		slices.Reverse(items)
	}
	return success(page(items, pageNo, pageSize, max(0, h.OrderListShift)))
}

func (s *Sim) handleOrderDetails(r *http.Request, _ []byte) reply {
	key := strings.TrimPrefix(r.URL.Path, pathOrderDetailsPrefix)
	if key == "" {
		return invalid("id", tagRequired, "order number or order ID is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := strconv.ParseInt(key, 10, 64)
	i := slices.IndexFunc(s.orders, func(o *order) bool { return o.OrderNo == key || (id != 0 && o.ID == id) })
	if i < 0 {
		return notFound("order %s not found", key)
	}
	o := s.orders[i]
	status := s.statusOf(o)
	out := orderDetailsJSON{
		BasicInformation: basicInfoJSON{
			ProductID: itoa(o.ProductID), ProductName: o.productName, ProductNo: o.ProductNo,
		},
		BillingInformation: billingInfoJSON{
			BillingContactID: o.billing.BillingContactID.String(),
			Company:          o.billing.Company,
			EmailAddress:     o.billing.EmailAddress,
		},
		OrderInformation: orderInfoJSON{
			CreateTime:    o.CreateTime.UnixMilli(),
			CurrencyCode:  currencyUSD,
			ID:            itoa(o.ID),
			InstanceID:    o.InstanceID,
			InvoiceNo:     o.invoiceNo(status),
			OperationType: o.OperationType,
			OrderNo:       o.OrderNo,
			OrderStatus:   status,
			PONumber:      o.PONumber,
			TransactionNo: o.TransactionNo,
		},
		OrderSummary: orderSumJSON{ServiceList: make([]orderLineJSON, len(o.Lines))},
	}
	for i, l := range o.Lines {
		line := orderLineJSON{
			BillingCycle: l.BillingCycle, BillingModel: l.BillingModel, MultiCycle: l.MultiCycle,
			PurchaseType: l.PurchaseType, Quantity: l.Quantity, ServiceID: l.ServiceID.String(),
			ServiceName: o.lineNames[i], ServiceType: l.ServiceType,
		}
		if l.ConnectionPlanID != 0 {
			line.ConnectionPlanID = l.ConnectionPlanID.String()
		}
		out.OrderSummary.ServiceList[i] = line
	}
	return success(out)
}

// Orders returns every committed order, oldest first.
func (s *Sim) Orders() []LedgerOrder {
	return s.ordersWhere(func(*order) bool { return true })
}

// OrdersByPONumber returns the committed orders with poNumber po, oldest first.
func (s *Sim) OrdersByPONumber(po string) []LedgerOrder {
	return s.ordersWhere(func(o *order) bool { return o.PONumber == po })
}

func (s *Sim) ordersWhere(keep func(*order) bool) []LedgerOrder {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LedgerOrder
	for _, o := range s.orders {
		if keep(o) {
			out = append(out, s.ledger(o))
		}
	}
	return out
}

// SetOrderRefusal makes every valid create_order answer HTTP 200 with the business error code
// and message, committing nothing; invalid orders still get their 400. An empty code turns
// refusals off.
func (s *Sim) SetOrderRefusal(code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusalCode, s.refusalMessage = code, message
}

// SetOrderStatus sets the orderStatus of orders committed from now on (default "succeed";
// e.g. "pending" for an unpaid order). An empty status restores the default.
func (s *Sim) SetOrderStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orderStatus = cmp.Or(status, statusSucceed)
}

// UpdateOrderStatus changes the status of a committed order, e.g. from "pending" to "succeed"
// once paid in the portal. It reports whether orderNo was found.
func (s *Sim) UpdateOrderStatus(orderNo, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if o.OrderNo == orderNo {
			o.OrderStatus = status
			o.undocumented = ""
			return true
		}
	}
	return false
}
