package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// startTracedWorker starts a worker whose saga and partner client record spans to exp, as
// `fulfil worker` wires them with tracing on.
func (s *stack) startTracedWorker(exp sdktrace.SpanExporter) {
	s.t.Helper()
	tp := tracing.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	s.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	nc, err := nats.Connect(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	client, err := partnerclient.New(s.sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0), partnerclient.WithTracerProvider(tp))
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Idempotency.LeaseTTL = time.Second
	cfg.Logger = zaptest.NewLogger(s.t)
	w, err := worker.New(js, &workflow.Saga{Partner: client, Retry: fastRetry(), TracerProvider: tp}, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := w.Setup(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	s.t.Cleanup(func() { cancel(); <-done; nc.Close() })
}

// publishTraced publishes a request with an optional traceparent header.
func (s *stack) publishTraced(key, body, traceparent string) {
	s.t.Helper()
	m := nats.NewMsg(messages.SubjectsFor("").Requested)
	m.Data = []byte(body)
	if traceparent != "" {
		m.Header.Set(messages.HeaderTraceParent, traceparent)
	}
	if _, err := s.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(key)); err != nil {
		s.t.Fatal(err)
	}
}

// spansOf returns the ended spans of trace id, waiting until the saga span of key has ended
// (it ends after the acknowledgement, just after the result event).
func spansOf(t *testing.T, exp *tracetest.InMemoryExporter, id trace.TraceID, key string) tracetest.SpanStubs {
	t.Helper()
	var out tracetest.SpanStubs
	testutil.Eventually(t, 10*time.Second, func() bool {
		out = out[:0]
		sagaEnded := false
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() != id {
				continue
			}
			out = append(out, s)
			if s.Name == worker.SpanSaga && attr(s, worker.AttrIdempotencyKey) == key {
				sagaEnded = true
			}
		}
		return sagaEnded
	}, "an ended saga span for %s in trace %s", key, id)
	return out
}

func attr(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// byName returns the spans called name.
func byName(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only span called name.
func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := byName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %v", len(got), name, names(spans))
	}
	return got[0]
}

func TestTracingSpanTreeOfAPurchase(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s := newStack(t)
	exp := tracetest.NewInMemoryExporter()
	s.startTracedWorker(exp)
	key := "traced-1"
	s.publishTraced(key, `{"idempotencyKey":"`+key+`","customerEmail":"`+partnertest.CustomerEmail+`","plan":{"name":"Ultimate Plan"},"quantity":1}`, incoming)
	r := s.waitResults(key, 1)[0]
	c := completed(t, r)

	want, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spans := spansOf(t, exp, want, key)
	saga := one(t, spans, worker.SpanSaga)

	// The saga continues the request's trace: child of its parent ID, a consumer span.
	if saga.Parent.SpanID().String() != "00f067aa0ba902b7" || !saga.Parent.IsRemote() {
		t.Errorf("saga span's parent %s (remote %v), want the request's 00f067aa0ba902b7", saga.Parent.SpanID(), saga.Parent.IsRemote())
	}
	if saga.SpanKind != trace.SpanKindConsumer {
		t.Errorf("saga span kind %v, want consumer", saga.SpanKind)
	}
	for k, v := range map[attribute.Key]string{
		worker.AttrIdempotencyKey: key, worker.AttrSagaID: worker.SagaID(key), worker.AttrOutcome: "completed",
		worker.AttrOrderNo: c.OrderNo, worker.AttrAck: "ack", worker.AttrDelivery: "1",
		"messaging.system": "nats", "messaging.destination.name": messages.SubjectsFor("").Requested,
	} {
		if got := attr(saga, k); got != v {
			t.Errorf("saga span %s = %q, want %q", k, got, v)
		}
	}
	if saga.Status.Code == codes.Error {
		t.Errorf("saga span status %v, want not an error", saga.Status)
	}

	// The events carry the saga span's context: the trace ID, the saga span's ID, sampled.
	wantTP := "00-" + want.String() + "-" + saga.SpanContext.SpanID().String() + "-01"
	if got := r.header.Get(messages.HeaderTraceParent); got != wantTP {
		t.Errorf("completed event traceparent %q, want the saga span's %q", got, wantTP)
	}
	s.mu.Lock()
	for _, e := range s.events {
		if e.ev.Key() == key && e.header.Get(messages.HeaderTraceParent) != wantTP {
			t.Errorf("%s event traceparent %q, want %q", e.ev.EventType(), e.header.Get(messages.HeaderTraceParent), wantTP)
		}
	}
	s.mu.Unlock()

	// Each step under the saga, each partner call under its step.
	steps := map[string][]partnerclient.Endpoint{
		messages.StepResolveProduct:  {partnerclient.EndpointSubordinateUsers},
		messages.StepResolvePlan:     {partnerclient.EndpointPurchaseInfo},
		messages.StepResolveBilling:  {partnerclient.EndpointBillingContacts},
		messages.StepCreateOrder:     {partnerclient.EndpointCreateOrder},
		messages.StepEnableRenewal:   {partnerclient.EndpointEnableAutoRenewal},
		messages.StepFetchActivation: {partnerclient.EndpointActivationCode},
	}
	// Enabling auto-renewal answers true when it is already on: no status read comes first.
	for _, sp := range spans {
		if sp.Name == partnerclient.SpanName(partnerclient.EndpointAutoRenewStatus) {
			t.Errorf("a %s span: the renewal status is read on the happy path", sp.Name)
		}
	}
	stepIDs := map[trace.SpanID]string{}
	for step, eps := range steps {
		sp := one(t, spans, step)
		stepIDs[sp.SpanContext.SpanID()] = step
		if sp.Parent.SpanID() != saga.SpanContext.SpanID() {
			t.Errorf("step %s: parent %s, want the saga span %s", step, sp.Parent.SpanID(), saga.SpanContext.SpanID())
		}
		if got := attr(sp, workflow.AttrStepStatus); got != messages.StatusDone {
			t.Errorf("step %s: status attribute %q, want done", step, got)
		}
		if got := attr(sp, workflow.AttrAttempts); got != "1" {
			t.Errorf("step %s: attempts %q, want 1", step, got)
		}
		for _, ep := range eps {
			call := one(t, spans, partnerclient.SpanName(ep))
			if call.Parent.SpanID() != sp.SpanContext.SpanID() {
				t.Errorf("partner call %s: parent %s, want step %s's span", ep, call.Parent.SpanID(), step)
			}
		}
	}
	order := one(t, spans, messages.StepCreateOrder)
	if attr(order, workflow.AttrOrderNo) != c.OrderNo || attr(order, workflow.AttrSends) != "1" || attr(order, workflow.AttrPONumber) != workflow.DefaultPONumber(key) {
		t.Errorf("create_order span attributes %v: want order %s, 1 send, poNumber %s", order.Attributes, c.OrderNo, workflow.DefaultPONumber(key))
	}

	// The partner calls' spans: client spans with the HTTP status and the partner's requestId,
	// and their IDs are what the partner received.
	create := one(t, spans, partnerclient.SpanName(partnerclient.EndpointCreateOrder))
	if create.SpanKind != trace.SpanKindClient {
		t.Errorf("create_order call span kind %v, want client", create.SpanKind)
	}
	for k, v := range map[attribute.Key]string{
		"http.request.method": "POST", "http.response.status_code": "200",
		partnerclient.AttrEndpoint: string(partnerclient.EndpointCreateOrder), "server.address": "127.0.0.1",
	} {
		if got := attr(create, k); got != v {
			t.Errorf("create_order call span %s = %q, want %q", k, got, v)
		}
	}
	if id := attr(create, partnerclient.AttrRequestID); len(id) != 32 {
		t.Errorf("create_order call span requestId %q, want the partner's 32 hex digits", id)
	}
	if u := attr(create, "url.full"); !strings.HasPrefix(u, s.sim.URL) {
		t.Errorf("create_order call span url.full %q, want under %s", u, s.sim.URL)
	}
	sent := false
	for _, req := range s.sim.Requests(partnerclient.EndpointCreateOrder) {
		if req.TraceParent == "00-"+want.String()+"-"+create.SpanContext.SpanID().String()+"-01" {
			sent = true
		}
	}
	if !sent {
		t.Errorf("no create_order request carried the call span's traceparent")
	}
	// Every span of the trace is the saga, a step, a reconciliation or a partner call (the
	// token call, under the step that needed it first), and the tree has no other root.
	for _, sp := range spans {
		switch {
		case sp.Name == worker.SpanSaga:
		case steps[sp.Name] != nil:
		case strings.HasPrefix(sp.Name, "partner "):
			if _, ok := stepIDs[sp.Parent.SpanID()]; !ok {
				t.Errorf("partner call span %s: parent %s is not a step", sp.Name, sp.Parent.SpanID())
			}
		default:
			t.Errorf("unexpected span %q", sp.Name)
		}
	}
}

func TestTracingWithoutTraceParentUsesTheSagaIDAndSamples(t *testing.T) {
	s := newStack(t)
	exp := tracetest.NewInMemoryExporter()
	s.startTracedWorker(exp)
	key := "traced-root"
	s.publishTraced(key, `{"idempotencyKey":"`+key+`","plan":{"name":"Ultimate Plan"},"quantity":1}`, "")
	r := s.waitResults(key, 1)[0]
	completed(t, r)
	want, err := trace.TraceIDFromHex(strings.ReplaceAll(worker.SagaID(key), "-", ""))
	if err != nil {
		t.Fatal(err)
	}
	spans := spansOf(t, exp, want, key)
	saga := one(t, spans, worker.SpanSaga)
	if saga.Parent.IsValid() {
		t.Errorf("saga span has parent %s, want a root", saga.Parent.SpanID())
	}
	if got, wantTP := r.header.Get(messages.HeaderTraceParent), tracing.TraceParent(saga.SpanContext); got != wantTP || !strings.HasSuffix(got, "-01") {
		t.Errorf("event traceparent %q, want the saga span's, sampled: %q", got, wantTP)
	}
	if got := attr(one(t, spans, messages.StepResolveProduct), workflow.AttrStepStatus); got != messages.StatusSkipped {
		t.Errorf("resolve_product status %q, want skipped (no SN, no customer)", got)
	}
}

func TestTracingUnsampledRequestRecordsNothingButKeepsTheTrace(t *testing.T) {
	const incoming = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	s := newStack(t)
	exp := tracetest.NewInMemoryExporter()
	s.startTracedWorker(exp)
	key := "traced-unsampled"
	s.publishTraced(key, `{"idempotencyKey":"`+key+`","plan":{"name":"Ultimate Plan"},"quantity":1}`, incoming)
	r := s.waitResults(key, 1)[0]
	completed(t, r)
	got := r.header.Get(messages.HeaderTraceParent)
	if traceID(got) != "5bf92f3577b34da6a3ce929d0e0e4736" || got == incoming || !strings.HasSuffix(got, "-00") {
		t.Errorf("event traceparent %q, want the request's trace, a new parent ID, not sampled", got)
	}
	s.settle()
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled request, want none", n)
	}
	for _, req := range s.sim.Requests(partnerclient.EndpointCreateOrder) {
		if traceID(req.TraceParent) == "5bf92f3577b34da6a3ce929d0e0e4736" && strings.HasSuffix(req.TraceParent, "-00") {
			return
		}
	}
	t.Errorf("no create_order request carried the unsampled trace")
}

func TestTracingFailedPurchaseMarksTheSpans(t *testing.T) {
	const incoming = "00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s := newStack(t)
	exp := tracetest.NewInMemoryExporter()
	s.startTracedWorker(exp)
	key := "traced-failed"
	s.publishTraced(key, `{"idempotencyKey":"`+key+`","plan":{"name":"No Such Plan"},"quantity":1}`, incoming)
	f := failed(t, s.waitResults(key, 1)[0])
	want, _ := trace.TraceIDFromHex("6bf92f3577b34da6a3ce929d0e0e4736")
	spans := spansOf(t, exp, want, key)
	saga := one(t, spans, worker.SpanSaga)
	if saga.Status.Code != codes.Error || attr(saga, worker.AttrOutcome) != "failed" || attr(saga, worker.AttrReason) != string(f.Reason) || attr(saga, worker.AttrAck) != "term" {
		t.Errorf("saga span status %v, attributes %v: want an error, failed, reason %s, term", saga.Status, saga.Attributes, f.Reason)
	}
	plan := one(t, spans, messages.StepResolvePlan)
	if plan.Status.Code != codes.Error || attr(plan, workflow.AttrStepStatus) != "failed" || attr(plan, workflow.AttrReason) != string(messages.ReasonInvalidRequest) {
		t.Errorf("resolve_plan span status %v, attributes %v: want an error, failed, invalid_request", plan.Status, plan.Attributes)
	}
	if len(byName(spans, messages.StepCreateOrder)) != 0 {
		t.Errorf("a create_order span for a purchase that failed its lookups")
	}
}
