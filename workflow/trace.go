package workflow

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/messages"
)

// TracerName is the instrumentation scope of the saga's spans.
const TracerName = "github.com/fulfil/fulfil/workflow"

// SpanReconcile is the name of an order-list search's span, below create_order.
const SpanReconcile = "reconcile"

// Span attributes of the steps (each step's span is named after the step: resolve_product,
// resolve_plan, resolve_billing, create_order, enable_renewal, fetch_activation).
const (
	AttrStep            = attribute.Key("fulfil.step")
	AttrStepStatus      = attribute.Key("fulfil.step.status")   // done, skipped, failed or retry
	AttrAttempts        = attribute.Key("fulfil.step.attempts") // partner rounds in this run
	AttrReason          = attribute.Key("fulfil.reason")        // a failed step's reason
	AttrOrderNo         = attribute.Key("fulfil.order_no")
	AttrOrderStatus     = attribute.Key("fulfil.order_status")
	AttrPONumber        = attribute.Key("fulfil.po_number")
	AttrSends           = attribute.Key("fulfil.order.sends")           // create-order sends so far
	AttrAdopted         = attribute.Key("fulfil.order.adopted")         // the order was found by reconciliation
	AttrReconciliations = attribute.Key("fulfil.order.reconciliations") // order-list searches so far
	AttrReconcileResult = attribute.Key("fulfil.reconcile.result")      // adopted, absent, needs_reconciliation or error
	AttrAttempt         = attribute.Key("fulfil.attempt")               // on retry events
	AttrWait            = attribute.Key("fulfil.retry.wait")            // on retry events
)

// Step statuses on spans besides messages.StatusDone and StatusSkipped.
const (
	spanStatusFailed = "failed"
	spanStatusRetry  = "retry"
)

// tracer returns the saga's tracer, nil when tracing is off.
func (s *Saga) tracer() trace.Tracer {
	if s.TracerProvider == nil {
		return nil
	}
	s.tracerOnce.Do(func() { s.tr = s.TracerProvider.Tracer(TracerName) })
	return s.tr
}

// startSpan starts the span of step (or of another part of the saga) below ctx's span. It
// returns ctx itself and a nil span when tracing is off.
func (r *run) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	t := r.saga.tracer()
	if t == nil {
		return ctx, nil
	}
	return t.Start(ctx, name, trace.WithAttributes(AttrStep.String(name)))
}

// endStep ends a step's span (nil: nothing) with its status, attempts and error.
func endStep(span trace.Span, status string, attempts int, err error) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		if err != nil {
			status = recordError(span, err)
		}
		if status != "" {
			span.SetAttributes(AttrStepStatus.String(status))
		}
		span.SetAttributes(AttrAttempts.Int(attempts))
	}
	span.End()
}

// recordError marks span as failed with err and returns the step status it amounts to:
// failed for a *Failure (with its reason and order), else retry.
func recordError(span trace.Span, err error) string {
	span.RecordError(err)
	var f *Failure
	if errors.As(err, &f) {
		span.SetAttributes(AttrReason.String(string(f.Reason)))
		if f.OrderNo != "" {
			span.SetAttributes(AttrOrderNo.String(f.OrderNo))
		}
		span.SetStatus(codes.Error, f.Message)
		return spanStatusFailed
	}
	span.SetStatus(codes.Error, err.Error())
	return spanStatusRetry
}

// endOrderStep ends create_order's span with the order's state.
func (r *run) endOrderStep(span trace.Span, err error) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		o := r.st.Order
		if in := o.Intent; in != nil {
			span.SetAttributes(AttrPONumber.String(in.PONumber), AttrSends.Int(in.Sends))
		}
		if o.Reconciliations > 0 {
			span.SetAttributes(AttrReconciliations.Int(o.Reconciliations))
		}
		if res := o.Result; res != nil {
			span.SetAttributes(AttrOrderNo.String(res.OrderNo), AttrOrderStatus.String(res.OrderStatus), AttrAdopted.Bool(res.Adopted))
		}
		if s := r.st.Steps[messages.StepCreateOrder]; s != nil && err == nil {
			span.SetAttributes(AttrAttempts.Int(s.Attempts))
		}
		status := messages.StatusDone
		if err != nil {
			status = recordError(span, err)
		}
		span.SetAttributes(AttrStepStatus.String(status))
	}
	span.End()
}

// endReconcile ends an order-list search's span with its result.
func endReconcile(span trace.Span, found *OrderResult, err error) {
	if span.IsRecording() {
		result := "absent"
		switch {
		case err != nil:
			result = "error"
			var f *Failure
			if errors.As(err, &f) {
				result = string(f.Reason)
			}
			recordError(span, err)
		case found != nil:
			result = "adopted"
			span.SetAttributes(AttrOrderNo.String(found.OrderNo))
		}
		span.SetAttributes(AttrReconcileResult.String(result))
	}
	span.End()
}

// guardEvent records on ctx's span (create_order's), when it is recording, that the send waits.
func guardEvent(ctx context.Context, reason string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("waiting before create order", trace.WithAttributes(attribute.String("reason", reason)))
	}
}

// retryEvent records a retry on ctx's span (the step's) when it is recording.
func retryEvent(ctx context.Context, attempt int, err error, wait time.Duration) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(AttrAttempt.Int(attempt), AttrWait.String(wait.String()),
			attribute.String("error", err.Error())))
	}
}
