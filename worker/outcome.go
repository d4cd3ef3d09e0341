package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// A delivery is processed in two parts, as a job executor runs a job and then reports its
// result: the functions of handle.go work out what the delivery amounts to and return it as an
// outcome, without storing, publishing or acknowledging anything; settle then carries the
// outcome out, once. Only settle stores outcomes, publishes result events, acks, naks and
// terms, counts the metrics of an ending, and writes the outcome to the logs and the saga span.

// outcomeKind is how a delivery ends.
type outcomeKind uint8

const (
	// outcomeAck: the purchase is done; its result (completed) is stored and published, then the
	// request is acked.
	outcomeAck outcomeKind = iota + 1
	// outcomeTerm: the request ends without a normal outcome. Its failure event, if any, is
	// stored (with a lease) and published; the request is copied to the dead-letter stream and
	// terminated with the reason.
	outcomeTerm
	// outcomeNak: the request is left to a later delivery, after delay. With a lease, the lease is
	// released first, or, on the last delivery, the request ends with the failure its error
	// amounts to (workflow.Terminal) instead.
	outcomeNak
	// outcomeLeaseLost: another worker took the key over; the request is left to it (nak, the
	// lease kept).
	outcomeLeaseLost
	// outcomeReplay: the key is finished; its stored outcome is published again, then the
	// request is acked.
	outcomeReplay
)

func (k outcomeKind) String() string {
	switch k {
	case outcomeAck:
		return "ack"
	case outcomeTerm:
		return "term"
	case outcomeNak:
		return "nak"
	case outcomeLeaseLost:
		return "lease_lost"
	case outcomeReplay:
		return "replay"
	}
	return fmt.Sprintf("outcomeKind(%d)", uint8(k))
}

// outcome is what a delivery amounts to, decided by handle.go and carried out by settle.
type outcome struct {
	kind outcomeKind

	// ack and term: the result event to publish (nil: none, for a term only).
	result *result
	// term: the dead-letter and termination reason.
	reason string

	// nak and lease lost: why; nil for a nak that is no failure of this delivery (the worker
	// stopping, a panic, a dead-letter copy that failed).
	err error
	// nak: how long JetStream waits before redelivering.
	delay time.Duration
	// nak: the lease to release (nil: none), and the saga's state for a failure on the last
	// delivery.
	lease *leaseGuard
	st    *workflow.State

	// replay: the finished key's record.
	rec idempotency.Record

	// The log line of a nak with an error, a lease lost, or a term without a result.
	msg   string
	level zapcore.Level
}

// result is a result event: stored under the lease (when lease is set) before it is published.
type result struct {
	event   messages.Event
	subject string
	msgID   string

	lease  *leaseGuard
	st     *workflow.State
	status idempotency.Status
}

// done is the outcome of a saga that ended: completed (ack) or failed (term with the failure's
// reason), its result stored under lease and published under its outcome Msg-Id.
func (d *delivery) done(lease *leaseGuard, st *workflow.State, ev messages.Event) outcome {
	r := &result{event: ev, lease: lease, st: st, msgID: OutcomeMsgID(d.key, ev.EventType(), d.seq)}
	if f, ok := ev.(*messages.Failed); ok {
		r.subject, r.status = d.w.subjects.Failed, idempotency.StatusFailed
		return outcome{kind: outcomeTerm, result: r, reason: string(f.Reason)}
	}
	r.subject, r.status = d.w.subjects.Completed, idempotency.StatusCompleted
	return outcome{kind: outcomeAck, result: r}
}

// rejected is the outcome of a request that may not run (invalid, or a key used for another
// request): its failure event is published (not stored, so the key's record is untouched) and
// the request terminated.
func (d *delivery) rejected(f *workflow.Failure, msgID string) outcome {
	ev := f.Event(d.header())
	return outcome{kind: outcomeTerm, reason: string(f.Reason), result: &result{event: &ev, subject: d.w.subjects.Failed, msgID: msgID}}
}

// terminate is the outcome of a request ended without a result event.
func terminate(reason string, level zapcore.Level, msg string, err error) outcome {
	return outcome{kind: outcomeTerm, reason: reason, level: level, msg: msg, err: err}
}

// retry is the outcome of a delivery that failed with err: a nak that releases lease (if any),
// or on the last delivery the failure err amounts to.
func (d *delivery) retry(err error, lease *leaseGuard, st *workflow.State) outcome {
	return outcome{kind: outcomeNak, err: err, lease: lease, st: st, delay: d.w.nakDelay(d.num),
		level: zapcore.InfoLevel, msg: "saga will be retried"}
}

// redeliver is the outcome of a delivery left to redelivery for no failure of its own.
func (d *delivery) redeliver() outcome {
	return outcome{kind: outcomeNak, delay: d.w.nakDelay(d.num)}
}

// leaseLost is the outcome of a delivery whose key another worker took over.
func (d *delivery) leaseLost(err error, msg string) outcome {
	return outcome{kind: outcomeLeaseLost, err: err, delay: d.w.nakDelay(d.num), level: zapcore.WarnLevel, msg: msg}
}

// settle carries out o: it stores and publishes o's result, and when it cannot, settles for
// what the delivery then amounts to; then it acknowledges the request. It is the only place a
// delivery ends.
//
// Its table:
//
//	ack         store + publish the result, count and log it        → Ack
//	term        store (with a lease) + publish the result, if any   → dead-letter copy, Term
//	                                                                  (copy failed: Nak, even the last:
//	                                                                  the advisory copies it)
//	nak         release the lease                                   → Nak after delay
//	nak, last   with a lease: store + publish workflow.Terminal     → Term (not stored: Nak)
//	lease lost  nothing (the lease belongs to another worker)       → Nak after delay
//	replay      publish the stored outcome (a copy unless it is     → Ack
//	            this message's)
//
// A result that cannot be stored becomes a nak (lease lost: lease lost); one stored but not
// published a nak that keeps the lease (a redelivery republishes it); an unstored one not
// published a nak, or on the last delivery a term without it.
func (d *delivery) settle(ctx context.Context, o outcome) {
	o = d.record(ctx, o)
	if o.kind == outcomeNak && o.lease != nil && d.last {
		// No delivery is left to retry: end with the failure the error amounts to. If that
		// cannot be stored either, the nak releases the lease and JetStream's max-deliveries
		// advisory dead-letters the request.
		d.log.Warn("last delivery: ending with a failure", zap.Error(o.err))
		f := workflow.Terminal(o.st, o.err)
		ev := f.Event(d.header())
		o = d.record(context.WithoutCancel(ctx), d.done(o.lease, o.st, &ev))
	}
	d.acknowledge(ctx, o)
}

// record stores and publishes o's result (a replay: republishes the stored outcome), counts it
// and logs it. It returns o, or, when the result could not be stored or published, the outcome
// the delivery amounts to instead.
func (d *delivery) record(ctx context.Context, o outcome) outcome {
	if o.kind == outcomeReplay {
		return d.republish(ctx, o)
	}
	r := o.result
	if r == nil {
		return o
	}
	data, err := json.Marshal(r.event)
	if err != nil {
		return d.retry(fmt.Errorf("encode result: %w", err), r.lease, r.st)
	}
	typ := r.event.EventType()
	if r.lease != nil {
		if err := r.lease.finish(ctx, r.st, r.status, typ, data, d.seq); err != nil {
			if errors.Is(err, idempotency.ErrLeaseLost) {
				return d.leaseLost(err, "lease lost before the outcome was stored")
			}
			return d.retry(fmt.Errorf("store outcome: %w", err), r.lease, r.st)
		}
	}
	if err := d.publishRaw(ctx, r.subject, typ, data, r.msgID); err != nil {
		switch {
		case r.lease != nil:
			// The outcome is stored: a redelivery republishes it under the same Nats-Msg-Id.
			n := d.redeliver()
			n.err, n.level, n.msg = err, zapcore.WarnLevel, "result event not published; redelivery will republish it"
			return n
		case o.kind == outcomeTerm && d.last:
			return terminate(o.reason, zapcore.ErrorLevel, "failure event not published on the last delivery", err)
		default:
			return d.retry(fmt.Errorf("publish %s: %w", typ, err), nil, nil)
		}
	}
	took := d.w.cfg.Now().Sub(d.received)
	switch ev := r.event.(type) {
	case *messages.Failed:
		d.w.cfg.Metrics.SagaFinished("failed", string(ev.Reason), took)
		d.log.Warn("purchase failed", zap.String("step", ev.Step), zap.String("reason", string(ev.Reason)),
			zap.String("error", ev.Message), zap.String("partner_code", ev.PartnerCode),
			zap.String("partner_request_id", ev.PartnerRequestID), zap.String("order_no", ev.OrderNo))
		d.traceOutcome("failed", string(ev.Reason), ev.OrderNo, ev.Message)
	case *messages.Completed:
		d.w.cfg.Metrics.SagaFinished("completed", "", took)
		d.log.Info("purchase completed", zap.String("order_no", ev.OrderNo), zap.String("product_no", ev.ProductNo),
			zap.Duration("duration", took))
		d.traceOutcome("completed", "", ev.OrderNo, "")
	}
	return o
}

// republish publishes a finished key's stored outcome: the original event (same Nats-Msg-Id,
// from the producing sequence the record keeps) when this is the message that produced it,
// else a replayed copy under its own Nats-Msg-Id.
func (d *delivery) republish(ctx context.Context, o outcome) outcome {
	rec := o.rec
	subject := d.w.subjects.Failed
	if rec.OutcomeType == messages.TypeCompleted {
		subject = d.w.subjects.Completed
	}
	data := []byte(rec.Outcome)
	msgID := OutcomeMsgID(d.key, rec.OutcomeType, rec.OutcomeSeq)
	replayed := rec.OutcomeSeq != d.seq
	if replayed {
		var err error
		if data, err = setReplayed(data); err != nil {
			return terminate("stored outcome unreadable", zapcore.ErrorLevel, "stored outcome unreadable", err)
		}
		msgID = ReplayMsgID(d.key, d.seq)
	}
	if err := d.publishRaw(ctx, subject, rec.OutcomeType, data, msgID); err != nil {
		return d.retry(err, nil, nil)
	}
	if replayed {
		d.w.cfg.Metrics.Replayed()
	}
	d.traceOutcome("replayed", "", "", "")
	d.log.Info("outcome republished", zap.Bool("replayed", replayed), zap.String("type", rec.OutcomeType))
	return o
}

func setReplayed(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m["replayed"] = json.RawMessage("true")
	return json.Marshal(m)
}

// acknowledge acks, naks or terms the request as o says, with its log line, metrics and span
// attributes.
func (d *delivery) acknowledge(ctx context.Context, o outcome) {
	switch o.kind {
	case outcomeAck, outcomeReplay:
		d.traceAck("ack")
		d.w.cfg.Metrics.Acked("ack")
		if err := d.msg.Ack(); err != nil {
			d.log.Warn("ack failed; the request will be redelivered and its outcome republished", zap.Error(err))
		}
	case outcomeTerm:
		if o.msg != "" {
			d.log.Log(o.level, o.msg, zap.Error(o.err))
		}
		// The request is copied to the dead-letter stream first; if the copy fails it is left
		// to redelivery instead, so nothing is lost. On the last delivery too: a term would
		// delete it from the work queue with no copy anywhere, while after a nak JetStream's
		// max-deliveries advisory has it moved to the dead-letter stream (watchMaxDeliveries),
		// and if that copy fails as well it stays in the requests stream.
		if err := d.w.deadLetter(ctx, d.msg.Data(), d.msg.Headers(), d.seq, d.num, o.reason); err != nil {
			d.log.Warn("dead-letter copy failed; request left to redelivery", zap.Error(err))
			d.acknowledge(ctx, d.redeliver())
			return
		}
		d.traceAck("term")
		d.w.cfg.Metrics.Acked("term")
		if err := d.msg.TermWithReason(o.reason); err != nil {
			d.log.Warn("term failed", zap.Error(err))
		}
	case outcomeNak, outcomeLeaseLost:
		if o.lease != nil {
			if err := o.lease.release(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, idempotency.ErrLeaseLost) {
				d.log.Debug("lease not released; the next delivery waits for it to expire", zap.Error(err))
			}
		}
		if o.err != nil {
			d.log.Log(o.level, o.msg, zap.Error(o.err), zap.Duration("delay", o.delay))
			trace := "retry"
			if o.kind == outcomeLeaseLost {
				trace = "lease_lost"
			}
			d.traceError(trace, o.err)
		}
		d.traceAck("nak")
		d.w.cfg.Metrics.Acked("nak")
		_ = d.msg.NakWithDelay(o.delay)
	default:
		// No outcome was decided: a bug. The request is left to redelivery, never to AckWait.
		d.log.DPanic("delivery ended without an outcome; request left to redelivery", zap.Stringer("kind", o.kind))
		d.acknowledge(ctx, d.redeliver())
	}
}
