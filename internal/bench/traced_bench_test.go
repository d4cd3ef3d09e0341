package bench

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fulfil/fulfil/internal/tracing"
)

// BenchmarkSaga0msTraced is BenchmarkSaga0ms with tracing on: every saga sampled, its spans
// batched to an exporter that drops them (the cost of recording and batching spans, not of
// sending them).
func BenchmarkSaga0msTraced(b *testing.B) {
	tp := tracing.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	benchmarkSagaWith(b, Config{TracerProvider: tp})
}

// discardExporter drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }
