package partnerclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	tests := []struct {
		name       string
		give       error
		want       Outcome
		wantReason string
	}{
		{"1 canceled read", &Error{Endpoint: EndpointOrderList, Err: context.Canceled}, OutcomeRetryable, "no response"},
		{"1 timeout side effect not sent", &Error{Endpoint: EndpointCreateOrder, Err: context.DeadlineExceeded}, OutcomeRetryable, "no response"},
		{"1 timeout side effect sent", &Error{Endpoint: EndpointCreateOrder, Sent: true, Err: context.DeadlineExceeded}, OutcomeUnknown, "no response after the request was sent"},
		{"1 reset read sent", &Error{Endpoint: EndpointActivationCode, Sent: true, Err: errReset}, OutcomeRetryable, "no response"},
		{"1 reset renewal sent", &Error{Endpoint: EndpointEnableAutoRenewal, Sent: true, Err: errReset}, OutcomeUnknown, "no response after the request was sent"},
		{"1 bare context error", fmt.Errorf("step: %w", context.DeadlineExceeded), OutcomeRetryable, "context ended before a call"},
		{"2 429 side effect sent", &Error{Endpoint: EndpointCreateOrder, StatusCode: 429, Sent: true}, OutcomeRetryable, "rate limited"},
		{"3 503 read", &Error{Endpoint: EndpointPurchaseInfo, StatusCode: 503, Sent: true}, OutcomeRetryable, "server error"},
		{"3 502 side effect sent", &Error{Endpoint: EndpointCreateOrder, StatusCode: 502, Sent: true}, OutcomeUnknown, "server error after the request was sent"},
		{"4 undecodable read", &Error{Endpoint: EndpointOrderDetails, StatusCode: 200, Sent: true, Err: io.ErrUnexpectedEOF}, OutcomeRetryable, "undecodable response"},
		{"4 undecodable side effect", &Error{Endpoint: EndpointCreateOrder, StatusCode: 200, Sent: true, Err: io.ErrUnexpectedEOF}, OutcomeUnknown, "undecodable success response"},
		{"5 401", &Error{Endpoint: EndpointCreateOrder, StatusCode: 401, Code: CodeTokenInvalid, Sent: true}, OutcomePermanent, "unauthorized"},
		{"5 200 token_invalid", &Error{Endpoint: EndpointOrderList, StatusCode: 200, Code: CodeTokenInvalid, Sent: true}, OutcomePermanent, "unauthorized"},
		{"5 bad credentials", &Error{Endpoint: EndpointToken, StatusCode: 400, Code: CodeInvalidClient, Sent: true}, OutcomePermanent, "unauthorized"},
		{"6 validation", &Error{Endpoint: EndpointCreateOrder, StatusCode: 400, Code: CodeValidationFailed, Sent: true}, OutcomePermanent, "client error 400"},
		{"6 not found", &Error{Endpoint: EndpointProductDetails, StatusCode: 404, Code: CodeNotFound, Sent: true}, OutcomePermanent, "client error 404"},
		{"6 forbidden", &Error{Endpoint: EndpointCreateOrder, StatusCode: 403, Code: "ip_not_allowed", Sent: true}, OutcomePermanent, "client error 403"},
		{"6 other 4xx", &Error{Endpoint: EndpointOrderList, StatusCode: 418, Sent: true}, OutcomePermanent, "client error 418"},
		{"7 business refusal", &Error{Endpoint: EndpointCreateOrder, StatusCode: 200, Code: "insufficient_balance", Sent: true}, OutcomePermanent, "refused: insufficient_balance"},
		{"8 missing credentials", fmt.Errorf("partner create_order: %w", ErrMissingCredentials), OutcomePermanent, "not a partner API error"},
		{"8 plain error", errors.New("boom"), OutcomePermanent, "not a partner API error"},
		{"wrapped *Error", fmt.Errorf("create order k: %w", &Error{Endpoint: EndpointCreateOrder, StatusCode: 500, Sent: true}), OutcomeUnknown, "server error after the request was sent"},
		{"unexpected 3xx", &Error{Endpoint: EndpointOrderList, StatusCode: 302, Sent: true}, OutcomePermanent, "unexpected status 302"},
		{"nil", nil, OutcomePermanent, "no error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Classify(tt.give)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Classify(%v) = %v, %q; want %v, %q", tt.give, got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestErrorRetryable(t *testing.T) {
	tests := []struct {
		give *Error
		want bool
	}{
		{&Error{Endpoint: EndpointOrderList, StatusCode: 503, Sent: true}, true},
		{&Error{Endpoint: EndpointCreateOrder, StatusCode: 503, Sent: true}, false}, // unknown
		{&Error{Endpoint: EndpointCreateOrder, StatusCode: 400, Code: CodeValidationFailed}, false},
	}
	for _, tt := range tests {
		if got := tt.give.Retryable(); got != tt.want {
			t.Errorf("%v Retryable() = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		name string
		give *Error
		want []error // sentinels it matches; it must match no other
	}{
		{"404 status", &Error{StatusCode: 404}, []error{ErrNotFound}},
		{"not found code", &Error{StatusCode: 200, Code: CodeNotFound}, []error{ErrNotFound}},
		{"validation", &Error{StatusCode: 400, Code: CodeValidationFailed}, []error{ErrValidation}},
		{"401", &Error{StatusCode: 401}, []error{ErrUnauthorized}},
		{"token_invalid", &Error{StatusCode: 200, Code: CodeTokenInvalid}, []error{ErrUnauthorized}},
		{"invalid_client", &Error{StatusCode: 400, Code: CodeInvalidClient}, []error{ErrUnauthorized}},
		{"429", &Error{StatusCode: 429}, []error{ErrRateLimited}},
		{"too_many_requests", &Error{StatusCode: 503, Code: CodeTooManyRequests}, []error{ErrRateLimited}},
		{"business", &Error{StatusCode: 200, Code: "insufficient_balance"}, nil},
	}
	all := []error{ErrNotFound, ErrValidation, ErrUnauthorized, ErrRateLimited, ErrInvalidOption, ErrMissingCredentials}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("step: %w", tt.give)
			for _, s := range all {
				want := false
				for _, w := range tt.want {
					want = want || w == s
				}
				if got := errors.Is(wrapped, s); got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.give, s, got, want)
				}
			}
			var e *Error
			if !errors.As(wrapped, &e) || e != tt.give {
				t.Errorf("errors.As did not find the *Error")
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		give *Error
		want string
	}{
		{
			&Error{Endpoint: EndpointCreateOrder, StatusCode: 400, Code: CodeValidationFailed, Message: "billingId is required", RequestID: "r-1"},
			"partner create_order: 400 parameter_validation_failed: billingId is required (request_id r-1)",
		},
		{&Error{Endpoint: EndpointOrderList, Err: context.DeadlineExceeded}, "partner order_list: context deadline exceeded"},
		{&Error{Endpoint: EndpointOrderList, StatusCode: 502, Err: errors.New("body is not a JSON object")}, "partner order_list: 502: body is not a JSON object"},
		{&Error{Endpoint: EndpointToken, StatusCode: 200, Code: "success", Err: errors.New("no access token"), RequestID: "r"}, "partner token: 200 success: no access token (request_id r)"},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant %q", got, tt.want)
		}
	}
	cause := &Error{Endpoint: EndpointOrderList, Err: context.Canceled}
	if !errors.Is(cause, context.Canceled) {
		t.Error("Unwrap: the cause is not reachable")
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		give Outcome
		want string
	}{
		{OutcomePermanent, "permanent"},
		{OutcomeRetryable, "retryable"},
		{OutcomeUnknown, "unknown"},
		{Outcome(7), "Outcome(7)"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", int(tt.give), got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		give string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 2 ", 2 * time.Second},
		{"-3", 0},
		{"999999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.give, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
