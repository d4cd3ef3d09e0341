//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// overlapTracker wraps the simulator and records, per poNumber, how many create_order requests
// were in flight at once at most.
type overlapTracker struct {
	h http.Handler

	mu       sync.Mutex
	inFlight map[string]int
	most     map[string]int
}

func (o *overlapTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != partnerclient.PathCreateOrder {
		o.h.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var b struct {
		PONumber string `json:"poNumber"`
	}
	_ = json.Unmarshal(body, &b)
	o.mu.Lock()
	o.inFlight[b.PONumber]++
	o.most[b.PONumber] = max(o.most[b.PONumber], o.inFlight[b.PONumber])
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.inFlight[b.PONumber]--
		o.mu.Unlock()
	}()
	o.h.ServeHTTP(w, r)
}

func (o *overlapTracker) maxInFlight(po string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.most[po]
}

// TestRedeliveryStorm makes create order slower than the ack wait, with several requests per
// key, prefetch beyond what the workers run at once, and a stalled client that keeps taking
// batches of requests from the workers' consumer without ever acknowledging them, so that
// requests are redelivered again and again while their key runs elsewhere. No key may ever
// have two create orders in flight, and each gets one order and one original outcome; every
// other message of a key gets a replayed outcome.
func TestRedeliveryStorm(t *testing.T) {
	const (
		keys       = 5
		copies     = 6 // messages per key, each with its own Nats-Msg-Id
		orderDelay = 2500 * time.Millisecond
	)
	seed := seedFor(t)
	url := natstest.Start(t)
	_, js := connect(t, url)

	sim := partnertest.New(partnertest.WithSeed(int64(seed)))
	sim.SetFaults(partnerclient.EndpointCreateOrder, partnertest.Faults{Latency: orderDelay})
	tracker := &overlapTracker{h: sim, inFlight: map[string]int{}, most: map[string]int{}}
	srv := httptest.NewServer(tracker)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })

	var submitted []string
	for k := range keys {
		key := fmt.Sprintf("storm-%d-%d", seed, k)
		submitted = append(submitted, key)
	}
	reg := prometheus.NewRegistry()
	cfg := worker.Config{
		Concurrency:     2,
		AckWait:         time.Second,
		MaxDeliver:      30,
		NakDelay:        100 * time.Millisecond,
		MaxNakDelay:     time.Second,
		MessageTimeout:  time.Minute,
		ShutdownTimeout: 2 * time.Second,
		Idempotency:     idempotency.Config{LeaseTTL: time.Second},
		Metrics:         metrics.New(reg),
	}
	spec := workerSpec{urls: url, partnerURL: srv.URL, cfg: cfg, retry: quickRetry()}
	// The streams exist before the requests: the first worker's Setup creates them.
	first := startWorker(t, spec, "w0")
	first.kill()
	for c := range copies {
		for k, key := range submitted {
			if err := publish(js, purchase(key, k), fmt.Sprintf("%s/%d", key, c), 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	newPool(t, spec, nil, 2)
	stolen := steal(t, js, 6, 700*time.Millisecond)
	waitQuiet(t, js, 2*time.Minute, nil)
	if stolen == 0 {
		t.Errorf("the stalled client got no requests: the storm did not happen")
	}

	v := collect(t, js, submitted, sim)
	for _, key := range submitted {
		po := workflow.DefaultPONumber(key)
		if n := tracker.maxInFlight(po); n != 1 {
			t.Errorf("key %s: %d create_order requests in flight at once at most, want 1", key, n)
		}
		if n := len(sim.OrdersByPONumber(po)); n != 1 {
			t.Errorf("key %s: %d orders, want 1", key, n)
		}
	}
	if want := keys * (copies - 1); v.replayed != want {
		t.Errorf("%d replayed outcomes, want %d (one per extra message)", v.replayed, want)
	}
	redelivered := counterValue(t, reg, "fulfil_redeliveries_total")
	t.Logf("%d deliveries to the stalled client, %v redeliveries to workers, %d create_order calls",
		stolen, redelivered, sim.Calls(partnerclient.EndpointCreateOrder))
	if redelivered == 0 {
		t.Errorf("no redeliveries: the storm did not happen, so the test proves nothing")
	}
	logAsyncErrors(t)
}

// steal pulls batches of requests from the workers' consumer every interval, rounds times,
// and never acknowledges them, as a worker that froze after prefetching would. It returns how
// many it got.
func steal(t *testing.T, js jetstream.JetStream, rounds int, interval time.Duration) int {
	t.Helper()
	ctx := context.Background()
	cons, err := js.Consumer(ctx, messages.StreamRequests, "fulfil-worker")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range rounds {
		batch, err := cons.Fetch(8, jetstream.FetchMaxWait(interval))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			n++
		}
	}
	return n
}

// counterValue sums the counter name over its labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
