package partnerclient_test

import (
	"context"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/traceparent"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func spanAttr(s tracetest.SpanStub, k attribute.Key) (string, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

// lastSpan returns the last ended span named name.
func lastSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	spans := exp.GetSpans()
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Name == name {
			return spans[i]
		}
	}
	t.Fatalf("no span %q among %d", name, len(spans))
	return tracetest.SpanStub{}
}

func TestTracerProviderMakesEachRequestAClientSpan(t *testing.T) {
	sim := newSim(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	c := newClient(t, sim, partnerclient.WithTracerProvider(tp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "step")
	if _, err := c.BillingContacts(ctx); err != nil {
		t.Fatal(err)
	}
	parent.End()

	s := lastSpan(t, exp, partnerclient.SpanName(partnerclient.EndpointBillingContacts))
	if s.Name != "partner billing_contact_list" || s.SpanKind != trace.SpanKindClient || s.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("span %q kind %v parent %s; want a client span under the caller's", s.Name, s.SpanKind, s.Parent.SpanID())
	}
	for k, want := range map[attribute.Key]string{
		"http.request.method": "GET", "http.response.status_code": "200", "server.address": "127.0.0.1",
		"url.full": sim.URL + partnerclient.PathBillingContacts, partnerclient.AttrEndpoint: "billing_contact_list",
	} {
		if got, _ := spanAttr(s, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if id, _ := spanAttr(s, partnerclient.AttrRequestID); len(id) != 32 {
		t.Errorf("requestId %q, want the partner's", id)
	}
	if _, ok := spanAttr(s, "error.type"); ok || s.Status.Code == codes.Error {
		t.Errorf("a successful call has error.type or status %v", s.Status)
	}
	// The request carried the call span's context; the token call has its own span.
	reqs := sim.Requests(partnerclient.EndpointBillingContacts)
	want := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"
	if len(reqs) != 1 || reqs[0].TraceParent != want {
		t.Errorf("requests %+v, want one with traceparent %s", reqs, want)
	}
	tok := lastSpan(t, exp, partnerclient.SpanName(partnerclient.EndpointToken))
	if tok.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("token span's parent %s, want the caller's span", tok.Parent.SpanID())
	}
}

func TestTracedCallErrors(t *testing.T) {
	tests := []struct {
		name       string
		faults     partnertest.Faults
		wantStatus string // http.response.status_code, "" for none
		wantType   string
		wantCode   string
	}{
		{name: "503", faults: partnertest.Faults{ErrorRate: 1}, wantStatus: "503", wantType: "service_unavailable", wantCode: "service_unavailable"},
		{name: "429", faults: partnertest.Faults{RateLimitRate: 1}, wantStatus: "429", wantType: "too_many_requests", wantCode: "too_many_requests"},
		{name: "connection reset", faults: partnertest.Faults{ResetRate: 1}, wantType: "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t)
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			c := newClient(t, sim, partnerclient.WithTracerProvider(tp))
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatal(err)
			}
			sim.SetFaults(partnerclient.EndpointActivationCode, tt.faults)
			_, err := c.ActivationCode(context.Background(), partnertest.ProductID, partnertest.ExistingSN)
			if err == nil {
				t.Fatal("no error")
			}
			s := lastSpan(t, exp, partnerclient.SpanName(partnerclient.EndpointActivationCode))
			if s.Status.Code != codes.Error || s.Status.Description != err.Error() {
				t.Errorf("status %+v, want Error with %q", s.Status, err)
			}
			if len(s.Events) != 1 || s.Events[0].Name != "exception" {
				t.Errorf("events %+v, want the recorded error", s.Events)
			}
			status, _ := spanAttr(s, "http.response.status_code")
			typ, _ := spanAttr(s, "error.type")
			code, _ := spanAttr(s, partnerclient.AttrCode)
			if status != tt.wantStatus || typ != tt.wantType || code != tt.wantCode {
				t.Errorf("status %q, error.type %q, code %q; want %q, %q, %q", status, typ, code, tt.wantStatus, tt.wantType, tt.wantCode)
			}
		})
	}
}

func TestWithoutTracerProviderTheContextsSpanIsSent(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, sim)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	if _, err := c.BillingContacts(ctx); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-0" + strconv.Itoa(int(sc.TraceFlags()&trace.FlagsSampled))
	if reqs := sim.Requests(partnerclient.EndpointBillingContacts); len(reqs) != 1 || reqs[0].TraceParent != want {
		t.Errorf("requests %+v, want one with the caller span's traceparent %s", reqs, want)
	}
}

// Tracing off, a request carries the remote span context of its context (the purchase's trace)
// as it is, and a request without one carries no traceparent.
func TestWithoutTracerProviderTheContextsTraceParentIsSent(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, sim)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	if _, err := c.BillingContacts(traceparent.ContextWith(context.Background(), tp)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BillingContacts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reqs := sim.Requests(partnerclient.EndpointBillingContacts); len(reqs) != 2 || reqs[0].TraceParent != tp || reqs[1].TraceParent != "" {
		t.Errorf("requests %+v, want one with traceparent %s, then one without", reqs, tp)
	}
}
