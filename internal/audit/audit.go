// Package audit compares the partner's orders with fulfil's idempotency records, to find money
// spent without a delivered purchase (orphan), purchases bought more than once (duplicate) and
// completed purchases whose order the partner does not show (missing).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/workflow"
)

// Kind is a kind of finding.
type Kind string

// Kinds of findings.
const (
	// Orphan is an order carrying a poNumber fulfil generated or recorded whose key has no
	// completed saga holding that order: money spent, nothing delivered.
	Orphan Kind = "orphan"
	// Duplicate is two or more orders for one key (or one fulfil poNumber).
	Duplicate Kind = "duplicate"
	// Missing is a completed saga whose order the partner's order list does not show.
	Missing Kind = "missing"
	// Incomplete means the order list could not be read to its end within the page bound:
	// missing orders cannot be told, and orphans or duplicates may be unseen.
	Incomplete Kind = "incomplete"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{Orphan, Duplicate, Missing, Incomplete}

// KindNames returns Kinds as strings.
func KindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}

// Partner is what the audit reads from the Partner Portal; *partnerclient.Client implements it.
type Partner interface {
	ListOrders(ctx context.Context, p partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error)
	OrderDetails(ctx context.Context, idOrNo string) (partnerclient.OrderDetails, error)
}

// Options bound an audit.
type Options struct {
	// Since is the start of the window: orders created before it are not reported as orphans
	// or duplicates, and sagas that sent their order before it are not reported as missing.
	Since time.Time
	// Now is the audit's time (default time.Now()).
	Now time.Time
	// PageSize is the order-list page size (default 100).
	PageSize int
	// MaxPages bounds the pages read (default 200). The list's order is not relied on: it is
	// read to its end, or to this bound, which makes the audit incomplete.
	MaxPages int
	// InFlight is how recently a running saga must have written its record to count as in
	// flight: its order may not be recorded yet (default 15 minutes).
	InFlight time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 200
	}
	if o.InFlight <= 0 {
		o.InFlight = 15 * time.Minute
	}
	return o
}

// Order is a partner order as the audit saw it.
type Order struct {
	OrderNo    string    `json:"orderNo"`
	ID         string    `json:"id,omitempty"`
	PONumber   string    `json:"poNumber,omitempty"`
	Status     string    `json:"status,omitempty"`
	ProductNo  string    `json:"productNo,omitempty"`
	CreateTime time.Time `json:"createTime,omitzero"`
}

// Finding is one discrepancy.
type Finding struct {
	Kind Kind `json:"kind"`
	// Key is the idempotency key the orders belong to, when known.
	Key      string `json:"key,omitempty"`
	PONumber string `json:"poNumber,omitempty"`
	// Orders are the partner's orders concerned (none for missing).
	Orders []Order `json:"orders,omitempty"`
	// SagaStatus is the key's record status (completed, failed, running), or "none".
	SagaStatus string `json:"sagaStatus,omitempty"`
	// SagaOrderNo is the order the key's saga recorded, if any.
	SagaOrderNo string `json:"sagaOrderNo,omitempty"`
	Detail      string `json:"detail"`
}

// Report is an audit's result.
type Report struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Complete bool      `json:"complete"`
	Pages    int       `json:"pages"`
	// Orders is the number of orders read; InWindow of them were created since Since.
	Orders   int `json:"orders"`
	InWindow int `json:"ordersInWindow"`
	// Details counts Get Order Details calls (for orders listed without a poNumber).
	Details int `json:"detailsCalls"`
	// Sagas is the number of idempotency records compared.
	Sagas    int       `json:"sagas"`
	Findings []Finding `json:"findings"`
}

// Counts returns the findings per kind (every kind present, 0 included).
func (r Report) Counts() map[string]int {
	c := make(map[string]int, len(Kinds))
	for _, k := range Kinds {
		c[string(k)] = 0
	}
	for _, f := range r.Findings {
		c[string(f.Kind)]++
	}
	return c
}

// generatedPO matches workflow.DefaultPONumber.
var generatedPO = regexp.MustCompile(`^FUL-[0-9A-F]{24}$`)

// saga is what the audit needs of one record.
type saga struct {
	rec     idempotency.Record
	po      string
	orderNo string    // the order its state holds
	sentAt  time.Time // first send of its order
	reason  string    // failure reason, for failed records
}

func decodeSaga(rec idempotency.Record) (saga, error) {
	s := saga{rec: rec}
	st, err := workflow.DecodeState(rec.State)
	if err != nil {
		return s, fmt.Errorf("audit: checkpoint of %q: %w", rec.Key, err)
	}
	if in := st.Order.Intent; in != nil {
		s.po, s.sentAt = in.PONumber, in.FirstSentAt
	}
	if res := st.Order.Result; res != nil {
		s.orderNo = res.OrderNo
	}
	if s.po == "" {
		var req struct {
			PONumber string `json:"poNumber"`
		}
		_ = json.Unmarshal(rec.Request, &req)
		s.po = req.PONumber
	}
	if s.po == "" {
		s.po = workflow.DefaultPONumber(rec.Key)
	}
	if rec.Status == idempotency.StatusFailed {
		var f messages.Failed
		if json.Unmarshal(rec.Outcome, &f) == nil {
			s.reason = string(f.Reason)
		}
	}
	return s, nil
}

// Run audits the partner's orders against recs (idempotency.Store.List).
func Run(ctx context.Context, p Partner, recs []idempotency.Record, opt Options) (Report, error) {
	opt = opt.withDefaults()
	rep := Report{Since: opt.Since.UTC(), Until: opt.Now.UTC(), Sagas: len(recs), Findings: []Finding{}}

	sagas := make([]saga, 0, len(recs))
	byOrderNo := map[string]int{}
	byPO := map[string][]int{}
	for _, rec := range recs {
		s, err := decodeSaga(rec)
		if err != nil {
			return rep, err
		}
		i := len(sagas)
		sagas = append(sagas, s)
		if s.orderNo != "" {
			byOrderNo[s.orderNo] = i
		}
		byPO[s.po] = append(byPO[s.po], i)
	}

	orders, complete, pages, err := listAll(ctx, p, opt)
	rep.Pages, rep.Complete, rep.Orders = pages, complete, len(orders)
	if err != nil {
		return rep, err
	}
	seen := make(map[string]bool, len(orders))
	for i := range orders {
		o := &orders[i]
		seen[o.OrderNo] = true
		if !inWindow(o.CreateTime, opt.Since) {
			continue
		}
		rep.InWindow++
		if o.PONumber == "" && (o.OrderNo != "" || o.ID != "") {
			// The list may lack poNumber: the order's details have it.
			ref := o.OrderNo
			if ref == "" {
				ref = o.ID
			}
			d, err := p.OrderDetails(ctx, ref)
			rep.Details++
			if err != nil {
				return rep, fmt.Errorf("audit: details of order %s: %w", ref, err)
			}
			o.PONumber = d.Order.PONumber
			if o.CreateTime.IsZero() {
				o.CreateTime = d.Order.CreateTime.Time()
			}
		}
	}

	// Group the orders by the key they belong to.
	type group struct {
		saga     int // -1: no record
		po       string
		orders   []Order
		inWindow bool
	}
	groups := map[string]*group{}
	var groupOrder []string
	for _, o := range orders {
		id, si := "", -1
		if i, ok := byOrderNo[o.OrderNo]; ok && o.OrderNo != "" {
			id, si = "key:"+sagas[i].rec.Key, i
		} else if o.PONumber == "" {
			continue
		} else if idx := byPO[o.PONumber]; len(idx) == 1 {
			id, si = "key:"+sagas[idx[0]].rec.Key, idx[0]
		} else if len(idx) > 1 || generatedPO.MatchString(o.PONumber) {
			id = "po:" + o.PONumber
		} else {
			continue // not an order of fulfil's
		}
		g := groups[id]
		if g == nil {
			g = &group{saga: si, po: o.PONumber}
			groups[id] = g
			groupOrder = append(groupOrder, id)
		}
		g.orders = append(g.orders, o)
		g.inWindow = g.inWindow || inWindow(o.CreateTime, opt.Since)
	}

	for _, id := range groupOrder {
		g := groups[id]
		if !g.inWindow {
			continue
		}
		f := Finding{PONumber: g.po, Orders: g.orders, SagaStatus: "none"}
		var s *saga
		if g.saga >= 0 {
			s = &sagas[g.saga]
			f.Key, f.SagaStatus, f.SagaOrderNo, f.PONumber = s.rec.Key, string(s.rec.Status), s.orderNo, s.po
		}
		if len(g.orders) > 1 {
			f.Kind = Duplicate
			f.Detail = fmt.Sprintf("%d orders for one purchase (%s)", len(g.orders), orderNos(g.orders))
			if s != nil && s.orderNo != "" {
				f.Detail += "; the saga holds " + s.orderNo + ": the others were bought for nothing"
			}
			rep.Findings = append(rep.Findings, f)
			continue
		}
		o := g.orders[0]
		switch {
		case s == nil:
			f.Detail = "the poNumber is fulfil's, but no saga record has it (never submitted here, or older than the key retention)"
		case s.orderNo == o.OrderNo && (s.rec.Status == idempotency.StatusCompleted || s.rec.Status == idempotency.StatusRunning):
			continue // delivered, or being delivered
		case s.rec.Status == idempotency.StatusRunning && opt.Now.Sub(s.rec.UpdatedAt) < opt.InFlight:
			continue // in flight: the saga may not have recorded its order yet
		case s.rec.Status == idempotency.StatusRunning:
			f.Detail = fmt.Sprintf("the saga has not finished and has not written since %s", s.rec.UpdatedAt.UTC().Format(time.RFC3339))
		case s.rec.Status == idempotency.StatusFailed:
			f.Detail = "the purchase failed"
			if s.reason != "" {
				f.Detail += " (" + s.reason + ")"
			}
			f.Detail += " but the order exists"
		default:
			f.Detail = "the saga completed with another order (" + s.orderNo + ")"
		}
		f.Kind = Orphan
		rep.Findings = append(rep.Findings, f)
	}

	if !complete {
		rep.Findings = append(rep.Findings, Finding{Kind: Incomplete,
			Detail: fmt.Sprintf("the order list did not end within %d pages of %d; missing orders were not checked", opt.MaxPages, opt.PageSize)})
	} else {
		for _, s := range sagas {
			if s.rec.Status != idempotency.StatusCompleted || s.orderNo == "" || seen[s.orderNo] {
				continue
			}
			at := s.sentAt
			if at.IsZero() {
				at = s.rec.UpdatedAt
			}
			if at.Before(opt.Since) {
				continue
			}
			rep.Findings = append(rep.Findings, Finding{Kind: Missing, Key: s.rec.Key, PONumber: s.po,
				SagaStatus: string(s.rec.Status), SagaOrderNo: s.orderNo,
				Detail: "the saga completed with order " + s.orderNo + ", which the partner's order list does not show"})
		}
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		if c := slices.Index(Kinds, a.Kind) - slices.Index(Kinds, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Key+a.PONumber, b.Key+b.PONumber)
	})
	return rep, nil
}

// inWindow reports whether an order created at t falls in the window; an unknown time does.
func inWindow(t, since time.Time) bool { return t.IsZero() || !t.Before(since) }

// listAll reads the order list page by page to its end (or MaxPages), without relying on its
// order; an order seen twice (the list shifting while it is read) counts once.
func listAll(ctx context.Context, p Partner, opt Options) (orders []Order, complete bool, pages int, err error) {
	seen := map[string]bool{}
	for page := 1; page <= opt.MaxPages; page++ {
		res, err := p.ListOrders(ctx, partnerclient.ListOrdersParams{PageNo: page, PageSize: opt.PageSize})
		if err != nil {
			return orders, false, pages, fmt.Errorf("audit: order list page %d: %w", page, err)
		}
		pages++
		for _, o := range res.Results {
			id := o.OrderNo
			if id == "" {
				id = "id:" + o.ID.String()
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			orders = append(orders, Order{OrderNo: o.OrderNo, ID: o.ID.String(), PONumber: o.PONumber,
				Status: o.OrderStatus, ProductNo: o.ProductNo, CreateTime: o.CreateTime.Time().UTC()})
		}
		if len(res.Results) == 0 || page >= res.TotalPage {
			return orders, true, pages, nil
		}
	}
	return orders, false, pages, nil
}

func orderNos(os []Order) string {
	nos := make([]string, len(os))
	for i, o := range os {
		nos[i] = o.OrderNo
	}
	return strings.Join(nos, ", ")
}
