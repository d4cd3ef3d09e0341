package idempotency

import (
	"bytes"
	"encoding/json"
	"time"
)

// Status is the state of a key's saga.
type Status string

const (
	// StatusRunning means the saga has not ended; a lease holder may be working on it.
	StatusRunning Status = "running"
	// StatusCompleted means the saga ended with a completed outcome.
	StatusCompleted Status = "completed"
	// StatusFailed means the saga ended with a failed outcome.
	StatusFailed Status = "failed"
)

// Lease names the owner allowed to run a key. Epoch grows by one with every acquisition, so
// it tells the holders of one key apart even when the same owner acquires it twice.
type Lease struct {
	Owner   string    `json:"owner"`
	Epoch   uint64    `json:"epoch"`
	Expires time.Time `json:"expires"`
}

// Live reports whether the lease has not expired at now.
func (l Lease) Live(now time.Time) bool { return now.Before(l.Expires) }

// Record is what the store keeps for one idempotency key.
type Record struct {
	Key         string          `json:"key"`
	SagaID      string          `json:"sagaId"`
	Fingerprint string          `json:"fingerprint"`
	Request     json.RawMessage `json:"request"` // the normalized request JSON
	Status      Status          `json:"status"`
	Lease       Lease           `json:"lease"`
	Deliveries  int             `json:"deliveries"`      // times an owner acquired the key
	State       json.RawMessage `json:"state,omitempty"` // saga checkpoint, opaque here
	// OutcomeType is the event type of the terminal outcome.
	OutcomeType string `json:"outcomeType,omitempty"`
	// Outcome is the terminal event JSON as first published.
	Outcome json.RawMessage `json:"outcome,omitempty"`
	// OutcomeSeq is the stream sequence of the request message that produced the outcome.
	OutcomeSeq uint64 `json:"outcomeSeq,omitempty"`
	// Reopened counts the times a failed outcome was set aside by Reopen (a dead-letter replay).
	Reopened  int       `json:"reopened,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Finished reports whether the saga ended, with either status.
func (r Record) Finished() bool { return r.Status == StatusCompleted || r.Status == StatusFailed }

// clone returns a copy that shares no bytes with r.
func (r Record) clone() Record {
	r.Request = bytes.Clone(r.Request)
	r.State = bytes.Clone(r.State)
	r.Outcome = bytes.Clone(r.Outcome)
	return r
}
