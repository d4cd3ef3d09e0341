//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// pausingPartner holds the first call of one endpoint — before it is sent, or after the
// partner answered — until released.
type pausingPartner struct {
	workflow.Partner
	at      partnerclient.Endpoint
	after   bool
	once    sync.Once
	held    chan struct{} // closed when the call is held
	release chan struct{}
}

func (p *pausingPartner) hold(ep partnerclient.Endpoint) {
	if ep != p.at {
		return
	}
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.held)
		<-p.release
	}
}

func pausing[T any](p *pausingPartner, ep partnerclient.Endpoint, f func() (T, error)) (T, error) {
	if !p.after {
		p.hold(ep)
	}
	v, err := f()
	if p.after {
		p.hold(ep)
	}
	return v, err
}

func (p *pausingPartner) CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error) {
	return pausing(p, partnerclient.EndpointCreateOrder, func() (partnerclient.OrderResult, error) { return p.Partner.CreateOrder(ctx, req) })
}

func (p *pausingPartner) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	return pausing(p, partnerclient.EndpointEnableAutoRenewal, func() (bool, error) { return p.Partner.EnableAutoRenewal(ctx, req) })
}

func (p *pausingPartner) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	return pausing(p, partnerclient.EndpointActivationCode, func() (partnerclient.ActivationCode, error) { return p.Partner.ActivationCode(ctx, id, no) })
}

// TestFencing pauses a worker in the middle of a purchase for longer than its lease — its
// partner call is held and its NATS traffic frozen, the in-process equivalent of SIGSTOP — lets
// a second worker take the key over and complete it, then lets the first one go on. The first
// one must not write anything over its successor's record, and the key must keep one order and
// one outcome.
func TestFencing(t *testing.T) {
	tests := []struct {
		name  string
		at    partnerclient.Endpoint
		after bool
		// open names a finding not fixed yet: the case runs only with CHAOS_OPEN_FINDINGS=1.
		open string
	}{
		{name: "paused after create order was answered", at: partnerclient.EndpointCreateOrder, after: true},
		{name: "paused after renewal was answered", at: partnerclient.EndpointEnableAutoRenewal, after: true},
		{name: "paused after the activation code was fetched", at: partnerclient.EndpointActivationCode, after: true},
		// Between storing its intent and sending: the send is bounded by the lease (the saga's
		// SendDeadline), so the paused worker's order is never sent after the successor's.
		{name: "paused just before create order is sent", at: partnerclient.EndpointCreateOrder},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.open != "" && os.Getenv("CHAOS_OPEN_FINDINGS") != "1" {
				t.Skipf("open finding (CHAOS_OPEN_FINDINGS=1 runs it): %s", tt.open)
			}
			testFencing(t, fmt.Sprintf("fencing-%d", i), tt.at, tt.after)
		})
	}
}

func testFencing(t *testing.T, key string, at partnerclient.Endpoint, after bool) {
	url := natstest.Start(t)
	_, js := connect(t, url)
	sim := partnertest.NewServer(partnertest.WithSeed(1))
	t.Cleanup(sim.Close)
	cfg := worker.Config{
		Concurrency:     4,
		AckWait:         time.Second,
		MaxDeliver:      20,
		NakDelay:        100 * time.Millisecond,
		MaxNakDelay:     time.Second,
		MessageTimeout:  time.Minute,
		ShutdownTimeout: 2 * time.Second,
		Idempotency:     idempotency.Config{LeaseTTL: time.Second},
	}
	spec := workerSpec{urls: url, partnerURL: sim.URL, cfg: cfg, retry: quickRetry()}

	// The stale worker: its NATS connection runs through a proxy that can freeze it, and its
	// partner holds one call.
	proxy, err := newTCPProxy(func() string { return strings.TrimPrefix(url, "nats://") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.close)
	pp := &pausingPartner{at: at, after: after, held: make(chan struct{}), release: make(chan struct{})}
	pp.Partner = newPartnerClient(t, sim.URL)
	stale := spec
	stale.dial = func() (*nats.Conn, error) { return nats.Connect("nats://"+proxy.addr(), nats.Name("stale")) }
	staleCfg := cfg
	staleCfg.WorkerID, staleCfg.Logger = "stale", testLogger(t, "stale")
	w1, err := trySetup(stale, staleCfg, &mortalPartner{p: pp}, "stale")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w1.nc.Close)

	body := purchase(key, 1)
	if err := publish(js, body, messages.RequestMsgID(key, body), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	msg := fetchOne(t, w1)
	staleDone := make(chan struct{})
	go func() {
		defer close(staleDone)
		w1.w.Handle(context.Background(), msg)
	}()
	select {
	case <-pp.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("the stale worker never reached %s", at)
	}
	proxy.pause()
	t.Logf("stale worker paused at %s (after=%t)", at, after)

	// The successor gets the request redelivered once its ack wait passes, waits out the lease
	// and completes the purchase.
	newPool(t, spec, nil, 1)
	kv, err := js.KeyValue(context.Background(), idempotency.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	done := waitRecord(t, kv, key, func(r idempotency.Record) bool { return r.Finished() })
	var rec idempotency.Record
	if err := json.Unmarshal(done.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != idempotency.StatusCompleted || !strings.HasPrefix(rec.Lease.Owner, "w1.1/") {
		t.Fatalf("record after the takeover: status %s, lease owner %s; want completed by the successor w1.1", rec.Status, rec.Lease.Owner)
	}
	t.Logf("successor completed: lease %s epoch %d, revision %d", rec.Lease.Owner, rec.Lease.Epoch, done.Revision())

	// The stale worker wakes up: what it had sent while frozen arrives now, and it carries on.
	proxy.resume()
	close(pp.release)
	select {
	case <-staleDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the stale worker did not finish its delivery")
	}
	if err := w1.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush the stale worker's connection: %v", err)
	}
	waitQuiet(t, js, time.Minute, nil)

	after1, err := kv.Get(context.Background(), idempotency.EncodeKey(key))
	if err != nil {
		t.Fatal(err)
	}
	if after1.Revision() != done.Revision() || !bytes.Equal(after1.Value(), done.Value()) {
		t.Errorf("the stale worker overwrote its successor's record: revision %d → %d\nbefore: %s\nafter:  %s",
			done.Revision(), after1.Revision(), done.Value(), after1.Value())
	}
	if n := len(sim.OrdersByPONumber(workflow.DefaultPONumber(key))); n != 1 {
		t.Errorf("%d orders for %s, want 1", n, key)
	}
	collect(t, js, []string{key}, sim.Sim)
}

// fetchOne takes one request from the workers' consumer on r's connection.
func fetchOne(t *testing.T, r *runner) jetstream.Msg {
	t.Helper()
	js, err := jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(context.Background(), messages.StreamRequests, r.w.Config().Durable)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		return m
	}
	t.Fatalf("no request to fetch: %v", batch.Error())
	return nil
}

// waitRecord polls key's record until ok accepts it, and returns that entry.
func waitRecord(t *testing.T, kv jetstream.KeyValue, key string, ok func(idempotency.Record) bool) jetstream.KeyValueEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, err := kv.Get(context.Background(), idempotency.EncodeKey(key))
		if err == nil {
			var rec idempotency.Record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				t.Fatal(err)
			}
			if ok(rec) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("record of %s not as expected after 30s (last error %v)", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
