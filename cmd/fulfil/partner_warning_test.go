package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// A worker that cannot get its first partner token says so at start, at warn level, naming what
// to check, without the secret; it still starts (purchases wait and retry), and a partner that
// does not answer at all does not hold the start-up back.
func TestWorkerWarnsWhenThePartnerIsNotUsable(t *testing.T) {
	const secret = "s3cret-never-logged-7731"
	closed := "http://" + freePort(t) // nothing listens there
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	tests := []struct {
		name, url, id string
		want          []string
	}{
		{"nothing listens", closed, partnertest.DefaultClientID,
			[]string{"partner API not reachable: ", "purchases will wait and retry", "check FULFIL_PARTNER_URL"}},
		{"wrong secret", sim.URL, partnertest.DefaultClientID,
			[]string{"partner API refused the credentials: ", "purchases will wait and retry", "FULFIL_PARTNER_CLIENT_SECRET"}},
		{"no answer", "http://" + silent.Addr().String(), partnertest.DefaultClientID,
			[]string{"partner API not reachable: ", "purchases will wait and retry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpAddr := freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			var stderr syncBuffer
			done := make(chan int, 1)
			start := time.Now()
			go func() {
				done <- run(ctx, []string{"worker", "--data-dir", t.TempDir(), "--nats-listen", freePort(t), "--http-addr", httpAddr,
					"--partner-url", tt.url, "--partner-client-id", tt.id, "--partner-client-secret", secret}, &stderr, &stderr)
			}()
			defer func() {
				cancel()
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					t.Error("worker did not stop")
				}
				if strings.Contains(stderr.String(), secret) {
					t.Errorf("the client secret is in the logs:\n%s", stderr.String())
				}
				if t.Failed() {
					t.Logf("stderr:\n%s", stderr.String())
				}
			}()
			// It starts without waiting for the partner.
			waitFor(t, "worker", nil, nil, func() bool {
				select {
				case code := <-done:
					t.Fatalf("worker exited with %d", code)
				default:
				}
				resp, err := http.Get("http://" + httpAddr + "/healthz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK && strings.Contains(stderr.String(), `"worker started"`)
			})
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("start-up took %s", took)
			}
			var line map[string]any
			testutil.Eventually(t, 30*time.Second, func() bool {
				for l := range strings.Lines(stderr.String()) {
					if strings.Contains(l, "partner API") && strings.Contains(l, "purchases will wait") {
						if err := json.Unmarshal([]byte(l), &line); err != nil {
							t.Fatalf("log line %q: %v", l, err)
						}
					}
				}
				return line != nil
			}, "a warning about the partner")
			msg, _ := line["msg"].(string)
			if line["level"] != "warn" {
				t.Errorf("level %v, want warn", line["level"])
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

// A worker whose partner answers logs no such warning.
func TestWorkerDoesNotWarnWhenThePartnerAnswers(t *testing.T) {
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", freePort(t), "--http-addr", httpAddr}, &stderr, &stderr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &stderr)
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	if strings.Contains(stderr.String(), "partner API not reachable") || strings.Contains(stderr.String(), "refused the credentials") {
		t.Errorf("a warning about a partner that answers:\n%s", stderr.String())
	}
}
