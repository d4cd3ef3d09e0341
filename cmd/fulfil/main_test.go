package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/fulfil/fulfil/internal/testutil"
)

// syncBuffer is the shared test buffer, safe for a writer and a reader at once.
type syncBuffer = testutil.Buffer

func TestDemoExitsZero(t *testing.T) {
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := run(ctx, []string{"demo"}, &out, &errb); code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"All outcomes as expected.", "3 orders placed for 3 purchases", "replayed", "conflict", "invalid_request"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A worker with an embedded NATS server and the in-process simulator, driven by submit and
// status as a user would from another terminal.
func TestWorkerSubmitStatus(t *testing.T) {
	natsAddr, httpAddr := freePort(t), freePort(t)
	common := []string{"--nats-listen", natsAddr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"worker", "--partner-sim", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--log-level", "warn", "--pprof"}, common...), io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)

	for _, path := range []string{"/healthz", "/debug/pprof/goroutine?debug=1"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}

	tests := []struct {
		name     string
		give     []string
		wantCode int
		wantOut  string
	}{
		{name: "new license", give: []string{"--key", "cli-1", "--plan", "Ultimate Plan", "--quantity", "5"}, wantCode: exitOK, wantOut: "completed: order ZC"},
		{name: "quick re-publish is deduplicated", give: []string{"--key", "cli-1", "--plan", "Ultimate Plan", "--quantity", "5"}, wantCode: exitOK, wantOut: "completed: order ZC"},
		{name: "same purchase, new message, is replayed", give: []string{"--key", "cli-1", "--plan", "ultimate plan", "--quantity", "5"}, wantCode: exitOK, wantOut: "completed (replayed)"},
		{name: "same key, other purchase", give: []string{"--key", "cli-1", "--plan", "Ultimate Plan", "--quantity", "6"}, wantCode: exitFailed, wantOut: "conflict"},
		{name: "unknown plan", give: []string{"--key", "cli-2", "--plan", "Gold Plan", "--quantity", "5"}, wantCode: exitFailed, wantOut: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb syncBuffer
			args := append(append([]string{"submit", "--timeout", "60s"}, common...), tt.give...)
			code := run(context.Background(), args, &out, &errb)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("exit %d, want %d; stdout %q (want %q); stderr:\n%s", code, tt.wantCode, out.String(), tt.wantOut, errb.String())
			}
		})
	}

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`fulfil_sagas_finished_total{outcome="completed",reason=""} 1`,
		`fulfil_sagas_finished_total{outcome="failed",reason="conflict"} 1`,
		`fulfil_outcomes_replayed_total 1`,
		`fulfil_partner_calls_total{endpoint="create_order",outcome="ok"} 1`,
		`fulfil_step_duration_seconds_count{step="fetch_activation"} 1`,
		`fulfil_sagas_in_flight 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	var out, errb syncBuffer
	if code := run(context.Background(), append([]string{"status"}, append(common, "cli-1")...), &out, &errb); code != exitOK {
		t.Fatalf("status exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"completed", "fetch_activation", "order: ZC"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), append([]string{"events", "--follow=false", "--key", "cli-1", "--type", "completed"}, common...), &out, &errb); code != exitOK {
		t.Fatalf("events exit %d: %s", code, errb.String())
	}
	// The original and the replay; the deduplicated re-publish created no message, so no event.
	if got := strings.Count(out.String(), "completed  order ZC"); got != 2 {
		t.Errorf("events printed %d completed events of cli-1, want 2:\n%s", got, out.String())
	}
	out.Reset()
	if code := run(context.Background(), append([]string{"dlq", "list"}, common...), &out, &errb); code != exitOK || !strings.Contains(out.String(), "conflict") {
		t.Errorf("dlq list exit %d:\n%s", code, out.String())
	}
	if code := run(context.Background(), append([]string{"status"}, append(common, "never-submitted")...), io.Discard, io.Discard); code != exitFailed {
		t.Errorf("status of an unknown key: exit %d, want %d", code, exitFailed)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("worker exit %d after SIGTERM-like cancel; stderr:\n%s", code, werr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop")
	}
}

func waitReady(t *testing.T, url string, done <-chan int, stderr fmt.Stringer) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("worker exited with %d:\n%s", code, stderr.String())
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the worker to be ready:\n%s", stderr)
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    config
		wantErr []string
	}{
		{name: "https with credentials", give: config{partnerURL: "https://p.example", clientID: "id", clientSecret: "s"}},
		{name: "secret from a file", give: config{partnerURL: "https://p.example", clientID: "id", clientSecretFile: secretFile}},
		{name: "loopback http is fine", give: config{partnerURL: "http://127.0.0.1:8089", clientID: "id", clientSecret: "s"}},
		{name: "plain http elsewhere", give: config{partnerURL: "http://p.example", clientID: "id", clientSecret: "s"},
			wantErr: []string{"plain http on a non-loopback host"}},
		{name: "plain http allowed explicitly", give: config{partnerURL: "http://p.example", clientID: "id", clientSecret: "s", partnerInsecure: true}},
		{name: "every problem at once", give: config{partnerURL: "ftp://p.example"},
			wantErr: []string{"scheme must be https", "client ID is missing", "client secret is missing"}},
		{name: "missing secret file", give: config{partnerURL: "https://p.example", clientID: "id", clientSecretFile: filepath.Join(dir, "nope")},
			wantErr: []string{"partner client secret file"}},
		{name: "simulator needs nothing", give: config{partnerSim: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.give
			err := c.resolvePartner()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Setenv("FULFIL_CONCURRENCY", "7")
	t.Setenv("FULFIL_SUBJECT_PREFIX", "shop")
	parse := func(args ...string) (*config, error) {
		var c config
		fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
		c.natsFlags(fs, true)
		c.workerFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &c, errors.Join(applyEnv(fs)...)
	}
	c, err := parse("--concurrency", "9")
	if err != nil {
		t.Fatal(err)
	}
	if c.concurrency != 9 || c.prefix != "shop" {
		t.Errorf("concurrency %d prefix %q, want 9 (flag) and shop (env)", c.concurrency, c.prefix)
	}
	t.Setenv("FULFIL_CONCURRENCY", "many")
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), "FULFIL_CONCURRENCY") {
		t.Errorf("bad env value: err = %v, want one naming FULFIL_CONCURRENCY", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, io.Discard, &errb); code != exitUsage || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestNATSSettingsAreChecked(t *testing.T) {
	c := config{natsCert: "/nonexistent/cert.pem", natsCreds: "/nonexistent/x.creds"}
	err := c.checkNATS()
	for _, want := range []string{"needs both", "NATS_CREDS", "FULFIL_NATS_TLS_CERT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkNATS() = %v, want it to mention %q", err, want)
		}
	}
	if err := (&config{}).checkNATS(); err != nil {
		t.Errorf("no TLS settings: %v", err)
	}
}

func TestDefaultReplicas(t *testing.T) {
	tests := []struct {
		give string
		want int
	}{{give: "", want: 1}, {give: "fulfil", want: 3}}
	for _, tt := range tests {
		if got := defaultReplicas(tt.give); got != tt.want {
			t.Errorf("defaultReplicas(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}
