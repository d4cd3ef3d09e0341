package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

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

// keepInProgress keeps the delivery in progress until stop is called or ctx ends: every
// AckWait/3 (or a third of the lease's TTL, when shorter) it signals InProgress, so that
// JetStream does not redeliver the request meanwhile, and, with a lease, renews the lease. A
// lease another worker took over stops the saga (stopSaga, with idempotency.ErrLeaseLost as
// the cause) and the keep-alive. It is the only place InProgress is signalled.
func (d *delivery) keepInProgress(ctx context.Context, lease *leaseGuard, stopSaga context.CancelCauseFunc) (stop func()) {
	interval := d.w.cfg.AckWait / 3
	if lease != nil && lease.ttl > 0 && lease.ttl/3 < interval {
		interval = lease.ttl / 3
	}
	// A timer rather than a goroutine per delivery: thousands of sagas in flight cost no
	// stacks while they wait.
	var (
		mu      sync.Mutex
		stopped bool
		timer   *time.Timer
	)
	tick := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			// Stopped, or the delivery is over without stopping us (a panic unwound it).
			stopped = true
			return
		}
		_ = d.msg.InProgress()
		if lease != nil {
			err := lease.renew(ctx)
			switch {
			case errors.Is(err, idempotency.ErrLeaseLost):
				if stopSaga != nil {
					stopSaga(err)
				}
				stopped = true
				return
			case err != nil && ctx.Err() == nil:
				d.log.Warn("lease renewal failed", zap.Error(err))
			}
		}
		timer.Reset(interval)
	}
	mu.Lock()
	timer = time.AfterFunc(interval, tick)
	mu.Unlock()
	return func() {
		mu.Lock() // waits for a renewal in progress
		stopped = true
		timer.Stop()
		mu.Unlock()
	}
}
