package worker

import (
	"context"
	"sync"
	"time"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/workflow"
)

// leaseGuard serialises the writes of one delivery to its idempotency record (checkpoints from
// the saga, renewals from the keep-alive) and implements workflow.Checkpointer.
type leaseGuard struct {
	mu  sync.Mutex
	h   *idempotency.Handle
	ttl time.Duration
}

var (
	_ workflow.Checkpointer = (*leaseGuard)(nil)
	_ workflow.Fenced       = (*leaseGuard)(nil)
)

// SendDeadline is when the lease, as last written, has a fifth of its time left: a side
// effect started before then ends (or is abandoned) before a successor may take over.
func (l *leaseGuard) SendDeadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.Lease().Expires.Add(-l.ttl / 5)
}

// Checkpoint stores the saga state; it fails with idempotency.ErrLeaseLost once another
// worker took the key over.
func (l *leaseGuard) Checkpoint(ctx context.Context, st *workflow.State) error {
	b, err := st.Encode()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.SaveState(context.WithoutCancel(ctx), b)
}

func (l *leaseGuard) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.Renew(ctx)
}

func (l *leaseGuard) release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.Release(ctx)
}

// finish stores the outcome together with the final state (nil: keep the last checkpoint).
func (l *leaseGuard) finish(ctx context.Context, st *workflow.State, status idempotency.Status, typ string, outcome []byte, seq uint64) error {
	var state []byte
	if st != nil {
		var err error
		if state, err = st.Encode(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.FinishWithState(ctx, state, status, typ, outcome, seq)
}
