package workflow

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// errNoCodeYet means the activation code is not generated yet.
var errNoCodeYet = errors.New("activation code not generated yet")

// postOrder enables auto-renewal and fetches the activation code, concurrently: one partner
// round. Both are retried to completion within the budget: the order cannot be undone, so the
// saga recovers forward.
func (r *run) postOrder(ctx context.Context) error {
	var steps []func(context.Context) error
	if r.st.Renewal == nil {
		steps = append(steps, r.enableRenewal)
	}
	if r.st.Activation == nil {
		steps = append(steps, r.fetchActivation)
	}
	errs := make([]error, len(steps))
	parallel(len(steps), func(i int) { errs[i] = steps[i](ctx) })
	// A terminal failure wins over a retry; a stop (lost checkpoint) wins over both.
	var retry error
	var f *Failure
	for _, err := range errs {
		var se stopError
		switch {
		case err == nil:
		case errors.As(err, &se):
			return err
		case errors.As(err, &f):
		case retry == nil:
			retry = err
		}
	}
	if f != nil {
		return f
	}
	return retry
}

// learnProductNo makes sure the order's SN is known (an answer without productNo is completed
// from the order details).
func (r *run) learnProductNo(ctx context.Context) error {
	res := r.st.Order.Result
	if res.ProductNo != "" {
		return nil
	}
	if r.st.Product != nil && r.st.Product.ProductNo != "" {
		res.ProductNo = r.st.Product.ProductNo
		return nil
	}
	step := messages.StepCreateOrder
	ctx, span := r.startSpan(ctx, step)
	n, err := r.learnProductNoFromDetails(ctx, res)
	endStep(span, messages.StatusDone, n, err)
	return err
}

// learnProductNoFromDetails reads the SN from the order details.
func (r *run) learnProductNoFromDetails(ctx context.Context, res *OrderResult) (int, error) {
	step := messages.StepCreateOrder
	n, err := r.do(ctx, kindPostOrder, step, func(ctx context.Context) error {
		d, err := r.saga.Partner.OrderDetails(ctx, res.OrderNo)
		if err != nil {
			return err
		}
		if d.Basic.ProductNo == "" {
			return fmt.Errorf("order %s has no SN yet", res.OrderNo)
		}
		res.ProductNo = d.Basic.ProductNo
		return nil
	})
	if err != nil {
		return n, r.stepErrorf(kindPostOrder, step, err, "order %[1]s: the SN of the PBX could not be found: %[2]s")
	}
	return n, nil
}

// enableRenewal is the enable_renewal step, in its span.
func (r *run) enableRenewal(ctx context.Context) error {
	ctx, span := r.startSpan(ctx, messages.StepEnableRenewal)
	status, n, err := r.renew(ctx)
	endStep(span, status, n, err)
	return err
}

// renew enables auto-renewal (or skips it when the request says so) and returns the step's
// status and attempts.
func (r *run) renew(ctx context.Context) (string, int, error) {
	step := messages.StepEnableRenewal
	start := r.saga.now()
	if !r.req.AutoRenewEnabled() {
		return messages.StatusSkipped, 0, r.record(ctx, step, messages.StatusSkipped, 0, start, func(st *State) { st.Renewal = &RenewalStep{Skipped: true} })
	}
	res := r.st.Order.Result
	// Enabling is safe to repeat (a redelivery, a crash before the outcome is stored, an unknown
	// outcome): it only ever turns auto-renewal on, and enabling a renewal that is already on
	// answers true (docs/partner-api.md). So it is sent without reading the status first, which
	// keeps the status read off the critical path; only an answer that would fail the step is
	// checked against the status (see confirmRenewal).
	n, err := r.do(ctx, kindPostOrder, step, func(ctx context.Context) error {
		ok, err := r.saga.Partner.EnableAutoRenewal(ctx, partnerclient.AutoRenewalRequest{
			ProductNo:       res.ProductNo,
			ProductID:       strconv.FormatInt(r.productID(), 10),
			PlanOrServiceID: r.st.Plan.PlanID,
		})
		if err == nil && !ok {
			err = fmt.Errorf("enable auto-renewal for %s answered false", res.ProductNo)
		}
		if err != nil {
			return r.confirmRenewal(ctx, res.ProductNo, err)
		}
		return nil
	})
	if err != nil {
		return "", n, r.stepError(kindPostOrder, step, err)
	}
	return messages.StatusDone, n, r.record(ctx, step, messages.StatusDone, n, start, func(st *State) { st.Renewal = &RenewalStep{Enabled: true} })
}

// confirmRenewal decides what the failed enable of productNo's auto-renewal, ending in err,
// amounts to. An answer that may be a portal's way of saying "already on" (see
// mayMeanAlreadyOn; the documentation does not rule it out) is checked against the status:
// auto-renewal found on is success (nil). Any other error is returned as it is (the step
// retries it by enabling again, or fails), and so is err when the status is off. A status read
// that fails with an error the step retries is returned instead of err, so the attempt is
// retried rather than the purchase failed on an answer that may have meant "already on".
func (r *run) confirmRenewal(ctx context.Context, productNo string, err error) error {
	if !mayMeanAlreadyOn(err) {
		return err
	}
	on, serr := r.saga.Partner.AutoRenewStatus(ctx, r.productID(), productNo)
	switch {
	case serr != nil && decide(kindPostOrder, serr).retry:
		return serr
	case serr == nil && on:
		return nil
	}
	return err
}

// fetchActivation is the fetch_activation step, in its span.
func (r *run) fetchActivation(ctx context.Context) error {
	ctx, span := r.startSpan(ctx, messages.StepFetchActivation)
	n, err := r.activationCode(ctx)
	endStep(span, messages.StatusDone, n, err)
	return err
}

// activationCode fetches the activation code and returns the step's attempts.
func (r *run) activationCode(ctx context.Context) (int, error) {
	step := messages.StepFetchActivation
	start := r.saga.now()
	res := r.st.Order.Result
	var code partnerclient.ActivationCode
	n, err := r.do(ctx, kindPostOrder, step, func(ctx context.Context) error {
		c, err := r.saga.Partner.ActivationCode(ctx, r.productID(), res.ProductNo)
		if errors.Is(err, partnerclient.ErrNotFound) {
			// A new PBX's code may not exist yet right after the order: pending, not absent.
			return fmt.Errorf("%w: %w", errNoCodeYet, err)
		}
		if err != nil {
			return err
		}
		if c.Code == "" {
			return errNoCodeYet
		}
		code = c
		return nil
	})
	if err != nil {
		return n, r.stepError(kindPostOrder, step, err)
	}
	return n, r.record(ctx, step, messages.StatusDone, n, start, func(st *State) {
		st.Activation = &ActivationStep{Code: code.Code, GenerateTime: code.GenerateTime.Time()}
	})
}

// Completed returns the completed event for a finished State.
func (s *State) Completed(h messages.EventHeader, productID int64) messages.Completed {
	h.Type = messages.TypeCompleted
	ev := messages.Completed{EventHeader: h, ProductID: productID}
	if res := s.Order.Result; res != nil {
		ev.ProductNo = res.ProductNo
		ev.OrderNo = res.OrderNo
		ev.OrderStatus = res.OrderStatus
		ev.TransactionNo = res.TransactionNo
		ev.InstanceID = res.InstanceID
	}
	if s.Renewal != nil {
		ev.AutoRenewal = s.Renewal.Enabled
	}
	if s.Activation != nil {
		ev.ActivationCode = s.Activation.Code
	}
	return ev
}
