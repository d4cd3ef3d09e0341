package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// probeKey is the record the write probe overwrites. Its '.' keeps it apart from every
// idempotency key's record: EncodeKey never yields one. List skips it.
const probeKey = "_probe.write"

// probeTimeout bounds one probe write.
const probeTimeout = 2 * time.Second

// writeHealth remembers the outcome of the store's last write.
type writeHealth struct {
	mu      sync.Mutex
	lastOK  time.Time // the last write the bucket acknowledged
	err     error     // the last write's error; nil once a write succeeds again
	errAt   time.Time
	since   time.Time // when writes started failing
	probing sync.Mutex
}

// WriteError is the error the store's writes have failed with since Since. A store that cannot
// write cannot record an order intent, so no purchase can progress.
type WriteError struct {
	Bucket string
	Since  time.Time // the first failed write of the current run of failures
	At     time.Time // the last failed write
	Err    error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("bucket %s: writes failing since %s: %v", e.Bucket, e.Since.Format(time.RFC3339), e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// observe records the outcome of one write to the bucket. A lost compare-and-set race or an
// existing key is an answer of a working bucket; a write the caller cancelled says nothing.
func (s *Store) observe(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h := &s.health
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		h.lastOK, h.err = now, nil
		return
	}
	if h.err == nil {
		h.since = now
	}
	h.err, h.errAt = err, now
}

// WriteErr returns a *WriteError when the store's most recent write (a saga's or a probe's)
// failed, and nil when it succeeded or none was made.
func (s *Store) WriteErr() error {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return &WriteError{Bucket: s.cfg.Bucket, Since: h.since, At: h.errAt, Err: h.err}
}

// Probe writes a small record to the bucket (one key shared by all workers, overwritten each
// time) and returns the write's error. Its outcome counts for WriteErr like any other write.
func (s *Store) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	b, _ := json.Marshal(struct {
		At time.Time `json:"at"`
	}{s.now()})
	_, err := s.kv.Put(ctx, probeKey, b)
	s.observe(err)
	if err != nil {
		return fmt.Errorf("idempotency: probe write to %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

// CheckWrites reports whether the bucket takes writes: it writes a probe when the last write
// failed or no write succeeded within fresh, then returns WriteErr. Concurrent calls share
// one probe.
func (s *Store) CheckWrites(ctx context.Context, fresh time.Duration) error {
	h := &s.health
	h.probing.Lock()
	defer h.probing.Unlock()
	h.mu.Lock()
	stale := h.err != nil || time.Since(h.lastOK) > fresh
	h.mu.Unlock()
	if stale {
		_ = s.Probe(ctx)
	}
	return s.WriteErr()
}
