package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/api"
	"github.com/fulfil/fulfil/internal/api/apitest"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

const testKey = "shop-eu-order-0123456789abcdef" // an API key of the tests

// stack is an embedded NATS server with the requests stream, a partner simulator, and HTTP
// intakes on it; a worker runs when startWorker is called.
type stack struct {
	t       *testing.T
	js      jetstream.JetStream
	sim     *partnertest.Server
	checker *apitest.Checker
	servers []*httptest.Server
}

func newStack(t *testing.T, checker *apitest.Checker, keys *api.Keys, intakes int) *stack {
	t.Helper()
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, worker.RequestsStreamConfig(workerConfig())); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, js: js, sim: sim, checker: checker}
	for range intakes {
		intake, err := api.OpenIntake(ctx, js, api.IntakeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		h, err := api.New(api.Config{JS: js, Intake: intake, Keys: keys, SagaID: worker.SagaID, MaxWait: 20 * time.Second, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		t.Cleanup(h.Close)
		s.servers = append(s.servers, srv)
	}
	return s
}

func workerConfig() worker.Config {
	return worker.Config{Concurrency: 8, AckWait: 5 * time.Second, MaxDeliver: 10, NakDelay: 20 * time.Millisecond, MaxNakDelay: 200 * time.Millisecond}
}

// startWorker runs a worker against the simulator until the test ends.
func (s *stack) startWorker() {
	s.t.Helper()
	client, err := partnerclient.New(s.sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		s.t.Fatal(err)
	}
	saga := &workflow.Saga{Partner: client, Retry: workflow.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsed: 5 * time.Second, MaxRetries: 30}}
	w, err := worker.New(s.js, saga, workerConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Setup(ctx); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		<-done
	})
}

type req struct {
	method  string
	path    string
	body    string
	headers map[string]string
	// instance is the intake to ask (index into servers).
	instance int
}

// do sends r and checks the answer against the OpenAPI document.
func (s *stack) do(r req) (*http.Response, []byte) {
	s.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, s.servers[r.instance].URL+r.path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.method == http.MethodPost {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Authorization", "Bearer "+testKey)
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.checker.Check(s.t, resp, b)
	return resp, b
}

func post(key, body string) req {
	return req{method: http.MethodPost, path: "/v1/purchases", body: body, headers: map[string]string{"Idempotency-Key": key}}
}

type purchase struct {
	IdempotencyKey string
	Status         string
	ActivationCode string
	Order          *struct{ OrderNo, PONumber string }
	Steps          []struct{ Name, Status string }
	Outcome        json.RawMessage
	Links          struct{ Self string }
}

type problem struct {
	Type, Title, Detail string
	Status              int
	Errors              []struct{ In, Field, Pointer, Detail string }
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func (s *stack) wantStatus(resp *http.Response, body []byte, want int) {
	s.t.Helper()
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

const ultimate = `{"plan":{"name":"Ultimate Plan"},"quantity":5}`

// TestPurchaseOverHTTP drives a purchase through the intake and a real worker against the
// partner simulator, and every error answer, checking each against the OpenAPI document.
func TestPurchaseOverHTTP(t *testing.T) {
	checker := apitest.New(t)
	keys, err := api.ParseKeys([]byte("# the shop\n" + testKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, checker, keys, 1)
	s.startWorker()

	resp, body := s.do(post("order-1", ultimate))
	s.wantStatus(resp, body, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); loc != "/v1/purchases/order-1" {
		t.Errorf("Location %q", loc)
	}
	if resp.Header.Get(api.HeaderReplayed) != "" {
		t.Errorf("a first POST is marked replayed")
	}
	first := decodeAs[purchase](t, body)

	resp, body = s.do(req{method: http.MethodGet, path: first.Links.Self + "?wait=30s"})
	s.wantStatus(resp, body, http.StatusOK)
	done := decodeAs[purchase](t, body)
	if done.Status != api.StatusCompleted || done.ActivationCode == "" || done.Order == nil || !strings.HasPrefix(done.Order.OrderNo, "ZC") {
		t.Fatalf("after the wait: %s", body)
	}
	for _, st := range done.Steps {
		if st.Status != "done" && st.Status != "skipped" {
			t.Errorf("step %s is %s in a completed purchase", st.Name, st.Status)
		}
	}

	// The same purchase again, as sent and as another JSON text of it: the same answer, no
	// second order.
	for _, again := range []string{ultimate, "{ \"quantity\": 5, \"plan\": {\"name\": \"ultimate plan\"}, \"idempotencyKey\": \"order-1\", \"years\": 1 }"} {
		resp, body = s.do(post("order-1", again))
		s.wantStatus(resp, body, http.StatusAccepted)
		if resp.Header.Get("Location") != "/v1/purchases/order-1" || resp.Header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("repeat: Location %q, %s %q", resp.Header.Get("Location"), api.HeaderReplayed, resp.Header.Get(api.HeaderReplayed))
		}
		if p := decodeAs[purchase](t, body); p.Status != api.StatusCompleted || p.ActivationCode != done.ActivationCode {
			t.Errorf("repeat answered %s", body)
		}
	}
	// A different purchase under the key: 422, and the first is untouched.
	resp, body = s.do(post("order-1", `{"plan":{"name":"Ultimate Plan"},"quantity":6}`))
	s.wantStatus(resp, body, http.StatusUnprocessableEntity)
	if p := decodeAs[problem](t, body); p.Type != api.TypeIdempotencyKeyReused {
		t.Errorf("422 type %q", p.Type)
	}
	if n := len(s.sim.Orders()); n != 1 {
		t.Errorf("the simulator has %d orders, want 1", n)
	}

	// A request that fails validation leaves its key free.
	resp, body = s.do(post("order-2", `{"plan":{"name":"Ultimate Plan"},"quantity":0,"years":9,"services":[{"id":"x"}],"customerEmail":"nope"}`))
	s.wantStatus(resp, body, http.StatusBadRequest)
	p := decodeAs[problem](t, body)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field+"@"+e.Pointer)
	}
	if got, want := strings.Join(fields, " "), "customerEmail@#/customerEmail services[0].id@#/services/0/id quantity@#/quantity years@#/years"; got != want {
		t.Errorf("fields named: %s, want %s", got, want)
	}
	resp, body = s.do(post("order-2", `{"plan":{"id":"0001"},"quantity":2,"autoRenew":false}`))
	s.wantStatus(resp, body, http.StatusAccepted)
	resp, body = s.do(req{method: http.MethodGet, path: "/v1/purchases/order-2?wait=30"})
	if p := decodeAs[purchase](t, body); p.Status != api.StatusFailed && p.Status != api.StatusCompleted {
		t.Errorf("order-2 did not end: %s", body)
	}

	// X-API-Key works as well as Bearer.
	resp, body = s.do(req{method: http.MethodGet, path: "/v1/purchases/order-1", headers: map[string]string{"Authorization": "", "X-API-Key": testKey}})
	s.wantStatus(resp, body, http.StatusOK)
}

// TestErrorAnswers checks every error answer: its status, problem type, the field it names and
// the document's schema.
func TestErrorAnswers(t *testing.T) {
	checker := apitest.New(t)
	keys, _ := api.ParseKeys([]byte(testKey))
	s := newStack(t, checker, keys, 1)
	big := `{"plan":{"name":"Ultimate Plan"},"quantity":5,"poNumber":"` + strings.Repeat("x", messages.MaxRequestBytes) + `"}`
	nearlyBig := `{"plan":{"name":"Ultimate Plan"},"quantity":5,"x":"` + strings.Repeat("x", messages.MaxRequestBytes-60) + `"}`
	tests := []struct {
		name      string
		give      req
		wantCode  int
		wantType  string
		wantField string // an entry of errors, "in:field"
		wantIn    string // text in detail
	}{
		{"no API key", req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Authorization": "", "Idempotency-Key": "k"}},
			401, api.TypeUnauthorized, "", "API key"},
		{"wrong API key", req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Authorization": "Bearer nope-nope-nope-nope", "Idempotency-Key": "k"}},
			401, api.TypeUnauthorized, "", "not valid"},
		{"wrong X-API-Key", req{method: http.MethodGet, path: "/v1/purchases/k", headers: map[string]string{"Authorization": "", "X-API-Key": testKey + "x"}},
			401, api.TypeUnauthorized, "", "not valid"},
		{"missing Idempotency-Key", req{method: http.MethodPost, path: "/v1/purchases", body: ultimate},
			400, api.TypeIdempotencyKeyMissing, "header:Idempotency-Key", "Idempotency-Key"},
		{"invalid Idempotency-Key", post(`" padded"`, ultimate), 400, api.TypeInvalidRequest, "header:Idempotency-Key", "printable ASCII"},
		{"unterminated structured key", post(`"abc`, ultimate), 400, api.TypeInvalidRequest, "header:Idempotency-Key", "structured-field"},
		{"malformed JSON", post("k", `{"plan":{"name":"Ultimate Plan"},"quantity":5`), 400, api.TypeInvalidRequest, "body:", "not valid JSON"},
		{"not an object", post("k", `[1,2]`), 400, api.TypeInvalidRequest, "body:", "must be a JSON object"},
		{"trailing data", post("k", ultimate+` {}`), 400, api.TypeInvalidRequest, "body:", "after the JSON object"},
		{"wrong types and rules at once", post("k", `{"plan":"Ultimate","quantity":"5","years":7}`), 400, api.TypeInvalidRequest, "body:years", "plan: must be an object"},
		{"key differs from the header", post("k", `{"idempotencyKey":"other","plan":{"name":"Ultimate Plan"},"quantity":5}`),
			400, api.TypeInvalidRequest, "body:idempotencyKey", "Idempotency-Key header"},
		{"broken UTF-8", post("k", "{\"plan\":{\"name\":\"Ultimate \xff\"},\"quantity\":5}"), 400, api.TypeInvalidRequest, "body:plan.name", "UTF-8"},
		{"too large", post("k", big), 413, api.TypeTooLarge, "", "65536"},
		{"too large once the key is added", post(strings.Repeat("k", 128), nearlyBig), 413, api.TypeTooLarge, "", "65536"},
		{"not JSON", req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Idempotency-Key": "k", "Content-Type": "text/plain"}},
			415, api.TypeUnsupportedMedia, "", "application/json"},
		{"latin-1 JSON", req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Idempotency-Key": "k", "Content-Type": "application/json; charset=iso-8859-1"}},
			415, api.TypeUnsupportedMedia, "", "UTF-8"},
		{"GET the collection", req{method: http.MethodGet, path: "/v1/purchases"}, 405, api.TypeMethodNotAllowed, "", "POST"},
		{"DELETE a purchase", req{method: http.MethodDelete, path: "/v1/purchases/k"}, 405, api.TypeMethodNotAllowed, "", "GET"},
		{"unknown key", req{method: http.MethodGet, path: "/v1/purchases/never-sent"}, 404, api.TypeNotFound, "", "never-sent"},
		{"not a key", req{method: http.MethodGet, path: "/v1/purchases/a%00b"}, 404, api.TypeNotFound, "", "idempotency key"},
		{"unknown path", req{method: http.MethodGet, path: "/v2/purchases"}, 404, api.TypeNotFound, "", "openapi"},
		{"bad wait", req{method: http.MethodGet, path: "/v1/purchases/k?wait=soon"}, 400, api.TypeInvalidRequest, "query:wait", "soon"},
		{"negative wait", req{method: http.MethodGet, path: "/v1/purchases/k?wait=-1s"}, 400, api.TypeInvalidRequest, "query:wait", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(tt.give)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			p := decodeAs[problem](t, body)
			if p.Type != tt.wantType || !strings.Contains(p.Detail, tt.wantIn) {
				t.Errorf("type %q detail %q; want %q containing %q", p.Type, p.Detail, tt.wantType, tt.wantIn)
			}
			if tt.wantField != "" {
				found := false
				for _, e := range p.Errors {
					found = found || e.In+":"+e.Field == tt.wantField
				}
				if !found {
					t.Errorf("errors do not name %s: %s", tt.wantField, body)
				}
			}
			switch resp.StatusCode {
			case 401:
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
				}
			case 405:
				if resp.Header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
			}
		})
	}
	// Nothing was accepted, so every key is still free.
	if info, err := s.js.Stream(context.Background(), messages.StreamRequests); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Errorf("the requests stream holds messages after only refusals: %v", err)
	}
	// The document is public.
	resp, body := s.do(req{method: http.MethodGet, path: "/v1/openapi.json", headers: map[string]string{"Authorization": ""}})
	s.wantStatus(resp, body, http.StatusOK)
	if !bytes.Equal(body, api.OpenAPI) {
		t.Errorf("/v1/openapi.json is not the committed document")
	}
}

// TestIntakeBeforeAWorker: without a running worker a purchase is accepted and waits in the
// requests stream; a repeat publishes nothing more; a different body under the key is refused by
// the intake bucket; once a worker runs, the purchase completes.
func TestIntakeBeforeAWorker(t *testing.T) {
	checker := apitest.New(t)
	s := newStack(t, checker, nil, 2)
	ctx := context.Background()
	const key = "crm/42 #1" // needs escaping in the path
	resp, body := s.do(req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{
		"Idempotency-Key": `"crm/42 #1"`, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Authorization": ""}})
	s.wantStatus(resp, body, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); loc != "/v1/purchases/crm%2F42%20%231" {
		t.Errorf("Location %q", loc)
	}
	if p := decodeAs[purchase](t, body); p.Status != api.StatusAccepted {
		t.Errorf("status %q, want accepted", p.Status)
	}
	stream, err := s.js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantBody := strings.TrimSuffix(ultimate, "}") + `,"idempotencyKey":"crm/42 #1"}`
	if string(msg.Data) != wantBody {
		t.Errorf("published body %s, want %s", msg.Data, wantBody)
	}
	if id := msg.Header.Get("Nats-Msg-Id"); id != messages.RequestMsgID(key, msg.Data) {
		t.Errorf("Nats-Msg-Id %q, want the contract's %q", id, messages.RequestMsgID(key, msg.Data))
	}
	if tp := msg.Header.Get("traceparent"); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("traceparent %q not passed on", tp)
	}

	// The other instance: the same purchase is the same answer; another is a 422.
	resp, body = s.do(req{instance: 1, method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Idempotency-Key": key, "Authorization": ""}})
	s.wantStatus(resp, body, http.StatusAccepted)
	if resp.Header.Get(api.HeaderReplayed) != "true" {
		t.Errorf("repeat not marked replayed")
	}
	resp, body = s.do(req{instance: 1, method: http.MethodPost, path: "/v1/purchases", body: `{"plan":{"name":"Ultimate Plan"},"quantity":7}`, headers: map[string]string{"Idempotency-Key": key, "Authorization": ""}})
	s.wantStatus(resp, body, http.StatusUnprocessableEntity)
	if n := stream.CachedInfo().State.Msgs; n != 1 {
		if info, _ := stream.Info(ctx); info.State.Msgs != 1 {
			t.Errorf("%d messages in the requests stream, want 1", info.State.Msgs)
		}
	}

	resp, body = s.do(req{method: http.MethodGet, path: "/v1/purchases/crm%2F42%20%231?wait=1s", headers: map[string]string{"Authorization": ""}})
	s.wantStatus(resp, body, http.StatusOK)
	if p := decodeAs[purchase](t, body); p.Status != api.StatusAccepted || p.IdempotencyKey != key {
		t.Errorf("before a worker: %s", body)
	}

	s.startWorker()
	resp, body = s.do(req{instance: 1, method: http.MethodGet, path: "/v1/purchases/crm%2F42%20%231?wait=20s", headers: map[string]string{"Authorization": ""}})
	s.wantStatus(resp, body, http.StatusOK)
	if p := decodeAs[purchase](t, body); p.Status != api.StatusCompleted || p.ActivationCode == "" {
		t.Errorf("after the worker: %s", body)
	}
	if n := len(s.sim.Orders()); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}

// TestLostRequestIsPublishedAgain: a repeat of an accepted purchase whose message is no longer
// in the requests stream and that no worker has recorded is published again.
func TestLostRequestIsPublishedAgain(t *testing.T) {
	s := newStack(t, apitest.New(t), nil, 1)
	ctx := context.Background()
	// A short duplicate window: within it the stream would drop the same Nats-Msg-Id again.
	cfg := worker.RequestsStreamConfig(workerConfig())
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	resp, body := s.do(post("lost-1", ultimate))
	s.wantStatus(resp, body, http.StatusAccepted)
	stream, err := s.js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	resp, body = s.do(post("lost-1", ultimate))
	s.wantStatus(resp, body, http.StatusAccepted)
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || info.State.LastSeq != 2 {
		t.Errorf("requests stream: %d messages, last %d; want the request published again", info.State.Msgs, info.State.LastSeq)
	}
}

// TestOneKeyRacedAcrossInstances: the same key with two different purchases, posted at once to
// two intakes: one purchase is accepted, every post of the other is a 422.
func TestOneKeyRacedAcrossInstances(t *testing.T) {
	s := newStack(t, apitest.New(t), nil, 2)
	bodies := []string{ultimate, `{"plan":{"name":"Ultimate Plan"},"quantity":9}`}
	var mu sync.Mutex
	codes := map[string][]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			b := bodies[i%2]
			resp, _ := s.do(req{instance: i / 2 % 2, method: http.MethodPost, path: "/v1/purchases", body: b, headers: map[string]string{"Idempotency-Key": "race-1"}})
			mu.Lock()
			codes[b] = append(codes[b], resp.StatusCode)
			mu.Unlock()
		})
	}
	wg.Wait()
	all := func(cs []int, want int) bool {
		for _, c := range cs {
			if c != want {
				return false
			}
		}
		return true
	}
	a, b := codes[bodies[0]], codes[bodies[1]]
	if !(all(a, 202) && all(b, 422)) && !(all(a, 422) && all(b, 202)) {
		t.Errorf("answers: %v to one purchase, %v to the other; want all 202 to one and all 422 to the other", a, b)
	}
}

// TestWaitIsCapped: a wait longer than MaxWait is shortened, and a shutdown ends it at once.
func TestWaitIsCapped(t *testing.T) {
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, worker.RequestsStreamConfig(workerConfig())); err != nil {
		t.Fatal(err)
	}
	intake, err := api.OpenIntake(ctx, js, api.IntakeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{JS: js, Intake: intake, SagaID: worker.SagaID, MaxWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/purchases", strings.NewReader(ultimate))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "wait-1")
	resp, err := http.DefaultClient.Do(r)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	resp, err = http.Get(srv.URL + "/v1/purchases/wait-1?wait=10m")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("get: %v %v", resp, err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("a 10m wait capped at 500ms took %s", d)
	}

	h2, _ := api.New(api.Config{JS: js, Intake: intake, SagaID: worker.SagaID, MaxWait: time.Minute})
	srv2 := httptest.NewServer(h2)
	defer srv2.Close()
	go func() { time.Sleep(300 * time.Millisecond); h2.Close() }()
	start = time.Now()
	resp, err = http.Get(srv2.URL + "/v1/purchases/wait-1?wait=50s")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("get: %v %v", resp, err)
	}
	resp.Body.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close did not end the wait (%s)", d)
	}
}

// TestDocumentCoversTheRoutes: every operation of the document is served, and every answer the
// tests above produced was checked; the responses no test produced are listed.
func TestDocumentIsComplete(t *testing.T) {
	checker := apitest.New(t)
	keys, _ := api.ParseKeys([]byte(testKey))
	s := newStack(t, checker, keys, 1)
	s.startWorker()
	// One answer of each documented kind.
	s.do(post("doc-1", ultimate))
	s.do(req{method: http.MethodGet, path: "/v1/purchases/doc-1?wait=20s"})
	s.do(post("doc-1", `{"plan":{"name":"Ultimate Plan"},"quantity":1}`))
	s.do(post("doc-2", `{`))
	s.do(req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Authorization": "", "Idempotency-Key": "x"}})
	s.do(post("doc-3", `{"plan":{"name":"`+strings.Repeat("x", api.MaxBody)+`"},"quantity":1}`))
	s.do(req{method: http.MethodPost, path: "/v1/purchases", body: ultimate, headers: map[string]string{"Idempotency-Key": "x", "Content-Type": "text/json"}})
	s.do(req{method: http.MethodGet, path: "/v1/purchases/doc-1?wait=x"})
	s.do(req{method: http.MethodGet, path: "/v1/purchases/doc-1", headers: map[string]string{"Authorization": ""}})
	s.do(req{method: http.MethodGet, path: "/v1/purchases/doc-9"})
	s.do(req{method: http.MethodGet, path: "/v1/openapi.json"})
	if unseen := checker.Unseen(http.StatusServiceUnavailable); len(unseen) > 0 {
		t.Errorf("documented answers never produced: %v", unseen)
	}
	if got, want := fmt.Sprint(checker.Operations()), "[GET /v1/openapi.json GET /v1/purchases/{key} POST /v1/purchases]"; got != want {
		t.Errorf("operations %s, want %s", got, want)
	}
}
