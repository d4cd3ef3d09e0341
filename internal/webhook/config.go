package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/messages"
)

// Config configures webhook delivery. Zero fields take the defaults documented on each.
type Config struct {
	// Endpoints receive the events (at least one).
	Endpoints []Endpoint
	// Secrets sign every message (at least one; several during a rotation).
	Secrets []Secret
	// Progress also delivers progress events; otherwise only completed and failed.
	Progress bool
	// SubjectPrefix is the first token of every subject (default "fulfil").
	SubjectPrefix string
	// RetryPeriod is how long an event is retried, counted from the time it was stored in
	// the stream (or replayed), before it is dead-lettered (default 24h). It must not exceed
	// the events stream's maximum age, or events could be removed while they are retried.
	RetryPeriod time.Duration
	// Timeout bounds one request, connecting and reading the answer included (default 10s).
	Timeout time.Duration
	// FirstRetry is the delay after the first failed attempt; it doubles per attempt up to
	// MaxRetry (defaults 5s and 30m). Each delay varies by ±20 %.
	FirstRetry time.Duration
	MaxRetry   time.Duration
	// AckWait is the consumers' ack wait (default 30s); held events are kept in progress
	// every third of it.
	AckWait time.Duration
	// PinnedTTL is how long an endpoint stays pinned to a worker that stopped pulling
	// (default AckWait + 10s, so that a dead worker's events are redelivered before another
	// worker takes new ones).
	PinnedTTL time.Duration
	// MaxAckPending bounds the events of one endpoint held at once, in flight or waiting for
	// a retry (default 1000).
	MaxAckPending int
	// Concurrency bounds one endpoint's requests in flight from this process (default 16).
	Concurrency int
	// Replicas of the dead-letter stream (default 1).
	Replicas int
	// DeadLetterMaxAge is how long the dead-letter stream keeps an event (default 30 days).
	DeadLetterMaxAge time.Duration
	// DuplicateWindow is the dead-letter stream's Nats-Msg-Id window (default 2m).
	DuplicateWindow time.Duration
	// LagInterval is how often the lag gauge is refreshed (default 10s).
	LagInterval time.Duration
	// Client sends the requests (default: one with Timeout that follows no redirect).
	Client *http.Client
	// Logger receives JSON logs (default: none). URLs and secrets are never logged.
	Logger *zap.Logger
	// Metrics receives measurements (default: none).
	Metrics *metrics.Webhooks
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TracerProvider, when set, makes each POST a client span ("webhook POST"), child of the
	// event's traceparent, whose traceparent the request carries; nil records none.
	TracerProvider trace.TracerProvider
}

// TracerName is the instrumentation scope of the deliveries' spans.
const TracerName = "github.com/fulfil/fulfil/internal/webhook"

// SpanDelivery is the name of a delivery attempt's span.
const SpanDelivery = "webhook POST"

// Defaults.
const (
	DefaultRetryPeriod = 24 * time.Hour
	DefaultTimeout     = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = messages.DefaultSubjectPrefix
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.FirstRetry == 0 {
		c.FirstRetry = 5 * time.Second
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = 30 * time.Minute
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = c.AckWait + 10*time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DeadLetterMaxAge == 0 {
		c.DeadLetterMaxAge = 30 * 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.LagInterval == 0 {
		c.LagInterval = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = NewClient(c.Timeout)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("webhook: no endpoint"))
	}
	if len(c.Secrets) == 0 {
		errs = append(errs, errors.New("webhook: no secret"))
	}
	if c.RetryPeriod < 0 || c.Timeout < 0 || c.FirstRetry < 0 || c.MaxRetry < c.FirstRetry {
		errs = append(errs, fmt.Errorf("webhook: durations must be positive and MaxRetry at least FirstRetry"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("webhook: AckWait must be at least 1s, got %s", c.AckWait))
	}
	if c.PinnedTTL < c.AckWait {
		errs = append(errs, fmt.Errorf("webhook: PinnedTTL (%s) must be at least AckWait (%s)", c.PinnedTTL, c.AckWait))
	}
	if c.MaxAckPending < 1 || c.Concurrency < 1 {
		errs = append(errs, errors.New("webhook: MaxAckPending and Concurrency must be positive"))
	}
	return errors.Join(errs...)
}

// NewClient returns the HTTP client of webhook requests: timeout bounds each request, and
// redirects are not followed (a 3xx answer is a failed attempt).
func NewClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
