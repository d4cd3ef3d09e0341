package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/traceparent"
)

type traceIDKey struct{}

// WithTraceID returns a copy of ctx in which a span started without a parent (a root span)
// gets trace ID id instead of a random one, when the tracer provider was built by
// NewTracerProvider. fulfil gives a purchase without an incoming traceparent the trace ID of
// its saga ID, so that every delivery of one purchase is in one trace.
func WithTraceID(ctx context.Context, id trace.TraceID) context.Context {
	if !id.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, traceIDKey{}, id)
}

// idGenerator is the SDK's random generator, except for a root span's trace ID given by
// WithTraceID.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if id, ok := ctx.Value(traceIDKey{}).(trace.TraceID); ok && id.IsValid() {
		return id, newSpanID()
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// TraceParent returns the W3C traceparent header of sc, or "" when sc is not valid: see
// traceparent.Format.
func TraceParent(sc trace.SpanContext) string { return traceparent.Format(sc) }

// SpanContextFromTraceParent parses a W3C traceparent header into a remote span context: see
// traceparent.Parse.
func SpanContextFromTraceParent(tp string) (trace.SpanContext, bool) { return traceparent.Parse(tp) }
