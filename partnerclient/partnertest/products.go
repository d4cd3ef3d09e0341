package partnertest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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

// render builds the wire form of p. The caller holds s.mu.
func (s *Sim) render(p *product) productJSON {
	asBool := s.hostile.AutoRenewalAsBool
	out := productJSON{
		ActivationCode:   p.p.ActivationCode,
		ActivationStatus: p.p.ActivationStatus,
		Comment:          p.p.Comment,
		CreateTime:       int64(p.p.CreateTime),
		CustomerEmail:    p.p.CustomerEmail,
		EndUserInfo:      endUserJSON{Email: p.p.CustomerEmail},
		PartnerEmail:     partnerEmail,
		PlanAutoRenewal:  flag01{on: p.p.PlanAutoRenewal != 0, asBool: asBool},
		PlanExpireDate:   int64(p.p.PlanExpireDate),
		PlanID:           p.p.PlanID.String(),
		PlanName:         p.p.PlanName,
		PlanStatus:       p.p.PlanStatus,
		ProductNo:        p.p.ProductNo,
		Quantity:         string(p.p.Quantity),
		ServiceList:      []productServiceJSON{},
		URL:              p.p.URL,
		YeastarID:        cmp.Or(p.p.YeastarID, p.p.CustomerEmail, partnerEmail),
	}
	if u, ok := s.userByEmail(p.p.CustomerEmail); ok {
		out.EndUserInfo.CompanyName = u.Company
		out.EndUserInfo.ContactName = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	for _, sv := range p.p.ServiceList {
		item := productServiceJSON{
			Quantity:           string(sv.Quantity),
			ServiceAutoRenewal: flag01{on: sv.ServiceAutoRenewal != 0, asBool: asBool},
			ServiceExpireDate:  int64(sv.ServiceExpireDate),
			ServiceID:          sv.ServiceID.String(),
			ServiceName:        sv.ServiceName,
			ServiceStatus:      sv.ServiceStatus,
		}
		if p.productID == ProductID { // servicePeriod: P-Series Software Edition only
			period := servicePeriod(sv.ServiceExpireDate.Time().Sub(p.p.CreateTime.Time()))
			item.ServicePeriod = &period
		}
		out.ServiceList = append(out.ServiceList, item)
	}
	return out
}

// servicePeriod is the validity period of a service in whole years, at least 1 (the unit is not
// documented; years match the multiCycle of an annual order).
func servicePeriod(d time.Duration) int {
	return max(1, int((d+day)/(365*day)))
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
	return success(page(items, pageNo, pageSize, 0))
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
	return success(s.render(p))
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

func (s *Sim) handleBillingContacts(_ *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hostile.EmptyBillingContacts {
		return success(struct{}{})
	}
	out := make([]contactJSON, len(s.contacts))
	for i, c := range s.contacts {
		out[i] = contactJSON{
			BillingContactID: c.BillingContactID.String(), Company: c.Company, Country: c.Country,
			EmailAddress: c.EmailAddress, FirstName: c.FirstName, LastName: c.LastName,
		}
	}
	return success(out)
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
	return success(autoRenewStatusJSON{AutoRenew: p.p.PlanAutoRenewal != 0})
}

func (s *Sim) handleEnableAutoRenewal(r *http.Request, body []byte) reply {
	if !isJSON(r) {
		return invalid(fieldContentType, tagOneOf, "Content-Type must be application/json")
	}
	var b autoRenewalBody
	if err := decodeBody(body, &b); err != nil {
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
	if int64(b.PlanOrServiceID) != int64(p.p.PlanID) {
		return invalid("planOrServiceId", tagEqual, "planOrServiceId %s is not the current plan %s of product %s",
			b.PlanOrServiceID, p.p.PlanID, p.p.ProductNo)
	}
	if p.p.PlanAutoRenewal != 0 {
		switch s.hostile.EnableWhenOn {
		case EnableWhenOnFalse:
			return success(false)
		case EnableWhenOnRefused:
			return reply{status: http.StatusOK, envStatus: http.StatusBadRequest, code: CodeAlreadyEnabled,
				detail: "auto-renewal of product " + p.p.ProductNo + " is already enabled"}
		}
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
	return success(codeInfoJSON{Code: p.p.ActivationCode, GenerateTime: int64(p.p.CreateTime)})
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
