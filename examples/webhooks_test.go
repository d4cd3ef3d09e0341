package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/internal/webhook"
	"github.com/fulfil/fulfil/messages"
)

// exampleSecret is the receivers' secret in these tests.
const exampleSecret = "whsec_C2FTOxQUX5jRlh8z0gmg8lqJ3xvLHVyM"

var (
	receiverOnce sync.Once
	receiverBin  string
	receiverErr  error
)

// buildReceiver builds examples/webhooks/go.
func buildReceiver(t *testing.T) string {
	t.Helper()
	bin := buildBinaries(t) // also makes buildDir, removed by TestMain
	receiverOnce.Do(func() {
		receiverBin = filepath.Join(filepath.Dir(bin.fulfil), "webhook-receiver")
		args := []string{"build", "-o", receiverBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/fulfil/fulfil/examples/webhooks/go")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			receiverErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if receiverErr != nil {
		t.Fatal(receiverErr)
	}
	return receiverBin
}

// exampleReceiver is a running receiver example.
type exampleReceiver struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
}

// startReceiver runs exe with args and --addr on a free port, with WEBHOOK_SECRET set, until
// the test ends.
func startReceiver(t *testing.T, exe string, args ...string) *exampleReceiver {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(exe, append(args, "--addr", addr)...)
	cmd.Env = append(cleanEnv(), "WEBHOOK_SECRET="+exampleSecret)
	r := &exampleReceiver{url: "http://" + addr + "/fulfil", stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("receiver stdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		}
	})
	testutil.Eventually(t, 30*time.Second, func() bool { return strings.Contains(r.stderr.String(), "listening on") },
		"the receiver to start:\n%s", r.stderr)
	return r
}

// post sends body to the receiver with the given webhook headers and returns the status.
func (r *exampleReceiver) post(t *testing.T, id, ts, sig string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// printed returns the events the receiver printed: webhook-id -> event.
func (r *exampleReceiver) printed(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout.String()))
	for sc.Scan() {
		var line struct {
			WebhookID string          `json:"webhookId"`
			Event     json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("receiver printed %q: %v", sc.Text(), err)
		}
		if _, dup := out[line.WebhookID]; dup {
			t.Errorf("receiver printed webhook-id %s twice", line.WebhookID)
		}
		out[line.WebhookID] = line.Event
	}
	return out
}

// checkVerification sends the receiver good and bad requests: a valid signature (alone, and
// second of two), a wrong one, a body changed after signing, a timestamp 6 minutes old (the
// specification's own example, signed in 2021), and a repeated webhook-id.
func checkVerification(t *testing.T, r *exampleReceiver) {
	t.Helper()
	secret, err := webhook.ParseSecret(exampleSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"purchase.completed","idempotencyKey":"verify-1"}`)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := secret.Sign("evt-1", now, body)
	cases := []struct {
		name, id, ts, sig string
		body              []byte
		want              int
	}{
		{"valid", "evt-1", ts, sig, body, http.StatusNoContent},
		{"valid again (same webhook-id)", "evt-1", ts, sig, body, http.StatusNoContent},
		{"valid as the second of two signatures", "evt-2", ts, "v1,AAAA " + secret.Sign("evt-2", now, body), body, http.StatusNoContent},
		{"wrong signature", "evt-3", ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body, http.StatusUnauthorized},
		{"body changed", "evt-4", ts, secret.Sign("evt-4", now, body), append([]byte(" "), body...), http.StatusUnauthorized},
		{"six minutes old", "evt-5", strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10),
			secret.Sign("evt-5", now.Add(-6*time.Minute), body), body, http.StatusUnauthorized},
		{"the specification's example, from 2021", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
			"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`), http.StatusUnauthorized},
		{"no signature", "evt-6", ts, "", body, http.StatusUnauthorized},
	}
	for _, c := range cases {
		if got := r.post(t, c.id, c.ts, c.sig, c.body); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	printed := r.printed(t)
	if len(printed) != 2 || printed["evt-1"] == nil || printed["evt-2"] == nil {
		t.Errorf("printed %v, want evt-1 and evt-2 once each", printed)
	}
}

// checkWithWorker runs a worker with --webhook-url to the receiver and submits a sample: the
// receiver prints the completed event, verified.
func checkWithWorker(t *testing.T, r *exampleReceiver) {
	t.Helper()
	bin := buildBinaries(t)
	natsAddr, httpAddr := freePort(t), freePort(t)
	cmd := exec.Command(bin.fulfil, "worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--http-addr", httpAddr, "--api-addr", "", "--log-level", "warn", "--webhook-url", r.url)
	cmd.Env = append(cleanEnv(), "FULFIL_WEBHOOK_SECRET="+exampleSecret)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", out.String())
		}
	})
	ready := func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	testutil.Eventually(t, 60*time.Second, func() bool {
		select {
		case <-done:
			t.Fatalf("worker exited:\n%s", out.String())
		default:
		}
		return ready()
	}, "the worker to be ready:\n%s", out)
	path, err := filepath.Abs(filepath.Join("requests", "new-licence.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, req := readRequest(t, path)
	res := runProcess(t, "", bin.fulfil, "submit", "--nats-listen", natsAddr, "--timeout", "60s", "--json", "-f", path)
	if res.code != 0 {
		t.Fatalf("submit: %s", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, ev := range r.printed(t) {
			e, err := messages.DecodeEvent(ev)
			if err == nil && e.Key() == req.IdempotencyKey && e.EventType() == messages.TypeCompleted {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the receiver did not print the completed event of %s:\n%s", req.IdempotencyKey, r.stdout.String())
}

// TestGoWebhookReceiver runs examples/webhooks/go.
func TestGoWebhookReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	t.Run("verification", func(t *testing.T) { checkVerification(t, startReceiver(t, buildReceiver(t))) })
	t.Run("with a worker", func(t *testing.T) { checkWithWorker(t, startReceiver(t, buildReceiver(t))) })
}

// TestNodeWebhookReceiver runs examples/webhooks/node/receiver.mjs (node:crypto and node:http
// only). Without node it is skipped, unless CI is set.
func TestNodeWebhookReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed; CI is set, so the Node webhook receiver must run (.ci/run installs Node.js)")
		}
		t.Skip("skipping the Node webhook receiver: node is not installed")
	}
	t.Parallel()
	script, err := filepath.Abs(filepath.Join("webhooks", "node", "receiver.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("verification", func(t *testing.T) { checkVerification(t, startReceiver(t, node, script)) })
	t.Run("with a worker", func(t *testing.T) { checkWithWorker(t, startReceiver(t, node, script)) })
}
