package workflow

import (
	"errors"
	"fmt"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// Failure is a terminal failure of a purchase: the fields of a failed event.
type Failure struct {
	Step             string
	Reason           messages.Reason
	Message          string
	PartnerCode      string
	PartnerRequestID string
	OrderNo          string
	Err              error
}

// Error returns "step: reason: message".
func (f *Failure) Error() string {
	return fmt.Sprintf("%s: %s: %s", f.Step, f.Reason, f.Message)
}

// Unwrap returns the cause, if any.
func (f *Failure) Unwrap() error { return f.Err }

// Event returns the failed event for f.
func (f *Failure) Event(h messages.EventHeader) messages.Failed {
	h.Type = messages.TypeFailed
	return messages.Failed{
		EventHeader:      h,
		Step:             f.Step,
		Reason:           f.Reason,
		Message:          f.Message,
		PartnerCode:      f.PartnerCode,
		PartnerRequestID: f.PartnerRequestID,
		OrderNo:          f.OrderNo,
	}
}

// RetryError means the saga stopped at Step because transient faults outlasted the in-process
// retry budget (or ctx ended); the message should be redelivered later.
type RetryError struct {
	Step string
	Err  error
}

// Error describes the step and the last error.
func (e *RetryError) Error() string {
	return fmt.Sprintf("%s: retry later: %v", e.Step, e.Err)
}

// Unwrap returns the last error.
func (e *RetryError) Unwrap() error { return e.Err }

// failure builds a Failure from a partner error, copying its code and request ID.
func failure(step string, reason messages.Reason, orderNo string, err error, format string, args ...any) *Failure {
	f := &Failure{Step: step, Reason: reason, OrderNo: orderNo, Err: err, Message: fmt.Sprintf(format, args...)}
	var pe *partnerclient.Error
	if errors.As(err, &pe) {
		f.PartnerCode = pe.Code
		f.PartnerRequestID = pe.RequestID
	}
	return f
}

// Terminal returns the failure that err (a saga error that is not already a *Failure) becomes
// when the request has no delivery left: post_order_failed once the order exists,
// needs_reconciliation while a sent order has an unknown outcome, otherwise exhausted.
func Terminal(st *State, err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	step := messages.StepValidate
	var re *RetryError
	if errors.As(err, &re) {
		step = re.Step
	}
	switch {
	case st != nil && st.Order.Result != nil:
		return failure(step, messages.ReasonPostOrderFailed, st.Order.Result.OrderNo, err,
			"order %s was placed, but %s did not finish within the retry budget: %v", st.Order.Result.OrderNo, step, cause(err))
	case st != nil && st.Order.Intent.Outstanding():
		return failure(messages.StepCreateOrder, messages.ReasonNeedsReconciliation, "", err,
			"create order (poNumber %s) had an unknown outcome and no order could be matched: check the Partner Portal orders for this poNumber before buying again; last error: %v",
			st.Order.Intent.PONumber, cause(err))
	default:
		return failure(step, messages.ReasonExhausted, "", err,
			"transient failures outlasted the retry budget before any order was placed: %v", cause(err))
	}
}

func cause(err error) error {
	var re *RetryError
	if errors.As(err, &re) && re.Err != nil {
		return re.Err
	}
	return err
}
