// Package partnerclient is a client of the Yeastar Partner Portal OpenAPI: the calls
// fulfil makes to buy and set up P-Series Software Edition licences.
//
// Create one Client per partner account and share it; it is safe for concurrent use:
//
//	c, err := partnerclient.New("https://openapi.partner.yeastar.com",
//		partnerclient.WithCredentials(id, secret),
//		partnerclient.WithLogger(log))
//	info, err := c.PurchaseInfo(ctx, 12, "")
//
// At most DefaultMaxInFlight calls are sent at once (WithMaxInFlight); further callers wait for
// a slot, in arrival order, before their request is built or its timeout starts.
//
// # Side effects
//
// Two calls change state on the partner side: CreateOrder (places an order and may spend
// money) and EnableAutoRenewal. Endpoint.SideEffect reports them. Every other call only
// reads and may be repeated freely. The API has no idempotency key, so a side-effecting
// call whose answer was lost must be looked up (ListOrders, OrderDetails,
// AutoRenewStatus) before it is sent again.
//
// The client never retries a call on its own, with one exception: when the server
// refuses the access token (HTTP 401 or code token_invalid), it re-authenticates once
// and repeats the call once. That is safe for side-effecting calls too, because a 401
// means the server refused before acting.
//
// # Errors
//
// A failed call returns an *Error carrying the endpoint, HTTP status, the envelope's
// status field (EnvelopeStatus), envelope code, detail message, request ID, Retry-After
// and whether the request was sent; it matches ErrNotFound, ErrValidation,
// ErrUnauthorized, ErrRateLimited and ErrRedirect with errors.Is. A call succeeds only
// when the envelope code is "success". Classify turns any error into an Outcome; its doc
// comment is the one table of rules. In short:
//
//   - OutcomeRetryable: a read-only call that got no answer, a redirect, a 429, a 5xx
//     (also a 200 whose envelope status is 5xx) or an unreadable 2xx;
//   - OutcomeUnknown: a side-effecting call that was sent and got no answer, a redirect,
//     a 5xx, an unreadable 2xx, or any answer that is not a documented refusal;
//   - OutcomeAccount: the account's credentials or access were refused — HTTP 401 or
//     403, token_invalid, invalid_client — or the client has none
//     (ErrMissingCredentials); not the request's fault, try again later;
//   - OutcomePermanent: the documented refusals — parameter_validation_failed,
//     resource_not_found or 404, another 4xx (not 408 or 429) — a business refusal of a
//     read-only call, and other errors that are not *Error.
//
// # Redirects
//
// The client never follows a redirect, with its own HTTP client or one passed with
// WithHTTPClient: following one would send the token form (client secret included) or the
// access token to wherever the Location points. A 3xx answer is an *Error wrapping
// ErrRedirect that names the target (without user info or query).
//
// Error values, String and the debug logs never contain the client secret or a token.
//
// # Token lifecycle
//
// The first call logs in (grant_type=pp_credentials) and caches the access token;
// concurrent callers share that one token request. The token is refreshed
// (grant_type=refresh_token) when expiresIn minus the refresh margin (default 60 s, at
// most half the lifetime) has passed; when the refresh fails, the client logs in again.
// A token the server refuses is dropped and replaced once per call, as above.
// Authenticate does the same without a business call, for readiness checks.
//
// # Rate limit and timeouts
//
// Requests, token calls included, pass a token-bucket limiter (default 50 per second,
// burst 100; WithRateLimit(0, 0) removes it). Each call is bounded by the request timeout
// (default 15 s) unless the caller's context ends earlier; a call stopped while waiting
// for the limiter was not sent.
//
// # Decoding
//
// Response shapes the documentation leaves out follow docs/partner-api.md and are decoded
// in decode.go only; decoders accept IDs as strings or numbers, ignore unknown fields, and
// accept a list result wrapped in an object. They decode strictly only what the saga
// relies on (fields tagged partner:"strict" in types.go) and check that it is there (a
// billing contact needs its billingContactId, a plan its planId and planName, ...): an
// answer without it is undecodable, retryable for a lookup and unknown for create order. A
// value of an unexpected type anywhere else (e.g. planAutoRenewal true instead of 1) is
// tolerated — left zero, or converted for the 0/1 flags — and recorded: Client.Drift lists
// it, the logger warns once, and `fulfil partner check` reports it (see below).
//
// # Checking the assumed shapes
//
// `fulfil partner check` (package internal/partnercheck) calls every read-only endpoint
// once with the worker's configuration and compares each answer with the Go type its
// decoder fills, reporting drift as a warning and a kind mismatch where the saga relies on
// the value as an error. It sees the answers through the transport of the HTTP client it
// passes with WithHTTPClient; the client has no hook of its own for it. Responses it saves
// with --save (tokens and secret redacted, account data kept) are decoded by this
// package's tests, so answers captured from the real portal show at once whether the
// decoders cope:
//
//	fulfil partner check --save partnerclient/testdata/fixtures
//	go test ./partnerclient/ ./internal/partnercheck/
package partnerclient
