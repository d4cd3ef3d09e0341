package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
)

// fullStoreRun runs purchases through a worker while the store fills up and is freed again:
// fill makes the store refuse writes, free gives the space back. While full the worker must
// say its store cannot write (CheckStore, which /readyz asks); once freed it must finish every
// purchase by itself, each with exactly one completed result and one order at the partner.
func fullStoreRun(t *testing.T, url string, fill, free func(), stillFull func() error) *stack {
	t.Helper()
	const purchases = 120
	const concurrency = 8
	s := newStackAt(t, url)
	// A slow create order keeps purchases in flight when the store fills up.
	s.sim.SetFaults(partnerclient.EndpointCreateOrder, partnertest.Faults{Latency: 300 * time.Millisecond})
	r := s.startWorker(worker.Config{Concurrency: concurrency, MessageTimeout: 20 * time.Second}, nil)
	keys := make([]string, purchases)
	for i := range keys {
		keys[i] = fmt.Sprintf("full-%03d", i)
		s.publish(`{"idempotencyKey":"`+keys[i]+`","plan":{"name":"Ultimate Plan"},"quantity":1}`, keys[i])
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return len(s.sim.Orders()) >= 10 }, "a first purchase to complete")

	fill()
	var storeErr error
	testutil.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		storeErr = r.w.CheckStore(ctx)
		return storeErr != nil
	}, "the worker to report that its store cannot write")
	t.Logf("store while full: %v", storeErr)
	if stillFull != nil {
		if err := stillFull(); err != nil {
			t.Fatal(err)
		}
	}
	// No order is placed while the store cannot write, but those whose intent was stored
	// before: the intent is stored before every create order.
	before := len(s.sim.Orders())
	time.Sleep(time.Second)
	if err := r.w.CheckStore(context.Background()); err == nil {
		t.Fatal("CheckStore = nil a second later, while the store is still full")
	}
	if n := len(s.sim.Orders()); n > before+concurrency || n == purchases {
		t.Fatalf("%d orders a second after the store filled up with %d; want at most %d more, and not all %d", n, before, concurrency, purchases)
	}

	free()
	for _, key := range keys {
		s.waitResults(key, 1)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return r.w.CheckStore(context.Background()) == nil
	}, "the store to take writes again")
	s.settle()
	t.Logf("orders before the store was freed: %d of %d", before, purchases)

	byPO, ledger, delivered := map[string]int{}, map[string]bool{}, map[string]string{}
	for _, o := range s.sim.Orders() {
		byPO[o.PONumber]++
		ledger[o.OrderNo] = true
	}
	for _, key := range keys {
		res := s.results(key)
		if len(res) != 1 {
			t.Errorf("%s: %d result events, want 1", key, len(res))
			continue
		}
		c := completed(t, res[0])
		if !ledger[c.OrderNo] {
			t.Errorf("%s: completed with order %s, which the partner does not have", key, c.OrderNo)
		}
		if other, ok := delivered[c.OrderNo]; ok {
			t.Errorf("%s and %s both completed with order %s", other, key, c.OrderNo)
		}
		delivered[c.OrderNo] = key
	}
	if n := len(s.sim.Orders()); n != purchases {
		t.Errorf("the partner has %d orders, want %d (one per purchase)", n, purchases)
	}
	for po, n := range byPO {
		if n != 1 {
			t.Errorf("poNumber %s ordered %d times", po, n)
		}
	}
	return s
}

// TestStoreOverItsLimitThenFreed fills the embedded server's JetStream storage limit (no root
// needed): JetStream refuses writes with "insufficient resources" until a ballast stream is
// deleted.
func TestStoreOverItsLimitThenFreed(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{DataDir: t.TempDir(), MaxStore: 8 << 20, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	fill := func() {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BALLAST", Subjects: []string{"ballast"}}); err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 64<<10)
		for i := 0; ; i++ {
			if _, err := js.Publish(ctx, "ballast", chunk); err != nil {
				t.Logf("ballast full after %d KiB: %v", i*64, err)
				return
			}
			if i > 1000 {
				t.Fatal("64 MiB of ballast fit in an 8 MiB store")
			}
		}
	}
	free := func() {
		if err := js.DeleteStream(ctx, "BALLAST"); err != nil {
			t.Fatal(err)
		}
	}
	fullStoreRun(t, srv.ClientURL(), fill, free, nil)
}
