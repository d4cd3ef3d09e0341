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

// TestClassify has at least one row per rule of Classify's doc comment, numbered like it.
func TestClassify(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	redirect := &redirectError{target: "http://other:9/x"}
	const (
		order   = EndpointCreateOrder
		renewal = EndpointEnableAutoRenewal
		read    = EndpointOrderList
	)
	tests := []struct {
		name       string
		give       error
		want       Outcome
		wantReason string
	}{
		{"1 bare context error", fmt.Errorf("step: %w", context.DeadlineExceeded), OutcomeRetryable, "context ended before a call"},
		{"1 missing credentials", fmt.Errorf("partner create_order: %w", ErrMissingCredentials), OutcomeAccount, "missing credentials"},
		{"1 plain error", errors.New("boom"), OutcomePermanent, "not a partner API error"},
		{"2 canceled read", &Error{Endpoint: read, Err: context.Canceled}, OutcomeRetryable, "no response"},
		{"2 timeout side effect not sent", &Error{Endpoint: order, Err: context.DeadlineExceeded}, OutcomeRetryable, "no response"},
		{"2 timeout side effect sent", &Error{Endpoint: order, Sent: true, Err: context.DeadlineExceeded}, OutcomeUnknown, "no response after the request was sent"},
		{"2 reset read sent", &Error{Endpoint: EndpointActivationCode, Sent: true, Err: errReset}, OutcomeRetryable, "no response"},
		{"2 reset renewal sent", &Error{Endpoint: renewal, Sent: true, Err: errReset}, OutcomeUnknown, "no response after the request was sent"},
		{"3 redirect read", &Error{Endpoint: read, StatusCode: 302, Sent: true, Err: redirect}, OutcomeRetryable, "redirect refused"},
		{"3 redirect token", &Error{Endpoint: EndpointToken, StatusCode: 307, Sent: true, Err: redirect}, OutcomeRetryable, "redirect refused"},
		{"3 redirect side effect", &Error{Endpoint: order, StatusCode: 308, Sent: true, Err: redirect}, OutcomeUnknown, "redirect refused after the request was sent"},
		{"3 bare 3xx side effect", &Error{Endpoint: renewal, StatusCode: 303, Sent: true}, OutcomeUnknown, "redirect refused after the request was sent"},
		{"4 429 side effect sent", &Error{Endpoint: order, StatusCode: 429, Sent: true}, OutcomeRetryable, "rate limited"},
		{"4 too_many_requests in a 200 read", &Error{Endpoint: read, StatusCode: 200, Code: CodeTooManyRequests, Sent: true}, OutcomeRetryable, "rate limited"},
		{"4 envelope 429 read", &Error{Endpoint: read, StatusCode: 200, EnvelopeStatus: 429, Code: CodeTooManyRequests, Sent: true}, OutcomeRetryable, "rate limited"},
		{"5 503 read", &Error{Endpoint: EndpointPurchaseInfo, StatusCode: 503, Sent: true}, OutcomeRetryable, "server error"},
		{"5 502 side effect sent", &Error{Endpoint: order, StatusCode: 502, Sent: true}, OutcomeUnknown, "server error after the request was sent"},
		{"5 500 with a refusal code side effect", &Error{Endpoint: order, StatusCode: 500, Code: CodeValidationFailed, Sent: true}, OutcomeUnknown, "server error after the request was sent"},
		{"5 200 envelope 500 read", &Error{Endpoint: read, StatusCode: 200, EnvelopeStatus: 500, Code: "system_error", Sent: true}, OutcomeRetryable, "server error"},
		{"5 200 envelope 500 side effect", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 500, Code: "system_error", Sent: true}, OutcomeUnknown, "server error after the request was sent"},
		{"5 wrapped *Error", fmt.Errorf("create order k: %w", &Error{Endpoint: order, StatusCode: 500, Sent: true}), OutcomeUnknown, "server error after the request was sent"},
		{"6 undecodable read", &Error{Endpoint: EndpointOrderDetails, StatusCode: 200, Sent: true, Err: io.ErrUnexpectedEOF}, OutcomeRetryable, "undecodable response"},
		{"6 undecodable side effect", &Error{Endpoint: order, StatusCode: 200, Sent: true, Err: io.ErrUnexpectedEOF}, OutcomeUnknown, "undecodable success response"},
		{"6 undecodable envelope 200 side effect", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 200, Code: CodeSuccess, Sent: true, Err: io.ErrUnexpectedEOF}, OutcomeUnknown, "undecodable success response"},
		{"7 401 side effect", &Error{Endpoint: order, StatusCode: 401, Code: CodeTokenInvalid, Sent: true}, OutcomeAccount, "unauthorized"},
		{"7 200 token_invalid", &Error{Endpoint: read, StatusCode: 200, Code: CodeTokenInvalid, Sent: true}, OutcomeAccount, "unauthorized"},
		{"7 bad credentials", &Error{Endpoint: EndpointToken, StatusCode: 400, Code: CodeInvalidClient, Sent: true}, OutcomeAccount, "unauthorized"},
		{"7 200 invalid_client side effect", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 200, Code: CodeInvalidClient, Sent: true}, OutcomeAccount, "unauthorized"},
		{"8 validation 400", &Error{Endpoint: order, StatusCode: 400, Code: CodeValidationFailed, Sent: true}, OutcomePermanent, "validation failed"},
		{"8 validation in a 200 side effect", &Error{Endpoint: order, StatusCode: 200, Code: CodeValidationFailed, Sent: true}, OutcomePermanent, "validation failed"},
		{"9 not found", &Error{Endpoint: EndpointProductDetails, StatusCode: 404, Code: CodeNotFound, Sent: true}, OutcomePermanent, "not found"},
		{"9 not found code in a 200 side effect", &Error{Endpoint: order, StatusCode: 200, Code: CodeNotFound, Sent: true}, OutcomePermanent, "not found"},
		{"9 bare 404 side effect", &Error{Endpoint: order, StatusCode: 404, Sent: true}, OutcomePermanent, "not found"},
		{"7 forbidden side effect", &Error{Endpoint: order, StatusCode: 403, Code: "ip_not_allowed", Sent: true}, OutcomeAccount, "forbidden"},
		{"7 401 with a not-found code", &Error{Endpoint: read, StatusCode: 401, Code: CodeNotFound, Sent: true}, OutcomeAccount, "unauthorized"},
		{"7 403 with a validation code", &Error{Endpoint: order, StatusCode: 403, Code: CodeValidationFailed, Sent: true}, OutcomeAccount, "forbidden"},
		{"7 500 token_invalid is a server error", &Error{Endpoint: read, StatusCode: 500, Code: CodeTokenInvalid, Sent: true}, OutcomeRetryable, "server error"},
		{"10 envelope 403 in a 200", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 403, Code: "ip_not_allowed", Sent: true}, OutcomePermanent, "client error 403"},
		{"10 other 4xx read", &Error{Endpoint: read, StatusCode: 418, Sent: true}, OutcomePermanent, "client error 418"},
		{"10 200 envelope 400 side effect", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 400, Code: "insufficient_balance", Sent: true}, OutcomePermanent, "client error 400"},
		{"11 200 unknown code side effect", &Error{Endpoint: order, StatusCode: 200, Code: "insufficient_balance", Sent: true}, OutcomeUnknown, "undocumented answer 200 insufficient_balance"},
		{"11 200 envelope 200 unknown code renewal", &Error{Endpoint: renewal, StatusCode: 200, EnvelopeStatus: 200, Code: "busy", Sent: true}, OutcomeUnknown, "undocumented answer 200 busy"},
		{"11 408 side effect", &Error{Endpoint: order, StatusCode: 408, Sent: true}, OutcomeUnknown, "undocumented answer 408 (no code)"},
		{"11 200 envelope 408 side effect", &Error{Endpoint: order, StatusCode: 200, EnvelopeStatus: 408, Code: "timeout", Sent: true}, OutcomeUnknown, "undocumented answer 408 timeout"},
		{"12 business refusal read", &Error{Endpoint: read, StatusCode: 200, Code: "no_permission", Sent: true}, OutcomePermanent, "refused: no_permission"},
		{"12 408 read", &Error{Endpoint: read, StatusCode: 408, Sent: true}, OutcomePermanent, "client error 408"},
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
		{&Error{Endpoint: EndpointOrderList, StatusCode: 401, Code: CodeTokenInvalid}, false}, // account
		{&Error{Endpoint: EndpointOrderList, StatusCode: 403}, false},                         // account
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
		{"envelope 404 in a 200", &Error{StatusCode: 200, EnvelopeStatus: 404, Code: "no_such_sn"}, []error{ErrNotFound}},
		{"envelope 429 in a 200", &Error{StatusCode: 200, EnvelopeStatus: 429, Code: "slow_down"}, []error{ErrRateLimited}},
		{"envelope 404 in a 500 counts as the 500", &Error{StatusCode: 500, EnvelopeStatus: 404}, nil},
		{"redirect", &Error{StatusCode: 307, Err: &redirectError{target: "http://x"}}, []error{ErrRedirect}},
	}
	all := []error{ErrNotFound, ErrValidation, ErrUnauthorized, ErrRateLimited, ErrInvalidOption, ErrMissingCredentials, ErrRedirect}
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
		{&Error{Endpoint: EndpointCreateOrder, StatusCode: 200, EnvelopeStatus: 500, Code: "system_error", Message: "busy"}, "partner create_order: 200 (envelope status 500) system_error: busy"},
		{&Error{Endpoint: EndpointCreateOrder, StatusCode: 400, EnvelopeStatus: 400, Code: CodeValidationFailed}, "partner create_order: 400 parameter_validation_failed"},
		{&Error{Endpoint: EndpointToken, StatusCode: 307, Err: &redirectError{target: "http://other:9/auth"}},
			"partner token: 307: redirect to http://other:9/auth refused: fulfil only talks to the configured partner origin"},
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
		{OutcomeAccount, "account"},
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
