package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/fulfil/fulfil/internal/tracing"
)

// clearEnv unsets every OTEL_* variable for the test (restored after it).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestOffWithoutOTELSettings(t *testing.T) {
	clearEnv(t)
	before := otel.GetTracerProvider()
	s, problems := tracing.FromEnv()
	if len(problems) > 0 || s.Enabled() || len(s.Exporters) != 0 {
		t.Fatalf("FromEnv() = %+v, %v; want off, no problems", s, problems)
	}
	tr, err := tracing.Start(context.Background(), s, tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.TracerProvider() != nil {
		t.Errorf("tracing on without settings: provider %v", tr.TracerProvider())
	}
	// Another test of the package may have set a global provider before this one ran (-count):
	// what matters is that Start with tracing off leaves it as it was.
	if otel.GetTracerProvider() != before {
		t.Errorf("the global tracer provider changed while tracing is off")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	var nilTracing *tracing.Tracing
	if nilTracing.Enabled() || nilTracing.TracerProvider() != nil || nilTracing.Shutdown(context.Background()) != nil {
		t.Errorf("a nil *Tracing is not off")
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantExporters string
		wantProtocol  string
		wantProblems  []string // substrings, one per problem
	}{
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "exporter otlp, default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, wantExporters: "console"},
		{name: "otlp and console", env: map[string]string{"OTEL_TRACES_EXPORTER": " OTLP , console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, wantExporters: "otlp,console", wantProtocol: "http/protobuf"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantExporters: "otlp", wantProtocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}},
		{name: "sdk not disabled", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "only a protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}},
		{name: "sampler", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, wantExporters: "otlp", wantProtocol: "http/protobuf"},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantProblems: []string{`OTEL_EXPORTER_OTLP_PROTOCOL "http/json": not supported; want http/protobuf (port 4318) or grpc (port 4317)`}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"},
			wantProblems: []string{`OTEL_TRACES_EXPORTER "zipkin": "zipkin" is not supported; want otlp, console or none`}},
		{name: "none with another", env: map[string]string{"OTEL_TRACES_EXPORTER": "none,otlp"}, wantProblems: []string{"none cannot be combined"}},
		{name: "bad endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"},
			wantProblems: []string{`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "collector:4318": want an http:// or https:// URL`}},
		{name: "bad sampler", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "jaeger_remote"}, wantProblems: []string{`OTEL_TRACES_SAMPLER "jaeger_remote": not supported`}},
		{name: "bad sampler arg", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, wantProblems: []string{`OTEL_TRACES_SAMPLER_ARG "2": want a ratio from 0 to 1`}},
		{name: "bad resource attributes", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_RESOURCE_ATTRIBUTES": "team"}, wantProblems: []string{`OTEL_RESOURCE_ATTRIBUTES "team"`}},
		{name: "bad sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "yes"}, wantProblems: []string{`OTEL_SDK_DISABLED "yes": want true or false`}},
		{name: "every problem at once", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc-web", "OTEL_TRACES_SAMPLER": "sometimes"},
			wantProblems: []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			s, problems := tracing.FromEnv()
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("problems %v, want %d: %v", problems, len(tt.wantProblems), tt.wantProblems)
			}
			for i, p := range problems {
				if !strings.Contains(p.Error(), tt.wantProblems[i]) {
					t.Errorf("problem %q, want it to contain %q", p, tt.wantProblems[i])
				}
			}
			if got := strings.Join(s.Exporters, ","); got != tt.wantExporters || s.Protocol != tt.wantProtocol {
				t.Errorf("exporters %q, protocol %q; want %q, %q", got, s.Protocol, tt.wantExporters, tt.wantProtocol)
			}
			if s.Enabled() != (tt.wantExporters != "") {
				t.Errorf("Enabled() = %v", s.Enabled())
			}
		})
	}
}

// receiver is an OTLP/HTTP receiver: it decodes the protobuf POSTs to /v1/traces.
type receiver struct {
	mu       sync.Mutex
	requests []*collector.ExportTraceServiceRequest
	problems []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		rc.problems = append(rc.problems, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	req := &collector.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		rc.problems = append(rc.problems, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.requests = append(rc.requests, req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// spans returns the received spans' names and each resource's attributes.
func (rc *receiver) spans() (names []string, resources []map[string]string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, req := range rc.requests {
		for _, rs := range req.ResourceSpans {
			attrs := map[string]string{}
			for _, kv := range rs.Resource.GetAttributes() {
				attrs[kv.Key] = kv.Value.GetStringValue()
			}
			resources = append(resources, attrs)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}
	return names, resources
}

func TestStartExportsOverOTLPHTTPAndFlushesOnShutdown(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	for _, tt := range []struct {
		name        string
		env         map[string]string
		wantService string
		wantTeam    string
	}{
		{name: "defaults", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}, wantService: "fulfil"},
		{name: "service name and resource attributes", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces",
			"OTEL_SERVICE_NAME": "fulfil-eu", "OTEL_RESOURCE_ATTRIBUTES": "team=shop,deployment.environment=test"}, wantService: "fulfil-eu", wantTeam: "shop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc.mu.Lock()
			rc.requests = nil
			rc.mu.Unlock()
			setEnv(t, tt.env)
			s, problems := tracing.FromEnv()
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			tr, err := tracing.Start(context.Background(), s, tracing.Options{ServiceVersion: "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			if otel.GetTracerProvider() != tr.TracerProvider() {
				t.Errorf("the global tracer provider is not the one started")
			}
			_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "exported span")
			span.End()
			// Batched: nothing is sent before the flush on Shutdown.
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			names, resources := rc.spans()
			if len(names) != 1 || names[0] != "exported span" {
				t.Fatalf("received spans %v, want the one span", names)
			}
			res := resources[0]
			if res["service.name"] != tt.wantService || res["service.version"] != "1.2.3" || res["team"] != tt.wantTeam || res["telemetry.sdk.language"] != "go" {
				t.Errorf("resource %v: want service.name %s, service.version 1.2.3, team %q", res, tt.wantService, tt.wantTeam)
			}
		})
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) > 0 {
		t.Errorf("receiver: %v", rc.problems)
	}
}

func TestConsoleExporterWritesToStdout(t *testing.T) {
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console"})
	s, problems := tracing.FromEnv()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var out bytes.Buffer
	tr, err := tracing.Start(context.Background(), s, tracing.Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "console span")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Name":"console span"`) {
		t.Errorf("console output %q, want the span", out.String())
	}
}

func TestWithTraceIDRootsATraceInAGivenID(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := tp.Tracer("test")
	id, _ := trace.TraceIDFromHex("87c1dc4377735b879c88acef1175013b")
	ctx, root := tr.Start(tracing.WithTraceID(context.Background(), id), "root")
	_, child := tr.Start(ctx, "child")
	child.End()
	root.End()
	_, other := tr.Start(context.Background(), "other")
	other.End()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	if spans[0].SpanContext.TraceID() != id || spans[1].SpanContext.TraceID() != id {
		t.Errorf("trace IDs %s, %s; want %s", spans[0].SpanContext.TraceID(), spans[1].SpanContext.TraceID(), id)
	}
	if spans[0].SpanContext.SpanID() == spans[1].SpanContext.SpanID() {
		t.Errorf("root and child share a span ID")
	}
	if spans[2].SpanContext.TraceID() == id || !spans[2].SpanContext.TraceID().IsValid() {
		t.Errorf("a root without WithTraceID has trace %s", spans[2].SpanContext.TraceID())
	}
	if got := tracing.WithTraceID(context.Background(), trace.TraceID{}); got != context.Background() {
		t.Errorf("WithTraceID with an invalid ID changed the context")
	}
}

// TraceParent and SpanContextFromTraceParent are traceparent's (tested there).
func TestTraceParent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc, ok := tracing.SpanContextFromTraceParent(tp)
	if !ok || tracing.TraceParent(sc) != tp {
		t.Errorf("SpanContextFromTraceParent(%q) = %v, %v; TraceParent of it %q", tp, sc, ok, tracing.TraceParent(sc))
	}
}

// traceService is an OTLP/gRPC receiver.
type traceService struct {
	collector.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (s *traceService) Export(_ context.Context, req *collector.ExportTraceServiceRequest) (*collector.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.names = append(s.names, sp.Name)
			}
		}
	}
	return &collector.ExportTraceServiceResponse{}, nil
}

func TestStartExportsOverOTLPGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &traceService{}
	srv := grpc.NewServer()
	collector.RegisterTraceServiceServer(srv, svc)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
	s, problems := tracing.FromEnv()
	if len(problems) > 0 || s.Protocol != tracing.ProtocolGRPC {
		t.Fatal(s, problems)
	}
	tr, err := tracing.Start(context.Background(), s, tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "grpc span")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.names) != 1 || svc.names[0] != "grpc span" {
		t.Errorf("received %v, want the span", svc.names)
	}
}

// TestOTLPDefaultEndpoint: OTEL_TRACES_EXPORTER=otlp without an endpoint sends to the
// specification's default, http://localhost:4318 (plain HTTP, not TLS).
func TestOTLPDefaultEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:4318")
	if err != nil {
		t.Skipf("port 4318 is taken: %v", err)
	}
	rc := &receiver{}
	srv := &http.Server{Handler: rc}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp"})
	s, problems := tracing.FromEnv()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	tr, err := tracing.Start(context.Background(), s, tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "default endpoint span")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if names, _ := rc.spans(); len(names) != 1 {
		t.Errorf("received %v, want the span", names)
	}
}
