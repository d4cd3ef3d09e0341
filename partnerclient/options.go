package partnerclient

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Version is the version of this client, sent in the default User-Agent.
const Version = "0.1.0"

// Defaults.
const (
	DefaultUserAgent          = "fulfil/" + Version + " (+https://github.com/fulfil/fulfil)"
	DefaultRateLimit          = 50 // requests per second
	DefaultRateBurst          = 100
	DefaultRequestTimeout     = 15 * time.Second
	DefaultTokenRefreshMargin = 60 * time.Second
	// DefaultMaxInFlight is the default bound on calls sent at once: the default transport's
	// connections.
	DefaultMaxInFlight = MaxConnsPerHost
)

// Option configures a Client. Options check their input; an error wraps ErrInvalidOption.
type Option func(*Client) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithCredentials sets the client ID and secret of the partner account. Without both,
// every call fails with ErrMissingCredentials.
func WithCredentials(clientID, clientSecret string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(clientID, "\r\n") {
			return invalid("client ID contains a line break")
		}
		c.clientID, c.clientSecret = clientID, clientSecret
		return nil
	}
}

// WithHTTPClient replaces the default HTTP client (a keep-alive transport tuned for
// many concurrent calls to one host). Its Timeout, if set, also bounds each request. The
// client uses a copy of hc whose CheckRedirect refuses every redirect (see ErrRedirect);
// hc itself is not changed.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return invalid("nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// WithUserAgent sets the User-Agent header the API requires (default DefaultUserAgent).
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if strings.TrimSpace(ua) == "" || strings.ContainsAny(ua, "\r\n") {
			return invalid("user agent %q", ua)
		}
		c.userAgent = ua
		return nil
	}
}

// WithRateLimit limits the requests sent (token calls included) to rps per second with
// bursts of burst. rps 0 means unlimited. The default is DefaultRateLimit, DefaultRateBurst.
// It replaces a limiter given with WithLimiter before it.
func WithRateLimit(rps float64, burst int) Option {
	return func(c *Client) error {
		if math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
			return invalid("rate %v per second", rps)
		}
		if rps > 0 && burst < 1 {
			return invalid("burst %d", burst)
		}
		c.rps, c.burst, c.limiter = rps, burst, nil
		return nil
	}
}

// Limiter paces the requests a Client sends: Wait blocks until the next request may go, or
// fails when ctx ends first. Limit and Burst report its current rate (rate.Inf: unlimited).
// A *rate.Limiter is one; it must be safe for concurrent use.
type Limiter interface {
	Wait(ctx context.Context) error
	Limit() rate.Limit
	Burst() int
}

// WithLimiter makes every request (token calls included) wait on l, a limiter the caller owns
// and may share or retune while the client runs, e.g. to hold the client to its part of a
// budget shared with other processes. It replaces WithRateLimit given before it (and is
// replaced by one given after it).
func WithLimiter(l Limiter) Option {
	return func(c *Client) error {
		if l == nil {
			return invalid("nil limiter")
		}
		c.limiter, c.rps, c.burst = l, 0, 0
		return nil
	}
}

// WithRequestTimeout bounds each call (its token request, its attempts and their
// bodies) unless the caller's context ends earlier. 0 disables it; the default is
// DefaultRequestTimeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return invalid("request timeout %v", d)
		}
		c.requestTimeout = d
		return nil
	}
}

// WithMaxInFlight bounds the calls in flight at once (default DefaultMaxInFlight; 0: no
// bound). A call past the bound waits for a free slot, in arrival order, before it builds its
// HTTP request and before its request timeout starts: thousands of callers then wait cheaply
// instead of each holding a request, its context and a goroutine deep inside the transport,
// and the timeout measures the partner rather than the queue in front of it. Token requests
// are not counted. Match it to the transport's connection cap when you replace the HTTP
// client (WithHTTPClient).
func WithMaxInFlight(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return invalid("max in flight %d", n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithTokenRefreshMargin makes the client refresh the access token this long before it
// expires (default DefaultTokenRefreshMargin), at most half the token's lifetime.
func WithTokenRefreshMargin(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return invalid("token refresh margin %v", d)
		}
		c.refreshMargin = d
		return nil
	}
}

// WithLogger logs every request at debug level: endpoint, HTTP status, code, request ID
// and duration. Tokens and the client secret are never logged. The default logs nothing.
func WithLogger(l *zap.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.log = l
		return nil
	}
}

// WithClock sets the clock used for token expiry and Retry-After dates (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return invalid("nil clock")
		}
		c.now = now
		return nil
	}
}

// WithAllowInsecure allows a plain http:// base URL on a host that is not a loopback
// address. Loopback http:// (for the simulator) is always allowed.
func WithAllowInsecure(allow bool) Option {
	return func(c *Client) error {
		c.allowInsecure = allow
		return nil
	}
}

// CallInfo describes one finished request, for metrics.
type CallInfo struct {
	Endpoint   Endpoint
	StatusCode int    // HTTP status, 0 without a response
	Code       string // envelope code
	Duration   time.Duration
	Err        error // nil on success
}

// WithObserver calls fn after every request (token calls included), synchronously: fn must be
// quick and safe for concurrent use. It never sees tokens or secrets.
func WithObserver(fn func(CallInfo)) Option {
	return func(c *Client) error {
		if fn == nil {
			return invalid("nil observer")
		}
		c.observe = fn
		return nil
	}
}
