package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// errUnknownOutcome marks a send whose answer was lost: the next attempt must reconcile first.
var errUnknownOutcome = errors.New("create order: unknown outcome")

// errOrderNotYet means the order has not succeeded yet: its status is polled again.
var errOrderNotYet = errors.New("order not succeeded yet")

// order places the order unless an earlier run did, then makes sure it succeeded: the
// create_order step, in one span.
func (r *run) order(ctx context.Context) error {
	if res := r.st.Order.Result; res != nil && orderSettled(res.OrderStatus) {
		return nil
	}
	ctx, span := r.startSpan(ctx, messages.StepCreateOrder)
	var err error
	if r.st.Order.Result == nil {
		err = r.createOrder(ctx)
	}
	if err == nil {
		err = r.checkOrderStatus(ctx)
	}
	r.endOrderStep(span, err)
	return err
}

// createOrder places the order exactly once: intent before every send, reconcile before every
// re-send.
func (r *run) createOrder(ctx context.Context) error {
	step := messages.StepCreateOrder
	start := r.saga.now()
	var placed *OrderResult
	// Transient and unknown outcomes are retried (see stepErrors): the next attempt reconciles
	// before sending again.
	n, err := r.do(ctx, kindSend, step, func(ctx context.Context) error {
		res, err := r.sendOnce(ctx)
		if err != nil {
			return err
		}
		placed = res
		return nil
	})
	if err != nil {
		if a := decide(kindSend, err); !a.retry && a.then != keep {
			// A definite answer to the send itself (a refusal, or the account's credentials
			// or access): nothing was placed.
			r.st.Order.Intent.Unknown = false
		}
		return r.stepError(kindSend, step, err)
	}
	return r.finish(ctx, step, messages.StatusDone, n, start, func(st *State) {
		st.Order.Intent.Unknown = false
		st.Order.Result = placed
	})
}

// sendOnce is one attempt: settle an earlier send that may have reached the partner (find its
// order, or prove it absent), then let the Guard decide, checkpoint the intent and send. The
// first send of a run that has just stored its intent (together with the lookups) skips the
// settling and the checkpoint.
func (r *run) sendOnce(ctx context.Context) (*OrderResult, error) {
	in := r.st.Order.Intent
	fresh := r.freshIntent
	r.freshIntent = false
	if !fresh && in.Sends > 0 {
		found, err := r.settle(ctx)
		if err != nil || found != nil {
			return found, err
		}
	}
	if err := r.guard(ctx); err != nil {
		return nil, err
	}
	if !fresh {
		markSend(in, r.saga.now())
		if err := r.checkpoint(ctx); err != nil {
			return nil, err
		}
	}
	sendCtx := ctx
	if f, ok := r.cp.(Fenced); ok {
		// The lease was just extended by the checkpoint above; never let this send start, or
		// stay in flight, once it may have run out.
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithDeadline(ctx, f.SendDeadline())
		defer cancel()
	}
	res, err := r.saga.Partner.CreateOrder(sendCtx, in.Body)
	if err != nil {
		if o, _ := partnerclient.Classify(err); o == partnerclient.OutcomeUnknown {
			// Keep an undocumented answer: if the order list proves there is no order, it is the
			// partner's refusal, to be reported rather than sent again.
			in.Answer = undocumentedAnswer(err)
			if in.Answer != nil {
				if cerr := r.checkpoint(ctx); cerr != nil {
					return nil, cerr
				}
			}
			return nil, fmt.Errorf("%w: %w", errUnknownOutcome, err)
		}
		// Refused before processing (429, transport error before the body was written) or a
		// documented refusal: nothing was placed.
		in.Unknown = false
		return nil, err
	}
	if strings.TrimSpace(res.OrderNo) == "" {
		// The partner says it placed the order but does not say which: find it, never re-send.
		in.Placed = true
		if err := r.checkpoint(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: create order answered success without an order number", errUnknownOutcome)
	}
	in.Unknown = false
	return &OrderResult{
		OrderNo:       res.OrderNo,
		OrderStatus:   res.OrderStatus,
		ProductNo:     res.ProductNo,
		TransactionNo: res.TransactionNo,
		InstanceID:    string(res.InstanceID),
	}, nil
}

// settle decides what an earlier send, which may have reached the partner, left behind. It
// returns the order it placed (adopted from the order list); nil and no error when a new send may
// go out; a *Failure when a human must decide or the partner's answer stands as a refusal; or a
// retryable error (another look at the order list later, or a partner error).
func (r *run) settle(ctx context.Context) (*OrderResult, error) {
	in := r.st.Order.Intent
	found, err := r.reconcile(ctx)
	if err != nil {
		return nil, r.stepError(kindReconcile, messages.StepCreateOrder, err)
	}
	if found != nil {
		return found, nil
	}
	if !in.Outstanding() {
		// The last send had a definite answer that placed nothing (e.g. 429): send again.
		return nil, nil
	}
	// The order list does not show the order. Lists can lag: believe it only when a second look,
	// some time later, misses it too.
	now := r.saga.now()
	if in.AbsentSince.IsZero() {
		in.AbsentSince = now
		if err := r.checkpoint(ctx); err != nil {
			return nil, err
		}
	}
	wait := r.saga.absentGap()
	if in.Placed {
		wait = r.saga.placedWait()
	}
	if since := now.Sub(in.AbsentSince); since < wait {
		return nil, &notListed{wait: min(wait-since, r.saga.absentGap())}
	}
	step := messages.StepCreateOrder
	switch {
	case in.Placed:
		return nil, failure(step, messages.ReasonNeedsReconciliation, "", nil,
			"create order (poNumber %s) answered success without an order number, and the order list has not shown the order for %s; find it in the Partner Portal before buying again",
			in.PONumber, now.Sub(in.AbsentSince).Round(time.Second))
	case in.Answer != nil:
		a := in.Answer
		return nil, &Failure{Step: step, Reason: messages.ReasonRejected, PartnerCode: a.Code, PartnerRequestID: a.RequestID,
			Message: fmt.Sprintf("the partner answered %s (HTTP %d, code %s) and its order list shows no order with poNumber %s: the order was not placed",
				orDash(a.Message), a.Status, a.Code, in.PONumber)}
	case r.saga.Resend == ResendNever:
		return nil, failure(step, messages.ReasonNeedsReconciliation, "", nil,
			"create order (poNumber %s) had an unknown outcome and the order list does not show the order; the resend policy is never, so a human decides: check the Partner Portal orders for this poNumber before buying again",
			in.PONumber)
	}
	in.Absent++
	in.Unknown = false
	in.AbsentSince = time.Time{}
	if in.Absent >= r.saga.maxSends() {
		// Either the partner keeps losing answers, or its order list does not show what was
		// ordered; sending again could buy twice. A human must look.
		return nil, failure(step, messages.ReasonNeedsReconciliation, "", nil,
			"create order (poNumber %s) ended %d times without an answer and the order list never showed it; check the Partner Portal orders for this poNumber before buying again",
			in.PONumber, in.Absent)
	}
	return nil, nil
}

// notListed asks for another look at the order list after wait.
type notListed struct{ wait time.Duration }

func (e *notListed) Error() string {
	return "the order list does not show the order yet; looking again in " + e.wait.String()
}

// Is makes a notListed an unknown outcome for the retry rules.
func (e *notListed) Is(target error) bool { return target == errUnknownOutcome }

// retryAfter is the least wait before the next attempt.
func (e *notListed) retryAfter() time.Duration { return e.wait }

// undocumentedAnswer returns the partner's answer when err is an answer with an envelope code
// that is neither success nor a server error: a refusal in words fulfil does not know.
func undocumentedAnswer(err error) *PartnerAnswer {
	var pe *partnerclient.Error
	if !errors.As(err, &pe) || pe.Code == "" || pe.Code == partnerclient.CodeSuccess || pe.Err != nil {
		return nil
	}
	if pe.StatusCode >= 500 || pe.StatusCode < 200 || pe.EnvelopeStatus >= 500 {
		return nil
	}
	return &PartnerAnswer{Status: pe.StatusCode, Code: pe.Code, Message: pe.Message, RequestID: pe.RequestID}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// guard waits until Saga.Guard lets create order spend; its error retries the purchase later.
func (r *run) guard(ctx context.Context) error {
	if r.saga.Guard == nil {
		return nil
	}
	step := messages.StepCreateOrder
	waiting := func(reason string) {
		guardEvent(ctx, reason)
		r.obs.StepProgress(step, messages.StatusRetrying, r.st.Order.Intent.Sends, "waiting before create order: "+reason)
	}
	if err := r.saga.Guard(ctx, r.req.IdempotencyKey, waiting); err != nil {
		return &RetryError{Step: step, Err: err}
	}
	return nil
}

// markSend records that the intent is about to be sent; its outcome is unknown until answered.
func markSend(in *OrderIntent, now time.Time) {
	in.Sends++
	if in.FirstSentAt.IsZero() {
		in.FirstSentAt = now
	}
	in.LastSentAt = now
	in.Unknown = true
	in.Answer = nil
	in.AbsentSince = time.Time{}
}

// reconcile searches the order list for the order an earlier send may have placed. It returns
// the single matching order, nil when the list proves there is none, a *Failure when the search
// is ambiguous or cannot reach back to the first send, or a partner error to retry.
//
// It assumes nothing it does not check: an order seen twice (the list shifts while it is paged
// as new orders arrive) counts once, by its ID or number; the search stops at the first order
// older than the window only while the list has been seen newest first, and otherwise scans the
// whole list (up to ReconcileMaxPages).
func (r *run) reconcile(ctx context.Context) (*OrderResult, error) {
	ctx, span := r.startSpan(ctx, SpanReconcile)
	found, err := r.searchOrders(ctx)
	if span != nil {
		endReconcile(span, found, err)
	}
	return found, err
}

// searchOrders is reconcile's search, in its span.
func (r *run) searchOrders(ctx context.Context) (*OrderResult, error) {
	in := r.st.Order.Intent
	r.st.Order.Reconciliations++
	from := partnerclient.FromTime(in.FirstSentAt.Add(-r.saga.margin()))
	var matches []OrderResult
	seen := make(map[string]bool)
	var sc sortCheck
	complete := false
	for page := 1; page <= r.saga.maxPages() && !complete; page++ {
		p, err := r.saga.Partner.ListOrders(ctx, partnerclient.ListOrdersParams{PageNo: page, PageSize: r.saga.pageSize()})
		if err != nil {
			return nil, err
		}
		for _, o := range p.Results {
			if id := orderIdentity(o.ID, o.OrderNo); id != "" {
				if seen[id] {
					continue
				}
				seen[id] = true
			}
			sc.see(o.CreateTime)
			if o.CreateTime != 0 && o.CreateTime < from {
				if sc.newestFirst() {
					complete = true // everything further is older still
					break
				}
				continue
			}
			if o.PONumber != "" && o.PONumber != in.PONumber {
				continue
			}
			if o.ProductNo != "" && in.Body.ProductNo != "" && !strings.EqualFold(o.ProductNo, in.Body.ProductNo) {
				continue
			}
			ref := o.OrderNo
			if ref == "" {
				ref = o.ID.String()
			}
			d, err := r.saga.Partner.OrderDetails(ctx, ref)
			if err != nil {
				return nil, err
			}
			if !detailsMatch(in, d) {
				continue
			}
			if id := orderIdentity(d.Order.ID, d.Order.OrderNo); id != "" && id != orderIdentity(o.ID, o.OrderNo) {
				if seen[id] {
					continue
				}
				seen[id] = true
			}
			matches = append(matches, OrderResult{
				OrderNo:       firstOf(d.Order.OrderNo, o.OrderNo),
				OrderStatus:   firstOf(d.Order.OrderStatus, o.OrderStatus),
				ProductNo:     firstOf(d.Basic.ProductNo, o.ProductNo),
				TransactionNo: d.Order.TransactionNo, InstanceID: string(d.Order.InstanceID), Adopted: true,
			})
		}
		if len(p.Results) == 0 || page >= p.TotalPage {
			complete = true
		}
	}
	r.obs.StepProgress(messages.StepCreateOrder, messages.StatusRetrying, in.Sends,
		fmt.Sprintf("reconciled after an unknown outcome: %d matching order(s)", len(matches)))
	switch {
	case len(matches) > 1:
		r.saga.Hooks.reconciled("ambiguous")
		nos := make([]string, len(matches))
		for i, m := range matches {
			nos[i] = m.OrderNo
		}
		return nil, failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", nil,
			"%d orders match poNumber %s (%s); a human must decide which belongs to this purchase", len(matches), in.PONumber, strings.Join(nos, ", "))
	case len(matches) == 1 && matches[0].OrderNo == "":
		r.saga.Hooks.reconciled("ambiguous")
		return nil, failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", nil,
			"an order matches poNumber %s, but the partner shows no order number for it; find it in the Partner Portal", in.PONumber)
	case len(matches) == 1:
		r.saga.Hooks.reconciled("adopted")
		return &matches[0], nil
	case !complete:
		r.saga.Hooks.reconciled("incomplete")
		return nil, failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", nil,
			"create order (poNumber %s) had an unknown outcome and the order list could not be searched back to the first send within %d pages",
			in.PONumber, r.saga.maxPages())
	default:
		r.saga.Hooks.reconciled("absent")
		return nil, nil
	}
}

// sortCheck follows the creation times of an order list as it is read, to tell whether it is
// newest first as assumed: only then may a search stop at the first order older than its window.
type sortCheck struct {
	last       partnerclient.Millis
	descended  bool // two orders seen with strictly falling creation times
	unreliable bool // an order without a creation time, or one newer than the order before it
}

func (c *sortCheck) see(t partnerclient.Millis) {
	switch {
	case t == 0:
		c.unreliable = true
		return
	case c.last != 0 && t > c.last:
		c.unreliable = true
	case c.last != 0 && t < c.last:
		c.descended = true
	}
	c.last = t
}

// newestFirst reports whether the orders seen so far prove a newest-first list.
func (c *sortCheck) newestFirst() bool { return c.descended && !c.unreliable }

// orderIdentity names an order by its ID, else its number; "" when it has neither.
func orderIdentity(id partnerclient.ID, orderNo string) string {
	if id != 0 {
		return "id:" + id.String()
	}
	if orderNo = strings.TrimSpace(orderNo); orderNo != "" {
		return "no:" + orderNo
	}
	return ""
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// detailsMatch reports whether an order's details are the order the intent describes.
func detailsMatch(in *OrderIntent, d partnerclient.OrderDetails) bool {
	if d.Order.PONumber != "" && d.Order.PONumber != in.PONumber {
		return false
	}
	if d.Basic.ProductID != 0 && int64(d.Basic.ProductID) != in.Body.ProductID {
		return false
	}
	if in.Body.ProductNo != "" && d.Basic.ProductNo != "" && !strings.EqualFold(d.Basic.ProductNo, in.Body.ProductNo) {
		return false
	}
	if d.Billing.BillingContactID != 0 && d.Billing.BillingContactID != in.Body.BillingID {
		return false
	}
	if len(d.Summary.ServiceList) == 0 {
		// Without lines, only the poNumber can identify the order.
		return d.Order.PONumber != ""
	}
	want := in.Body.ServiceList[0]
	for _, l := range d.Summary.ServiceList {
		if l.ServiceType == partnerclient.ServiceTypePlan && l.ServiceID == want.ServiceID &&
			(l.Quantity == 0 || l.Quantity == want.Quantity) && (l.MultiCycle == 0 || l.MultiCycle == want.MultiCycle) {
			return true
		}
	}
	return false
}

// partnerMessage is the partner's own description of an error.
func partnerMessage(err error) string {
	var pe *partnerclient.Error
	if errors.As(err, &pe) {
		msg := pe.Message
		if msg == "" {
			msg = pe.Code
		}
		return fmt.Sprintf("%s (HTTP %d, code %s)", msg, pe.StatusCode, pe.Code)
	}
	return err.Error()
}

// checkOrderStatus makes sure the order succeeded. A failed, invalid, cancelled or refunded
// order fails the purchase as rejected. Any other status (pending or confirming, which wait for
// payment, or one the documentation does not list) means "not yet succeeded": it is polled within
// the retry budget. Pending and confirming orders are then left to a later delivery; an
// undocumented status ends in post_order_failed with the order number: the order exists, so the
// purchase is never reported as refused.
func (r *run) checkOrderStatus(ctx context.Context) error {
	res := r.st.Order.Result
	if orderSettled(res.OrderStatus) {
		return nil
	}
	if orderRefused(res.OrderStatus) {
		return failure(messages.StepCreateOrder, messages.ReasonRejected, res.OrderNo, nil,
			"order %s ended with status %s", res.OrderNo, res.OrderStatus)
	}
	step := messages.StepCreateOrder
	status := res.OrderStatus
	_, err := r.do(ctx, kindPostOrder, step,
		func(ctx context.Context) error {
			d, err := r.saga.Partner.OrderDetails(ctx, res.OrderNo)
			if err != nil {
				return err
			}
			status = strings.TrimSpace(d.Order.OrderStatus)
			switch {
			case status == partnerclient.OrderSucceed || orderRefused(status):
				return nil
			case status == partnerclient.OrderPending || status == partnerclient.OrderConfirming:
				return fmt.Errorf("%w: order %s is %s (a pending order must be paid in the Partner Portal)", errOrderNotYet, res.OrderNo, status)
			default:
				return fmt.Errorf("%w: order %s has status %q, which is not a documented order status", errOrderNotYet, res.OrderNo, status)
			}
		})
	if err != nil {
		var re *RetryError
		pending := status == partnerclient.OrderPending || status == partnerclient.OrderConfirming
		if errors.As(err, &re) && !pending && errors.Is(err, errOrderNotYet) {
			// The retry budget ran out on a status the documentation does not list: the order
			// exists, so a human looks at it rather than the purchase waiting forever.
			return failure(step, messages.ReasonPostOrderFailed, res.OrderNo, nil,
				"order %s was placed, but its status is still %q, which is not a documented order status; check the order in the Partner Portal",
				res.OrderNo, status)
		}
		return r.stepErrorf(kindPostOrder, step, err, "checking order %[1]s: %[2]s")
	}
	if status != partnerclient.OrderSucceed {
		return failure(step, messages.ReasonRejected, res.OrderNo, nil, "order %s ended with status %s", res.OrderNo, status)
	}
	r.mu.Lock()
	res.OrderStatus = status
	err = r.checkpoint(ctx)
	r.mu.Unlock()
	return err
}

// orderSettled reports whether an order with status needs no further look: it succeeded, or
// the partner gave no status (taken as success).
func orderSettled(status string) bool {
	return status == partnerclient.OrderSucceed || status == ""
}

// orderRefused reports whether status is a documented end of an order that did not succeed.
func orderRefused(status string) bool {
	switch status {
	case partnerclient.OrderFailed, partnerclient.OrderInvalid, partnerclient.OrderCancelled, partnerclient.OrderRefunded:
		return true
	}
	return false
}
