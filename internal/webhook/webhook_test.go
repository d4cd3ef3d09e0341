package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// delivery is one request a receiver got.
type delivery struct {
	id, key, typ string
	body         []byte
	status       int
}

// receiver is an httptest endpoint that verifies every request with the specification's
// algorithm (written out here, independently of the package) and answers with status(n) for
// the n-th request (from 1).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	status atomic.Value // func(n int, d delivery) int
	n      atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.setStatus(func(int, delivery) int { return http.StatusNoContent })
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setStatus(f func(n int, d delivery) int) { r.status.Store(f) }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sigs := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	if err := verifySpec(testSecret, id, ts, sigs, body); err != nil || req.Method != http.MethodPost ||
		req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("bad webhook request %s %q: %v", req.Method, req.Header.Get("Content-Type"), err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d := delivery{id: id, key: req.Header.Get(messages.HeaderIdempotencyKey), typ: req.Header.Get("Fulfil-Event-Type"), body: body}
	d.status = r.status.Load().(func(int, delivery) int)(int(r.n.Add(1)), d)
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(d.status)
}

// ok returns the successful deliveries, in the order they were answered.
func (r *receiver) ok() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if d.status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// verifySpec is the Standard Webhooks verification: HMAC-SHA256 keyed with the base64-decoded
// part of the secret after "whsec_", over "<id>.<timestamp>.<body>", base64, compared in
// constant time with each "v1," signature; the timestamp within 5 minutes.
func verifySpec(secret, id, ts, sigs string, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q", ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s off", d)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Split(sigs, " ") {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", sigs)
}

// env is an embedded JetStream server with the events stream.
type env struct {
	url string
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, worker.EventsStreamConfig(worker.Config{})); err != nil {
		t.Fatal(err)
	}
	return &env{url: url, js: js}
}

// publish publishes an event of typ about key, as the worker does, and returns its Nats-Msg-Id.
func (e *env) publish(t *testing.T, typ, key, extra string) string {
	t.Helper()
	s := messages.SubjectsFor("")
	subject, _ := s.ForType(typ)
	id := fmt.Sprintf("%s/%s/%s/%d", key, typ, extra, rand.Int64())
	m := nats.NewMsg(subject)
	m.Data = fmt.Appendf(nil, `{"type":%q,"idempotencyKey":%q,"sagaId":"x","time":"2026-01-01T00:00:00Z","extra":%q}`, typ, key, extra)
	m.Header.Set(messages.HeaderIdempotencyKey, key)
	m.Header.Set(messages.HeaderCEType, typ)
	m.Header.Set(messages.HeaderMsgID, id)
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	return id
}

func testConfig(urls ...string) Config {
	var eps []Endpoint
	for _, u := range urls {
		eps = append(eps, Endpoint{URL: u, ID: EndpointID(u), Host: strings.TrimPrefix(u, "http://")})
	}
	s, _ := ParseSecret(testSecret)
	return Config{Endpoints: eps, Secrets: []Secret{s}, FirstRetry: 50 * time.Millisecond, MaxRetry: 300 * time.Millisecond,
		AckWait: 2 * time.Second, Timeout: 2 * time.Second, LagInterval: 100 * time.Millisecond}
}

// start runs a Service on its own connection (one worker process) until stop is called.
func (e *env) start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	_, js := natstest.Connect(t, e.url)
	s, err := New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(rctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			rcancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("webhook service did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, cond, "%s", what)
}

func TestDeliversSignedResultEvents(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig(rcv.srv.URL)
	cfg.Metrics = metrics.NewWebhooks(reg)
	e.start(t, cfg)
	e.publish(t, messages.TypeProgress, "k1", "p")
	id := e.publish(t, messages.TypeCompleted, "k1", "c")
	failedID := e.publish(t, messages.TypeFailed, "k2", "f")
	waitFor(t, "two deliveries", 10*time.Second, func() bool { return len(rcv.ok()) == 2 })
	time.Sleep(300 * time.Millisecond)
	got := rcv.ok()
	if len(got) != 2 || rcv.attempts() != 2 {
		t.Fatalf("%d deliveries, %d attempts, want 2 (no progress event)", len(got), rcv.attempts())
	}
	ids := []string{got[0].id, got[1].id}
	slices.Sort(ids)
	want := []string{id, failedID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("webhook-ids %q, want the events' Nats-Msg-Ids %q", ids, want)
	}
	for _, d := range got {
		if !strings.Contains(string(d.body), `"idempotencyKey":"`+d.key+`"`) {
			t.Errorf("body %s is not the event of %s", d.body, d.key)
		}
	}
	host := strings.TrimPrefix(rcv.srv.URL, "http://")
	if v := metricValue(t, reg, "fulfil_webhook_deliveries_total", map[string]string{"endpoint": host, "result": "ok"}); v != 2 {
		t.Errorf("ok deliveries metric %v, want 2", v)
	}
	waitFor(t, "lag 0", 5*time.Second, func() bool {
		return metricValue(t, reg, "fulfil_webhook_lag", map[string]string{"endpoint": host}) == 0
	})
}

// The endpoint is down; the worker holding the event stops and another starts; when the
// endpoint answers again, the event arrives once.
func TestDownEndpointAndWorkerRestart(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var up atomic.Bool
	rcv.setStatus(func(int, delivery) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	cfg := testConfig(rcv.srv.URL)
	stop1 := e.start(t, cfg)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.publish(t, messages.TypeCompleted, fmt.Sprintf("key-%d", i), "c"))
	}
	waitFor(t, "failing attempts", 10*time.Second, func() bool { return rcv.attempts() >= 6 })
	stop1()
	e.start(t, cfg)
	waitFor(t, "more failing attempts", 10*time.Second, func() bool { return rcv.attempts() >= 9 })
	up.Store(true)
	waitFor(t, "three deliveries", 10*time.Second, func() bool { return len(rcv.ok()) >= 3 })
	time.Sleep(time.Second)
	checkOnce(t, rcv, ids)
}

// checkOnce checks that each id was delivered successfully exactly once, and nothing else.
func checkOnce(t *testing.T, rcv *receiver, ids []string) {
	t.Helper()
	count := map[string]int{}
	for _, d := range rcv.ok() {
		count[d.id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("webhook-id %s delivered successfully %d times, want 1", id, count[id])
		}
	}
	if len(count) != len(ids) {
		t.Errorf("%d webhook-ids delivered, want %d", len(count), len(ids))
	}
}

// Progress events of several keys, interleaved, to an endpoint that fails a third of the
// requests, with two workers sharing it and one of them stopping half-way: each key's events
// arrive in stream order.
func TestPerKeyOrderWithProgress(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.setStatus(func(int, delivery) int {
		if rand.IntN(3) == 0 {
			return http.StatusInternalServerError
		}
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		return http.StatusOK
	})
	cfg := testConfig(rcv.srv.URL)
	cfg.Progress = true
	stopA := e.start(t, cfg)
	e.start(t, cfg)
	want := map[string][]string{}
	var all []string
	const keys, perKey = 6, 8
	for i := range perKey {
		if i == perKey/2 {
			stopA()
		}
		for k := range keys {
			key := fmt.Sprintf("order-%d", k)
			typ := messages.TypeProgress
			if i == perKey-1 {
				typ = messages.TypeCompleted
			}
			id := e.publish(t, typ, key, strconv.Itoa(i))
			want[key] = append(want[key], id)
			all = append(all, id)
		}
	}
	waitFor(t, "every event", 60*time.Second, func() bool {
		seen := map[string]bool{}
		for _, d := range rcv.ok() {
			seen[d.id] = true
		}
		return len(seen) == len(all)
	})
	got := map[string][]string{}
	for _, d := range rcv.ok() {
		if n := len(got[d.key]); n > 0 && got[d.key][n-1] == d.id {
			continue // a duplicate (same webhook-id) right after the first success
		}
		got[d.key] = append(got[d.key], d.id)
	}
	for key, ids := range want {
		if !slices.Equal(got[key], ids) {
			t.Errorf("%s: delivered in the order\n%q\nwant\n%q", key, got[key], ids)
		}
	}
}

func TestDeadLetterAndReplay(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var up atomic.Bool
	rcv.setStatus(func(int, delivery) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusBadRequest
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(rcv.srv.URL)
	cfg.RetryPeriod = time.Second
	cfg.Metrics = metrics.NewWebhooks(reg)
	e.start(t, cfg)
	id := e.publish(t, messages.TypeFailed, "dead-1", "f")
	ctx := context.Background()
	var dls []DeadLetter
	waitFor(t, "a dead letter", 15*time.Second, func() bool {
		var err error
		dls, err = ListDeadLetters(ctx, e.js)
		if err != nil {
			t.Fatal(err)
		}
		return len(dls) == 1
	})
	dl := dls[0]
	if dl.WebhookID != id || dl.Key != "dead-1" || dl.Attempts < 2 || dl.LastResult != "http 400" || dl.EventSeq == 0 ||
		dl.EndpointID != EndpointID(rcv.srv.URL) {
		t.Errorf("dead letter %+v", dl)
	}
	host := strings.TrimPrefix(rcv.srv.URL, "http://")
	if v := metricValue(t, reg, "fulfil_webhook_deliveries_total", map[string]string{"endpoint": host, "result": "client_error"}); v < 2 {
		t.Errorf("client_error attempts counted %v, want at least 2", v)
	}
	if v := metricValue(t, reg, "fulfil_webhook_deliveries_total", map[string]string{"endpoint": host, "result": "dead_letter"}); v != 1 {
		t.Errorf("dead_letter counted %v, want 1", v)
	}
	st, err := Status(ctx, e.js)
	if err != nil || len(st) != 1 || st[0].DeadLetters != 1 || st[0].Host != host || st[0].InRetry != 0 {
		t.Errorf("status %+v %v", st, err)
	}
	up.Store(true)
	if exists, err := ReplayDeadLetter(ctx, e.js, "", dl); err != nil || !exists {
		t.Fatalf("replay: %v (consumer exists %v)", err, exists)
	}
	waitFor(t, "the replay", 10*time.Second, func() bool { return len(rcv.ok()) == 1 })
	checkOnce(t, rcv, []string{id})
	if dls, err := ListDeadLetters(ctx, e.js); err != nil || len(dls) != 0 {
		t.Errorf("dead letters after the replay: %v %v", dls, err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	e := newEnv(t)
	target := newReceiver(t)
	rcv := newReceiver(t)
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rcv.n.Add(1) == 1 {
			http.Redirect(w, req, target.srv.URL, http.StatusTemporaryRedirect)
			return
		}
		rcv.serve(w, req)
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(rcv.srv.URL)
	cfg.Metrics = metrics.NewWebhooks(reg)
	e.start(t, cfg)
	id := e.publish(t, messages.TypeCompleted, "r", "c")
	waitFor(t, "the delivery", 10*time.Second, func() bool { return len(rcv.ok()) == 1 })
	checkOnce(t, rcv, []string{id})
	if target.attempts() != 0 {
		t.Errorf("the redirect was followed")
	}
	host := strings.TrimPrefix(rcv.srv.URL, "http://")
	if v := metricValue(t, reg, "fulfil_webhook_deliveries_total", map[string]string{"endpoint": host, "result": "redirect"}); v != 1 {
		t.Errorf("redirects counted %v, want 1", v)
	}
}

func TestParseEndpoints(t *testing.T) {
	eps, err := ParseEndpoints("https://crm.example/hook?token=abc, http://127.0.0.1:9000/x,https://crm.example/other", false)
	if err != nil || len(eps) != 3 {
		t.Fatalf("%v %v", eps, err)
	}
	if eps[1].Host != "127.0.0.1:9000" || !strings.HasPrefix(eps[0].Host, "crm.example#") || eps[0].Host == eps[2].Host {
		t.Errorf("hosts %q %q %q", eps[0].Host, eps[1].Host, eps[2].Host)
	}
	if eps[0].ConsumerName() != "fulfil-webhook-"+EndpointID("https://crm.example/hook?token=abc") {
		t.Errorf("consumer %s", eps[0].ConsumerName())
	}
	_, err = ParseEndpoints("http://crm.example/hook?token=abc,ftp://x.example,https://a.example,https://a.example,", false)
	for _, want := range []string{"plain http on a non-loopback host", "scheme must be https", "listed twice", "empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "token") {
		t.Errorf("error shows the URL's query: %v", err)
	}
	if _, err := ParseEndpoints("http://crm.example/hook", true); err != nil {
		t.Errorf("insecure: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	cfg := Config{FirstRetry: 5 * time.Second, MaxRetry: 30 * time.Minute}
	if d := backoff(cfg, 1, 0.5); d != 5*time.Second {
		t.Errorf("first delay %s", d)
	}
	if d := backoff(cfg, 4, 0.5); d != 40*time.Second {
		t.Errorf("fourth delay %s", d)
	}
	if d := backoff(cfg, 100, 1); d != 36*time.Minute {
		t.Errorf("capped delay with the most jitter %s", d)
	}
	// With the defaults, a day of failures is about 55 attempts.
	var total time.Duration
	n := 0
	for total < 24*time.Hour {
		n++
		total += backoff(cfg, n, 0.5)
	}
	if n < 50 || n > 60 {
		t.Errorf("%d attempts in 24h", n)
	}
}

// metricValue returns the value of the sample of name with labels (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
