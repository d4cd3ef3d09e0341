package partnertest

import (
	"cmp"
	"slices"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// The default catalogue: P-Series Software Edition with its two commercial plans and four
// services, as in the commercial-licence tutorial.
const (
	ProductID   = 12
	ProductName = "P-Series Software Edition"
	OfferingID  = "5012"

	PlanEnterpriseID   = 3049040650094403584
	PlanEnterpriseName = "Enterprise Plan"
	PlanUltimateID     = 3049041101760282624
	PlanUltimateName   = "Ultimate Plan"
	PlanMinQuantity    = 1
	PlanMaxQuantity    = 100000

	// ServiceDisasterRecoveryID can only be ordered with the Ultimate Plan.
	ServiceDisasterRecoveryID   = 3129372068699893760
	ServiceDisasterRecoveryName = "Disaster Recovery"
	// The other services can be ordered with either plan.
	ServiceHotStandbyID           = 3129371845084061696
	ServiceHotStandbyName         = "Hot Standby"
	ServiceHotelPMSID             = 3129372303244427264
	ServiceHotelPMSName           = "Hotel PMS Integration"
	ServiceOutboundCallCenterID   = 3129372541682221056
	ServiceOutboundCallCenterName = "Outbound Call Center"
)

// The default account: exactly one billing contact and two subordinate users.
const (
	BillingContactID = 3197218168379846218
	BillingEmail     = "billing@reseller.example"
	BillingCompany   = "Reseller Ltd"

	CustomerPartnerID = 3201938471602884608
	CustomerEmail     = "it@customer.example"
	CustomerCompany   = "Customer Co"
	HotelPartnerID    = 3201938902319804416
	HotelEmail        = "it@harbour-hotel.example"
	HotelCompany      = "Harbour Hotel"
)

// partnerEmail is the partner's own e-mail address (Get Product Details' partnerEmail).
const partnerEmail = "partner@reseller.example"

// The default existing PBXs (product 12). With the four others the product list has two pages
// at pageSize 5.
const (
	// ExistingSN has the Enterprise Plan for 20 extensions, belongs to CustomerEmail and has
	// auto-renewal off.
	ExistingSN = "3651E1292455"
	// ExistingUltimateSN has the Ultimate Plan for 50 extensions with Disaster Recovery,
	// belongs to HotelEmail and has auto-renewal on.
	ExistingUltimateSN = "3651E0529415"
	// SeedProductCount is the number of PBXs in the default data.
	SeedProductCount = 6
)

// productNames are the product names printed in the API guide.
var productNames = map[int64]string{
	9: "Linkus Cloud Service", 11: "P-Series Appliance Edition", 12: ProductName,
	13: "P-Series Cloud Edition", 14: "P-Series Turnkey Package", 15: "Remote Management",
	19: "Add-on Service", 20: "Remote Management Premium", 21: "RM Premium",
}

const day = 24 * time.Hour

// seedData loads the default catalogue, account and PBXs.
func (s *Sim) seedData() {
	for _, p := range []partnerclient.PlanInfo{
		{PlanID: PlanEnterpriseID, PlanName: PlanEnterpriseName},
		{PlanID: PlanUltimateID, PlanName: PlanUltimateName},
	} {
		s.AddPlan(ProductID, p)
	}
	both := []partnerclient.ID{PlanEnterpriseID, PlanUltimateID}
	for _, sv := range []partnerclient.ServiceInfo{
		{ServiceID: ServiceDisasterRecoveryID, ServiceName: ServiceDisasterRecoveryName,
			ConnectionPlanIDs: []partnerclient.ID{PlanUltimateID}},
		{ServiceID: ServiceHotStandbyID, ServiceName: ServiceHotStandbyName, ConnectionPlanIDs: both},
		{ServiceID: ServiceHotelPMSID, ServiceName: ServiceHotelPMSName, ConnectionPlanIDs: both},
		{ServiceID: ServiceOutboundCallCenterID, ServiceName: ServiceOutboundCallCenterName, ConnectionPlanIDs: both},
	} {
		s.AddService(ProductID, sv)
	}
	s.AddBillingContact(partnerclient.BillingContact{
		BillingContactID: BillingContactID, EmailAddress: BillingEmail, Company: BillingCompany,
		FirstName: "Ann", LastName: "Lee", Country: "United Kingdom",
	})
	s.AddSubordinateUser(partnerclient.SubordinateUser{
		PartnerID: CustomerPartnerID, Email: CustomerEmail, Company: CustomerCompany,
		FirstName: "Max", LastName: "Muster", UserType: "Enduser", Country: "Germany",
	})
	s.AddSubordinateUser(partnerclient.SubordinateUser{
		PartnerID: HotelPartnerID, Email: HotelEmail, Company: HotelCompany,
		FirstName: "Rosa", LastName: "Marin", UserType: "Enduser", Country: "Spain",
	})

	now := s.clock()
	for _, p := range []struct {
		sn        string
		plan      partnerclient.ID
		quantity  string
		email     string
		age       time.Duration
		autoRenew int
		services  []partnerclient.ProductService
	}{
		{sn: ExistingSN, plan: PlanEnterpriseID, quantity: "20", email: CustomerEmail, age: 400 * day},
		{sn: "3651E0318820", plan: PlanEnterpriseID, quantity: "10", age: 300 * day},
		{sn: ExistingUltimateSN, plan: PlanUltimateID, quantity: "50", email: HotelEmail, age: 200 * day,
			autoRenew: 1, services: []partnerclient.ProductService{{ServiceID: ServiceDisasterRecoveryID, Quantity: "1"}}},
		{sn: "3651E0774102", plan: PlanUltimateID, quantity: "100", age: 100 * day, autoRenew: 1},
		{sn: "3651E1100356", plan: PlanEnterpriseID, quantity: "5", age: 30 * day},
		{sn: "3651E1468930", plan: PlanUltimateID, quantity: "200", age: 10 * day},
	} {
		created := now.Add(-p.age)
		s.AddProduct(ProductID, partnerclient.Product{
			ProductNo:       p.sn,
			CreateTime:      partnerclient.FromTime(created),
			PlanID:          p.plan,
			PlanExpireDate:  partnerclient.FromTime(created.AddDate(2, 0, 0)),
			PlanAutoRenewal: p.autoRenew,
			Quantity:        partnerclient.FlexString(p.quantity),
			CustomerEmail:   p.email,
			ServiceList:     p.services,
		})
	}
}

// offering is the catalogue of one product ID.
type offering struct {
	productID  int64
	offeringID string
	name       string
	plans      []partnerclient.PlanInfo
	services   []partnerclient.ServiceInfo
}

func (o *offering) plan(id partnerclient.ID) (partnerclient.PlanInfo, bool) {
	i := slices.IndexFunc(o.plans, func(p partnerclient.PlanInfo) bool { return p.PlanID == id })
	if i < 0 {
		return partnerclient.PlanInfo{}, false
	}
	return o.plans[i], true
}

func (o *offering) service(id partnerclient.ID) (partnerclient.ServiceInfo, bool) {
	i := slices.IndexFunc(o.services, func(sv partnerclient.ServiceInfo) bool { return sv.ServiceID == id })
	if i < 0 {
		return partnerclient.ServiceInfo{}, false
	}
	return o.services[i], true
}

// offeringOf returns the catalogue of productID, creating it. The caller holds s.mu.
func (s *Sim) offeringOf(productID int64) *offering {
	o := s.offerings[productID]
	if o == nil {
		name := productNames[productID]
		if name == "" {
			name = "Product " + itoa(productID)
		}
		o = &offering{productID: productID, offeringID: itoa(5000 + productID), name: name}
		s.offerings[productID] = o
	}
	return o
}

// AddPlan adds plan p to the catalogue of productID, or replaces the plan with the same ID.
// Empty fields get the P-Series defaults: purchaseType "purchase", billingModel "recurring",
// billingCycle "annually", quantities 1 to 100000.
func (s *Sim) AddPlan(productID int64, p partnerclient.PlanInfo) {
	p.PurchaseType = cmp.Or(p.PurchaseType, purchaseTypePurchase)
	p.BillingModel = cmp.Or(p.BillingModel, billingModelRecurring)
	p.BillingCycle = cmp.Or(p.BillingCycle, billingCycleAnnually)
	if p.MinQuantity == 0 {
		p.MinQuantity = PlanMinQuantity
	}
	if p.MaxQuantity == 0 {
		p.MaxQuantity = PlanMaxQuantity
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offeringOf(productID)
	o.plans = upsert(o.plans, p, func(q partnerclient.PlanInfo) bool { return q.PlanID == p.PlanID })
}

// AddService adds service sv to the catalogue of productID, or replaces the service with the
// same ID. sv can be ordered with the plans in sv.ConnectionPlanIDs. An empty purchaseType
// becomes "purchase".
func (s *Sim) AddService(productID int64, sv partnerclient.ServiceInfo) {
	sv.PurchaseType = cmp.Or(sv.PurchaseType, purchaseTypePurchase)
	sv.ConnectionPlanIDs = slices.Clone(sv.ConnectionPlanIDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offeringOf(productID)
	o.services = upsert(o.services, sv, func(q partnerclient.ServiceInfo) bool { return q.ServiceID == sv.ServiceID })
}

// AddBillingContact adds c to the account, or replaces the contact with the same ID.
func (s *Sim) AddBillingContact(c partnerclient.BillingContact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contacts = upsert(s.contacts, c, func(q partnerclient.BillingContact) bool {
		return q.BillingContactID == c.BillingContactID
	})
}

// AddSubordinateUser adds u to the account, or replaces the user with the same partner ID.
// An empty userType becomes "Enduser".
func (s *Sim) AddSubordinateUser(u partnerclient.SubordinateUser) {
	u.UserType = cmp.Or(u.UserType, "Enduser")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = upsert(s.users, u, func(q partnerclient.SubordinateUser) bool { return q.PartnerID == u.PartnerID })
}

// AddProduct adds an existing PBX of productID, or replaces the one with the same SN. Empty
// fields are filled in: a new SN, an activation code, activation status "activated", plan and
// service status "subscribing", the plan's and services' names from the catalogue, create time
// now and plan expiry a year later.
func (s *Sim) AddProduct(productID int64, p partnerclient.Product) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	if p.ProductNo == "" {
		p.ProductNo = s.newSN()
	}
	if p.ActivationCode == "" {
		p.ActivationCode = s.newActivationCode()
	}
	p.ActivationStatus = cmp.Or(p.ActivationStatus, "activated")
	p.PlanStatus = cmp.Or(p.PlanStatus, statusSubscribing)
	if p.CreateTime == 0 {
		p.CreateTime = partnerclient.FromTime(now)
	}
	if p.PlanExpireDate == 0 {
		p.PlanExpireDate = partnerclient.FromTime(p.CreateTime.Time().AddDate(1, 0, 0))
	}
	o := s.offeringOf(productID)
	if plan, ok := o.plan(p.PlanID); ok && p.PlanName == "" {
		p.PlanName = plan.PlanName
	}
	p.ServiceList = slices.Clone(p.ServiceList)
	for i, sv := range p.ServiceList {
		if info, ok := o.service(sv.ServiceID); ok && sv.ServiceName == "" {
			p.ServiceList[i].ServiceName = info.ServiceName
		}
		p.ServiceList[i].ServiceStatus = cmp.Or(sv.ServiceStatus, statusSubscribing)
		if sv.ServiceExpireDate == 0 {
			p.ServiceList[i].ServiceExpireDate = p.PlanExpireDate
		}
		p.ServiceList[i].ServiceAutoRenewal = p.PlanAutoRenewal
	}
	s.prodSeq++
	s.products[p.ProductNo] = &product{productID: productID, seq: s.prodSeq, p: p}
}

// upsert replaces the first item matching same with v, or appends v.
func upsert[T any](items []T, v T, same func(T) bool) []T {
	if i := slices.IndexFunc(items, same); i >= 0 {
		items[i] = v
		return items
	}
	return append(items, v)
}
