package worker

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/messages"
)

// Config configures a Worker. Zero fields take the defaults documented on each field.
type Config struct {
	// SubjectPrefix is the first token of every subject (default "fulfil").
	SubjectPrefix string
	// Concurrency is the number of sagas in flight in this process (default 64).
	Concurrency int
	// MaxStarting bounds the deliveries that decode their request and take its key at once
	// (default 256); the others wait, cheaply, in arrival order. A burst of thousands of
	// requests then starts at the pace the idempotency store answers, instead of parking
	// thousands of goroutines deep inside the NATS client at the same moment.
	MaxStarting int
	// Durable is the name of the shared pull consumer (default "fulfil-worker").
	Durable string
	// AckWait is the consumer's ack wait (default 60s). A running saga signals InProgress every
	// AckWait/3.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one request (default 10); the last one always ends in a
	// result event.
	MaxDeliver int
	// MaxAckPending bounds unacknowledged requests across all workers (default 16384).
	MaxAckPending int
	// NakDelay is the first redelivery delay after transient trouble; it doubles per delivery
	// up to MaxNakDelay (defaults 2s and 1m).
	NakDelay    time.Duration
	MaxNakDelay time.Duration
	// MessageTimeout bounds one delivery's work (default 2m).
	MessageTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for in-flight sagas after its ctx ends (default 30s).
	ShutdownTimeout time.Duration
	// DuplicateWindow is the requests and events streams' Nats-Msg-Id window (default 2m). It only
	// catches quick duplicates; the idempotency bucket remembers keys for Idempotency.TTL.
	DuplicateWindow time.Duration
	// EventsMaxAge is how long the events stream keeps events (default 30 days).
	EventsMaxAge time.Duration
	// Replicas of the streams (default 1; use 3 on a cluster). Idempotency.Replicas defaults to it.
	Replicas int
	// Idempotency configures the per-key store. Its TTL (key retention) must be at least
	// MinKeyRetention.
	Idempotency idempotency.Config
	// Control configures the control bucket shared by all workers: the pause flag
	// (`fulfil pause`) and the spend caps that every create-order send waits for.
	Control ControlConfig
	// Repair lets Setup overwrite existing streams, consumer and bucket whose settings break the
	// guarantees, instead of refusing to start.
	Repair bool
	// WorkerID names this process in leases and logs (default host-pid-random).
	WorkerID string
	// Logger receives JSON logs (default: none).
	Logger *zap.Logger
	// Metrics receives measurements (default: none).
	Metrics *metrics.Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ControlConfig configures the control bucket and the guard before create order.
type ControlConfig struct {
	// Bucket is the control bucket (default control.DefaultBucket, "FULFIL_CONTROL"). Its
	// replicas and storage follow the idempotency bucket's.
	Bucket string
	// MaxOrdersPerHour and MaxOrdersPerDay cap the create-order sends of the whole account in
	// one UTC hour and one UTC day, counted across all workers; 0 (the default) means no cap.
	// A send over a cap waits for the next window; the purchase is not failed.
	MaxOrdersPerHour int
	MaxOrdersPerDay  int
	// Recheck is how often a send held back by a cap looks at the counters again (default 30s).
	Recheck time.Duration
	// Now is the clock of the spend windows (default Config.Now).
	Now func() time.Time
}

// Limits below which existing settings break the guarantees.
const (
	// MinKeyRetention is the shortest idempotency-key retention fulfil accepts.
	MinKeyRetention = 24 * time.Hour
	// MinEventsMaxAge is the shortest time fulfil keeps events (and dead letters) for.
	MinEventsMaxAge = time.Hour
	// MinDuplicateWindow is the shortest Nats-Msg-Id window fulfil accepts on its streams.
	MinDuplicateWindow = 30 * time.Second
	// MaxMaxDeliver bounds the consumer's MaxDeliver: unlimited redelivery is refused.
	MaxMaxDeliver = 1000
)

func (c Config) withDefaults() Config {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = messages.DefaultSubjectPrefix
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Durable == "" {
		c.Durable = "fulfil-worker"
	}
	if c.AckWait == 0 {
		c.AckWait = 60 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 16384
	}
	if c.MaxStarting == 0 {
		c.MaxStarting = 256
	}
	if c.NakDelay == 0 {
		c.NakDelay = 2 * time.Second
	}
	if c.MaxNakDelay == 0 {
		c.MaxNakDelay = time.Minute
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = 2 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = 30 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Idempotency.Replicas == 0 {
		c.Idempotency.Replicas = c.Replicas
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Check applies the defaults, then validates: what New would say of c, without starting
// anything.
func (c Config) Check() error { return c.withDefaults().Validate() }

// Validate reports every invalid setting of c (after defaults).
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Concurrency > 0, "concurrency must be positive, got %d", c.Concurrency)
	check(c.AckWait >= time.Second, "ack wait must be at least 1s, got %s", c.AckWait)
	check(c.MaxDeliver >= 2, "max deliver must be at least 2 (unlimited redelivery is not allowed), got %d", c.MaxDeliver)
	check(c.MaxStarting >= 1, "max starting (%d) must be positive", c.MaxStarting)
	check(c.MaxAckPending >= c.Concurrency, "max ack pending (%d) must be at least the concurrency (%d)", c.MaxAckPending, c.Concurrency)
	check(c.NakDelay > 0 && c.MaxNakDelay >= c.NakDelay, "nak delays must be positive and max >= first")
	check(c.MessageTimeout > 0, "message timeout must be positive")
	check(c.DuplicateWindow >= MinDuplicateWindow, "duplicate window %s is shorter than %s", c.DuplicateWindow, MinDuplicateWindow)
	check(c.EventsMaxAge >= MinEventsMaxAge && c.EventsMaxAge >= c.DuplicateWindow,
		"events max age %s is shorter than %s or than the duplicate window", c.EventsMaxAge, MinEventsMaxAge)
	check(c.MaxDeliver <= MaxMaxDeliver, "max deliver %d is above %d", c.MaxDeliver, MaxMaxDeliver)
	check(c.Replicas >= 1 && c.Replicas <= 5, "replicas must be 1..5, got %d", c.Replicas)
	check(validToken(c.SubjectPrefix), "subject prefix %q must be one NATS token of letters, digits, '-' or '_'", c.SubjectPrefix)
	check(validToken(c.Durable), "durable name %q must be letters, digits, '-' or '_'", c.Durable)
	check(c.Idempotency.TTL == 0 || c.Idempotency.TTL >= MinKeyRetention,
		"key retention %s is shorter than %s: a purchase could be bought again when its key is forgotten", c.Idempotency.TTL, MinKeyRetention)
	check(c.Control.MaxOrdersPerHour >= 0, "max orders per hour must be 0 (no cap) or positive, got %d", c.Control.MaxOrdersPerHour)
	check(c.Control.MaxOrdersPerDay >= 0, "max orders per day must be 0 (no cap) or positive, got %d", c.Control.MaxOrdersPerDay)
	check(c.Control.Bucket == "" || validToken(c.Control.Bucket), "control bucket %q must be letters, digits, '-' or '_'", c.Control.Bucket)
	check(c.Control.Bucket == "" || c.Control.Bucket != c.Idempotency.Bucket, "the control bucket must not be the idempotency bucket")
	check(c.Idempotency.LeaseTTL == 0 || c.Idempotency.LeaseTTL >= 500*time.Millisecond, "lease TTL must be at least 500ms")
	return errors.Join(errs...)
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
