package partnerclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Envelope codes the client knows by name. Any other non-"success" code is a business error.
const (
	CodeSuccess          = "success"
	CodeValidationFailed = "parameter_validation_failed"
	CodeNotFound         = "resource_not_found"
	CodeTokenInvalid     = "token_invalid"
	CodeInvalidClient    = "invalid_client"
	CodeTooManyRequests  = "too_many_requests"
)

// maxRetryAfter caps a Retry-After header.
const maxRetryAfter = 24 * time.Hour

// Sentinel errors. An *Error matches ErrNotFound, ErrValidation, ErrUnauthorized and
// ErrRateLimited through errors.Is by its envelope code or HTTP status.
var (
	// ErrNotFound matches code resource_not_found and HTTP 404.
	ErrNotFound = errors.New("partnerclient: resource not found")
	// ErrValidation matches code parameter_validation_failed.
	ErrValidation = errors.New("partnerclient: parameter validation failed")
	// ErrUnauthorized matches HTTP 401 and codes token_invalid and invalid_client.
	ErrUnauthorized = errors.New("partnerclient: unauthorized")
	// ErrRateLimited matches HTTP 429 and code too_many_requests.
	ErrRateLimited = errors.New("partnerclient: rate limited")
	// ErrInvalidOption is wrapped by every error New returns for a bad option or base URL.
	ErrInvalidOption = errors.New("partnerclient: invalid option")
	// ErrMissingCredentials is returned by every call of a client without a client ID
	// and secret. It is permanent.
	ErrMissingCredentials = errors.New("partnerclient: missing client credentials")
)

// Error is a failed partner API call: a transport failure, an undecodable response, or
// an envelope whose code is not "success". It never contains the client secret or a token.
type Error struct {
	Endpoint   Endpoint
	StatusCode int             // HTTP status, 0 if no response was received
	Code       string          // envelope code
	Message    string          // envelope detailMessage
	RequestID  string          // envelope requestId, for Yeastar support
	Result     json.RawMessage // envelope result: error detail, e.g. the field that failed validation
	RetryAfter time.Duration   // from the Retry-After header (seconds or HTTP date)
	// Sent reports that the request may have reached the server: all its bytes were
	// written or a response was received.
	Sent bool
	Err  error // transport or decoding cause
}

// Error formats e as "partner create_order: 400 parameter_validation_failed: detail
// (request_id …)", leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("partner ")
	b.WriteString(string(e.Endpoint))
	b.WriteString(":")
	if e.StatusCode != 0 {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		if e.StatusCode != 0 || e.Code != "" {
			b.WriteString(":")
		}
		b.WriteString(" ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		if e.StatusCode != 0 || e.Code != "" || e.Message != "" {
			b.WriteString(":")
		}
		b.WriteString(" ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the transport or decoding cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches one of the sentinels ErrNotFound, ErrValidation,
// ErrUnauthorized or ErrRateLimited.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound || e.StatusCode == http.StatusNotFound
	case ErrValidation:
		return e.Code == CodeValidationFailed
	case ErrUnauthorized:
		return e.authFailure() || e.Code == CodeInvalidClient
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests || e.Code == CodeTooManyRequests
	}
	return false
}

// authFailure reports whether the server refused the access token, which makes the
// client re-authenticate once and repeat the call.
func (e *Error) authFailure() bool {
	return e.StatusCode == http.StatusUnauthorized || e.Code == CodeTokenInvalid
}

// Retryable reports whether repeating the same call is safe and may succeed, that is
// whether Classify(e) returns OutcomeRetryable. An unknown outcome is not retryable.
func (e *Error) Retryable() bool {
	o, _ := Classify(e)
	return o == OutcomeRetryable
}

// Outcome is the class of a failed call, as the saga sees it.
type Outcome int

// Outcomes.
const (
	// OutcomePermanent: repeating the call gives the same answer.
	OutcomePermanent Outcome = iota
	// OutcomeRetryable: the call had no effect and may be repeated after a delay.
	OutcomeRetryable
	// OutcomeUnknown: a side-effecting call may or may not have taken effect; look the
	// result up before repeating it.
	OutcomeUnknown
)

// String returns "permanent", "retryable" or "unknown".
func (o Outcome) String() string {
	switch o {
	case OutcomePermanent:
		return "permanent"
	case OutcomeRetryable:
		return "retryable"
	case OutcomeUnknown:
		return "unknown"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Classify decides what a failed call means for the caller. It is a pure function of
// err and returns the outcome with a short reason. A side-effecting call is one whose
// Endpoint.SideEffect() is true (create_order, enable_auto_renewal). The rules, in order:
//
//  1. No response (the caller's context was canceled or timed out, the rate limiter
//     gave up, a transport error or timeout): Unknown if the call has a side effect
//     and the request was Sent, otherwise Retryable. A bare context error that is not
//     an *Error is Retryable.
//  2. HTTP 429: Retryable; the caller honours Error.RetryAfter.
//  3. HTTP 5xx: Unknown if the call has a side effect and was Sent, otherwise Retryable.
//  4. HTTP 2xx with a body or result that cannot be decoded: Unknown if the call has a
//     side effect, otherwise Retryable.
//  5. HTTP 401 or an auth code (token_invalid, invalid_client) — what remains after the
//     client's one re-authentication, or bad credentials: Permanent (configuration).
//  6. HTTP 400 parameter_validation_failed, 404 resource_not_found, 403 and any other
//     4xx: Permanent.
//  7. HTTP 2xx with a code other than "success" (a business refusal): Permanent.
//  8. An error that is not an *Error (e.g. ErrMissingCredentials): Permanent.
//
// Classify(nil) returns OutcomePermanent with reason "no error"; callers classify
// failures only.
func Classify(err error) (Outcome, string) {
	if err == nil {
		return OutcomePermanent, "no error"
	}
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return OutcomeRetryable, "context ended before a call"
		}
		return OutcomePermanent, "not a partner API error"
	}
	side := e.Endpoint.SideEffect()
	switch s := e.StatusCode; {
	case s == 0:
		if side && e.Sent {
			return OutcomeUnknown, "no response after the request was sent"
		}
		return OutcomeRetryable, "no response"
	case s == http.StatusTooManyRequests:
		return OutcomeRetryable, "rate limited"
	case s >= 500:
		if side && e.Sent {
			return OutcomeUnknown, "server error after the request was sent"
		}
		return OutcomeRetryable, "server error"
	case s >= 200 && s < 300 && e.Err != nil:
		if side {
			return OutcomeUnknown, "undecodable success response"
		}
		return OutcomeRetryable, "undecodable response"
	case e.Is(ErrUnauthorized):
		return OutcomePermanent, "unauthorized"
	case s >= 400 && s < 500:
		return OutcomePermanent, "client error " + strconv.Itoa(s)
	case s >= 200 && s < 300:
		return OutcomePermanent, "refused: " + e.Code
	}
	return OutcomePermanent, "unexpected status " + strconv.Itoa(e.StatusCode)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(0, min(secs, int(maxRetryAfter/time.Second)))) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
