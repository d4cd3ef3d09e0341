package workflow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// productPageSize is the product-list page size used to find an existing SN.
const productPageSize = 100

// lookup is the result of one lookup.
type lookup struct {
	step     string
	status   string
	attempts int
	apply    func(*State)
	err      error
	took     time.Duration
}

// lookups runs the three lookups concurrently and keeps their results for storeIntent.
func (r *run) lookups(ctx context.Context) error {
	calls := []func(context.Context) lookup{
		func(ctx context.Context) lookup {
			p, status, n, err := r.resolveProduct(ctx)
			return lookup{step: messages.StepResolveProduct, status: status, attempts: n, apply: func(st *State) { st.Product = p }, err: err}
		},
		func(ctx context.Context) lookup {
			p, n, err := r.resolvePlan(ctx)
			return lookup{step: messages.StepResolvePlan, status: messages.StatusDone, attempts: n, apply: func(st *State) { st.Plan = p }, err: err}
		},
		func(ctx context.Context) lookup {
			b, n, err := r.resolveBilling(ctx)
			return lookup{step: messages.StepResolveBilling, status: messages.StatusDone, attempts: n, apply: func(st *State) { st.Billing = b }, err: err}
		},
	}
	steps := [...]string{messages.StepResolveProduct, messages.StepResolvePlan, messages.StepResolveBilling}
	results := make([]lookup, len(calls))
	parallel(len(calls), func(i int) {
		start := r.saga.now()
		ctx, span := r.startSpan(ctx, steps[i])
		results[i] = calls[i](ctx)
		endStep(span, results[i].status, results[i].attempts, results[i].err)
		results[i].took = r.saga.now().Sub(start)
	})

	// Report a terminal failure before a retryable one, in step order, so the outcome does not
	// depend on which lookup happened to finish first.
	var retry error
	for _, res := range results {
		var f *Failure
		switch {
		case errors.As(res.err, &f):
			return f
		case res.err != nil && retry == nil:
			retry = res.err
		}
	}
	if retry != nil {
		return retry
	}
	r.looked = results
	return nil
}

// storeIntent writes the lookups together with the order intent in one checkpoint, so create
// order starts only once they are durable.
func (r *run) storeIntent(ctx context.Context) error {
	now := r.saga.now()
	for _, res := range r.looked {
		res.apply(r.st)
		r.st.markStep(res.step, res.status, res.attempts, now)
	}
	// One checkpoint holds the lookups and the intent, already marked as sent: from here on a
	// redelivery must reconcile before sending.
	r.st.Order.Intent = r.newIntent()
	markSend(r.st.Order.Intent, now)
	if err := r.checkpoint(ctx); err != nil {
		return err
	}
	r.freshIntent = true
	for _, res := range r.looked {
		r.obs.StepProgress(res.step, res.status, res.attempts, "")
		r.saga.Hooks.stepDone(res.step, res.took)
	}
	r.looked = nil
	return nil
}

// resolveProduct verifies an existing SN, or resolves the subordinate customer of a new license.
func (r *run) resolveProduct(ctx context.Context) (*ProductStep, string, int, error) {
	step := messages.StepResolveProduct
	switch {
	case r.req.ProductNo != "":
		var found bool
		n, err := r.do(ctx, kindLookup, step, func(ctx context.Context) error {
			found = false
			for page := 1; ; page++ {
				p, err := r.saga.Partner.ListProducts(ctx, partnerclient.ListProductsParams{
					ProductID: r.productID(), PageNo: page, PageSize: productPageSize})
				if err != nil {
					return err
				}
				for _, item := range p.Results {
					if strings.EqualFold(item.ProductNo, r.req.ProductNo) {
						found = true
						return nil
					}
				}
				if len(p.Results) == 0 || page >= p.TotalPage {
					return nil
				}
			}
		})
		if err != nil {
			return nil, "", n, r.stepError(kindLookup, step, err)
		}
		if !found {
			return nil, "", n, failure(step, messages.ReasonInvalidRequest, "", nil,
				"PBX %q is not among the partner's products of productId %d", r.req.ProductNo, r.productID())
		}
		return &ProductStep{ProductNo: r.req.ProductNo}, messages.StatusDone, n, nil

	case r.req.CustomerEmail != "":
		var users []partnerclient.SubordinateUser
		n, err := r.do(ctx, kindLookup, step, func(ctx context.Context) error {
			var err error
			users, err = r.saga.Partner.SubordinateUsers(ctx)
			return err
		})
		if err != nil {
			return nil, "", n, r.stepError(kindLookup, step, err)
		}
		for _, u := range users {
			if strings.EqualFold(strings.TrimSpace(u.Email), r.req.CustomerEmail) {
				return &ProductStep{PartnerID: u.PartnerID, CustomerEmail: r.req.CustomerEmail}, messages.StatusDone, n, nil
			}
		}
		return nil, "", n, failure(step, messages.ReasonInvalidRequest, "", nil,
			"customer %q is not one of the partner's subordinate users", r.req.CustomerEmail)

	default:
		// A new license for the partner itself: nothing to resolve.
		return &ProductStep{}, messages.StatusSkipped, 0, nil
	}
}

// resolvePlan resolves the plan and services against the partner's catalogue.
func (r *run) resolvePlan(ctx context.Context) (*PlanStep, int, error) {
	step := messages.StepResolvePlan
	var info partnerclient.PurchaseInfo
	n, err := r.do(ctx, kindLookup, step, func(ctx context.Context) error {
		var err error
		info, err = r.saga.Partner.PurchaseInfo(ctx, r.productID(), r.req.ProductNo)
		return err
	})
	if err != nil {
		return nil, n, r.stepError(kindLookup, step, err)
	}
	p, err := matchPlan(info, r.req)
	if err != nil {
		return nil, n, failure(step, messages.ReasonInvalidRequest, "", nil, "%v", err)
	}
	return p, n, nil
}

// matchPlan picks the requested plan and services out of the catalogue; it is pure.
func matchPlan(info partnerclient.PurchaseInfo, req messages.PurchaseRequest) (*PlanStep, error) {
	var plan *partnerclient.PlanInfo
	names := make([]string, 0, len(info.Plans))
	for i := range info.Plans {
		pl := &info.Plans[i]
		names = append(names, pl.PlanName)
		if refMatches(req.Plan.ID, req.Plan.Name, pl.PlanID, pl.PlanName) {
			plan = pl
		}
	}
	if plan == nil {
		return nil, fmt.Errorf("plan %s not found; available: %s", describeRef(req.Plan.ID, req.Plan.Name), list(names))
	}
	if plan.MinQuantity > 0 && req.Quantity < plan.MinQuantity || plan.MaxQuantity > 0 && req.Quantity > plan.MaxQuantity {
		return nil, fmt.Errorf("quantity %d is outside %s's range %d–%d", req.Quantity, plan.PlanName, plan.MinQuantity, plan.MaxQuantity)
	}
	out := &PlanStep{PlanID: plan.PlanID, PlanName: plan.PlanName}
	svcNames := make([]string, 0, len(info.Services))
	for _, sv := range info.Services {
		svcNames = append(svcNames, sv.ServiceName)
	}
	var problems []string
	for _, want := range req.Services {
		var found *partnerclient.ServiceInfo
		for i := range info.Services {
			if refMatches(want.ID, want.Name, info.Services[i].ServiceID, info.Services[i].ServiceName) {
				found = &info.Services[i]
				break
			}
		}
		if found == nil {
			problems = append(problems, fmt.Sprintf("service %s not found; available: %s", describeRef(want.ID, want.Name), list(svcNames)))
			continue
		}
		if !compatible(found, plan.PlanID) {
			problems = append(problems, fmt.Sprintf("service %q cannot be ordered with %s; it needs %s",
				found.ServiceName, plan.PlanName, list(planNames(info, found.ConnectionPlanIDs))))
			continue
		}
		out.Services = append(out.Services, ResolvedService{ServiceID: found.ServiceID, ServiceName: found.ServiceName, Quantity: want.Quantity})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

func compatible(sv *partnerclient.ServiceInfo, plan partnerclient.ID) bool {
	if len(sv.ConnectionPlanIDs) == 0 {
		return true
	}
	for _, id := range sv.ConnectionPlanIDs {
		if id == plan {
			return true
		}
	}
	return false
}

func planNames(info partnerclient.PurchaseInfo, ids []partnerclient.ID) []string {
	var out []string
	for _, id := range ids {
		for _, pl := range info.Plans {
			if pl.PlanID == id {
				out = append(out, pl.PlanName)
			}
		}
	}
	if len(out) == 0 {
		out = []string{"a plan not offered to this account"}
	}
	return out
}

// resolveBilling resolves the billing contact by ID or e-mail, or takes the only one.
func (r *run) resolveBilling(ctx context.Context) (*BillingStep, int, error) {
	step := messages.StepResolveBilling
	var contacts []partnerclient.BillingContact
	n, err := r.do(ctx, kindLookup, step, func(ctx context.Context) error {
		var err error
		contacts, err = r.saga.Partner.BillingContacts(ctx)
		return err
	})
	if err != nil {
		return nil, n, r.stepError(kindLookup, step, err)
	}
	b, err := matchBilling(contacts, r.req.BillingContact)
	if err != nil {
		return nil, n, failure(step, messages.ReasonInvalidRequest, "", nil, "%v", err)
	}
	return b, n, nil
}

// matchBilling picks the billing contact; it is pure.
func matchBilling(contacts []partnerclient.BillingContact, ref *messages.ContactRef) (*BillingStep, error) {
	emails := make([]string, 0, len(contacts))
	for _, c := range contacts {
		emails = append(emails, c.EmailAddress)
	}
	if ref == nil {
		switch len(contacts) {
		case 0:
			return nil, errors.New("billingContact: the partner account has no billing contact")
		case 1:
			return &BillingStep{ContactID: contacts[0].BillingContactID, Email: contacts[0].EmailAddress}, nil
		default:
			return nil, fmt.Errorf("billingContact is required: the account has %d billing contacts (%s)", len(contacts), list(emails))
		}
	}
	for _, c := range contacts {
		if ref.ID != "" && c.BillingContactID.String() == ref.ID.String() ||
			ref.Email != "" && strings.EqualFold(strings.TrimSpace(c.EmailAddress), ref.Email) {
			return &BillingStep{ContactID: c.BillingContactID, Email: c.EmailAddress}, nil
		}
	}
	return nil, fmt.Errorf("billing contact %s not found; available: %s", describeRef(ref.ID, ref.Email), list(emails))
}

func refMatches(id messages.ID, name string, gotID partnerclient.ID, gotName string) bool {
	if id != "" {
		return id.String() == gotID.String()
	}
	return strings.EqualFold(strings.TrimSpace(name), strings.TrimSpace(gotName))
}

func describeRef(id messages.ID, name string) string {
	if id != "" {
		return "id " + id.String()
	}
	return fmt.Sprintf("%q", name)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	s := append([]string(nil), names...)
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// newIntent builds the order body from the resolved steps; it is deterministic for a request.
func (r *run) newIntent() *OrderIntent {
	po := r.req.PONumber
	if po == "" {
		po = DefaultPONumber(r.req.IdempotencyKey)
	}
	years := r.req.Years
	plan := r.st.Plan
	body := partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan,
		ProductID:     r.productID(),
		ProductNo:     r.st.Product.ProductNo,
		PartnerID:     r.st.Product.PartnerID,
		BillingID:     r.st.Billing.ContactID,
		PONumber:      po,
		ServiceList: []partnerclient.OrderLine{{
			ServiceType:  partnerclient.ServiceTypePlan,
			ServiceID:    plan.PlanID,
			Quantity:     r.req.Quantity,
			PurchaseType: partnerclient.PurchaseTypePurchase,
			BillingModel: partnerclient.BillingModelRecurring,
			BillingCycle: partnerclient.BillingCycleAnnually,
			MultiCycle:   years,
		}},
	}
	for _, sv := range plan.Services {
		body.ServiceList = append(body.ServiceList, partnerclient.OrderLine{
			ServiceType:      partnerclient.ServiceTypeService,
			ServiceID:        sv.ServiceID,
			ConnectionPlanID: plan.PlanID,
			Quantity:         sv.Quantity,
			PurchaseType:     partnerclient.PurchaseTypePurchase,
			BillingModel:     partnerclient.BillingModelRecurring,
			BillingCycle:     partnerclient.BillingCycleAnnually,
			MultiCycle:       years,
		})
	}
	return &OrderIntent{PONumber: po, Body: body}
}

// parallel runs f(0..n-1) concurrently and waits; the last runs in the calling goroutine. A
// panic in another goroutine is raised again in the caller's once all have ended, where the
// caller's recovery sees it, instead of bringing the process down.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	panics := make([]any, n)
	for i := 0; i < n-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			f(i)
		}()
	}
	if n > 0 {
		func() {
			defer wg.Wait() // even when f panics here: no goroutine outlives the round
			f(n - 1)
		}()
	}
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}
