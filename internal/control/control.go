// Package control is the account-wide control state that every fulfil worker shares, kept in a
// JetStream KV bucket of its own (FULFIL_CONTROL): the pause flag (`fulfil pause`), the spend
// counters behind the order caps, and the audit sweep's lease and last summary.
//
// A Guard watches the pause flag and reserves spend before each create-order send; it is what
// the worker installs as workflow.Saga.Guard.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the name of the control bucket.
const DefaultBucket = "FULFIL_CONTROL"

// Keys of the control bucket.
const (
	keyPause       = "pause"
	keyAuditLease  = "audit.lease"
	keyAuditLast   = "audit.last"
	spendKeyPrefix = "spend."
)

// Config configures a Control. Zero fields take the defaults given beside them.
type Config struct {
	// Bucket is the KV bucket (default DefaultBucket).
	Bucket string
	// Replicas of the bucket (default 1; 3 on a cluster), like the idempotency bucket.
	Replicas int
	// Storage of the bucket (default file storage: a pause must survive a restart).
	Storage jetstream.StorageType
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Control reads and writes the control bucket. It is safe for concurrent use.
type Control struct {
	kv  jetstream.KeyValue
	cfg Config
}

func kvConfig(cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "fulfil: account-wide control (pause flag, spend counters, audit lease)",
		History:     1,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	}
}

// Open creates the bucket or updates its configuration (what a worker does at start-up) and
// returns a Control on it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Control, error) {
	cfg = cfg.withDefaults()
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("control: open bucket %s: %w", cfg.Bucket, err)
	}
	return &Control{kv: kv, cfg: cfg}, nil
}

// Ensure binds to the bucket, creating it when it does not exist yet but leaving an existing
// bucket's settings alone (what the command-line tools do: `fulfil pause` must work before the
// first worker started).
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (*Control, error) {
	cfg = cfg.withDefaults()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, kvConfig(cfg))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("control: bucket %s: %w", cfg.Bucket, err)
	}
	return &Control{kv: kv, cfg: cfg}, nil
}

// Bind binds to an existing bucket without creating or changing it (read-only tools). It
// returns an error matching jetstream.ErrBucketNotFound when there is none.
func Bind(ctx context.Context, js jetstream.JetStream, cfg Config) (*Control, error) {
	cfg = cfg.withDefaults()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("control: bucket %s: %w", cfg.Bucket, err)
	}
	return &Control{kv: kv, cfg: cfg}, nil
}

// Bucket returns the bucket's name.
func (c *Control) Bucket() string { return c.cfg.Bucket }

func (c *Control) now() time.Time { return c.cfg.Now().UTC().Round(0) }

// Pause is the pause flag: while Paused, no worker sends create order.
type Pause struct {
	Paused bool `json:"paused"`
	// Reason is the operator's note (may be empty).
	Reason string `json:"reason,omitempty"`
	// By names who set the flag (user@host by default).
	By string `json:"by,omitempty"`
	// At is when the flag was last set (paused or resumed).
	At time.Time `json:"at"`
}

// Pause reads the pause flag; a flag never set reads as not paused.
func (c *Control) Pause(ctx context.Context) (Pause, error) {
	e, err := c.kv.Get(ctx, keyPause)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Pause{}, nil
	}
	if err != nil {
		return Pause{}, fmt.Errorf("control: read pause flag: %w", err)
	}
	return decodePause(e.Value())
}

func decodePause(b []byte) (Pause, error) {
	var p Pause
	if len(b) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Pause{}, fmt.Errorf("control: decode pause flag: %w", err)
	}
	return p, nil
}

// SetPause pauses (paused true) or resumes the account, recording by and reason with the
// current time, and returns the flag as it was before.
func (c *Control) SetPause(ctx context.Context, paused bool, by, reason string) (prev Pause, err error) {
	prev, err = c.Pause(ctx)
	if err != nil {
		return Pause{}, err
	}
	b, err := json.Marshal(Pause{Paused: paused, Reason: reason, By: by, At: c.now()})
	if err != nil {
		return Pause{}, err
	}
	if _, err := c.kv.Put(ctx, keyPause, b); err != nil {
		return Pause{}, fmt.Errorf("control: write pause flag: %w", err)
	}
	return prev, nil
}

// AuditSummary is what the last audit sweep found, stored for every worker's metrics and for
// `fulfil status`.
type AuditSummary struct {
	At       time.Time      `json:"at"`
	By       string         `json:"by"`
	Since    time.Time      `json:"since"`
	Complete bool           `json:"complete"`
	Orders   int            `json:"orders"`
	Sagas    int            `json:"sagas"`
	Counts   map[string]int `json:"counts"`
	Error    string         `json:"error,omitempty"`
}

// SaveAuditSummary stores s as the last sweep's summary.
func (c *Control) SaveAuditSummary(ctx context.Context, s AuditSummary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := c.kv.Put(ctx, keyAuditLast, b); err != nil {
		return fmt.Errorf("control: write audit summary: %w", err)
	}
	return nil
}

// LastAudit returns the last sweep's summary; ok is false when no sweep has run.
func (c *Control) LastAudit(ctx context.Context) (s AuditSummary, ok bool, err error) {
	e, err := c.kv.Get(ctx, keyAuditLast)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return AuditSummary{}, false, nil
	}
	if err != nil {
		return AuditSummary{}, false, fmt.Errorf("control: read audit summary: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return AuditSummary{}, false, fmt.Errorf("control: decode audit summary: %w", err)
	}
	return s, true, nil
}

// auditLease is the record of the last claimed sweep.
type auditLease struct {
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
}

// ClaimSweep reports whether owner may run the audit sweep now: when no sweep was claimed in
// the last every, it claims this one with a compare-and-set, so that across all workers one
// sweep runs per interval. A sweeper that dies mid-sweep leaves the next one to whoever
// claims it an interval later.
func (c *Control) ClaimSweep(ctx context.Context, owner string, every time.Duration) (bool, error) {
	now := c.now()
	b, err := json.Marshal(auditLease{Owner: owner, At: now})
	if err != nil {
		return false, err
	}
	e, err := c.kv.Get(ctx, keyAuditLease)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = c.kv.Create(ctx, keyAuditLease, b)
	case err != nil:
		return false, fmt.Errorf("control: read audit lease: %w", err)
	default:
		var l auditLease
		if json.Unmarshal(e.Value(), &l) == nil && now.Before(l.At.Add(every)) {
			return false, nil
		}
		_, err = c.kv.Update(ctx, keyAuditLease, b, e.Revision())
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isRevisionMismatch(err) {
		return false, nil // another worker claimed it first
	}
	if err != nil {
		return false, fmt.Errorf("control: claim audit sweep: %w", err)
	}
	return true, nil
}

// isRevisionMismatch reports a lost compare-and-set.
func isRevisionMismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
