package partnertest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fulfil/fulfil/partnerclient"
)

// product is one PBX (licence) of the account.
type product struct {
	productID int64
	seq       int64 // creation order, breaks createTime ties
	p         partnerclient.Product
	// codeMisses counts the activation_code calls still answered "not generated yet".
	codeMisses int
}

// productJSON is an item of Query Product List (ASSUMED.md: the fields of Get Product Details).
type productJSON struct {
	ActivationCode   string               `json:"activationCode"`
	ActivationStatus string               `json:"activationStatus"`
	Comment          string               `json:"comment"`
	CreateTime       int64                `json:"createTime"`
	CustomerEmail    string               `json:"customerEmail"`
	EndUserInfo      endUserJSON          `json:"endUserInfo"`
	PlanAutoRenewal  int                  `json:"planAutoRenewal"`
	PlanExpireDate   int64                `json:"planExpireDate"`
	PlanID           string               `json:"planId"`
	PlanName         string               `json:"planName"`
	PlanStatus       string               `json:"planStatus"`
	ProductID        int64                `json:"productId"`
	ProductNo        string               `json:"productNo"`
	Quantity         int                  `json:"quantity"`
	ServiceList      []productServiceJSON `json:"serviceList"`
	URL              string               `json:"url"`
	YeastarID        string               `json:"yeastarId"`
}

// productDetailsJSON is the result of Get Product Details.
type productDetailsJSON struct {
	productJSON
	CurrentPlan           string `json:"currentPlan"`
	CurrentPlanExpireDate string `json:"currentPlanExpireDate"`
}

type endUserJSON struct {
	Company string `json:"company"`
	Email   string `json:"email"`
}

type productServiceJSON struct {
	Quantity           int    `json:"quantity"`
	ServiceAutoRenewal int    `json:"serviceAutoRenewal"`
	ServiceExpireDate  int64  `json:"serviceExpireDate"`
	ServiceID          string `json:"serviceId"`
	ServiceName        string `json:"serviceName"`
	ServiceStatus      string `json:"serviceStatus"`
}

// render builds the wire form of p. The caller holds s.mu.
func (s *Sim) render(p *product) productJSON {
	out := productJSON{
		ActivationCode:   p.p.ActivationCode,
		ActivationStatus: p.p.ActivationStatus,
		Comment:          p.p.Comment,
		CreateTime:       int64(p.p.CreateTime),
		CustomerEmail:    p.p.CustomerEmail,
		EndUserInfo:      endUserJSON{Email: p.p.CustomerEmail},
		PlanAutoRenewal:  p.p.PlanAutoRenewal,
		PlanExpireDate:   int64(p.p.PlanExpireDate),
		PlanID:           p.p.PlanID.String(),
		PlanName:         p.p.PlanName,
		PlanStatus:       p.p.PlanStatus,
		ProductID:        p.productID,
		ProductNo:        p.p.ProductNo,
		Quantity:         atoi(string(p.p.Quantity)),
		ServiceList:      []productServiceJSON{},
		URL:              p.p.URL,
		YeastarID:        cmp.Or(p.p.YeastarID, p.p.CustomerEmail),
	}
	if u, ok := s.userByEmail(p.p.CustomerEmail); ok {
		out.EndUserInfo.Company = u.Company
	}
	for _, sv := range p.p.ServiceList {
		out.ServiceList = append(out.ServiceList, productServiceJSON{
			Quantity:           atoi(string(sv.Quantity)),
			ServiceAutoRenewal: sv.ServiceAutoRenewal,
			ServiceExpireDate:  int64(sv.ServiceExpireDate),
			ServiceID:          sv.ServiceID.String(),
			ServiceName:        sv.ServiceName,
			ServiceStatus:      sv.ServiceStatus,
		})
	}
	return out
}

func (s *Sim) handleProductList(r *http.Request, _ []byte) reply {
	q := r.URL.Query()
	productID, rep, ok := queryInt(q, "productId", true, 0)
	if !ok {
		return rep
	}
	pageNo, pageSize, rep, ok := paging(q)
	if !ok {
		return rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*product
	for _, p := range s.products {
		if p.productID == productID {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, newestFirst)
	items := make([]productJSON, len(ps))
	for i, p := range ps {
		items[i] = s.render(p)
	}
	return success(page(items, pageNo, pageSize))
}

// newestFirst orders products by create time, then creation order, newest first.
func newestFirst(a, b *product) int {
	if a.p.CreateTime != b.p.CreateTime {
		return cmp.Compare(b.p.CreateTime, a.p.CreateTime)
	}
	return cmp.Compare(b.seq, a.seq)
}

// productParams reads the productNo and productId query parameters and finds the product.
// The caller holds s.mu.
func (s *Sim) productParams(q url.Values) (*product, reply, bool) {
	sn, rep, ok := queryString(q, "productNo")
	if !ok {
		return nil, rep, false
	}
	productID, rep, ok := queryInt(q, "productId", true, 0)
	if !ok {
		return nil, rep, false
	}
	return s.findProduct(sn, productID)
}

// findProduct returns the PBX sn of productID. The caller holds s.mu.
func (s *Sim) findProduct(sn string, productID int64) (*product, reply, bool) {
	p := s.products[sn]
	if p == nil || p.productID != productID {
		return nil, notFound("product %s not found for productId %d", sn, productID), false
	}
	return p, reply{}, true
}

func (s *Sim) handleProductDetails(r *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, rep, ok := s.productParams(r.URL.Query())
	if !ok {
		return rep
	}
	return success(productDetailsJSON{productJSON: s.render(p)})
}

// purchaseInfoJSON is the result of Query Available Subscription / Trial Plans and Services
// (ASSUMED.md).
type purchaseInfoJSON struct {
	OfferingID  string        `json:"offeringId"`
	ProductID   int64         `json:"productId"`
	ProductName string        `json:"productName"`
	PlanList    []planJSON    `json:"planList"`
	ServiceList []serviceJSON `json:"serviceList"`
}

type planJSON struct {
	PlanID       string `json:"planId"`
	PlanName     string `json:"planName"`
	PurchaseType string `json:"purchaseType"`
	BillingModel string `json:"billingModel"`
	BillingCycle string `json:"billingCycle"`
	MinQuantity  int    `json:"minQuantity"`
	MaxQuantity  int    `json:"maxQuantity"`
}

type serviceJSON struct {
	ServiceID         string   `json:"serviceId"`
	ServiceName       string   `json:"serviceName"`
	PurchaseType      string   `json:"purchaseType"`
	ConnectionPlanIDs []string `json:"connectionPlanIds"`
}

func (s *Sim) handlePurchaseInfo(r *http.Request, _ []byte) reply {
	q := r.URL.Query()
	productID, rep, ok := queryInt(q, "productId", true, 0)
	if !ok {
		return rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offerings[productID]
	if o == nil || len(o.plans) == 0 {
		return notFound("product %d has no plans available", productID)
	}
	if sn := strings.TrimSpace(q.Get("productNo")); sn != "" {
		if _, rep, ok := s.findProduct(sn, productID); !ok {
			return rep
		}
	}
	out := purchaseInfoJSON{
		OfferingID:  o.offeringID,
		ProductID:   productID,
		ProductName: o.name,
		PlanList:    []planJSON{},
		ServiceList: []serviceJSON{},
	}
	for _, p := range o.plans {
		out.PlanList = append(out.PlanList, planJSON{
			PlanID: p.PlanID.String(), PlanName: p.PlanName, PurchaseType: p.PurchaseType,
			BillingModel: p.BillingModel, BillingCycle: p.BillingCycle,
			MinQuantity: p.MinQuantity, MaxQuantity: p.MaxQuantity,
		})
	}
	for _, sv := range o.services {
		ids := make([]string, len(sv.ConnectionPlanIDs))
		for i, id := range sv.ConnectionPlanIDs {
			ids[i] = id.String()
		}
		out.ServiceList = append(out.ServiceList, serviceJSON{
			ServiceID: sv.ServiceID.String(), ServiceName: sv.ServiceName,
			PurchaseType: sv.PurchaseType, ConnectionPlanIDs: ids,
		})
	}
	return success(out)
}

// contactJSON is an item of Query Billing Contact List (REFERENCE.md 5.1).
type contactJSON struct {
	BillingContactID string `json:"billingContactId"`
	City             string `json:"city"`
	Company          string `json:"company"`
	Country          string `json:"country"`
	EmailAddress     string `json:"emailAddress"`
	FirstName        string `json:"firstName"`
	LastName         string `json:"lastName"`
	PhoneNumber      string `json:"phoneNumber"`
	Remark           string `json:"remark"`
	StateProvince    string `json:"stateProvince"`
	Street           string `json:"street"`
	TaxNum           string `json:"taxNum"`
	ZipCode          string `json:"zipCode"`
}

func (s *Sim) handleBillingContacts(_ *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]contactJSON, len(s.contacts))
	for i, c := range s.contacts {
		out[i] = contactJSON{
			BillingContactID: c.BillingContactID.String(), Company: c.Company, Country: c.Country,
			EmailAddress: c.EmailAddress, FirstName: c.FirstName, LastName: c.LastName,
		}
	}
	return success(out)
}

// userJSON is an item of Query Subordinate User List (REFERENCE.md 5.2).
type userJSON struct {
	City          string `json:"city"`
	Company       string `json:"company"`
	Country       string `json:"country"`
	Email         string `json:"email"`
	FirstName     string `json:"firstName"`
	LastName      string `json:"lastName"`
	PartnerID     string `json:"partnerId"`
	PhoneNumber   string `json:"phoneNumber"`
	Remark        string `json:"remark"`
	StateProvince string `json:"stateProvince"`
	Street        string `json:"street"`
	TaxNum        string `json:"taxNum"`
	UserType      string `json:"userType"`
	ZipCode       string `json:"zipCode"`
}

func (s *Sim) handleSubordinateUsers(_ *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]userJSON, len(s.users))
	for i, u := range s.users {
		out[i] = userJSON{
			Company: u.Company, Country: u.Country, Email: u.Email, FirstName: u.FirstName,
			LastName: u.LastName, PartnerID: u.PartnerID.String(), UserType: u.UserType,
		}
	}
	return success(out)
}

func (s *Sim) handleAutoRenewStatus(r *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, rep, ok := s.productParams(r.URL.Query())
	if !ok {
		return rep
	}
	return success(map[string]bool{"autoRenew": p.p.PlanAutoRenewal != 0})
}

// autoRenewalBody is the body of Enable Auto-renewal; productId is documented as a String and
// accepted as a number too.
type autoRenewalBody struct {
	ProductNo       string                   `json:"productNo"`
	ProductID       partnerclient.FlexString `json:"productId"`
	PlanOrServiceID partnerclient.ID         `json:"planOrServiceId"`
}

func (s *Sim) handleEnableAutoRenewal(r *http.Request, body []byte) reply {
	if !isJSON(r) {
		return invalid(fieldContentType, tagOneOf, "Content-Type must be application/json")
	}
	var b autoRenewalBody
	if err := json.Unmarshal(body, &b); err != nil {
		return invalid("body", tagJSON, "body is not valid JSON: %v", err)
	}
	if b.ProductNo == "" {
		return invalid("productNo", tagRequired, "productNo is required")
	}
	if b.ProductID == "" {
		return invalid("productId", tagRequired, "productId is required")
	}
	productID, err := strconv.ParseInt(strings.TrimSpace(string(b.ProductID)), 10, 64)
	if err != nil {
		return invalid("productId", tagNumber, "productId must be an integer")
	}
	if b.PlanOrServiceID == 0 {
		return invalid("planOrServiceId", tagRequired, "planOrServiceId is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, rep, ok := s.findProduct(b.ProductNo, productID)
	if !ok {
		return rep
	}
	if b.PlanOrServiceID != p.p.PlanID {
		return invalid("planOrServiceId", tagEqual, "planOrServiceId %s is not the current plan %s of product %s",
			b.PlanOrServiceID, p.p.PlanID, p.p.ProductNo)
	}
	p.p.PlanAutoRenewal = 1
	return success(true)
}

func (s *Sim) handleActivationCode(r *http.Request, _ []byte) reply {
	q := r.URL.Query()
	sn, rep, ok := queryString(q, "productNo")
	if !ok {
		return rep
	}
	productID, rep, ok := queryInt(q, "productId", true, 0)
	if !ok {
		return rep
	}
	if productID != ProductID {
		return invalid("productId", tagOneOf, "productId must be %d (P-Series Software Edition)", ProductID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, rep, ok := s.findProduct(sn, productID)
	if !ok {
		return rep
	}
	if p.codeMisses > 0 {
		p.codeMisses--
		return notFound("activation code of product %s not generated yet", p.p.ProductNo)
	}
	return success(partnerclient.ActivationCode{Code: p.p.ActivationCode, GenerateTime: p.p.CreateTime})
}

// SetActivationDelay makes the first n activation_code calls for each PBX created by a later
// order answer 404 resource_not_found ("not generated yet"). 0 (the default) turns it off.
func (s *Sim) SetActivationDelay(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activationDelay = max(0, n)
}

// Product returns the PBX with SN productNo as Get Product Details would describe it.
func (s *Sim) Product(productNo string) (partnerclient.Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.products[productNo]
	if p == nil {
		return partnerclient.Product{}, false
	}
	out := p.p
	out.ServiceList = slices.Clone(p.p.ServiceList)
	return out, true
}

// AutoRenewal reports whether auto-renewal is on for the PBX with SN productNo (false for an
// unknown SN).
func (s *Sim) AutoRenewal(productNo string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.products[productNo]
	return p != nil && p.p.PlanAutoRenewal != 0
}

// userByEmail finds a subordinate user. The caller holds s.mu.
func (s *Sim) userByEmail(email string) (partnerclient.SubordinateUser, bool) {
	i := slices.IndexFunc(s.users, func(u partnerclient.SubordinateUser) bool {
		return email != "" && strings.EqualFold(u.Email, email)
	})
	if i < 0 {
		return partnerclient.SubordinateUser{}, false
	}
	return s.users[i], true
}

// newSN returns an unused PBX serial number. The caller holds s.mu.
func (s *Sim) newSN() string {
	for {
		sn := fmt.Sprintf("3651E%07d", s.rng.IntN(10_000_000))
		if s.products[sn] == nil {
			return sn
		}
	}
}

const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newActivationCode returns a code like "K7Q2M-9XW3P-…" (five groups of five). The caller
// holds s.mu.
func (s *Sim) newActivationCode() string {
	var b strings.Builder
	for i := range 25 {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(codeAlphabet[s.rng.IntN(len(codeAlphabet))])
	}
	return b.String()
}

func atoi(v string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(v))
	return n
}
