package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver takes OTLP/HTTP protobuf POSTs on /v1/traces, as a collector does.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    map[string]int // by name
	services map[string]bool
	traces   map[string]map[string]bool // span name → trace IDs (hex)
	bad      []string
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rc := &otlpReceiver{spans: map[string]int{}, services: map[string]bool{}, traces: map[string]map[string]bool{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func (rc *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &collector.ExportTraceServiceRequest{}
	err := proto.Unmarshal(body, req)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		rc.bad = append(rc.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, kv := range rs.Resource.GetAttributes() {
			if kv.Key == "service.name" {
				rc.services[kv.Value.GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				rc.spans[s.Name]++
				if rc.traces[s.Name] == nil {
					rc.traces[s.Name] = map[string]bool{}
				}
				rc.traces[s.Name][bytesHex(s.TraceId)] = true
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// withoutOTEL returns env without any OTEL_ setting, plus extra.
func withoutOTEL(env []string, extra ...string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// TestWorkerExportsSpansOverOTLP runs `fulfil worker` with OTEL_EXPORTER_OTLP_ENDPOINT pointing
// at a local OTLP/HTTP receiver and a webhook endpoint, buys one licence through the HTTP intake
// with a traceparent, waits for the completed event's webhook and stops the worker: the spans
// of the purchase (buffered for up to 5 s by default) must have reached the receiver when the
// process has exited, flushed on the way out, all in the caller's trace: the intake's server
// span, the saga, its steps, the partner calls and the webhook POST.
func TestWorkerExportsSpansOverOTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	rc, endpoint := newOTLPReceiver(t)
	hooks := make(chan string, 10) // the traceparent of each webhook POST
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks <- r.Header.Get("traceparent")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	natsAddr, httpAddr, apiAddr := freePort(t), freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := fulfilCmd(ctx, t, "worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--http-addr", httpAddr, "--api-addr", apiAddr, "--log-level", "info",
		"--webhook-url", hook.URL, "--webhook-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	cmd.Env = withoutOTEL(cmd.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_SERVICE_NAME=fulfil-blackbox")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, "worker", done, out, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !strings.Contains(out.String(), `"msg":"tracing on"`) {
		t.Errorf("the worker did not log that tracing is on:\n%s", out.String())
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/purchases", strings.NewReader(`{"plan":{"name":"Ultimate Plan"},"quantity":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "traced-blackbox")
	req.Header.Set("traceparent", incoming)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/purchases: %s\n%s", resp.Status, out.String())
	}
	select {
	case tp := <-hooks:
		if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || tp == incoming {
			t.Errorf("webhook POST traceparent %q, want the caller's trace with the POST's span", tp)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no webhook after 60s\n%s", out.String())
	}
	cancel() // SIGINT
	select {
	case err := <-done:
		// Wait reports the cancellation even when the worker exited 0 on SIGINT.
		if code := cmd.ProcessState.ExitCode(); code != exitOK {
			t.Fatalf("worker: %v, exit %d\n%s", err, code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop\n%s", out.String())
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Errorf("bad OTLP requests: %v", rc.bad)
	}
	// Partner calls outside a purchase (the start-up's token, the audit's order list) have
	// traces of their own.
	for _, name := range []string{"POST /v1/purchases", "webhook POST", "saga", "resolve_product", "resolve_plan", "resolve_billing", "create_order",
		"enable_renewal", "fetch_activation", "partner purchase_product_info", "partner create_order", "partner activation_code"} {
		if rc.spans[name] == 0 {
			t.Errorf("no %q span received; received %v", name, rc.spans)
		}
		if tr := rc.traces[name]; len(tr) != 1 || !tr["4bf92f3577b34da6a3ce929d0e0e4736"] {
			t.Errorf("%q spans in traces %v, want the caller's only", name, tr)
		}
	}
	if !rc.services["fulfil-blackbox"] || len(rc.services) != 1 {
		t.Errorf("service names %v, want OTEL_SERVICE_NAME's fulfil-blackbox", rc.services)
	}
	if t.Failed() {
		t.Logf("worker output:\n%s", out.String())
	}
}

// TestRefusesUnsupportedOTELSettings: for fulfil worker and fulfil api, an OTLP protocol fulfil
// cannot speak, or an endpoint that is not a URL, is a settings error before anything starts.
func TestRefusesUnsupportedOTELSettings(t *testing.T) {
	for _, args := range [][]string{
		{"worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", freePort(t), "--http-addr", freePort(t), "--api-addr", freePort(t)},
		{"api", "--nats-url", "nats://" + freePort(t), "--http-addr", freePort(t), "--api-addr", freePort(t)},
	} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := fulfilCmd(ctx, t, args...)
			cmd.Env = withoutOTEL(cmd.Env, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			for _, want := range []string{"fulfil " + args[0] + ": 2 problems with the settings; nothing was started",
				`OTEL_EXPORTER_OTLP_PROTOCOL "http/json": not supported; want http/protobuf (port 4318) or grpc (port 4317)`,
				`OTEL_EXPORTER_OTLP_ENDPOINT "collector:4318": want an http:// or https:// URL`} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
