package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/api"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

func spanAttr(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTracedPurchaseOverHTTP: with tracing on, a POST is a server span continuing the caller's
// traceparent; the published request carries the server span's traceparent, and the worker's
// saga span is its child, in the caller's trace.
func TestTracedPurchaseOverHTTP(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewTracerProvider(sdktrace.WithSyncer(exp))
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, worker.RequestsStreamConfig(workerConfig())); err != nil {
		t.Fatal(err)
	}
	intake, err := api.OpenIntake(ctx, js, api.IntakeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{JS: js, Intake: intake, SagaID: worker.SagaID, Logger: zaptest.NewLogger(t), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)

	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/purchases", strings.NewReader(ultimate))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "traced-http-1")
	r.Header.Set("traceparent", incoming)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	var server tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "POST /v1/purchases" {
			server = s
		}
	}
	if server.Name == "" {
		t.Fatalf("no server span; spans %v", exp.GetSpans())
	}
	if server.SpanKind != trace.SpanKindServer || server.Parent.SpanID().String() != "00f067aa0ba902b7" ||
		server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("server span kind %v, parent %s, trace %s: want a server span continuing %s", server.SpanKind, server.Parent.SpanID(), server.SpanContext.TraceID(), incoming)
	}
	for k, want := range map[attribute.Key]string{"http.request.method": "POST", "http.route": "/v1/purchases",
		"http.response.status_code": "202", "url.path": "/v1/purchases", "url.scheme": "http"} {
		if got := spanAttr(server, k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	stream, err := js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := msg.Header.Get(messages.HeaderTraceParent), tracing.TraceParent(server.SpanContext); got != want {
		t.Errorf("published traceparent %q, want the server span's %q", got, want)
	}

	// A worker tracing to the same exporter continues the trace below the server span.
	client, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(js, &workflow.Saga{Partner: client, TracerProvider: tp}, workerConfig())
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	if err := w.Setup(wctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var saga tracetest.SpanStub
	testutil.Eventually(t, 30*time.Second, func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == worker.SpanSaga {
				saga = s
				return true
			}
		}
		return false
	}, "a saga span")
	if saga.Parent.SpanID() != server.SpanContext.SpanID() || saga.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("saga span: trace %s, parent %s; want the server span's child", saga.SpanContext.TraceID(), saga.Parent.SpanID())
	}
}

// TestTracedErrorAnswers: a request the intake refuses is a span too, named after its route,
// with its status; a 4xx is the caller's problem, not the span's.
func TestTracedErrorAnswers(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewTracerProvider(sdktrace.WithSyncer(exp))
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	intake, err := api.OpenIntake(context.Background(), js, api.IntakeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{JS: js, Intake: intake, SagaID: worker.SagaID, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	resp, err := http.Post(srv.URL+"/v1/purchases", "application/json", strings.NewReader(ultimate)) // no Idempotency-Key
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "POST /v1/purchases" || spanAttr(spans[0], "http.response.status_code") != "400" || spans[0].Parent.IsValid() {
		t.Fatalf("spans %+v, want one root POST /v1/purchases with 400", spans)
	}
	if spans[0].Status.Code.String() == "Error" {
		t.Errorf("a 400 marked the server span as failed")
	}
}
