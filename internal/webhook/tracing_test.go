package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/messages"
)

// TestTracedDeliveries: with tracing on, each POST of an event is a client span below the
// event's trace context, and the endpoint receives the POST's own traceparent; a failed attempt
// is a failed span, the retry a sibling.
func TestTracedDeliveries(t *testing.T) {
	const eventTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var mu sync.Mutex
	var received []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("traceparent"))
		n := len(received)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewTracerProvider(sdktrace.WithSyncer(exp))
	cfg := testConfig(srv.URL)
	cfg.TracerProvider = tp
	e.start(t, cfg)

	subject, _ := messages.SubjectsFor("").ForType(messages.TypeCompleted)
	m := nats.NewMsg(subject)
	m.Data = []byte(`{"type":"completed","idempotencyKey":"k1","sagaId":"x","time":"2026-01-01T00:00:00Z"}`)
	m.Header.Set(messages.HeaderIdempotencyKey, "k1")
	m.Header.Set(messages.HeaderCEType, messages.TypeCompleted)
	m.Header.Set(messages.HeaderMsgID, "k1/completed/1")
	m.Header.Set(messages.HeaderTraceParent, eventTP)
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID("k1/completed/1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two attempts", 10*time.Second, func() bool { return len(exp.GetSpans()) == 2 })
	spans := exp.GetSpans()
	mu.Lock()
	defer mu.Unlock()
	for i, s := range spans {
		if s.Name != SpanDelivery || s.SpanKind != trace.SpanKindClient {
			t.Errorf("span %q kind %v, want a client span %q", s.Name, s.SpanKind, SpanDelivery)
		}
		if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("span %d: trace %s parent %s, want the event's", i, s.SpanContext.TraceID(), s.Parent.SpanID())
		}
		if got := tracing.TraceParent(s.SpanContext); received[i] != got {
			t.Errorf("attempt %d carried traceparent %q, want its span's %q", i+1, received[i], got)
		}
	}
	if spans[0].Status.Code != codes.Error || spans[1].Status.Code == codes.Error {
		t.Errorf("statuses %v, %v: want the 503 failed, the 204 not", spans[0].Status, spans[1].Status)
	}
	for i, want := range []string{"503", "204"} {
		found := false
		for _, kv := range spans[i].Attributes {
			if kv.Key == "http.response.status_code" && kv.Value.Emit() == want {
				found = true
			}
		}
		if !found {
			t.Errorf("span %d attributes %v, want status %s", i, spans[i].Attributes, want)
		}
	}
}
