package worker_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

func TestHappyPaths(t *testing.T) {
	tests := []struct {
		name        string
		key         string
		give        string
		wantSN      string
		wantRenewal bool
	}{
		{name: "new license", key: "new-1",
			give: `{"idempotencyKey":"new-1","plan":{"name":"Enterprise Plan"},"quantity":20}`, wantRenewal: true},
		{name: "existing PBX with a service", key: "existing-1", wantSN: partnertest.ExistingSN, wantRenewal: true,
			give: `{"idempotencyKey":"existing-1","productNo":"` + partnertest.ExistingSN + `","plan":{"name":"Ultimate Plan"},"services":[{"name":"Disaster Recovery"}],"quantity":100,"years":2,"poNumber":"PO-77812"}`},
		{name: "subordinate customer, no renewal", key: "customer-1",
			give: `{"idempotencyKey":"customer-1","customerEmail":"` + partnertest.CustomerEmail + `","plan":{"id":` + strconv.FormatInt(partnertest.PlanUltimateID, 10) + `},"quantity":10,"autoRenew":false}`},
	}
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	seqs := map[string]uint64{}
	for _, tt := range tests {
		seqs[tt.key] = s.publish(tt.give, tt.key)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.waitResults(tt.key, 1)
			c := completed(t, res[0])
			if c.Replayed || c.OrderNo == "" || c.ActivationCode == "" || c.OrderStatus != "succeed" || c.ProductID != 12 {
				t.Errorf("completed = %+v", c)
			}
			if tt.wantSN != "" && c.ProductNo != tt.wantSN {
				t.Errorf("PBX = %s, want %s", c.ProductNo, tt.wantSN)
			}
			if c.AutoRenewal != tt.wantRenewal || s.sim.AutoRenewal(c.ProductNo) != tt.wantRenewal {
				t.Errorf("auto-renewal event=%v partner=%v, want %v", c.AutoRenewal, s.sim.AutoRenewal(c.ProductNo), tt.wantRenewal)
			}
			if c.SagaID != worker.SagaID(tt.key) {
				t.Errorf("sagaId = %s, want %s", c.SagaID, worker.SagaID(tt.key))
			}
			h := res[0].header
			wantID := worker.OutcomeMsgID(tt.key, messages.TypeCompleted, seqs[tt.key])
			for name, want := range map[string]string{
				messages.HeaderIdempotencyKey: tt.key, messages.HeaderMsgID: wantID, messages.HeaderCEID: wantID,
				messages.HeaderCESpecVersion: "1.0", messages.HeaderCEType: messages.TypeCompleted, messages.HeaderCESource: messages.CESource,
				messages.HeaderRequestSeq: fmt.Sprint(seqs[tt.key]),
			} {
				if got := h.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			if _, err := time.Parse(time.RFC3339, h.Get(messages.HeaderCETime)); err != nil {
				t.Errorf("ce-time: %v", err)
			}
			done := map[string]string{}
			for _, p := range s.progress(tt.key) {
				if p.Status != messages.StatusRetrying {
					done[p.Step] = p.Status
				}
			}
			if len(done) != len(messages.Steps) {
				t.Errorf("progress for %d steps (%v), want all %d", len(done), done, len(messages.Steps))
			}
		})
	}
	if n := len(s.sim.Orders()); n != len(tests) {
		t.Errorf("orders = %d, want %d", n, len(tests))
	}
}

func TestSameRequestThreeTimesPlacesOneOrder(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	body := `{"idempotencyKey":"dup-1","plan":{"name":"Ultimate Plan"},"quantity":5}`
	for i := 0; i < 3; i++ {
		s.publish(body, fmt.Sprintf("dup-1/%d", i)) // different message IDs defeat stream dedup
	}
	res := s.waitResults("dup-1", 3)
	s.settle()
	if n := len(s.results("dup-1")); n != 3 {
		t.Fatalf("%d results, want 3 (one per message)", n)
	}
	first := completed(t, res[0])
	replays := 0
	for _, r := range res {
		c := completed(t, r)
		if c.OrderNo != first.OrderNo || c.ActivationCode != first.ActivationCode || c.ProductNo != first.ProductNo {
			t.Errorf("results differ: %+v vs %+v", c, first)
		}
		if c.Replayed {
			replays++
		}
	}
	if replays != 2 {
		t.Errorf("replayed results = %d, want 2", replays)
	}
	if n := len(s.sim.Orders()); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	if n := s.sim.Calls(partnerclient.EndpointCreateOrder); n != 1 {
		t.Errorf("create_order calls = %d, want 1", n)
	}
}

func TestKeyReusedWithDifferentRequestConflicts(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	s.publish(`{"idempotencyKey":"reuse-1","plan":{"name":"Ultimate Plan"},"quantity":5}`, "a")
	first := completed(t, s.waitResults("reuse-1", 1)[0])
	s.publish(`{"idempotencyKey":"reuse-1","plan":{"name":"Ultimate Plan"},"quantity":6}`, "b")
	res := s.waitResults("reuse-1", 2)
	f := failed(t, res[1])
	if f.Reason != messages.ReasonConflict || f.OrderNo != "" {
		t.Errorf("second = %+v, want conflict", f)
	}
	// The first purchase is unaffected: asking again replays it.
	s.publish(`{"idempotencyKey":"reuse-1","plan":{"name":"Ultimate Plan"},"quantity":5}`, "c")
	again := completed(t, s.waitResults("reuse-1", 3)[2])
	if !again.Replayed || again.OrderNo != first.OrderNo {
		t.Errorf("replay = %+v, want the first order %s", again, first.OrderNo)
	}
	if n := len(s.sim.Orders()); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
}

func TestInvalidRequestsFailAndTheWorkerKeepsServing(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		give     string
		wantStep string
	}{
		{name: "unknown plan", key: "bad-plan", give: `{"idempotencyKey":"bad-plan","plan":{"name":"Ultimite Plan"},"quantity":1}`, wantStep: messages.StepResolvePlan},
		{name: "unknown SN", key: "bad-sn", give: `{"idempotencyKey":"bad-sn","productNo":"3651E9999999","plan":{"name":"Ultimate Plan"},"quantity":1}`, wantStep: messages.StepResolveProduct},
		{name: "unknown contact", key: "bad-contact", give: `{"idempotencyKey":"bad-contact","billingContact":{"email":"nobody@example.com"},"plan":{"name":"Ultimate Plan"},"quantity":1}`, wantStep: messages.StepResolveBilling},
		{name: "malformed JSON", key: "bad-json", give: `{"idempotencyKey":"bad-json","plan":{"name":"Ultimate Plan"},"quantity":`, wantStep: messages.StepValidate},
		{name: "missing fields", key: "bad-fields", give: `{"idempotencyKey":"bad-fields","quantity":0}`, wantStep: messages.StepValidate},
	}
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	s.publish(`{"plan":{"name":"Ultimate Plan"},"quantity":1}`, "no-key") // no key: terminated, no event
	s.publish(`not json at all`, "garbage")
	for _, tt := range tests {
		s.publish(tt.give, tt.key)
	}
	s.publish(`{"idempotencyKey":"good-after-bad","plan":{"name":"Ultimate Plan"},"quantity":1}`, "good")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := failed(t, s.waitResults(tt.key, 1)[0])
			if f.Reason != messages.ReasonInvalidRequest || f.Step != tt.wantStep || f.Message == "" {
				t.Errorf("failed = %+v, want invalid_request at %s", f, tt.wantStep)
			}
		})
	}
	completed(t, s.waitResults("good-after-bad", 1)[0])
	if n := len(s.sim.Orders()); n != 1 {
		t.Errorf("orders = %d, want only the good one", n)
	}
	s.settle()
	info, err := s.js.Stream(t.Context(), messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Msgs != 0 {
		t.Errorf("requests stream still holds %d messages; every request must be acked or terminated", st.State.Msgs)
	}
}

func TestTransientFaultsAndShortTokensComplete(t *testing.T) {
	var opts []partnertest.Option
	for _, ep := range partnerclient.AllEndpoints {
		if ep == partnerclient.EndpointToken {
			continue
		}
		opts = append(opts, partnertest.WithFaults(ep, partnertest.Faults{ErrorRate: 0.15, RateLimitRate: 0.05, ResetRate: 0.05}))
	}
	opts = append(opts, partnertest.WithSeed(11), partnertest.WithTokenTTL(time.Second))
	s := newStack(t, opts...)
	s.startWorker(worker.Config{}, nil)
	const n = 20
	for i := 0; i < n; i++ {
		s.publish(fmt.Sprintf(`{"idempotencyKey":"faulty-%d","plan":{"name":"Ultimate Plan"},"quantity":%d}`, i, i+1), fmt.Sprint(i))
	}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("faulty-%d", i)
		completed(t, s.waitResults(key, 1)[0])
		if got := len(s.sim.OrdersByPONumber(workflow.DefaultPONumber(key))); got != 1 {
			t.Errorf("%s: %d orders, want 1", key, got)
		}
	}
	if got := len(s.sim.Orders()); got != n {
		t.Errorf("orders = %d, want %d", got, n)
	}
}

func TestCommitThenFailNeverOrdersTwice(t *testing.T) {
	for _, mode := range []partnertest.CommitMode{partnertest.CommitReset, partnertest.Commit502} {
		t.Run(fmt.Sprint("mode ", mode), func(t *testing.T) {
			s := newStack(t, partnertest.WithSeed(5), partnertest.WithFaults(partnerclient.EndpointCreateOrder,
				partnertest.Faults{CommitThenFail: 0.5, CommitThenFailMode: mode}))
			s.startWorker(worker.Config{}, nil)
			const n = 10
			for i := 0; i < n; i++ {
				s.publish(fmt.Sprintf(`{"idempotencyKey":"ctf-%d","plan":{"name":"Ultimate Plan"},"quantity":%d}`, i, i+1), fmt.Sprint(i))
			}
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("ctf-%d", i)
				r := s.waitResults(key, 1)[0]
				orders := len(s.sim.OrdersByPONumber(workflow.DefaultPONumber(key)))
				switch ev := r.ev.(type) {
				case *messages.Completed:
					if orders != 1 {
						t.Errorf("%s completed with %d orders on the partner", key, orders)
					}
				case *messages.Failed:
					if ev.Reason != messages.ReasonNeedsReconciliation || orders > 1 {
						t.Errorf("%s failed %s with %d orders", key, ev.Reason, orders)
					}
				}
			}
		})
	}
}

func TestLastDeliveryEndsInAFailedEvent(t *testing.T) {
	s := newStack(t, partnertest.WithFaults(partnerclient.EndpointPurchaseInfo, partnertest.Faults{ErrorRate: 1}))
	w := s.startWorker(worker.Config{MaxDeliver: 2}, nil)
	_ = w
	s.publish(`{"idempotencyKey":"doomed","plan":{"name":"Ultimate Plan"},"quantity":1}`, "doomed")
	f := failed(t, s.waitResults("doomed", 1)[0])
	if f.Reason != messages.ReasonExhausted || f.Step != messages.StepResolvePlan {
		t.Errorf("failed = %+v, want exhausted at resolve_plan", f)
	}
	if n := len(s.sim.Orders()); n != 0 {
		t.Errorf("orders = %d, want 0", n)
	}
}

func TestGracefulShutdownLosesNothing(t *testing.T) {
	s := newStack(t)
	for _, ep := range partnerclient.AllEndpoints {
		s.sim.SetFaults(ep, partnertest.Faults{Latency: 30 * time.Millisecond})
	}
	first := s.startWorker(worker.Config{Concurrency: 4}, nil)
	const n = 12
	for i := 0; i < n; i++ {
		s.publish(fmt.Sprintf(`{"idempotencyKey":"drain-%d","plan":{"name":"Ultimate Plan"},"quantity":1}`, i), fmt.Sprint(i))
	}
	s.waitResults("drain-0", 1)
	if err := first.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s.startWorker(worker.Config{}, nil)
	for i := 0; i < n; i++ {
		completed(t, s.waitResults(fmt.Sprintf("drain-%d", i), 1)[0])
	}
	s.settle()
	for i := 0; i < n; i++ {
		if got := len(s.results(fmt.Sprintf("drain-%d", i))); got != 1 {
			t.Errorf("drain-%d: %d results, want 1", i, got)
		}
	}
	if got := len(s.sim.Orders()); got != n {
		t.Errorf("orders = %d, want %d", got, n)
	}
}

// A worker killed at every step boundary, before and after each checkpoint, and a fresh
// worker: every purchase completes with exactly one order and one result.
func TestCrashAtEveryStepBoundary(t *testing.T) {
	points := []struct {
		at    partnerclient.Endpoint
		after bool
	}{
		{partnerclient.EndpointProductList, false},
		{partnerclient.EndpointProductList, true},
		{partnerclient.EndpointPurchaseInfo, true},
		{partnerclient.EndpointBillingContacts, true},    // lookups done, intent not yet stored
		{partnerclient.EndpointCreateOrder, false},       // intent stored, order not sent
		{partnerclient.EndpointCreateOrder, true},        // order placed, result not stored
		{partnerclient.EndpointEnableAutoRenewal, false}, // order result stored
		{partnerclient.EndpointEnableAutoRenewal, true},  // renewal enabled, not stored: enabled again
		{partnerclient.EndpointActivationCode, false},
		{partnerclient.EndpointActivationCode, true}, // code fetched, not stored
	}
	for _, p := range points {
		name := fmt.Sprintf("%s/before", p.at)
		if p.after {
			name = fmt.Sprintf("%s/after", p.at)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			key := "crash-" + string(p.at)
			crashed, ready := make(chan struct{}), make(chan struct{})
			var victim *runningWorker
			victim = s.startWorker(worker.Config{}, func(inner workflow.Partner) workflow.Partner {
				return &crashPartner{Partner: inner, at: p.at, after: p.after, dead: crashed,
					kill: func() { <-ready; victim.nc.Close() }}
			})
			close(ready)
			s.publish(`{"idempotencyKey":"`+key+`","productNo":"`+partnertest.ExistingSN+`","plan":{"name":"Ultimate Plan"},"quantity":30}`, key)
			select {
			case <-crashed:
			case <-time.After(30 * time.Second):
				t.Fatal("the worker never reached the crash point")
			}
			victim.kill()
			s.startWorker(worker.Config{}, nil)
			c := completed(t, s.waitResults(key, 1)[0])
			s.settle()
			if n := len(s.results(key)); n != 1 {
				t.Errorf("%d results, want 1", n)
			}
			if n := len(s.sim.OrdersByPONumber(workflow.DefaultPONumber(key))); n != 1 {
				t.Errorf("%d orders, want 1", n)
			}
			if !c.AutoRenewal || !s.sim.AutoRenewal(c.ProductNo) || c.ActivationCode == "" {
				t.Errorf("completed = %+v", c)
			}
		})
	}
}

func TestBurstThroughOneStartSlot(t *testing.T) {
	s := newStack(t)
	// One start slot for sixteen sagas in flight: deliveries queue for it (signalling
	// InProgress meanwhile), and a redelivered key waiting for its lease gives the slot up.
	s.startWorker(worker.Config{MaxStarting: 1}, nil)
	const n = 20
	for i := range n {
		key := fmt.Sprintf("burst-%d", i)
		s.publish(fmt.Sprintf(`{"idempotencyKey":%q,"plan":{"name":"Ultimate Plan"},"quantity":5}`, key), key)
	}
	s.publish(`{"idempotencyKey":"burst-0","plan":{"name":"Ultimate Plan"},"quantity":5}`, "burst-0/again")
	for i := range n {
		key := fmt.Sprintf("burst-%d", i)
		want := 1
		if i == 0 {
			want = 2
		}
		for _, r := range s.waitResults(key, want) {
			completed(t, r)
		}
	}
	if got := len(s.sim.Orders()); got != n {
		t.Errorf("orders = %d, want %d", got, n)
	}
}

func TestMaxStartingMustBePositive(t *testing.T) {
	_, err := worker.New(nil, nil, worker.Config{MaxStarting: -1})
	if err == nil || !strings.Contains(err.Error(), "max starting") {
		t.Fatalf("New = %v, want an error about max starting", err)
	}
}

// panicOnce panics in the first activation-code call.
type panicOnce struct {
	workflow.Partner
	once sync.Once
}

func (p *panicOnce) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	p.once.Do(func() { panic("activation exploded") })
	return p.Partner.ActivationCode(ctx, id, no)
}

func TestPanickingSagaIsRedeliveredAndTheWorkerKeepsServing(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, func(p workflow.Partner) workflow.Partner { return &panicOnce{Partner: p} })
	s.publish(`{"idempotencyKey":"panic-1","plan":{"name":"Ultimate Plan"},"quantity":5}`, "panic-1")
	s.publish(`{"idempotencyKey":"panic-2","plan":{"name":"Ultimate Plan"},"quantity":5}`, "panic-2")
	for _, key := range []string{"panic-1", "panic-2"} {
		completed(t, s.waitResults(key, 1)[0])
	}
	if got := len(s.sim.Orders()); got != 2 {
		t.Errorf("orders = %d, want 2 (the panicked saga resumed from its checkpoint)", got)
	}
}

// panicRenewalOnce panics in the first renewal-status call, which runs in a goroutine of its
// own beside the activation.
type panicRenewalOnce struct {
	workflow.Partner
	once sync.Once
}

func (p *panicRenewalOnce) AutoRenewStatus(ctx context.Context, id int64, no string) (bool, error) {
	p.once.Do(func() { panic("renewal exploded") })
	return p.Partner.AutoRenewStatus(ctx, id, no)
}

func TestPanicInAConcurrentStepIsRecovered(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, func(p workflow.Partner) workflow.Partner { return &panicRenewalOnce{Partner: p} })
	s.publish(`{"idempotencyKey":"panic-3","plan":{"name":"Ultimate Plan"},"quantity":5}`, "panic-3")
	completed(t, s.waitResults("panic-3", 1)[0])
	if got := len(s.sim.Orders()); got != 1 {
		t.Errorf("orders = %d, want 1", got)
	}
}

// TestQueuedRequestsAreNotDeliveredBeforeASlotIsFree checks that a worker pulls only as many
// requests as it has free slots: a request queued behind busy sagas stays in the stream instead
// of waiting, delivered but without InProgress, in the client, where it would be redelivered
// after AckWait and lose deliveries it never used. The sagas are held at their first partner
// call until the test lets them go, and the consumer's counts are read while every slot is
// busy, so no clock is involved.
func TestQueuedRequestsAreNotDeliveredBeforeASlotIsFree(t *testing.T) {
	s := newStack(t)
	hold := &heldPartner{started: make(chan struct{}, 4), release: make(chan struct{}, 4), stop: make(chan struct{})}
	// AckWait is long so that nothing is redelivered however slow the machine: the counts
	// below are the worker's pulls alone.
	s.startWorker(worker.Config{Concurrency: 2, AckWait: 30 * time.Second, Idempotency: idempotency.Config{LeaseTTL: 10 * time.Second}},
		func(p workflow.Partner) workflow.Partner { hold.Partner = p; return hold })
	t.Cleanup(func() { close(hold.stop) }) // before the worker stops: a failed test leaves no saga held
	publish := func(i int) {
		key := fmt.Sprintf("queued-%d", i)
		s.publish(fmt.Sprintf(`{"idempotencyKey":%q,"plan":{"name":"Ultimate Plan"},"quantity":5}`, key), key)
	}
	cons, err := s.js.Consumer(context.Background(), messages.StreamRequests, "fulfil-worker")
	if err != nil {
		t.Fatal(err)
	}
	// wantCounts waits for the consumer's counts: an acknowledgement follows the result event,
	// so a count may lag what the test has seen; a request pulled too early never un-delivers.
	wantCounts := func(when string, delivered uint64, pending uint64, ackPending int) {
		t.Helper()
		var info *jetstream.ConsumerInfo
		if !testutil.Poll(30*time.Second, func() bool {
			var err error
			if info, err = cons.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			return info.Delivered.Consumer == delivered && info.NumPending == pending && info.NumAckPending == ackPending
		}) {
			t.Fatalf("%s: delivered %d, in the stream %d, delivered unacknowledged %d; want %d, %d, %d",
				when, info.Delivered.Consumer, info.NumPending, info.NumAckPending, delivered, pending, ackPending)
		}
	}
	// Two sagas fill both slots; two more requests queue behind them.
	publish(0)
	publish(1)
	hold.waitStarted(t, 2)
	publish(2)
	publish(3)
	wantCounts("both slots busy", 2, 2, 2)
	// One saga ends: its slot pulls exactly one request, which starts.
	hold.release <- struct{}{}
	testutil.Eventually(t, time.Minute, func() bool { return len(s.results("queued-0"))+len(s.results("queued-1")) == 1 },
		"one of the first two sagas ended")
	hold.waitStarted(t, 1)
	wantCounts("a slot freed and taken again", 3, 1, 2)
	for range 3 {
		hold.release <- struct{}{}
	}
	for i := range 4 {
		completed(t, s.waitResults(fmt.Sprintf("queued-%d", i), 1)[0])
	}
	wantCounts("all done", 4, 0, 0)
}

// heldPartner holds every saga at its plan lookup until the test sends on release; it tells
// started when a saga arrives there.
type heldPartner struct {
	workflow.Partner
	started, release chan struct{}
	stop             chan struct{} // closed: let every saga through
}

func (p *heldPartner) PurchaseInfo(ctx context.Context, productID int64, productNo string) (partnerclient.PurchaseInfo, error) {
	select {
	case p.started <- struct{}{}:
	default: // more sagas than the test expects: it fails on the counts
	}
	select {
	case <-p.release:
	case <-p.stop:
	case <-ctx.Done():
		return partnerclient.PurchaseInfo{}, ctx.Err()
	}
	return p.Partner.PurchaseInfo(ctx, productID, productNo)
}

// waitStarted waits until n more sagas have reached the plan lookup.
func (p *heldPartner) waitStarted(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-p.started:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d sagas started", i, n)
		}
	}
}

// TestRunEndsWhenItsConsumerIsDeleted checks that a worker whose consumer is deleted under it
// stops with an error (a restart's Setup recreates the consumer) instead of pulling in vain.
func TestRunEndsWhenItsConsumerIsDeleted(t *testing.T) {
	s := newStack(t)
	r := s.startWorker(worker.Config{}, nil)
	s.publish(`{"idempotencyKey":"before-delete","plan":{"name":"Ultimate Plan"},"quantity":1}`, "before-delete")
	completed(t, s.waitResults("before-delete", 1)[0])
	if err := s.js.DeleteConsumer(context.Background(), messages.StreamRequests, "fulfil-worker"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "consume") {
			t.Errorf("Run = %v, want a consume error", err)
		}
		r.done <- err // for the cleanup's stop
	case <-time.After(20 * time.Second):
		t.Fatal("Run still running 20s after its consumer was deleted")
	}
}

// TestRunWaitsForAConsumerThatComesBack checks that a consumer missing for a moment (as while
// JetStream restarts and reloads its consumers) does not end Run: the worker goes on with it.
func TestRunWaitsForAConsumerThatComesBack(t *testing.T) {
	s := newStack(t)
	r := s.startWorker(worker.Config{}, nil)
	if err := s.js.DeleteConsumer(context.Background(), messages.StreamRequests, "fulfil-worker"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // pulls find no consumer
	if _, err := s.js.CreateOrUpdateConsumer(context.Background(), messages.StreamRequests, worker.ConsumerConfig(worker.Config{})); err != nil {
		t.Fatal(err)
	}
	s.publish(`{"idempotencyKey":"after-return","plan":{"name":"Ultimate Plan"},"quantity":1}`, "after-return")
	completed(t, s.waitResults("after-return", 1)[0])
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup's stop
		t.Fatalf("Run ended: %v", err)
	default:
	}
}
