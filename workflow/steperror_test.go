package workflow

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// classSamples are errors of each class, as the steps meet them.
var classSamples = map[errClass][]error{
	classStop:    {stopError{err: errors.New("checkpoint store down")}},
	classDecided: {&RetryError{Step: "s", Err: errors.New("x")}, &Failure{Step: "s", Reason: messages.ReasonRejected}},
	classPending: {
		fmt.Errorf("%w: lost", errUnknownOutcome), &notListed{wait: 1},
		fmt.Errorf("%w: pending", errOrderNotYet),
		fmt.Errorf("%w: %w", errNoCodeYet, &partnerclient.Error{Endpoint: partnerclient.EndpointActivationCode, StatusCode: 404}),
	},
	classCtxEnd: {context.Canceled, fmt.Errorf("step: %w", context.DeadlineExceeded)},
	classRetryable: {
		&partnerclient.Error{Endpoint: partnerclient.EndpointOrderList, StatusCode: 503, Sent: true},
		&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 429},
		&partnerclient.Error{Endpoint: partnerclient.EndpointOrderList, Err: context.DeadlineExceeded},
	},
	classUnknown: {&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 502, Sent: true}},
	classAccount: {
		&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 401, Code: partnerclient.CodeTokenInvalid},
		&partnerclient.Error{Endpoint: partnerclient.EndpointOrderList, StatusCode: 403, Code: "ip_not_allowed"},
		&partnerclient.Error{Endpoint: partnerclient.EndpointToken, StatusCode: 400, Code: partnerclient.CodeInvalidClient},
		&partnerclient.Error{Endpoint: partnerclient.EndpointBillingContacts, StatusCode: 401, Code: partnerclient.CodeNotFound},
		fmt.Errorf("partner token: %w", partnerclient.ErrMissingCredentials),
	},
	classNotFound: {
		&partnerclient.Error{Endpoint: partnerclient.EndpointProductList, StatusCode: 404, Code: partnerclient.CodeNotFound},
		&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 200, Code: partnerclient.CodeNotFound},
	},
	classValidation: {&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 400, Code: partnerclient.CodeValidationFailed}},
	classPermanent: {
		&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 409},
		&partnerclient.Error{Endpoint: partnerclient.EndpointOrderList, StatusCode: 200, Code: "no_permission"},
		&partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 200, EnvelopeStatus: 403},
		errors.New("enable auto-renewal answered false"),
	},
}

func TestClassOf(t *testing.T) {
	for want, errs := range classSamples {
		for _, err := range errs {
			if got := classOf(err); got != want {
				t.Errorf("classOf(%v) = %v, want %v", err, got, want)
			}
		}
	}
}

// TestStepErrors has one row per row and column of the stepErrors table: whether the class is
// retried within the step, and what stepError makes of it.
func TestStepErrors(t *testing.T) {
	type want struct {
		retry  bool
		then   verdict
		reason messages.Reason // of the *Failure, for a fail verdict
	}
	keepIt := want{false, keep, ""}
	later := want{false, retryLater, ""}
	retryThenLater := want{true, retryLater, ""}
	invalid := want{false, failInvalid, messages.ReasonInvalidRequest}
	rejected := want{false, failRejected, messages.ReasonRejected}
	reconcile := want{false, failReconcile, messages.ReasonNeedsReconciliation}
	postOrder := want{false, failPostOrder, messages.ReasonPostOrderFailed}
	rows := []struct {
		class errClass
		cols  map[stepKind]want
	}{
		{classStop, map[stepKind]want{kindLookup: keepIt, kindSend: keepIt, kindReconcile: keepIt, kindPostOrder: keepIt}},
		{classDecided, map[stepKind]want{kindLookup: keepIt, kindSend: keepIt, kindReconcile: keepIt, kindPostOrder: keepIt}},
		{classPending, map[stepKind]want{kindLookup: retryThenLater, kindSend: retryThenLater, kindReconcile: keepIt, kindPostOrder: retryThenLater}},
		{classCtxEnd, map[stepKind]want{kindLookup: retryThenLater, kindSend: retryThenLater, kindReconcile: keepIt, kindPostOrder: retryThenLater}},
		{classRetryable, map[stepKind]want{kindLookup: retryThenLater, kindSend: retryThenLater, kindReconcile: keepIt, kindPostOrder: retryThenLater}},
		{classUnknown, map[stepKind]want{kindLookup: later, kindSend: retryThenLater, kindReconcile: keepIt, kindPostOrder: retryThenLater}},
		{classAccount, map[stepKind]want{kindLookup: later, kindSend: later, kindReconcile: later, kindPostOrder: later}},
		{classNotFound, map[stepKind]want{kindLookup: invalid, kindSend: rejected, kindReconcile: reconcile, kindPostOrder: postOrder}},
		{classValidation, map[stepKind]want{kindLookup: invalid, kindSend: rejected, kindReconcile: reconcile, kindPostOrder: postOrder}},
		{classPermanent, map[stepKind]want{kindLookup: later, kindSend: rejected, kindReconcile: reconcile, kindPostOrder: postOrder}},
	}
	kinds := []stepKind{kindLookup, kindSend, kindReconcile, kindPostOrder}
	if len(rows) != len(classNames) {
		t.Fatalf("%d rows, want one per class (%d)", len(rows), len(classNames))
	}
	for _, k := range kinds {
		if len(stepErrors[k]) != len(classNames) {
			t.Errorf("stepErrors[%v] has %d classes, want %d", k, len(stepErrors[k]), len(classNames))
		}
	}
	r := &run{st: &State{Order: OrderStep{Result: &OrderResult{OrderNo: "ORD-1"}}}}
	for _, row := range rows {
		t.Run(row.class.String(), func(t *testing.T) {
			if len(row.cols) != len(kinds) {
				t.Fatalf("%d columns, want %d", len(row.cols), len(kinds))
			}
			for _, k := range kinds {
				w := row.cols[k]
				if got := stepErrors[k][row.class]; got != (action{w.retry, w.then}) {
					t.Errorf("%v: table says %+v, want %+v", k, got, action{w.retry, w.then})
				}
				for _, err := range classSamples[row.class] {
					if got := decide(k, err); got != (action{w.retry, w.then}) {
						t.Errorf("%v: decide(%v) = %+v", k, err, got)
					}
					got := r.stepError(k, "the_step", err)
					var re *RetryError
					var f *Failure
					switch w.then {
					case keep:
						if got != err {
							t.Errorf("%v: stepError(%v) = %v, want it kept", k, err, got)
						}
					case retryLater:
						if !errors.As(got, &re) || re.Step != "the_step" || !errors.Is(got, err) {
							t.Errorf("%v: stepError(%v) = %#v, want a RetryError at the_step", k, err, got)
						}
					default:
						if !errors.As(got, &f) || f.Reason != w.reason || f.Step != "the_step" || !errors.Is(got, err) {
							t.Errorf("%v: stepError(%v) = %v, want a %s Failure at the_step", k, err, got, w.reason)
						}
						if wantNo := map[bool]string{true: "ORD-1", false: ""}[w.then == failPostOrder]; f != nil && f.OrderNo != wantNo {
							t.Errorf("%v: OrderNo = %q, want %q", k, f.OrderNo, wantNo)
						}
					}
				}
			}
		})
	}
}

// TestStepErrorMessages pins the failure messages the steps have always sent.
func TestStepErrorMessages(t *testing.T) {
	r := &run{st: &State{Order: OrderStep{Result: &OrderResult{OrderNo: "ORD-1"}}}}
	pe := &partnerclient.Error{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 400, Code: partnerclient.CodeValidationFailed, Message: "bad billingId"}
	tests := []struct {
		kind   stepKind
		step   string
		format string
		want   string
	}{
		{kindLookup, messages.StepResolveBilling, "", "the partner refused the lookup: " + pe.Error()},
		{kindSend, messages.StepCreateOrder, "", "the partner refused the order: bad billingId (HTTP 400, code parameter_validation_failed)"},
		{kindReconcile, messages.StepCreateOrder, "", "searching the order list after an unknown outcome failed: bad billingId (HTTP 400, code parameter_validation_failed)"},
		{kindPostOrder, messages.StepEnableRenewal, "", "order ORD-1 was placed, but enable_renewal failed: bad billingId (HTTP 400, code parameter_validation_failed)"},
		{kindPostOrder, messages.StepCreateOrder, "checking order %[1]s: %[2]s", "checking order ORD-1: bad billingId (HTTP 400, code parameter_validation_failed)"},
	}
	for _, tt := range tests {
		var f *Failure
		if err := r.stepErrorf(tt.kind, tt.step, pe, tt.format); !errors.As(err, &f) || f.Message != tt.want || f.PartnerCode != pe.Code {
			t.Errorf("%v: %v, want message %q", tt.kind, err, tt.want)
		}
	}
}
