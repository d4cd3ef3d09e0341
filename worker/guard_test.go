package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/clocktest"
	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// control opens the control bucket as `fulfil pause` does, on the stack's connection.
func (s *stack) control() *control.Control {
	s.t.Helper()
	c, err := control.Ensure(context.Background(), s.js, control.Config{})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// waitProgress waits until key has a progress event whose message contains want.
func (s *stack) waitProgress(key, want string) *messages.Progress {
	s.t.Helper()
	var found *messages.Progress
	testutil.Eventually(s.t, 30*time.Second, func() bool {
		for _, p := range s.progress(key) {
			if strings.Contains(p.Message, want) {
				found = p
				return true
			}
		}
		return false
	}, "key %s: a progress event with %q", key, want)
	return found
}

func record(t *testing.T, w *worker.Worker, key string) idempotency.Record {
	t.Helper()
	rec, err := w.Store().Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A pause holds create order back for longer than the ack wait, the lease and the message
// timeout together, without spending a delivery; the lookups run meanwhile, and the resume
// lets the purchase complete with one order.
func TestPauseHoldsCreateOrderWithoutSpendingDeliveries(t *testing.T) {
	s := newStack(t)
	ctl := s.control()
	ctx := context.Background()
	if _, err := ctl.SetPause(ctx, true, "ops@test", "card expired"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	// AckWait and the lease are 1s (the harness's); a delivery may last 1s; 3 deliveries.
	r := s.startWorker(worker.Config{MessageTimeout: time.Second, MaxDeliver: 3, Metrics: m}, nil)
	key := "paused-1"
	s.publish(`{"idempotencyKey":"`+key+`","plan":{"name":"Ultimate Plan"},"quantity":5}`, key)
	p := s.waitProgress(key, "waiting before create order")
	for _, want := range []string{"paused", "ops@test", "card expired"} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("progress message %q lacks %q", p.Message, want)
		}
	}
	if p.Step != messages.StepCreateOrder || p.Status != messages.StatusRetrying {
		t.Errorf("progress %s/%s, want %s/%s", p.Step, p.Status, messages.StepCreateOrder, messages.StatusRetrying)
	}
	if got := gauge(t, reg, "fulfil_paused"); got != 1 {
		t.Errorf("fulfil_paused = %v, want 1", got)
	}
	if got := gauge(t, reg, "fulfil_pause_waiting"); got != 1 {
		t.Errorf("fulfil_pause_waiting = %v, want 1", got)
	}

	time.Sleep(3500 * time.Millisecond) // several ack waits, leases and message timeouts
	if n := s.sim.Calls(partnerclient.EndpointCreateOrder); n != 0 {
		t.Fatalf("%d create_order calls while paused", n)
	}
	if res := s.results(key); len(res) != 0 {
		t.Fatalf("result while paused: %+v", res[0].ev)
	}
	for _, ep := range []partnerclient.Endpoint{partnerclient.EndpointPurchaseInfo, partnerclient.EndpointBillingContacts} {
		if s.sim.Calls(ep) == 0 {
			t.Errorf("no %s call: the lookups should run while paused", ep)
		}
	}
	rec := record(t, r.w, key)
	if rec.Deliveries != 1 || !rec.Lease.Live(time.Now()) {
		t.Errorf("while paused: deliveries %d (want 1), lease until %s (want live)", rec.Deliveries, rec.Lease.Expires)
	}

	if _, err := ctl.SetPause(ctx, false, "ops@test", ""); err != nil {
		t.Fatal(err)
	}
	c := completed(t, s.waitResults(key, 1)[0])
	if orders := s.sim.OrdersByPONumber(workflow.DefaultPONumber(key)); len(orders) != 1 || orders[0].OrderNo != c.OrderNo {
		t.Errorf("orders for %s: %+v, want exactly %s", key, orders, c.OrderNo)
	}
	if rec := record(t, r.w, key); rec.Deliveries != 1 {
		t.Errorf("deliveries %d, want 1: waiting must not spend deliveries", rec.Deliveries)
	}
	if got := gauge(t, reg, "fulfil_paused"); got != 0 {
		t.Errorf("fulfil_paused = %v after resume, want 0", got)
	}
	if got := gauge(t, reg, "fulfil_pause_waiting"); got != 0 {
		t.Errorf("fulfil_pause_waiting = %v after resume, want 0", got)
	}
}

// A worker stopping while a purchase waits leaves it to redelivery at once instead of holding
// up the drain; nothing is lost, and the next worker completes it after the resume.
func TestShutdownEndsAWaitBeforeCreateOrder(t *testing.T) {
	s := newStack(t)
	ctl := s.control()
	ctx := context.Background()
	if _, err := ctl.SetPause(ctx, true, "ops@test", ""); err != nil {
		t.Fatal(err)
	}
	r := s.startWorker(worker.Config{ShutdownTimeout: time.Minute}, nil)
	key := "paused-shutdown"
	s.publish(`{"idempotencyKey":"`+key+`","plan":{"name":"Ultimate Plan"},"quantity":5}`, key)
	s.waitProgress(key, "waiting before create order")
	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %s with a purchase waiting", d)
	}
	if _, err := ctl.SetPause(ctx, false, "ops@test", ""); err != nil {
		t.Fatal(err)
	}
	s.startWorker(worker.Config{}, nil)
	completed(t, s.waitResults(key, 1)[0])
	if n := len(s.sim.OrdersByPONumber(workflow.DefaultPONumber(key))); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}

// The spend cap holds across two workers, each with its own NATS connection and partner
// client, sharing the control bucket: purchases over the cap wait (they are not failed) and go
// ahead in the next window.
func TestSpendCapHoldsAcrossTwoWorkers(t *testing.T) {
	s := newStack(t)
	clk := clocktest.New(time.Date(2026, 11, 30, 5, 10, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	capCfg := worker.ControlConfig{MaxOrdersPerHour: 3, MaxOrdersPerDay: 100, Recheck: 50 * time.Millisecond, Now: clk.Now}
	s.startWorker(worker.Config{Control: capCfg, Metrics: metrics.New(reg), WorkerID: "w1"}, nil)
	s.startWorker(worker.Config{Control: capCfg, WorkerID: "w2"}, nil)

	const n = 8
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("capped-%d", i)
		s.publish(`{"idempotencyKey":"`+keys[i]+`","plan":{"name":"Ultimate Plan"},"quantity":5}`, keys[i])
	}
	done := func() int {
		c := 0
		for _, k := range keys {
			c += len(s.results(k))
		}
		return c
	}
	waiting := func() int {
		c := 0
		for _, k := range keys {
			for _, p := range s.progress(k) {
				if strings.Contains(p.Message, "spend cap reached") {
					c++
					break
				}
			}
		}
		return c
	}
	for want, hour := 3, 0; ; hour++ {
		testutil.Eventually(t, 30*time.Second, func() bool { return done() == want && (want == n || waiting() == n-3) })
		time.Sleep(300 * time.Millisecond) // rechecks run meanwhile; nothing more may pass
		if got := len(s.sim.Orders()); got != want {
			t.Fatalf("hour %d: %d orders on the partner, want %d (cap 3 per hour)", hour, got, want)
		}
		if want == n {
			break
		}
		clk.Set(clk.Now().Add(time.Hour)) // the next window
		want = min(want+3, n)
	}
	for _, k := range keys {
		res := s.results(k)
		if len(res) != 1 {
			t.Fatalf("%s: %d results", k, len(res))
		}
		completed(t, res[0])
	}
	spend, err := s.control().SpendAt(context.Background(), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if spend.Hours[5] != 3 || spend.Hours[6] != 3 || spend.Hours[7] != 2 || spend.Total != n {
		t.Errorf("counted spend %+v, want 3, 3 and 2 in hours 05-07", spend)
	}
	if got := counter(t, reg, "fulfil_spend_cap_hits_total", "window", "hour"); got == 0 {
		t.Errorf("fulfil_spend_cap_hits_total{window=hour} = 0 on the first worker")
	}
	if got := gauge(t, reg, "fulfil_spend_cap_waiting"); got != 0 {
		t.Errorf("fulfil_spend_cap_waiting = %v at the end, want 0", got)
	}
}

// gauge returns the value of an unlabelled gauge of reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// counter returns the value of a counter of reg with one label.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return 0
}
