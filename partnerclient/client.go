package partnerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// MaxConnsPerHost caps the default transport's connections to the partner API; requests past
// it wait for a free connection.
const MaxConnsPerHost = 512

// maxBody bounds the response body read from the server.
const maxBody = 8 << 20

// Client calls the Yeastar Partner Portal OpenAPI. It is safe for concurrent use; all
// goroutines share one cached access token. Create it with New.
type Client struct {
	base           *url.URL
	hc             *http.Client
	userAgent      string
	rps            float64
	burst          int
	limiter        Limiter // WithLimiter's, or built from rps and burst
	requestTimeout time.Duration
	refreshMargin  time.Duration
	log            *zap.Logger
	now            func() time.Time
	allowInsecure  bool
	clientID       string
	clientSecret   string
	observe        func(CallInfo)
	maxInFlight    int
	slots          chan struct{} // nil: unbounded
	tracer         trace.Tracer  // nil: no spans (WithTracerProvider)

	tokMu  sync.Mutex
	tok    *token // nil until the first login
	flight singleflight.Group

	tokenRefreshes atomic.Int64
	calls          map[Endpoint]*atomic.Int64 // fixed keys: AllEndpoints
	drift          driftRecorder
}

// stats counts the requests a Client has sent.
type stats struct {
	TokenRequests  int64              // token requests sent (logins and refreshes)
	TokenRefreshes int64              // refresh attempts (grant_type=refresh_token)
	Calls          map[Endpoint]int64 // requests sent per endpoint (past the rate limiter), token included
}

// New returns a client for the API at baseURL (e.g. https://openapi.partner.yeastar.com).
// baseURL must be https, or http on a loopback host, or http anywhere with
// WithAllowInsecure(true). New returns an error wrapping ErrInvalidOption for a bad
// base URL or option.
func New(baseURL string, opts ...Option) (*Client, error) {
	c := &Client{
		userAgent:      DefaultUserAgent,
		rps:            DefaultRateLimit,
		burst:          DefaultRateBurst,
		requestTimeout: DefaultRequestTimeout,
		refreshMargin:  DefaultTokenRefreshMargin,
		maxInFlight:    DefaultMaxInFlight,
		log:            zap.NewNop(),
		now:            time.Now,
		calls:          make(map[Endpoint]*atomic.Int64, len(AllEndpoints)),
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("nil option")
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	base, err := parseBase(baseURL, c.allowInsecure)
	if err != nil {
		return nil, err
	}
	c.base = base
	c.drift.log = c.log
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	c.hc = noRedirects(c.hc)
	if c.limiter == nil { // not WithLimiter's (which sets rps 0)
		c.limiter = rate.NewLimiter(rate.Inf, 0)
	}
	if c.rps > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(c.rps), c.burst)
	}
	for _, ep := range AllEndpoints {
		c.calls[ep] = new(atomic.Int64)
	}
	if c.maxInFlight > 0 {
		c.slots = make(chan struct{}, c.maxInFlight)
	}
	return c, nil
}

// parseBase checks the base URL: a scheme, a host, no query, and TLS unless the host is
// a loopback address or insecure is allowed.
func parseBase(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, invalid("base URL: %v", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, invalid("base URL %q: want scheme://host[:port][/path]", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure && !isLoopback(u.Hostname()) {
			return nil, invalid("base URL %q: plain http to a non-loopback host needs WithAllowInsecure(true)", u.Redacted())
		}
	default:
		return nil, invalid("base URL %q: scheme must be https or http", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultHTTPClient keeps many idle connections to the one host the client talks to.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
		// One host, many concurrent sagas: cap the connections and keep them all idle-ready,
		// so bursts reuse connections instead of opening (and TLS-handshaking) new ones.
		MaxConnsPerHost:       MaxConnsPerHost,
		MaxIdleConns:          MaxConnsPerHost,
		MaxIdleConnsPerHost:   MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// noRedirects returns a copy of hc that never follows a redirect: a 3xx answer comes back
// as it is, and send refuses it. Following one would re-send the token form (client
// secret included) or the access token to wherever the Location points. The caller's
// client is copied, not changed.
func noRedirects(hc *http.Client) *http.Client {
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// String describes the client without secrets.
func (c *Client) String() string {
	creds := "missing"
	if c.hasCredentials() {
		creds = "set"
	}
	return fmt.Sprintf("partnerclient.Client{base: %s, client_id: %q, credentials: %s}", c.base.Redacted(), c.clientID, creds)
}

// stats returns the request counters.
func (c *Client) stats() stats {
	s := stats{
		TokenRequests:  c.calls[EndpointToken].Load(),
		TokenRefreshes: c.tokenRefreshes.Load(),
		Calls:          make(map[Endpoint]int64, len(c.calls)),
	}
	for ep, n := range c.calls {
		s.Calls[ep] = n.Load()
	}
	return s
}

func (c *Client) hasCredentials() bool { return c.clientID != "" && c.clientSecret != "" }

// acquire waits for a free call slot (see WithMaxInFlight) and returns its release.
func (c *Client) acquire(ctx context.Context, ep Endpoint) (release func(), err error) {
	if c.slots == nil {
		return func() {}, nil
	}
	select {
	case c.slots <- struct{}{}:
		return c.release, nil
	case <-ctx.Done():
		return nil, &Error{Endpoint: ep, Err: ctx.Err()}
	}
}

func (c *Client) release() { <-c.slots }

// inFlight returns the calls holding a slot.
func (c *Client) inFlight() int { return len(c.slots) }

// withTimeout applies the per-call timeout; the caller's earlier deadline still wins.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.requestTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.requestTimeout)
}

// request is one HTTP request to the API.
type request struct {
	ep          Endpoint
	method      string
	path        string // escaped
	query       url.Values
	body        []byte
	contentType string
	auth        string // Authorization header value; empty for token calls
}

// response is the successful answer of one request.
type response struct {
	result    []byte // the envelope's result
	status    int
	envStatus int // the envelope's status, 0 if absent
	requestID string
}

// send performs one HTTP request and returns the envelope's result, or an *Error. It
// never retries.
func (c *Client) send(ctx context.Context, r request) (resp response, err error) {
	start := time.Now()
	var env envelope
	var span trace.Span // nil unless traced
	defer func() {
		c.logRequest(r.ep, start, resp.status, env, err)
		if span != nil {
			endSpan(span, resp.status, env, err)
		}
	}()

	if err := c.limiter.Wait(ctx); err != nil {
		return resp, &Error{Endpoint: r.ep, Err: err}
	}
	c.calls[r.ep].Add(1)
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path // r.path is escaped
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return resp, &Error{Endpoint: r.ep, Err: err}
	}
	u.RawQuery = r.query.Encode()
	if c.tracer != nil {
		ctx, span = c.startSpan(ctx, r, &u)
	}
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) }}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.method, u.String(), body)
	if err != nil {
		return resp, &Error{Endpoint: r.ep, Err: err}
	}
	req.Header = c.header(ctx, r)
	hresp, err := c.hc.Do(req)
	if err != nil {
		return resp, &Error{Endpoint: r.ep, Sent: sent.Load(), Err: c.redactErr(err)}
	}
	defer hresp.Body.Close()
	resp.status = hresp.StatusCode
	e := &Error{
		Endpoint:   r.ep,
		StatusCode: hresp.StatusCode,
		RetryAfter: parseRetryAfter(hresp.Header.Get("Retry-After"), c.now()),
		Sent:       true,
	}
	if hresp.StatusCode >= 300 && hresp.StatusCode < 400 {
		_, _ = io.Copy(io.Discard, io.LimitReader(hresp.Body, 4<<10)) // let the connection be reused
		e.Err = &redirectError{target: c.redactLocation(hresp)}
		return resp, e
	}
	raw, err := readBody(hresp)
	if err != nil {
		e.Err = fmt.Errorf("read body: %w", c.redactErr(err))
		return resp, e
	}
	env, err = decodeEnvelope(raw)
	if err != nil {
		e.Err = err
		return resp, e
	}
	e.RequestID = string(env.RequestID)
	e.EnvelopeStatus = int(env.Status)
	if env.Code != CodeSuccess {
		e.Code = c.redact(string(env.Code))
		e.Message = c.redact(string(env.DetailMessage))
		if len(env.Result) > 0 {
			e.Result = []byte(c.redact(string(env.Result)))
		}
		return resp, e
	}
	resp.result = env.Result
	resp.envStatus = int(env.Status)
	resp.requestID = string(env.RequestID)
	return resp, nil
}

// redirectError is the cause of an *Error whose answer was a redirect; it wraps ErrRedirect
// and names the target.
type redirectError struct{ target string }

func (r *redirectError) Error() string {
	return "redirect to " + r.target + " refused: fulfil only talks to the configured partner origin"
}

func (r *redirectError) Unwrap() error { return ErrRedirect }

// maxLocation bounds the redirect target quoted in an error.
const maxLocation = 200

// redactLocation returns a redirect's target for an error message: resolved against the
// request, without user info or query (either may carry a credential, escaped or not), with
// any secret or token removed, and at most maxLocation bytes.
func (c *Client) redactLocation(resp *http.Response) string {
	loc, err := resp.Location()
	var s string
	switch {
	case err == nil:
		u := *loc
		u.User, u.Fragment, u.RawFragment = nil, "", ""
		if u.RawQuery != "" || u.ForceQuery {
			u.RawQuery, u.ForceQuery = "…", false
		}
		s = u.String()
	case errors.Is(err, http.ErrNoLocation):
		return "(no Location)"
	default:
		s = strconv.Quote(resp.Header.Get("Location"))
	}
	s = c.redact(s)
	if len(s) > maxLocation {
		s = s[:maxLocation] + "…"
	}
	return s
}

// readBody reads at most maxBody bytes of a response body, in one buffer of the announced
// length when there is one (io.ReadAll would grow its buffer several times for a catalogue).
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxBody))
}

// header returns the request's headers. The values share one backing array (each capped to its
// own element), and the keys are canonical already: a few allocations per call instead of one
// per header.
func (c *Client) header(ctx context.Context, r request) http.Header {
	const n = 5
	vals := make([]string, 0, n)
	h := make(http.Header, n)
	set := func(k, v string) {
		if v == "" {
			return
		}
		vals = append(vals, v)
		i := len(vals)
		h[k] = vals[i-1 : i : i]
	}
	set("User-Agent", c.userAgent)
	set("Accept", "application/json")
	set("Content-Type", r.contentType)
	set("Authorization", r.auth)
	set("Traceparent", outgoingTraceParent(ctx))
	return h
}

// decodeResult runs a decoder on a successful response, reporting tolerated drift to the
// client. A failure is an *Error with the response's status, so that Classify sees a 2xx
// whose body could not be read.
func decodeResult[T any](c *Client, ep Endpoint, resp response, decode func(json.RawMessage, driftSink) (T, error)) (T, error) {
	v, err := decode(resp.result, driftSink{ep: ep, rec: &c.drift})
	if err != nil {
		var zero T
		return zero, &Error{Endpoint: ep, StatusCode: resp.status, EnvelopeStatus: resp.envStatus, Code: CodeSuccess, RequestID: resp.requestID, Sent: true, Err: err}
	}
	return v, nil
}

func (c *Client) logRequest(ep Endpoint, start time.Time, status int, env envelope, err error) {
	if c.observe != nil {
		c.observe(CallInfo{Endpoint: ep, StatusCode: status, Code: string(env.Code), Duration: time.Since(start), Err: err})
	}
	ce := c.log.Check(zap.DebugLevel, "partner request")
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("endpoint", string(ep)),
		zap.Int("status", status),
		zap.String("code", c.redact(string(env.Code))),
		zap.String("request_id", string(env.RequestID)),
		zap.Duration("duration", time.Since(start)),
	}
	if err != nil {
		fields = append(fields, zap.String("error", err.Error()))
	}
	ce.Write(fields...)
}

// redact removes the secret and the current tokens from text the server sent back.
func (c *Client) redact(s string) string {
	for _, secret := range c.secrets() {
		if secret != "" && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// redactErr hides secrets in a transport error, which is rare but costs nothing to check.
func (c *Client) redactErr(err error) error {
	if msg := err.Error(); c.redact(msg) != msg {
		return redactedError{msg: c.redact(msg), err: err}
	}
	return err
}

func (c *Client) secrets() []string {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	s := []string{c.clientSecret}
	if c.tok != nil {
		s = append(s, c.tok.access, c.tok.refresh)
	}
	return s
}

// redactedError keeps the cause for errors.Is while printing a redacted message.
type redactedError struct {
	msg string
	err error
}

func (r redactedError) Error() string { return r.msg }
func (r redactedError) Unwrap() error { return r.err }
