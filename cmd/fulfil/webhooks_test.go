package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
)

// hookSecret is a signing secret of the tests (24 random bytes).
const hookSecret = "whsec_C2FTOxQUX5jRlh8z0gmg8lqJ3xvLHVyM"

// specVerify is the Standard Webhooks verification, written out from the specification: the
// key is the base64 after "whsec_"; the content signed is "<webhook-id>.<webhook-timestamp>.<body>";
// the signature is "v1," and the base64 of HMAC-SHA256, one of several separated by spaces,
// compared in constant time; the timestamp must be within 5 minutes of now.
func specVerify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return fmt.Errorf("webhook-id %q, webhook-timestamp %q", id, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s away", d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, sig := range strings.Split(h.Get("webhook-signature"), " ") {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", h.Get("webhook-signature"))
}

// The verifier above passes the specification's published example.
func TestSpecVerifierPassesThePublishedExample(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := specVerify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0)); err != nil {
		t.Fatal(err)
	}
}

// hookReceiver is an endpoint for the tests: it verifies every request and answers status().
type hookReceiver struct {
	t    *testing.T
	srv  *httptest.Server
	up   atomic.Bool
	mu   sync.Mutex
	hits []hookHit
}

type hookHit struct {
	id     string
	body   []byte
	status int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := specVerify(hookSecret, req.Header, body, time.Now()); err != nil || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook does not verify: %v (Content-Type %q)", err, req.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		status := http.StatusServiceUnavailable
		if r.up.Load() {
			status = http.StatusOK
		}
		r.mu.Lock()
		r.hits = append(r.hits, hookHit{id: req.Header.Get("webhook-id"), body: body, status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// delivered counts the successful deliveries of each webhook-id; attempts counts all requests.
func (r *hookReceiver) delivered() (ok map[string]int, bodies map[string][]byte, attempts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok, bodies = map[string]int{}, map[string][]byte{}
	for _, h := range r.hits {
		if h.status == http.StatusOK {
			ok[h.id]++
			bodies[h.id] = h.body
		}
	}
	return ok, bodies, len(r.hits)
}

// hookWorker runs `fulfil worker --partner-sim` in-process with webhooks to url until stop.
type hookWorker struct {
	stop   func()
	stderr *syncBuffer
}

func startHookWorker(t *testing.T, natsAddr, dataDir string, extra ...string) *hookWorker {
	t.Helper()
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := &hookWorker{stderr: &syncBuffer{}}
	done := make(chan int, 1)
	args := append([]string{"worker", "--partner-sim", "--data-dir", dataDir, "--nats-listen", natsAddr, "--http-addr", httpAddr,
		"--api-addr", "", "--log-level", "warn"}, extra...)
	go func() { done <- run(ctx, args, io.Discard, w.stderr) }()
	waitReady(t, "http://"+httpAddr+"/readyz", done, w.stderr)
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != exitOK {
					t.Errorf("worker exit %d:\n%s", code, w.stderr.String())
				}
			case <-time.After(60 * time.Second):
				t.Errorf("worker did not stop")
			}
		})
	}
	t.Cleanup(w.stop)
	return w
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, cond, "%s", what)
}

// completedMsgID reads the Nats-Msg-Id and body of key's completed event from the events stream.
func completedMsgID(t *testing.T, natsAddr, key string) (string, []byte) {
	t.Helper()
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, messages.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, messages.SubjectsFor("").Completed)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(messages.HeaderIdempotencyKey) != key {
		t.Fatalf("last completed event is of %q, want %q", m.Header.Get(messages.HeaderIdempotencyKey), key)
	}
	return m.Header.Get(messages.HeaderMsgID), m.Data
}

// A purchase's completed event reaches an endpoint that is down at first, with a worker
// restart in between: when the endpoint is back it gets the event once, signed, with the
// event's Nats-Msg-Id as webhook-id and the event as published as the body.
func TestWebhookSurvivesDownEndpointAndWorkerRestart(t *testing.T) {
	rcv := newHookReceiver(t)
	natsAddr, dataDir := freePort(t), t.TempDir()
	t.Setenv("FULFIL_WEBHOOK_SECRET", hookSecret)
	w1 := startHookWorker(t, natsAddr, dataDir, "--webhook-url", rcv.srv.URL+"/hooks/fulfil")

	var out, errb syncBuffer
	if code := run(context.Background(), []string{"submit", "--nats-listen", natsAddr, "--timeout", "60s",
		"--key", "hook-1", "--plan", "Ultimate Plan", "--quantity", "3"}, &out, &errb); code != exitOK {
		t.Fatalf("submit exit %d: %s %s", code, out.String(), errb.String())
	}
	msgID, body := completedMsgID(t, natsAddr, "hook-1")
	waitUntil(t, "two failed attempts", 30*time.Second, func() bool { _, _, n := rcv.delivered(); return n >= 2 })
	w1.stop()
	_, _, before := rcv.delivered()

	startHookWorker(t, natsAddr, dataDir, "--webhook-url", rcv.srv.URL+"/hooks/fulfil")
	waitUntil(t, "an attempt by the second worker", 30*time.Second, func() bool { _, _, n := rcv.delivered(); return n > before })
	rcv.up.Store(true)
	waitUntil(t, "the delivery", 30*time.Second, func() bool { ok, _, _ := rcv.delivered(); return ok[msgID] > 0 })
	time.Sleep(2 * time.Second) // room for a duplicate to show
	ok, bodies, attempts := rcv.delivered()
	if len(ok) != 1 || ok[msgID] != 1 {
		t.Errorf("successful deliveries by webhook-id %v, want %s once", ok, msgID)
	}
	if string(bodies[msgID]) != string(body) {
		t.Errorf("body %s, want the event as published %s", bodies[msgID], body)
	}
	t.Logf("%d attempts", attempts)

	out = syncBuffer{}
	if code := run(context.Background(), []string{"webhooks", "status", "--nats-listen", natsAddr}, &out, &errb); code != exitOK {
		t.Fatalf("webhooks status exit %d: %s", code, errb.String())
	}
	host := strings.TrimPrefix(rcv.srv.URL, "http://")
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 2 || !strings.Contains(lines[1], host) || strings.Contains(out.String(), "/hooks/fulfil") {
		t.Errorf("status:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[3] != "0" {
		t.Errorf("lag is not 0:\n%s", out.String())
	}
}

// An endpoint that fails for the whole retry period: the event is dead-lettered, listed, and
// delivered by a replay, with its webhook-id.
func TestWebhookDeadLetterListAndReplay(t *testing.T) {
	rcv := newHookReceiver(t)
	natsAddr := freePort(t)
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startHookWorker(t, natsAddr, t.TempDir(), "--webhook-url", rcv.srv.URL, "--webhook-secret-file", secretFile,
		"--webhook-retry-period", "3s", "--webhook-progress")
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"submit", "--nats-listen", natsAddr, "--timeout", "60s",
		"--key", "hook-dead", "--plan", "Ultimate Plan", "--quantity", "2"}, &out, &errb); code != exitOK {
		t.Fatalf("submit exit %d: %s %s", code, out.String(), errb.String())
	}
	msgID, _ := completedMsgID(t, natsAddr, "hook-dead")
	list := func() []map[string]any {
		var out, errb syncBuffer
		if code := run(context.Background(), []string{"webhooks", "list", "--json", "--nats-listen", natsAddr}, &out, &errb); code != exitOK {
			t.Fatalf("webhooks list exit %d: %s", code, errb.String())
		}
		var dls []map[string]any
		dec := json.NewDecoder(strings.NewReader(out.String()))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			dls = append(dls, m)
		}
		return dls
	}
	var completed map[string]any
	waitUntil(t, "the completed event in the dead letters", 60*time.Second, func() bool {
		for _, d := range list() {
			if d["type"] == messages.TypeCompleted {
				completed = d
				return true
			}
		}
		return false
	})
	if completed["webhookId"] != msgID || completed["idempotencyKey"] != "hook-dead" || completed["lastResult"] != "http 503" {
		t.Errorf("dead letter %v", completed)
	}
	out = syncBuffer{}
	if code := run(context.Background(), []string{"webhooks", "list", "--nats-listen", natsAddr}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), msgID) || !strings.Contains(out.String(), "hook-dead") {
		t.Errorf("webhooks list exit %d:\n%s", code, out.String())
	}

	rcv.up.Store(true)
	out = syncBuffer{}
	seq := strconv.Itoa(int(completed["seq"].(float64)))
	if code := run(context.Background(), []string{"webhooks", "replay", "--nats-listen", natsAddr, seq}, &out, &errb); code != exitOK {
		t.Fatalf("webhooks replay exit %d: %s %s", code, out.String(), errb.String())
	}
	waitUntil(t, "the replayed delivery", 30*time.Second, func() bool { ok, _, _ := rcv.delivered(); return ok[msgID] > 0 })
	for _, d := range list() {
		if d["webhookId"] == msgID {
			t.Errorf("still dead-lettered after the replay: %v", d)
		}
	}
	// The progress events are still there; replay them all.
	if len(list()) == 0 {
		t.Fatal("no progress events were dead-lettered")
	}
	out = syncBuffer{}
	if code := run(context.Background(), []string{"webhooks", "replay", "--all", "--nats-listen", natsAddr}, &out, &errb); code != exitOK {
		t.Fatalf("webhooks replay --all exit %d: %s %s", code, out.String(), errb.String())
	}
	waitUntil(t, "every replay", 30*time.Second, func() bool { return len(list()) == 0 })
	if code := run(context.Background(), []string{"webhooks", "replay", "--all", "--nats-listen", natsAddr}, io.Discard, io.Discard); code != exitFailed {
		t.Errorf("replay with nothing to replay: exit %d, want %d", code, exitFailed)
	}
	time.Sleep(time.Second)
	if ok, _, _ := rcv.delivered(); ok[msgID] != 1 {
		t.Errorf("the completed event was delivered %d times, want 1", ok[msgID])
	}
}

func TestWebhookSettingsAreChecked(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		wants []string
		not   []string
	}{
		{name: "plain http elsewhere, a secret without whsec_",
			args:  []string{"--webhook-url", "http://crm.example/hook?token=s3cr3t-token"},
			env:   map[string]string{"FULFIL_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			wants: []string{"FULFIL_WEBHOOK_URL (--webhook-url)", "plain http on a non-loopback host", "FULFIL_WEBHOOK_SECRET (--webhook-secret)", "whsec_"},
			not:   []string{"s3cr3t-token", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{name: "a secret that is not base64, no URL scheme",
			args:  []string{"--webhook-url", "https://crm.example/hook,crm.example/other", "--webhook-secret", "whsec_not*base64!!"},
			wants: []string{"FULFIL_WEBHOOK_URL (--webhook-url)", "not an absolute URL", "FULFIL_WEBHOOK_SECRET (--webhook-secret)", "not base64"},
			not:   []string{"not*base64"}},
		{name: "no secret, retry period longer than the events are kept",
			args:  []string{"--webhook-url", "https://crm.example/hook", "--webhook-retry-period", "48h", "--events-max-age", "24h"},
			wants: []string{"FULFIL_WEBHOOK_SECRET (--webhook-secret) is required", "FULFIL_WEBHOOK_RETRY_PERIOD (--webhook-retry-period)"}},
		{name: "plain http allowed explicitly",
			args:  []string{"--webhook-url", "http://crm.example/hook", "--webhook-insecure", "--webhook-secret", hookSecret, "--webhook-timeout", "1ms"},
			wants: []string{"FULFIL_WEBHOOK_TIMEOUT (--webhook-timeout)"}, not: []string{"FULFIL_WEBHOOK_URL", "FULFIL_WEBHOOK_SECRET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			var stderr syncBuffer
			args := append([]string{"worker", "--partner-sim", "--data-dir", dataDir, "--nats-listen", freePort(t), "--http-addr", freePort(t), "--api-addr", ""}, tt.args...)
			if code := run(context.Background(), args, io.Discard, &stderr); code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, stderr.String())
			}
			for _, w := range tt.wants {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(stderr.String(), n) {
					t.Errorf("stderr shows %q:\n%s", n, stderr.String())
				}
			}
			if _, err := os.Stat(dataDir); err == nil {
				t.Errorf("the data dir was created: something started")
			}
		})
	}
}
