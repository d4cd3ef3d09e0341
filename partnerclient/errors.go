package partnerclient

import (
	"cmp"
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
// ErrRateLimited through errors.Is by its envelope code or its status (the HTTP status, or
// for a 2xx answer the envelope's status), and ErrRedirect through its Err.
var (
	// ErrNotFound matches code resource_not_found and status 404.
	ErrNotFound = errors.New("partnerclient: resource not found")
	// ErrValidation matches code parameter_validation_failed.
	ErrValidation = errors.New("partnerclient: parameter validation failed")
	// ErrUnauthorized matches HTTP 401 and codes token_invalid and invalid_client.
	ErrUnauthorized = errors.New("partnerclient: unauthorized")
	// ErrRateLimited matches status 429 and code too_many_requests.
	ErrRateLimited = errors.New("partnerclient: rate limited")
	// ErrInvalidOption is wrapped by every error New returns for a bad option or base URL.
	ErrInvalidOption = errors.New("partnerclient: invalid option")
	// ErrMissingCredentials is returned by every call of a client without a client ID
	// and secret. Classify calls it OutcomeAccount.
	ErrMissingCredentials = errors.New("partnerclient: missing client credentials")
	// ErrRedirect is wrapped by the Err of an *Error whose answer was a redirect (HTTP 3xx).
	// The client never follows one: the request, its client secret or access token
	// included, goes to the configured partner origin only.
	ErrRedirect = errors.New("partnerclient: redirect refused")
)

// Error is a failed partner API call: a transport failure, an undecodable response, or
// an envelope whose code is not "success". It never contains the client secret or a token.
type Error struct {
	Endpoint   Endpoint
	StatusCode int // HTTP status, 0 if no response was received
	// EnvelopeStatus is the envelope's status field, documented as the HTTP status of the
	// request; 0 when the body had none (or no body was decoded). It may differ from
	// StatusCode: a 200 whose envelope says 500 is a server error.
	EnvelopeStatus int
	Code           string          // envelope code
	Message        string          // envelope detailMessage
	RequestID      string          // envelope requestId, for Yeastar support
	Result         json.RawMessage // envelope result: error detail, e.g. the field that failed validation
	RetryAfter     time.Duration   // from the Retry-After header (seconds or HTTP date)
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
	if e.EnvelopeStatus != 0 && e.EnvelopeStatus != e.StatusCode {
		b.WriteString(" (envelope status ")
		b.WriteString(strconv.Itoa(e.EnvelopeStatus))
		b.WriteString(")")
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
		return e.Code == CodeNotFound || e.effectiveStatus() == http.StatusNotFound
	case ErrValidation:
		return e.Code == CodeValidationFailed
	case ErrUnauthorized:
		return e.authFailure() || e.Code == CodeInvalidClient
	case ErrRateLimited:
		return e.effectiveStatus() == http.StatusTooManyRequests || e.Code == CodeTooManyRequests
	}
	return false
}

// authFailure reports whether the server refused the access token, which makes the
// client re-authenticate once and repeat the call.
func (e *Error) authFailure() bool {
	if e.StatusCode == http.StatusUnauthorized || e.Code == CodeTokenInvalid {
		return true
	}
	// An HTTP 200 whose envelope says 401 is believed for reads only: a side-effecting call is
	// never repeated on the word of an envelope alone (Classify makes it an account problem,
	// and the saga looks for the order before sending again).
	return !e.Endpoint.SideEffect() && e.effectiveStatus() == http.StatusUnauthorized
}

// Retryable reports whether repeating the same call is safe and may succeed, that is
// whether Classify(e) returns OutcomeRetryable. An unknown or account outcome is not
// retryable.
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
	// OutcomeAccount: the partner account's credentials or access were refused (HTTP 401
	// or 403, code token_invalid or invalid_client, or no credentials configured). The
	// request was not run and is not at fault: repeating the same call gives the same
	// answer until someone fixes the account, so try again later and alert.
	OutcomeAccount
)

// String returns "permanent", "retryable", "unknown" or "account".
func (o Outcome) String() string {
	switch o {
	case OutcomePermanent:
		return "permanent"
	case OutcomeRetryable:
		return "retryable"
	case OutcomeUnknown:
		return "unknown"
	case OutcomeAccount:
		return "account"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Classify decides what a failed call means for the caller. It is a pure function of
// err and returns the outcome with a short reason. This comment is the one table of its
// rules.
//
// A side-effecting call is one whose Endpoint.SideEffect() is true (create_order,
// enable_auto_renewal). The effective status of an answer is its HTTP status when that is
// not 2xx, otherwise the envelope's status field (Error.EnvelopeStatus) when present and
// not 2xx, otherwise the HTTP status. The rules, first match wins:
//
//  1. Not an *Error: a context error (canceled, deadline) is Retryable,
//     ErrMissingCredentials is Account, anything else Permanent.
//  2. No response (the caller's context ended, the rate limiter gave up, a transport
//     error or timeout): Unknown if the call has a side effect and was Sent, otherwise
//     Retryable.
//  3. A redirect (HTTP 3xx, never followed; Err wraps ErrRedirect): Unknown if the call
//     has a side effect and was Sent (a hostile proxy may have acted), otherwise
//     Retryable.
//  4. Effective status 429, or code too_many_requests: Retryable; the caller honours
//     Error.RetryAfter.
//  5. Effective status 5xx (also an HTTP 200 whose envelope says 500): Unknown if the call
//     has a side effect and was Sent, otherwise Retryable.
//  6. HTTP 2xx whose body or result cannot be decoded, or lacks a field fulfil needs
//     (Err is set): Unknown if the call has a side effect, otherwise Retryable.
//  7. An account failure: HTTP 401 or 403, effective status 401, code token_invalid or
//     invalid_client (what remains after the client's one re-authentication, bad
//     credentials, or an account without access; the request was not run): Account.
//  8. Code parameter_validation_failed: Permanent.
//  9. Code resource_not_found, or effective status 404: Permanent.
//  10. Effective status 4xx other than 408 and 429 (400, 409, an envelope 403 in a 2xx
//     answer, ...): Permanent.
//  11. Anything else on a side-effecting call (an HTTP 2xx with an undocumented code and
//     an envelope status that is 2xx or absent, a 408, a 1xx): Unknown — the order may
//     exist; look it up before sending again.
//  12. Anything else on a read-only call: a 4xx (408) is Permanent; a 2xx with a code
//     other than "success" is a business refusal, Permanent.
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
		if errors.Is(err, ErrMissingCredentials) {
			return OutcomeAccount, "missing credentials"
		}
		return OutcomePermanent, "not a partner API error"
	}
	side := e.Endpoint.SideEffect()
	unknownIfSent := func(reason string) (Outcome, string) {
		if side && e.Sent {
			return OutcomeUnknown, reason + " after the request was sent"
		}
		return OutcomeRetryable, reason
	}
	s := e.effectiveStatus()
	switch {
	case e.StatusCode == 0:
		return unknownIfSent("no response")
	case e.redirect():
		return unknownIfSent("redirect refused")
	case s == http.StatusTooManyRequests || e.Code == CodeTooManyRequests:
		return OutcomeRetryable, "rate limited"
	case s >= 500:
		return unknownIfSent("server error")
	case is2xx(e.StatusCode) && e.Err != nil:
		if side {
			return OutcomeUnknown, "undecodable success response"
		}
		return OutcomeRetryable, "undecodable response"
	case e.Is(ErrUnauthorized) || s == http.StatusUnauthorized:
		return OutcomeAccount, "unauthorized"
	case e.StatusCode == http.StatusForbidden:
		return OutcomeAccount, "forbidden"
	case e.Code == CodeValidationFailed:
		return OutcomePermanent, "validation failed"
	case e.Code == CodeNotFound || s == http.StatusNotFound:
		return OutcomePermanent, "not found"
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout:
		return OutcomePermanent, "client error " + strconv.Itoa(s)
	case side:
		return OutcomeUnknown, "undocumented answer " + strconv.Itoa(s) + " " + cmp.Or(e.Code, "(no code)")
	case s >= 400 && s < 500:
		return OutcomePermanent, "client error " + strconv.Itoa(s)
	case is2xx(s):
		return OutcomePermanent, "refused: " + e.Code
	}
	return OutcomePermanent, "unexpected status " + strconv.Itoa(s)
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// effectiveStatus is the HTTP status when it is not 2xx, otherwise the envelope's status
// when present and not 2xx, otherwise the HTTP status.
func (e *Error) effectiveStatus() int {
	if is2xx(e.StatusCode) && e.EnvelopeStatus != 0 && !is2xx(e.EnvelopeStatus) {
		return e.EnvelopeStatus
	}
	return e.StatusCode
}

// redirect reports whether the answer was a redirect, which the client never follows.
func (e *Error) redirect() bool {
	return e.StatusCode >= 300 && e.StatusCode < 400 || errors.Is(e.Err, ErrRedirect)
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
