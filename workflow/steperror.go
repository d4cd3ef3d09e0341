package workflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// This file is the one place that decides what a failed step does. classOf sorts an error into
// an errClass, stepErrors says, per step kind, whether that class is retried within the step
// and what it then becomes, and stepError applies it. No step inspects an error's class on its
// own.

// stepKind is the kind of step an error ends.
type stepKind int

const (
	// kindLookup: resolve_product, resolve_plan, resolve_billing (read-only; nothing is spent).
	kindLookup stepKind = iota
	// kindSend: create_order's send loop (settle an earlier send, guard, send).
	kindSend
	// kindReconcile: the order-list search before a re-send, inside the send loop, which
	// retries what it keeps.
	kindReconcile
	// kindPostOrder: once the order exists: its status, its SN, auto-renewal, activation.
	kindPostOrder
)

func (k stepKind) String() string {
	switch k {
	case kindLookup:
		return "lookup"
	case kindSend:
		return "send"
	case kindReconcile:
		return "reconcile"
	case kindPostOrder:
		return "post-order"
	}
	return fmt.Sprintf("stepKind(%d)", int(k))
}

// errClass is what an error means, whatever the step.
type errClass int

const (
	// classStop: a failed checkpoint (stopError); the saga ends at once.
	classStop errClass = iota
	// classDecided: already a *Failure or a *RetryError.
	classDecided
	// classPending: "look again later": an unknown send outcome still to settle
	// (errUnknownOutcome, notListed), an order not succeeded yet, an activation code not
	// generated yet.
	classPending
	// classCtxEnd: a bare context error (canceled, deadline) that is not a partner answer.
	classCtxEnd
	// classRetryable: partnerclient.OutcomeRetryable.
	classRetryable
	// classUnknown: partnerclient.OutcomeUnknown (a side-effecting call may have acted).
	classUnknown
	// classAccount: partnerclient.OutcomeAccount (credentials or access; never the request's
	// fault).
	classAccount
	// classNotFound: partnerclient.OutcomePermanent matching partnerclient.ErrNotFound.
	classNotFound
	// classValidation: partnerclient.OutcomePermanent matching partnerclient.ErrValidation.
	classValidation
	// classPermanent: any other partnerclient.OutcomePermanent, including errors that are not
	// partner errors.
	classPermanent
)

var classNames = [...]string{"stop", "decided", "pending", "ctx end", "retryable", "unknown", "account", "not found", "validation", "permanent"}

func (c errClass) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("errClass(%d)", int(c))
}

// classOf sorts err (not nil) into its class; the first match wins.
func classOf(err error) errClass {
	var se stopError
	var f *Failure
	var re *RetryError
	var pe *partnerclient.Error
	switch {
	case errors.As(err, &se):
		return classStop
	case errors.As(err, &f), errors.As(err, &re):
		return classDecided
	case errors.Is(err, errUnknownOutcome), errors.Is(err, errOrderNotYet), errors.Is(err, errNoCodeYet):
		return classPending
	case !errors.As(err, &pe) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return classCtxEnd
	}
	switch o, _ := partnerclient.Classify(err); o {
	case partnerclient.OutcomeRetryable:
		return classRetryable
	case partnerclient.OutcomeUnknown:
		return classUnknown
	case partnerclient.OutcomeAccount:
		return classAccount
	}
	switch {
	case errors.Is(err, partnerclient.ErrValidation):
		return classValidation
	case errors.Is(err, partnerclient.ErrNotFound):
		return classNotFound
	}
	return classPermanent
}

// verdict is what an error becomes once the step stops retrying it.
type verdict int

const (
	// keep: returned as it is (a stop, a decision already made, or, while reconciling, an
	// error the send loop retries).
	keep verdict = iota
	// retryLater: a *RetryError for the step; the request is delivered again later.
	retryLater
	// failInvalid: a *Failure invalid_request (the request names something the partner
	// does not have).
	failInvalid
	// failRejected: a *Failure rejected (the partner refused the order).
	failRejected
	// failReconcile: a *Failure needs_reconciliation (a human must look for the order).
	failReconcile
	// failPostOrder: a *Failure post_order_failed (the order exists; a later step failed).
	failPostOrder
)

var verdictNames = [...]string{"keep", "retry later", "invalid_request", "rejected", "needs_reconciliation", "post_order_failed"}

func (v verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// action is a row of stepErrors: whether the step's retry loop tries again, and what the error
// becomes when it does not (or when the loop is over without running out of budget).
type action struct {
	retry bool
	then  verdict
}

// stepErrors is the one table of what each class of error does in each kind of step. A class
// that is retried and outlasts the step's budget (or the run's context) comes out of the retry
// loop as a *RetryError, which is classDecided.
//
//	class        lookup              send                reconcile            post-order
//	stop         keep                keep                keep                 keep
//	decided      keep                keep                keep                 keep
//	pending      retry, retry later  retry, retry later  keep (send retries)  retry, retry later
//	ctx end      retry, retry later  retry, retry later  keep (send retries)  retry, retry later
//	retryable    retry, retry later  retry, retry later  keep (send retries)  retry, retry later
//	unknown      retry later         retry, retry later  keep (send retries)  retry, retry later
//	account      retry later         retry later         retry later          retry later
//	not found    invalid_request     rejected            needs_reconciliation post_order_failed
//	validation   invalid_request     rejected            needs_reconciliation post_order_failed
//	permanent    retry later         rejected            needs_reconciliation post_order_failed
//
// Lookups read only, so a permanent answer other than "not found" or "validation" (a 4xx, a
// business refusal) is retried later rather than failing the purchase as if it were invalid;
// an unknown outcome cannot happen on a read. Reconciling runs inside the send loop, whose own
// row retries what reconcile keeps. An activation code the partner does not know yet ("not
// found") is pending, not a not-found answer: fetchActivation says so before it gets here.
var stepErrors = map[stepKind]map[errClass]action{
	kindLookup: {
		classStop:       {false, keep},
		classDecided:    {false, keep},
		classPending:    {true, retryLater},
		classCtxEnd:     {true, retryLater},
		classRetryable:  {true, retryLater},
		classUnknown:    {false, retryLater},
		classAccount:    {false, retryLater},
		classNotFound:   {false, failInvalid},
		classValidation: {false, failInvalid},
		classPermanent:  {false, retryLater},
	},
	kindSend: {
		classStop:       {false, keep},
		classDecided:    {false, keep},
		classPending:    {true, retryLater},
		classCtxEnd:     {true, retryLater},
		classRetryable:  {true, retryLater},
		classUnknown:    {true, retryLater},
		classAccount:    {false, retryLater},
		classNotFound:   {false, failRejected},
		classValidation: {false, failRejected},
		classPermanent:  {false, failRejected},
	},
	kindReconcile: {
		classStop:       {false, keep},
		classDecided:    {false, keep},
		classPending:    {false, keep},
		classCtxEnd:     {false, keep},
		classRetryable:  {false, keep},
		classUnknown:    {false, keep},
		classAccount:    {false, retryLater},
		classNotFound:   {false, failReconcile},
		classValidation: {false, failReconcile},
		classPermanent:  {false, failReconcile},
	},
	kindPostOrder: {
		classStop:       {false, keep},
		classDecided:    {false, keep},
		classPending:    {true, retryLater},
		classCtxEnd:     {true, retryLater},
		classRetryable:  {true, retryLater},
		classUnknown:    {true, retryLater},
		classAccount:    {false, retryLater},
		classNotFound:   {false, failPostOrder},
		classValidation: {false, failPostOrder},
		classPermanent:  {false, failPostOrder},
	},
}

// decide returns the table's action for err in a step of kind k. A kind or class missing from
// the table (a programming error, caught by the tests) retries later: it never spends or fails.
func decide(k stepKind, err error) action {
	if a, ok := stepErrors[k][classOf(err)]; ok {
		return a
	}
	return action{false, retryLater}
}

// mayMeanAlreadyOn reports whether err, the failure of an enable auto-renewal, is an answer of
// the partner that may mean "auto-renewal is already on", so that the status is worth reading
// before the error is acted on: an answer that would fail the step (a refusal, a not-found, a
// validation error, or the result false), or an undocumented answer to the side-effecting call
// in an HTTP 2xx whose envelope status is not a server error, which the step would otherwise
// retry as an unknown outcome for ever. Transport failures, server errors, rate limiting and
// account problems say nothing about the renewal.
func mayMeanAlreadyOn(err error) bool {
	if a := decide(kindPostOrder, err); !a.retry && a.then == failPostOrder {
		return true
	}
	var pe *partnerclient.Error
	return classOf(err) == classUnknown && errors.As(err, &pe) &&
		pe.StatusCode >= 200 && pe.StatusCode < 300 && pe.EnvelopeStatus < 500
}

// stepError maps the error that ended step, a step of kind k, with the default message of its
// verdict.
func (r *run) stepError(k stepKind, step string, err error) error {
	return r.stepErrorf(k, step, err, "")
}

// stepErrorf is stepError with the message of a failure given as a format whose arguments are
// the order number, the partner's description of err and the step ("" for the default).
func (r *run) stepErrorf(k stepKind, step string, err error, format string) error {
	if err == nil {
		return nil
	}
	orderNo := ""
	if res := r.st.Order.Result; res != nil {
		orderNo = res.OrderNo
	}
	var reason messages.Reason
	switch decide(k, err).then {
	case keep:
		return err
	case retryLater:
		return &RetryError{Step: step, Err: err}
	case failInvalid:
		return failure(step, messages.ReasonInvalidRequest, "", err, "%s",
			fmt.Sprintf(cmp.Or(format, "the partner refused the lookup: %[2]s"), orderNo, err.Error(), step))
	case failRejected:
		reason, format = messages.ReasonRejected, cmp.Or(format, "the partner refused the order: %[2]s")
		orderNo = ""
	case failReconcile:
		reason, format = messages.ReasonNeedsReconciliation, cmp.Or(format, "searching the order list after an unknown outcome failed: %[2]s")
		orderNo = ""
	case failPostOrder:
		reason, format = messages.ReasonPostOrderFailed, cmp.Or(format, "order %[1]s was placed, but %[3]s failed: %[2]s")
	}
	return failure(step, reason, orderNo, err, "%s", fmt.Sprintf(format, orderNo, partnerMessage(err), step))
}
