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
	traces   map[string]bool // trace IDs (hex) of saga spans
	bad      []string
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rc := &otlpReceiver{spans: map[string]int{}, services: map[string]bool{}, traces: map[string]bool{}}
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
				if s.Name == "saga" {
					rc.traces[strings.ToLower(bytesHex(s.TraceId))] = true
				}
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
// at a local OTLP/HTTP receiver, buys one licence with `fulfil submit` and stops the worker right
// after: the spans of the purchase (buffered for up to 5 s by default) must have reached the
// receiver when the process has exited, flushed on the way out.
func TestWorkerExportsSpansOverOTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	rc, endpoint := newOTLPReceiver(t)
	natsAddr, httpAddr := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := fulfilCmd(ctx, t, "worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--http-addr", httpAddr, "--api-addr", freePort(t), "--log-level", "info")
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

	code, stdout, stderr := cli(t, natsAddr, "submit", "--timeout", "60s", "--key", "traced-blackbox", "--plan", "Ultimate Plan", "--quantity", "1")
	if code != exitOK || !strings.Contains(stdout, "completed: order ZC") {
		t.Fatalf("submit: exit %d, stdout %q, stderr:\n%s\nworker:\n%s", code, stdout, stderr, out.String())
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
	for _, name := range []string{"saga", "resolve_product", "resolve_plan", "resolve_billing", "create_order",
		"enable_renewal", "fetch_activation", "partner purchase_product_info", "partner create_order", "partner activation_code"} {
		if rc.spans[name] == 0 {
			t.Errorf("no %q span received; received %v", name, rc.spans)
		}
	}
	if !rc.services["fulfil-blackbox"] || len(rc.services) != 1 {
		t.Errorf("service names %v, want OTEL_SERVICE_NAME's fulfil-blackbox", rc.services)
	}
	if len(rc.traces) != 1 {
		t.Errorf("saga spans in traces %v, want one trace", rc.traces)
	}
	if t.Failed() {
		t.Logf("worker output:\n%s", out.String())
	}
}

// TestWorkerRefusesUnsupportedOTELSettings: an OTLP protocol fulfil cannot speak, or an endpoint
// that is not a URL, is a settings error before anything starts.
func TestWorkerRefusesUnsupportedOTELSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := fulfilCmd(ctx, t, "worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", freePort(t), "--http-addr", freePort(t),
		"--api-addr", freePort(t))
	cmd.Env = withoutOTEL(cmd.Env, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"fulfil worker: 2 problems with the settings; nothing was started",
		`OTEL_EXPORTER_OTLP_PROTOCOL "http/json": not supported; want http/protobuf (port 4318) or grpc (port 4317)`,
		`OTEL_EXPORTER_OTLP_ENDPOINT "collector:4318": want an http:// or https:// URL`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
