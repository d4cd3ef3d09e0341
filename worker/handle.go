package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// delivery is one delivery of one request message.
type delivery struct {
	w        *Worker
	msg      jetstream.Msg
	seq      uint64
	seqText  string // seq in decimal, for the events' headers (set once: events are published concurrently)
	num      uint64
	last     bool
	key      string
	sagaID   string
	trace    string     // the traceparent of this delivery's work (trace.go)
	span     trace.Span // the saga span; nil when tracing is off or before start
	log      *zap.Logger
	received time.Time
}

// Handle processes one request message to its acknowledgement. It never panics on bad input
// and never returns an error: the functions below decide what the delivery amounts to (an
// outcome, outcome.go), and settle carries it out, once.
func (w *Worker) Handle(ctx context.Context, msg jetstream.Msg) {
	d := w.newDelivery(msg)
	defer d.endSpan()
	w.cfg.Metrics.InFlight(1)
	defer w.cfg.Metrics.InFlight(-1)
	defer d.recoverPanic()
	ctx, cancel := w.messageContext(ctx) // MessageTimeout, suspended while create order waits (guard.go)
	defer cancel()
	// The saga runs in runSaga, right below Handle: a saga spends most of its life waiting for
	// the partner or NATS, and the frames it waits on are kept small (work before and after
	// the saga lives in functions of its own), so that the runtime can shrink the stacks of
	// thousands of waiting sagas.
	if !d.waitStart(ctx) {
		d.settle(ctx, d.redeliver())
		return
	}
	req, h, o := d.start(ctx)
	if h != nil {
		o = d.runSaga(ctx, req, h)
	}
	d.settle(ctx, o)
}

// newDelivery reads msg's metadata and trace context.
func (w *Worker) newDelivery(msg jetstream.Msg) *delivery {
	d := &delivery{w: w, msg: msg, log: w.log, received: w.cfg.Now()}
	if md, err := msg.Metadata(); err == nil {
		d.seq = md.Sequence.Stream
		d.num = md.NumDelivered
		d.last = int(md.NumDelivered) >= w.cfg.MaxDeliver
	}
	d.seqText = strconv.FormatUint(d.seq, 10)
	d.trace = msg.Headers().Get(messages.HeaderTraceParent)
	if d.num > 1 {
		w.cfg.Metrics.Redelivered()
	}
	d.log = w.log.WithLazy(zap.Uint64("stream_seq", d.seq), zap.Uint64("delivery", d.num))
	return d
}

// recoverPanic turns a panic of the saga into a redelivery.
func (d *delivery) recoverPanic() {
	if r := recover(); r != nil {
		d.log.Error("saga panicked; request left to redelivery", zap.Any("panic", r), zap.Stack("stack"))
		d.settle(context.Background(), d.redeliver())
	}
}

// waitStart takes one of the worker's start slots (Config.MaxStarting), keeping the request in
// progress while it waits so that it is not redelivered meanwhile. It reports false when ctx
// ended first. start gives the slot back.
func (d *delivery) waitStart(ctx context.Context) bool {
	select {
	case d.w.starting <- struct{}{}:
		return true
	default:
	}
	stop := d.keepInProgress(ctx, nil, nil)
	defer stop()
	select {
	case d.w.starting <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// start decodes and validates the request and takes its key. It returns a nil handle, and the
// outcome, when the delivery may not run the saga (invalid, finished, conflicting, or left to
// redelivery).
func (d *delivery) start(ctx context.Context) (*messages.PurchaseRequest, *idempotency.Handle, outcome) {
	w := d.w
	slot := true
	release := func() {
		if slot {
			slot = false
			<-w.starting
		}
	}
	defer release()
	req, err := messages.DecodeRequest(d.msg.Data())
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		return nil, nil, d.invalid(err)
	}
	req = req.Normalize()
	d.key = req.IdempotencyKey
	d.sagaID = SagaID(d.key)
	d.startTrace(ctx)
	d.log = d.log.WithLazy(zap.String("idempotency_key", d.key), zap.String("saga_id", d.sagaID), zap.String("traceparent", d.trace))

	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, nil, d.retry(fmt.Errorf("encode request: %w", err), nil, nil)
	}
	owner := fmt.Sprintf("%s/%d/%d", w.cfg.WorkerID, d.seq, d.num)
	h, err := d.acquire(ctx, req.Fingerprint(), reqJSON, owner, release)
	release()
	if err != nil {
		return nil, nil, d.notAcquired(err)
	}
	if h.Deliveries() == 1 {
		w.cfg.Metrics.SagaStarted()
	}
	return &req, h, outcome{}
}

// acquire takes the key's lease, waiting (in progress) while another worker holds it. It
// calls release (the start slot) before it waits.
func (d *delivery) acquire(ctx context.Context, fingerprint string, reqJSON []byte, owner string, release func()) (*idempotency.Handle, error) {
	poll := 100 * time.Millisecond
	acquire := d.w.store.Acquire
	if d.msg.Headers().Get(messages.HeaderReplay) != "" {
		acquire = d.w.store.Reopen // an operator's replay runs a failed key again
	}
	stop := d.keepInProgress(ctx, nil, nil)
	defer stop()
	for {
		h, err := acquire(ctx, d.key, d.sagaID, fingerprint, reqJSON, owner)
		if !errors.Is(err, idempotency.ErrLeased) {
			return h, err
		}
		release()
		// Another delivery of this key is running: wait for it rather than burn a delivery.
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(poll):
		}
		if poll < time.Second {
			poll *= 2
		}
	}
}

// notAcquired is the outcome for a key that this delivery may not run.
func (d *delivery) notAcquired(err error) outcome {
	var fin *idempotency.FinishedError
	switch {
	case errors.As(err, &fin):
		return outcome{kind: outcomeReplay, rec: fin.Record}
	case errors.Is(err, idempotency.ErrConflict):
		return d.rejected(&workflow.Failure{
			Step:    messages.StepValidate,
			Reason:  messages.ReasonConflict,
			Message: "idempotency key was already used with a different request; the first request is unaffected. Use a new key for a new purchase",
		}, messageMsgID("conflict", d.key, d.seq))
	default:
		return d.retry(fmt.Errorf("acquire: %w", err), nil, nil)
	}
}

// runSaga runs the saga under the lease and returns its outcome.
func (d *delivery) runSaga(ctx context.Context, req *messages.PurchaseRequest, h *idempotency.Handle) outcome {
	lease := &leaseGuard{h: h, ttl: d.w.store.Config().LeaseTTL}
	st, err := workflow.DecodeState(lease.h.State())
	if err != nil {
		d.log.Error("checkpoint unreadable; starting the saga over is unsafe", zap.Error(err))
		return d.retry(err, lease, nil)
	}
	// The keep-alive stops the saga at once if another worker took the key over.
	sagaCtx, stopSaga := context.WithCancelCause(ctx)
	stop := d.keepInProgress(sagaCtx, lease, stopSaga)
	err = d.w.saga.Run(d.sagaContext(sagaCtx), req, st, lease, workflow.RunOptions{Observer: workflow.ObserverFunc(d.progress), Logger: d.log})
	stop()
	if cause := context.Cause(sagaCtx); errors.Is(cause, idempotency.ErrLeaseLost) {
		err = cause
	}
	stopSaga(nil)
	return d.conclude(lease, req, st, err)
}

// sagaContext carries the request's trace context (the saga span, when tracing is on) to the
// saga.
func (d *delivery) sagaContext(ctx context.Context) context.Context {
	return d.traceContext(ctx)
}

// conclude is the outcome of the saga's result.
func (d *delivery) conclude(lease *leaseGuard, req *messages.PurchaseRequest, st *workflow.State, err error) outcome {
	var f *workflow.Failure
	switch {
	case err == nil:
		ev := st.Completed(d.header(), int64(req.ProductID))
		return d.done(lease, st, &ev)
	case errors.As(err, &f):
		ev := f.Event(d.header())
		return d.done(lease, st, &ev)
	case errors.Is(err, idempotency.ErrLeaseLost):
		return d.leaseLost(err, "lease lost to another worker; leaving the request to it")
	default:
		return d.retry(err, lease, st)
	}
}

// invalid is the outcome of a request that failed decoding or validation: not recorded, so the
// key stays free.
func (d *delivery) invalid(verr error) outcome {
	key := messages.PeekKey(d.msg.Data())
	if key == "" {
		return terminate(DeadLetterNoKey, zapcore.WarnLevel, "request without a readable idempotency key terminated", verr)
	}
	d.key, d.sagaID = key, SagaID(key)
	d.log = d.log.With(zap.String("idempotency_key", d.key), zap.String("saga_id", d.sagaID))
	return d.rejected(&workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonInvalidRequest, Message: verr.Error()},
		messageMsgID("invalid", d.key, d.seq))
}

func (w *Worker) nakDelay(delivered uint64) time.Duration {
	d := w.cfg.NakDelay
	for i := uint64(1); i < delivered && d < w.cfg.MaxNakDelay; i++ {
		d *= 2
	}
	if d > w.cfg.MaxNakDelay {
		d = w.cfg.MaxNakDelay
	}
	// ±20% jitter spreads redeliveries of a burst.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
