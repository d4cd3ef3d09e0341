package worker

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/traceparent"
	"github.com/fulfil/fulfil/internal/tracing"
)

// TracerName is the instrumentation scope of the worker's saga spans.
const TracerName = "github.com/fulfil/fulfil/worker"

// SpanSaga is the name of a delivery's span: a consumer span from the request's decoding to its
// acknowledgement, parent of the step spans (workflow) and the partner calls' spans.
const SpanSaga = "saga"

// Attributes of the saga span besides messaging.system, messaging.operation.type and
// messaging.destination.name.
const (
	AttrIdempotencyKey = attribute.Key("fulfil.idempotency_key")
	AttrSagaID         = attribute.Key("fulfil.saga_id")
	AttrStreamSeq      = attribute.Key("fulfil.stream_seq")
	AttrDelivery       = attribute.Key("fulfil.delivery") // 1 for the first delivery
	AttrOutcome        = attribute.Key("fulfil.outcome")  // completed, failed, replayed, retry or lease_lost
	AttrReason         = attribute.Key("fulfil.reason")   // a failure's reason
	AttrOrderNo        = attribute.Key("fulfil.order_no") // a completed purchase's order
	AttrAck            = attribute.Key("fulfil.ack")      // ack, nak or term
)

// childTraceParent returns the W3C traceparent for this delivery's work: the request's trace
// continued with a new parent (span) ID and the caller's sampled flag, or, without a valid
// incoming one, a trace whose ID is the saga ID, so every delivery of one purchase shares a
// trace. A trace of fulfil's own is not marked sampled (flags 00): fulfil records no spans, and
// a sampled traceparent makes the NATS server parse every event's headers for message tracing.
// It serves when tracing is off; with tracing on, startTrace uses the saga span's IDs.
func childTraceParent(incoming, sagaID string) string {
	id, _ := trace.TraceIDFromHex(strings.ReplaceAll(sagaID, "-", ""))
	return traceparent.Child(incoming, id)
}

// startTrace sets the delivery's trace context once its request is known. Tracing off, it is
// childTraceParent's. Tracing on, it starts the saga span, child of the request's traceparent,
// or without a valid one the root of a trace whose ID is the saga ID, and d.trace (carried by
// the partner calls and the events, and logged) is that span's: sampled as the tracer
// provider's sampler decides (by default: as the request's flags say, and a trace of fulfil's
// own is sampled).
func (d *delivery) startTrace(ctx context.Context) {
	if d.w.tracer == nil {
		d.trace = childTraceParent(d.trace, d.sagaID)
		return
	}
	if sc, ok := traceparent.Parse(d.trace); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	} else if id, err := trace.TraceIDFromHex(strings.ReplaceAll(d.sagaID, "-", "")); err == nil {
		ctx = tracing.WithTraceID(ctx, id)
	}
	_, d.span = d.w.tracer.Start(ctx, SpanSaga, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", d.msg.Subject()),
		AttrIdempotencyKey.String(d.key),
		AttrSagaID.String(d.sagaID),
		AttrStreamSeq.Int64(int64(d.seq)),
		AttrDelivery.Int64(int64(d.num)),
	))
	d.trace = traceparent.Format(d.span.SpanContext())
}

// traceContext returns ctx carrying the delivery's trace context, which the partner calls send
// and the saga's spans continue: the saga span when there is one, else the delivery's
// traceparent as a remote span context.
func (d *delivery) traceContext(ctx context.Context) context.Context {
	if d.span != nil {
		return trace.ContextWithSpan(ctx, d.span)
	}
	return traceparent.ContextWith(ctx, d.trace)
}

// traceOutcome records the delivery's outcome on the saga span; a non-empty message marks it as
// failed.
func (d *delivery) traceOutcome(outcome, reason, orderNo, message string) {
	if d.span == nil || !d.span.IsRecording() {
		return
	}
	d.span.SetAttributes(AttrOutcome.String(outcome))
	if reason != "" {
		d.span.SetAttributes(AttrReason.String(reason))
	}
	if orderNo != "" {
		d.span.SetAttributes(AttrOrderNo.String(orderNo))
	}
	if message != "" {
		d.span.SetStatus(codes.Error, message)
	}
}

// traceError records err as the reason the delivery is retried.
func (d *delivery) traceError(outcome string, err error) {
	if d.span == nil || !d.span.IsRecording() {
		return
	}
	d.span.RecordError(err)
	d.traceOutcome(outcome, "", "", err.Error())
}

// traceAck records how the request was acknowledged.
func (d *delivery) traceAck(kind string) {
	if d.span != nil && d.span.IsRecording() {
		d.span.SetAttributes(AttrAck.String(kind))
	}
}

// endSpan ends the saga span, if any.
func (d *delivery) endSpan() {
	if d.span != nil {
		d.span.End()
	}
}
