package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/workflow"
)

// delivery is one delivery of one request message.
type delivery struct {
	w        *Worker
	msg      jetstream.Msg
	seq      uint64
	num      uint64
	last     bool
	key      string
	sagaID   string
	trace    string     // the traceparent of this delivery's work (trace.go)
	span     trace.Span // the saga span; nil when tracing is off or before start
	log      *zap.Logger
	received time.Time
	ending   bool // the last delivery is being ended with a failure
}

// Handle processes one request message to its acknowledgement. It never panics on bad input
// and never returns an error: every outcome is decided and logged here.
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
		d.nak()
		return
	}
	if req, h := d.start(ctx); h != nil {
		d.runSaga(ctx, req, h)
	}
}

// newDelivery reads msg's metadata and trace context.
func (w *Worker) newDelivery(msg jetstream.Msg) *delivery {
	d := &delivery{w: w, msg: msg, log: w.log, received: w.cfg.Now()}
	if md, err := msg.Metadata(); err == nil {
		d.seq = md.Sequence.Stream
		d.num = md.NumDelivered
		d.last = int(md.NumDelivered) >= w.cfg.MaxDeliver
	}
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
		d.nak()
	}
}

// waitStart takes one of the worker's start slots (Config.MaxStarting), signalling InProgress
// while it waits so that the request is not redelivered meanwhile. It reports false when ctx
// ended first. start gives the slot back.
func (d *delivery) waitStart(ctx context.Context) bool {
	select {
	case d.w.starting <- struct{}{}:
		return true
	default:
	}
	keepalive := time.NewTicker(d.w.cfg.AckWait / 3)
	defer keepalive.Stop()
	for {
		select {
		case d.w.starting <- struct{}{}:
			return true
		case <-keepalive.C:
			_ = d.msg.InProgress()
		case <-ctx.Done():
			return false
		}
	}
}

// start decodes and validates the request and takes its key. It returns a nil handle when the
// delivery has been dealt with (invalid, finished, conflicting, or left to redelivery).
func (d *delivery) start(ctx context.Context) (*messages.PurchaseRequest, *idempotency.Handle) {
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
		d.invalid(ctx, req, err)
		return nil, nil
	}
	req = req.Normalize()
	d.key = req.IdempotencyKey
	d.sagaID = SagaID(d.key)
	d.startTrace(ctx)
	d.log = d.log.WithLazy(zap.String("idempotency_key", d.key), zap.String("saga_id", d.sagaID), zap.String("traceparent", d.trace))

	reqJSON, err := json.Marshal(req)
	if err != nil {
		d.retry(ctx, nil, nil, fmt.Errorf("encode request: %w", err))
		return nil, nil
	}
	owner := fmt.Sprintf("%s/%d/%d", w.cfg.WorkerID, d.seq, d.num)
	h, err := d.acquire(ctx, req.Fingerprint(), reqJSON, owner, release)
	release()
	if err != nil {
		d.notAcquired(ctx, err)
		return nil, nil
	}
	if h.Deliveries() == 1 {
		w.cfg.Metrics.SagaStarted()
	}
	return &req, h
}

// acquire takes the key's lease, waiting (with InProgress) while another worker holds it. It
// calls release (the start slot) before it waits.
func (d *delivery) acquire(ctx context.Context, fingerprint string, reqJSON []byte, owner string, release func()) (*idempotency.Handle, error) {
	keepalive := time.NewTicker(d.w.cfg.AckWait / 3)
	defer keepalive.Stop()
	poll := 100 * time.Millisecond
	acquire := d.w.store.Acquire
	if d.msg.Headers().Get(messages.HeaderReplay) != "" {
		acquire = d.w.store.Reopen // an operator's replay runs a failed key again
	}
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
		case <-keepalive.C:
			_ = d.msg.InProgress()
		case <-time.After(poll):
		}
		if poll < time.Second {
			poll *= 2
		}
	}
}

// notAcquired handles a key that this delivery may not run.
func (d *delivery) notAcquired(ctx context.Context, err error) {
	var fin *idempotency.FinishedError
	switch {
	case errors.As(err, &fin):
		d.replay(ctx, fin.Record)
	case errors.Is(err, idempotency.ErrConflict):
		f := &workflow.Failure{
			Step:    messages.StepValidate,
			Reason:  messages.ReasonConflict,
			Message: "idempotency key was already used with a different request; the first request is unaffected. Use a new key for a new purchase",
		}
		ev := f.Event(d.header())
		if perr := d.publish(ctx, d.w.subjects.Failed, &ev, messageMsgID("conflict", d.key, d.seq)); perr != nil {
			d.retry(ctx, nil, nil, perr)
			return
		}
		d.w.cfg.Metrics.SagaFinished("failed", string(f.Reason), d.w.cfg.Now().Sub(d.received))
		d.log.Warn("purchase failed", zap.String("reason", string(f.Reason)), zap.String("error", f.Message))
		d.traceOutcome("failed", string(f.Reason), "", f.Message)
		d.term(ctx, string(messages.ReasonConflict))
	default:
		d.retry(ctx, nil, nil, fmt.Errorf("acquire: %w", err))
	}
}

// replay publishes a finished key's stored outcome: the original event (same Nats-Msg-Id, from
// the producing sequence the record keeps) when this is the message that produced it, else a
// replayed copy under its own Nats-Msg-Id.
func (d *delivery) replay(ctx context.Context, rec idempotency.Record) {
	subject := d.w.subjects.Failed
	if rec.OutcomeType == messages.TypeCompleted {
		subject = d.w.subjects.Completed
	}
	data := []byte(rec.Outcome)
	msgID := OutcomeMsgID(d.key, rec.OutcomeType, rec.OutcomeSeq)
	replayed := rec.OutcomeSeq != d.seq
	if replayed {
		var err error
		data, err = setReplayed(data)
		if err != nil {
			d.log.Error("stored outcome unreadable", zap.Error(err))
			d.term(ctx, "stored outcome unreadable")
			return
		}
		msgID = ReplayMsgID(d.key, d.seq)
	}
	if err := d.publishRaw(ctx, subject, rec.OutcomeType, data, msgID); err != nil {
		d.retry(ctx, nil, nil, err)
		return
	}
	if replayed {
		d.w.cfg.Metrics.Replayed()
	}
	d.traceOutcome("replayed", "", "", "")
	d.log.Info("outcome republished", zap.Bool("replayed", replayed), zap.String("type", rec.OutcomeType))
	d.ack()
}

func setReplayed(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m["replayed"] = json.RawMessage("true")
	return json.Marshal(m)
}

// runSaga runs the saga under the lease, then concludes.
func (d *delivery) runSaga(ctx context.Context, req *messages.PurchaseRequest, h *idempotency.Handle) {
	lease := &leaseGuard{h: h, ttl: d.w.store.Config().LeaseTTL}
	st := d.loadState(ctx, lease)
	if st == nil {
		return
	}
	// The keep-alive stops the saga at once if another worker took the key over.
	sagaCtx, stopSaga := context.WithCancelCause(ctx)
	stop := d.keepAlive(sagaCtx, lease, stopSaga)
	err := d.w.saga.Run(d.sagaContext(sagaCtx), req, st, lease, workflow.ObserverFunc(d.progress))
	stop()
	if cause := context.Cause(sagaCtx); errors.Is(cause, idempotency.ErrLeaseLost) {
		err = cause
	}
	stopSaga(nil)
	d.conclude(ctx, lease, req, st, err)
}

// loadState decodes the checkpoint; on failure it leaves the request to redelivery and
// returns nil.
func (d *delivery) loadState(ctx context.Context, lease *leaseGuard) *workflow.State {
	st, err := workflow.DecodeState(lease.h.State())
	if err != nil {
		d.log.Error("checkpoint unreadable; starting the saga over is unsafe", zap.Error(err))
		d.retry(ctx, lease, nil, err)
		return nil
	}
	return st
}

// sagaContext carries the request's trace context (the saga span, when tracing is on) and logger
// to the saga.
func (d *delivery) sagaContext(ctx context.Context) context.Context {
	return workflow.WithLogger(partnerclient.WithTraceParent(d.spanContext(ctx), d.trace), d.log)
}

// conclude decides the acknowledgement from the saga's result.
func (d *delivery) conclude(ctx context.Context, lease *leaseGuard, req *messages.PurchaseRequest, st *workflow.State, err error) {
	var f *workflow.Failure
	switch {
	case err == nil:
		ev := st.Completed(d.header(), int64(req.ProductID))
		d.finish(ctx, lease, idempotency.StatusCompleted, d.w.subjects.Completed, &ev, st)
	case errors.As(err, &f):
		ev := f.Event(d.header())
		d.finish(ctx, lease, idempotency.StatusFailed, d.w.subjects.Failed, &ev, st)
	case errors.Is(err, idempotency.ErrLeaseLost):
		d.log.Warn("lease lost to another worker; leaving the request to it", zap.Error(err))
		d.traceError("lease_lost", err)
		d.nak()
	default:
		d.retry(ctx, lease, st, err)
	}
}

// finish stores the outcome, publishes it, waits for progress events, then acks or terms.
func (d *delivery) finish(ctx context.Context, lease *leaseGuard, status idempotency.Status, subject string, ev messages.Event, st *workflow.State) {
	data, err := json.Marshal(ev)
	if err != nil {
		d.retry(ctx, lease, st, err)
		return
	}
	if err := lease.finish(ctx, st, status, ev.EventType(), data, d.seq); err != nil {
		if errors.Is(err, idempotency.ErrLeaseLost) {
			d.log.Warn("lease lost before the outcome was stored", zap.Error(err))
			d.nak()
			return
		}
		d.retry(ctx, lease, st, fmt.Errorf("store outcome: %w", err))
		return
	}
	if err := d.publishRaw(ctx, subject, ev.EventType(), data, OutcomeMsgID(d.key, ev.EventType(), d.seq)); err != nil {
		// The outcome is stored: a redelivery republishes it under the same Nats-Msg-Id.
		d.log.Warn("result event not published; redelivery will republish it", zap.Error(err))
		d.nak()
		return
	}
	took := d.w.cfg.Now().Sub(d.received)
	if f, ok := ev.(*messages.Failed); ok {
		d.w.cfg.Metrics.SagaFinished("failed", string(f.Reason), took)
		d.log.Warn("purchase failed", zap.String("step", f.Step), zap.String("reason", string(f.Reason)),
			zap.String("error", f.Message), zap.String("partner_code", f.PartnerCode),
			zap.String("partner_request_id", f.PartnerRequestID), zap.String("order_no", f.OrderNo))
		d.traceOutcome("failed", string(f.Reason), f.OrderNo, f.Message)
		d.term(ctx, string(f.Reason))
		return
	}
	c := ev.(*messages.Completed)
	d.w.cfg.Metrics.SagaFinished("completed", "", took)
	d.log.Info("purchase completed", zap.String("order_no", c.OrderNo), zap.String("product_no", c.ProductNo),
		zap.Duration("duration", took))
	d.traceOutcome("completed", "", c.OrderNo, "")
	d.ack()
}

// retry leaves the request to a later delivery, or on the last delivery ends it with the
// failure the error amounts to.
func (d *delivery) retry(ctx context.Context, lease *leaseGuard, st *workflow.State, err error) {
	if d.last && lease != nil && !d.ending {
		d.ending = true // if storing this failure fails too, fall through to a NAK
		f := workflow.Terminal(st, err)
		ev := f.Event(d.header())
		d.log.Warn("last delivery: ending with a failure", zap.Error(err))
		d.finish(context.WithoutCancel(ctx), lease, idempotency.StatusFailed, d.w.subjects.Failed, &ev, st)
		return
	}
	if lease != nil {
		if rerr := lease.release(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, idempotency.ErrLeaseLost) {
			d.log.Debug("lease not released; the next delivery waits for it to expire", zap.Error(rerr))
		}
	}
	delay := d.w.nakDelay(d.num)
	d.log.Info("saga will be retried", zap.Error(err), zap.Duration("delay", delay))
	d.traceError("retry", err)
	d.traceAck("nak")
	d.w.cfg.Metrics.Acked("nak")
	_ = d.msg.NakWithDelay(delay)
}

// invalid ends a request that failed decoding or validation: not recorded, so the key stays free.
func (d *delivery) invalid(ctx context.Context, req messages.PurchaseRequest, verr error) {
	key := messages.PeekKey(d.msg.Data())
	if key == "" {
		d.log.Warn("request without a readable idempotency key terminated", zap.Error(verr))
		d.term(ctx, DeadLetterNoKey)
		return
	}
	d.key, d.sagaID = key, SagaID(key)
	d.log = d.log.With(zap.String("idempotency_key", d.key), zap.String("saga_id", d.sagaID))
	f := &workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonInvalidRequest, Message: verr.Error()}
	ev := f.Event(d.header())
	if err := d.publish(ctx, d.w.subjects.Failed, &ev, messageMsgID("invalid", d.key, d.seq)); err != nil {
		if d.last {
			d.log.Error("invalid request: failure event not published on the last delivery", zap.Error(err))
			d.term(ctx, string(messages.ReasonInvalidRequest))
			return
		}
		d.nak()
		return
	}
	d.w.cfg.Metrics.SagaFinished("failed", string(f.Reason), d.w.cfg.Now().Sub(d.received))
	d.log.Warn("purchase failed", zap.String("reason", string(f.Reason)), zap.String("error", f.Message))
	d.term(ctx, string(messages.ReasonInvalidRequest))
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

func (d *delivery) ack() {
	d.traceAck("ack")
	d.w.cfg.Metrics.Acked("ack")
	if err := d.msg.Ack(); err != nil {
		d.log.Warn("ack failed; the request will be redelivered and its outcome republished", zap.Error(err))
	}
}

func (d *delivery) nak() {
	d.traceAck("nak")
	d.w.cfg.Metrics.Acked("nak")
	_ = d.msg.NakWithDelay(d.w.nakDelay(d.num))
}

// term ends a request without a normal outcome: it is copied to the dead-letter stream, then
// terminated. If the copy fails the request is left to redelivery instead, so nothing is lost.
func (d *delivery) term(ctx context.Context, reason string) {
	if err := d.w.deadLetter(ctx, d.msg.Data(), d.msg.Headers(), d.seq, d.num, reason); err != nil && !d.last {
		d.log.Warn("dead-letter copy failed; request left to redelivery", zap.Error(err))
		d.nak()
		return
	}
	d.traceAck("term")
	d.w.cfg.Metrics.Acked("term")
	if err := d.msg.TermWithReason(reason); err != nil {
		d.log.Warn("term failed", zap.Error(err))
	}
}

// keepAlive signals InProgress and renews the lease while the saga runs.
func (d *delivery) keepAlive(ctx context.Context, lease *leaseGuard, stopSaga context.CancelCauseFunc) (stop func()) {
	interval := d.w.cfg.AckWait / 3
	if lease.ttl > 0 && lease.ttl/3 < interval {
		interval = lease.ttl / 3
	}
	// A timer rather than a goroutine per saga: thousands of sagas in flight cost no stacks
	// while they wait.
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
		err := lease.renew(ctx)
		switch {
		case errors.Is(err, idempotency.ErrLeaseLost):
			stopSaga(err)
			stopped = true
			return
		case err != nil && ctx.Err() == nil:
			d.log.Warn("lease renewal failed", zap.Error(err))
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
