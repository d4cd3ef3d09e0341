package worker

import (
	"context"
	"errors"
	"time"
)

// StoreProbeAfter is how long CheckStore trusts the idempotency store's last successful write
// before it writes a probe.
const StoreProbeAfter = 5 * time.Second

// CheckStore reports whether the idempotency store takes writes (after Setup): nil when its
// most recent write succeeded, else an error naming the bucket and the write error, such as a
// timeout or JetStream's "insufficient storage". When no write succeeded within
// StoreProbeAfter, or the last one failed, it first writes a probe (bounded to 2s), so an
// idle worker notices a broken store and a recovered one is noticed at once. A worker whose
// store cannot write makes no progress: every saga checkpoints before its next step.
func (w *Worker) CheckStore(ctx context.Context) error {
	if w.store == nil {
		return errors.New("idempotency store not set up")
	}
	return w.store.CheckWrites(ctx, StoreProbeAfter)
}
