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

// createOrder places the order exactly once: intent before every send, reconcile before every
// re-send.
func (r *run) createOrder(ctx context.Context) error {
	step := messages.StepCreateOrder
	start := r.saga.now()
	var placed *OrderResult
	// Retry on transient and unknown outcomes: the next attempt reconciles before sending again.
	canRetry := func(err error) bool {
		var f *Failure
		var re *RetryError
		if errors.As(err, &f) || errors.As(err, &re) {
			return false
		}
		if errors.Is(err, errUnknownOutcome) {
			return true
		}
		o, _ := partnerclient.Classify(err)
		return o != partnerclient.OutcomePermanent
	}
	n, err := r.saga.do(ctx, step, r.obs, canRetry, func(ctx context.Context) error {
		res, err := r.sendOnce(ctx)
		if err != nil {
			return err
		}
		placed = res
		return nil
	})
	if err != nil {
		var f *Failure
		var re *RetryError
		var se stopError
		switch {
		case errors.As(err, &se), errors.As(err, &f), errors.As(err, &re),
			errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return err
		}
		r.st.Order.Intent.Unknown = false
		if accountProblem(err) {
			// Credentials or access, not this order: retry later, do not fail the purchase.
			return &RetryError{Step: step, Err: err}
		}
		// A permanent partner answer to the order itself: the partner refused it.
		return failure(step, messages.ReasonRejected, "", err, "the partner refused the order: %v", partnerMessage(err))
	}
	return r.finish(ctx, step, messages.StatusDone, n, start, func(st *State) {
		st.Order.Intent.Unknown = false
		st.Order.Result = placed
	})
}

// sendOnce is one attempt: reconcile if an earlier send may have reached the partner, else (or
// when the partner proves there is no order) checkpoint the intent and send. The first send of a
// run that has just stored its intent (together with the lookups) skips both.
func (r *run) sendOnce(ctx context.Context) (*OrderResult, error) {
	in := r.st.Order.Intent
	if err := r.guard(ctx); err != nil {
		return nil, err
	}
	if r.freshIntent {
		r.freshIntent = false
	} else {
		if in.Sends > 0 {
			found, err := r.reconcile(ctx)
			if err != nil {
				var f *Failure
				if o, _ := partnerclient.Classify(err); o == partnerclient.OutcomePermanent && !errors.As(err, &f) {
					return nil, failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", err,
						"searching the order list after an unknown outcome failed: %v", partnerMessage(err))
				}
				return nil, err
			}
			if found != nil {
				return found, nil
			}
			if in.Unknown {
				in.Absent++
				in.Unknown = false
			}
			if in.Absent >= r.saga.maxSends() {
				// Either the partner keeps losing answers, or its order list does not show
				// what was ordered; sending again could buy twice. A human must look.
				return nil, failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", nil,
					"create order (poNumber %s) ended %d times without an answer and the order list never showed it; check the Partner Portal orders for this poNumber before buying again",
					in.PONumber, in.Absent)
			}
		}
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
			return nil, fmt.Errorf("%w: %w", errUnknownOutcome, err)
		}
		// Refused before processing (429, transport error before the body was written) or a
		// permanent answer: nothing was placed.
		in.Unknown = false
		return nil, err
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

// guard waits until Saga.Guard lets create order spend; its error retries the purchase later.
func (r *run) guard(ctx context.Context) error {
	if r.saga.Guard == nil {
		return nil
	}
	step := messages.StepCreateOrder
	waiting := func(reason string) {
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
}

// reconcile searches the order list for the order an earlier send may have placed. It returns
// the single matching order, nil when the list proves there is none, a *Failure when the search
// is ambiguous or cannot reach back to the first send, or a partner error to retry.
func (r *run) reconcile(ctx context.Context) (*OrderResult, error) {
	in := r.st.Order.Intent
	r.st.Order.Reconciliations++
	from := in.FirstSentAt.Add(-r.saga.margin())
	var matches []OrderResult
	complete := false
	for page := 1; page <= r.saga.maxPages() && !complete; page++ {
		p, err := r.saga.Partner.ListOrders(ctx, partnerclient.ListOrdersParams{PageNo: page, PageSize: r.saga.pageSize()})
		if err != nil {
			return nil, err
		}
		for _, o := range p.Results {
			if o.CreateTime != 0 && o.CreateTime.Time().Before(from) {
				complete = true // newest first: everything further is older still
				break
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
			if detailsMatch(in, d) {
				status := d.Order.OrderStatus
				if status == "" {
					status = o.OrderStatus
				}
				orderNo := d.Order.OrderNo
				if orderNo == "" {
					orderNo = o.OrderNo
				}
				productNo := d.Basic.ProductNo
				if productNo == "" {
					productNo = o.ProductNo
				}
				matches = append(matches, OrderResult{
					OrderNo: orderNo, OrderStatus: status, ProductNo: productNo,
					TransactionNo: d.Order.TransactionNo, InstanceID: string(d.Order.InstanceID), Adopted: true,
				})
			}
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

// checkOrderStatus makes sure the order succeeded: pending or confirming orders are polled
// within the retry budget; a failed, invalid, cancelled or refunded order fails the purchase.
func (r *run) checkOrderStatus(ctx context.Context) error {
	res := r.st.Order.Result
	switch res.OrderStatus {
	case partnerclient.OrderSucceed, "":
		return nil
	case partnerclient.OrderFailed, partnerclient.OrderInvalid, partnerclient.OrderCancelled, partnerclient.OrderRefunded:
		return failure(messages.StepCreateOrder, messages.ReasonRejected, res.OrderNo, nil,
			"order %s ended with status %s", res.OrderNo, res.OrderStatus)
	}
	step := messages.StepCreateOrder
	status := res.OrderStatus
	errPending := errors.New("order not succeeded yet")
	_, err := r.saga.do(ctx, step, r.obs, func(err error) bool { return errors.Is(err, errPending) || retryable(err) },
		func(ctx context.Context) error {
			d, err := r.saga.Partner.OrderDetails(ctx, res.OrderNo)
			if err != nil {
				return err
			}
			status = d.Order.OrderStatus
			if status == partnerclient.OrderPending || status == partnerclient.OrderConfirming {
				return fmt.Errorf("%w: order %s is %s (a pending order must be paid in the Partner Portal)", errPending, res.OrderNo, status)
			}
			return nil
		})
	if err != nil {
		var se stopError
		var re *RetryError
		if errors.As(err, &se) || errors.As(err, &re) {
			return err
		}
		return failure(step, messages.ReasonPostOrderFailed, res.OrderNo, err, "checking order %s: %v", res.OrderNo, partnerMessage(err))
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
