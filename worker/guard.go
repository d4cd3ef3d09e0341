package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// errStopping ends a wait before create order when the worker shuts down: the request is left
// to redelivery at once rather than holding up the drain.
var errStopping = errors.New("worker stopping")

// Guard is the workflow.Saga.Guard that New installs on a saga without one. It holds each
// create-order send back while the account is paused (`fulfil pause`) or a spend cap is
// reached, using the control bucket of the worker running the saga (found in ctx, which the
// worker gives the saga); outside a worker's delivery it lets every send through.
//
// While the saga waits, the worker keeps the request in progress and renews the key's lease as
// it does for any running saga, the delivery's MessageTimeout is suspended (a long pause spends
// no deliveries), and the wait ends at once when the worker shuts down. A saga with a Guard of
// its own may call Guard from it.
func Guard(ctx context.Context, key string, waiting func(reason string)) error {
	mc, _ := ctx.Value(msgClockKey{}).(*msgClock)
	if mc == nil || mc.w.guard == nil {
		return nil
	}
	w := mc.w
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if w.stopping != nil {
		stop := context.AfterFunc(w.stopping, func() { cancel(errStopping) })
		defer stop()
	}
	paused := false
	err := w.guard.Wait(gctx, key, func(reason string) {
		paused = mc.pause()
		w.log.Debug("create order waits", zap.String("idempotency_key", key), zap.String("reason", reason))
		if waiting != nil {
			waiting(reason)
		}
	})
	if paused {
		mc.resume()
	}
	if err != nil {
		if c := context.Cause(gctx); errors.Is(c, errStopping) {
			return c
		}
		return fmt.Errorf("waiting before create order: %w", err)
	}
	return nil
}

// msgClockKey carries a delivery's *msgClock in the saga's context.
type msgClockKey struct{}

// msgClock is a delivery's MessageTimeout: a timer that cancels the delivery's context, and
// that a wait before create order suspends.
type msgClock struct {
	w       *Worker
	timeout time.Duration
	cancel  context.CancelCauseFunc

	mu     sync.Mutex
	timer  *time.Timer
	paused int
	fired  bool
}

// messageContext returns ctx bounded by MessageTimeout, which Guard suspends while a send
// waits for a resume or the next spend window; the wait restarts the timeout. On expiry the
// context's cause wraps context.DeadlineExceeded.
func (w *Worker) messageContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	mc := &msgClock{w: w, timeout: w.cfg.MessageTimeout, cancel: cancel}
	expired := fmt.Errorf("message timeout (%s): %w", w.cfg.MessageTimeout, context.DeadlineExceeded)
	mc.mu.Lock()
	mc.timer = time.AfterFunc(mc.timeout, func() {
		mc.mu.Lock()
		mc.fired = true
		mc.mu.Unlock()
		cancel(expired)
	})
	mc.mu.Unlock()
	return context.WithValue(ctx, msgClockKey{}, mc), func() {
		mc.mu.Lock()
		mc.timer.Stop()
		mc.mu.Unlock()
		cancel(context.Canceled)
	}
}

// pause suspends the timeout; it reports whether the caller must resume it.
func (mc *msgClock) pause() bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.fired {
		return false
	}
	if mc.paused == 0 {
		mc.timer.Stop()
	}
	mc.paused++
	return true
}

// resume restarts the timeout with its full length.
func (mc *msgClock) resume() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.paused--
	if mc.paused == 0 && !mc.fired {
		mc.timer.Reset(mc.timeout)
	}
}
