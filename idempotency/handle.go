package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handle is one owner's lease on one key, returned by Store.Acquire. Every write is a
// compare-and-set on the last revision the handle knows, and fails with ErrLeaseLost once
// another owner took the key over. An expired lease still writes as long as nobody took over:
// what fences a stale owner is the takeover, not the clock. A Handle is not safe for
// concurrent use; serialise its writes (a saga's checkpoints and a keep-alive's renewals) with
// a mutex.
type Handle struct {
	s   *Store
	k   string // encoded KV key
	rec Record
	rev uint64
}

// Record returns a copy of the record as last written or read by the handle.
func (h *Handle) Record() Record { return h.rec.clone() }

// Epoch returns the lease epoch the handle holds.
func (h *Handle) Epoch() uint64 { return h.rec.Lease.Epoch }

// Lease returns the lease as last written.
func (h *Handle) Lease() Lease { return h.rec.Lease }

// Deliveries returns the times an owner acquired the key, this one included.
func (h *Handle) Deliveries() int { return h.rec.Deliveries }

// State returns the saga checkpoint as last written. The caller must not modify it.
func (h *Handle) State() json.RawMessage { return h.rec.State }

// Update applies fn to a copy of the record and writes the result, extending the lease to
// now+LeaseTTL. The store sets Key, Lease and UpdatedAt itself; fn must not rely on changing
// them. The copy shares its byte slices (Request, State, Outcome) with the handle: fn may
// replace them but must not modify them in place. If the record changed since the handle last saw it, Update re-reads it: when the lease
// is still the handle's (same owner and epoch) it applies fn to the fresh record and tries
// again; otherwise it fails with an error matching ErrLeaseLost and writes nothing. An error
// from fn is returned as is and nothing is written. After too many lost races Update fails
// with ErrContended.
func (h *Handle) Update(ctx context.Context, fn func(*Record) error) error {
	return h.write(ctx, fn, h.s.cfg.LeaseTTL)
}

// SaveState stores the saga's checkpoint and extends the lease. The handle keeps state: the
// caller must not modify it afterwards. It fails like Update.
func (h *Handle) SaveState(ctx context.Context, state json.RawMessage) error {
	return h.Update(ctx, func(r *Record) error {
		r.State = state
		return nil
	})
}

// Renew extends the lease to now+LeaseTTL. It fails like Update.
func (h *Handle) Renew(ctx context.Context) error {
	return h.Update(ctx, nil)
}

// Finish records the terminal outcome: status (StatusCompleted or StatusFailed), the event
// type and JSON as published, and the stream sequence of the request message that produced it.
// The lease ends with it. Finish is the handle's last write; calling it again with the same
// outcome (after an unknown result) is harmless. It fails like Update.
func (h *Handle) Finish(ctx context.Context, status Status, outcomeType string, outcome json.RawMessage, seq uint64) error {
	return h.FinishWithState(ctx, nil, status, outcomeType, outcome, seq)
}

// FinishWithState is Finish that also stores the saga's final checkpoint, in the same write.
// The handle keeps state and outcome: the caller must not modify them afterwards.
func (h *Handle) FinishWithState(ctx context.Context, state json.RawMessage, status Status, outcomeType string, outcome json.RawMessage, seq uint64) error {
	if status != StatusCompleted && status != StatusFailed {
		return fmt.Errorf("idempotency: finish %q: status %q is not terminal", h.rec.Key, status)
	}
	return h.write(ctx, func(r *Record) error {
		if state != nil {
			r.State = state
		}
		r.Status = status
		r.OutcomeType = outcomeType
		r.Outcome = outcome
		r.OutcomeSeq = seq
		return nil
	}, 0)
}

// Release ends the lease now, so that another owner may acquire the key at once (for example
// before a negative acknowledgement) instead of waiting for it to expire. The handle can still
// write while nobody else has taken over. It fails like Update.
func (h *Handle) Release(ctx context.Context) error {
	return h.write(ctx, nil, 0)
}

// write is Update with the lease extended by leaseTTL (0 ends it now).
func (h *Handle) write(ctx context.Context, fn func(*Record) error, leaseTTL time.Duration) error {
	owner, epoch := h.rec.Lease.Owner, h.rec.Lease.Epoch
	for range maxAttempts {
		next := h.rec // shares bytes that are replaced, never modified, so no copy
		if fn != nil {
			if err := fn(&next); err != nil {
				return err
			}
		}
		now := h.s.now()
		next.Key = h.rec.Key
		next.Lease = Lease{Owner: owner, Epoch: epoch, Expires: now.Add(leaseTTL)}
		next.UpdatedAt = now
		rev, err := h.s.put(ctx, h.k, next, h.rev)
		if err == nil {
			h.rec, h.rev = next, rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("idempotency: write %q: %w", h.rec.Key, err)
		}
		cur, rev, err := h.s.get(ctx, h.k)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: record of %q is gone", ErrLeaseLost, h.rec.Key)
		}
		if err != nil {
			return err
		}
		if cur.Lease.Owner != owner || cur.Lease.Epoch != epoch {
			return fmt.Errorf("%w: %q taken over by %s (epoch %d, ours %d)", ErrLeaseLost, h.rec.Key, cur.Lease.Owner, cur.Lease.Epoch, epoch)
		}
		h.rec, h.rev = cur, rev // our own earlier write, e.g. one whose reply was lost
	}
	return fmt.Errorf("write %q: %w", h.rec.Key, ErrContended)
}
