package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

func deadLetters(t *testing.T, s *stack, key string) []worker.DeadLetter {
	t.Helper()
	dls, err := worker.ListDeadLetters(context.Background(), s.js, key)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

// A purchase that failed because the plan was missing completes, once, when the plan exists and
// its dead letter is replayed; replaying it again after completion only replays the outcome.
func TestDeadLetterReplayAfterTheCauseWasFixed(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	s.publish(`{"idempotencyKey":"dlq-1","plan":{"name":"Gold Plan"},"quantity":3}`, "dlq-1")
	f := failed(t, s.waitResults("dlq-1", 1)[0])
	if f.Reason != messages.ReasonInvalidRequest {
		t.Fatalf("failed = %+v", f)
	}
	var dls []worker.DeadLetter
	testutil.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, s, "dlq-1"); return len(dls) > 0 }, "a dead letter of dlq-1")
	if len(dls) != 1 || dls[0].Reason != string(messages.ReasonInvalidRequest) || dls[0].RequestSeq == 0 {
		t.Fatalf("dead letters = %+v, want one invalid_request", dls)
	}

	s.sim.AddPlan(12, partnerclient.PlanInfo{PlanID: 3049049999999999999, PlanName: "Gold Plan", MinQuantity: 1, MaxQuantity: 1000,
		PurchaseType: "purchase", BillingModel: "recurring", BillingCycle: "annually"})
	if _, err := worker.ReplayDeadLetter(context.Background(), s.js, "", dls[0]); err != nil {
		t.Fatal(err)
	}
	c := completed(t, s.waitResults("dlq-1", 2)[1])
	if c.Replayed || c.OrderNo == "" {
		t.Errorf("after replay: %+v, want a fresh completion", c)
	}
	if n := len(deadLetters(t, s, "dlq-1")); n != 0 {
		t.Errorf("%d dead letters left after replay", n)
	}

	// Replaying the same dead letter again never buys twice.
	if _, err := worker.ReplayDeadLetter(context.Background(), s.js, "", dls[0]); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Logf("second replay: %v", err)
	}
	again := completed(t, s.waitResults("dlq-1", 3)[2])
	if !again.Replayed || again.OrderNo != c.OrderNo {
		t.Errorf("second replay = %+v, want the stored outcome replayed", again)
	}
	if n := len(s.sim.OrdersByPONumber(workflow.DefaultPONumber("dlq-1"))); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
}

func TestTerminatedRequestsAreDeadLettered(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	s.publish(`{"plan":{"name":"Ultimate Plan"},"quantity":1}`, "no-key")
	s.publish(`{"idempotencyKey":"dl-conflict","plan":{"name":"Ultimate Plan"},"quantity":1}`, "a")
	s.waitResults("dl-conflict", 1)
	s.publish(`{"idempotencyKey":"dl-conflict","plan":{"name":"Ultimate Plan"},"quantity":2}`, "b")
	s.waitResults("dl-conflict", 2)
	want := map[string]bool{worker.DeadLetterNoKey: false, string(messages.ReasonConflict): false}
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, d := range deadLetters(t, s, "") {
			want[d.Reason] = true
		}
		return want[worker.DeadLetterNoKey] && want[string(messages.ReasonConflict)]
	}, "dead letters with both reasons (seen: %v)", want)
}

// A request whose every delivery died with its worker is moved to the dead-letter stream by a
// surviving worker.
func TestOutOfDeliveriesIsDeadLettered(t *testing.T) {
	s := newStack(t)
	key := "dl-maxdeliver"
	cfg := worker.Config{MaxDeliver: 2}
	for i := 0; i < 2; i++ {
		crashed, ready := make(chan struct{}), make(chan struct{})
		var victim *runningWorker
		victim = s.startWorker(cfg, func(inner workflow.Partner) workflow.Partner {
			return &crashPartner{Partner: inner, at: partnerclient.EndpointPurchaseInfo, dead: crashed, kill: func() { <-ready; victim.nc.Close() }}
		})
		close(ready)
		if i == 0 {
			s.publish(`{"idempotencyKey":"`+key+`","plan":{"name":"Ultimate Plan"},"quantity":1}`, key)
		}
		select {
		case <-crashed:
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery %d never reached the crash point", i+1)
		}
		victim.kill()
	}
	s.startWorker(cfg, nil)
	var dls []worker.DeadLetter
	testutil.Eventually(t, 30*time.Second, func() bool { dls = deadLetters(t, s, key); return len(dls) == 1 },
		"the request in the dead-letter stream")
	if dls[0].Reason != worker.DeadLetterMaxDeliveries || dls[0].Deliveries != 2 {
		t.Errorf("dead letter = %+v", dls[0])
	}
}

func TestSelfCheckRefusesSettingsThatBreakGuarantees(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name  string
		setup func(t *testing.T, js jetstream.JetStream)
		want  string
	}{
		{name: "unlimited redelivery", want: "max deliver -1", setup: func(t *testing.T, js jetstream.JetStream) {
			if _, err := js.CreateStream(context.Background(), worker.RequestsStreamConfig(cfg)); err != nil {
				t.Fatal(err)
			}
			cc := worker.ConsumerConfig(cfg)
			cc.MaxDeliver = -1
			if _, err := js.CreateConsumer(context.Background(), messages.StreamRequests, cc); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "short key retention", want: "key retention 1h0m0s", setup: func(t *testing.T, js jetstream.JetStream) {
			if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "FULFIL_SAGAS", TTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "short duplicate window", want: "duplicate window 5s", setup: func(t *testing.T, js jetstream.JetStream) {
			sc := worker.RequestsStreamConfig(cfg)
			sc.Duplicates = 5 * time.Second
			if _, err := js.CreateStream(context.Background(), sc); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "memory storage", want: "storage is Memory", setup: func(t *testing.T, js jetstream.JetStream) {
			sc := worker.EventsStreamConfig(cfg)
			sc.Storage = jetstream.MemoryStorage
			if _, err := js.CreateStream(context.Background(), sc); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := natstest.Connect(t, natstest.Start(t))
			tt.setup(t, js)
			saga := &workflow.Saga{Partner: &crashPartner{}}
			w, err := worker.New(js, saga, cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = w.Setup(context.Background())
			var sce *worker.SelfCheckError
			if !errors.As(err, &sce) || !containsProblem(sce.Problems, tt.want) {
				t.Fatalf("Setup = %v, want a self-check error about %q", err, tt.want)
			}
			cfg := cfg
			cfg.Repair = true
			w, err = worker.New(js, saga, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Setup(context.Background()); err != nil && tt.name != "memory storage" {
				t.Fatalf("Setup with repair: %v", err)
			}
			// Setup starts watching the pause flag and only Run stops it: this worker never runs.
			if g := w.ControlGuard(); g != nil {
				g.Stop()
			}
		})
	}
}

func containsProblem(ps []string, want string) bool {
	for _, p := range ps {
		if len(p) >= len(want) && contains(p, want) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
