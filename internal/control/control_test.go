package control_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/clocktest"
	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
)

// open returns a Control with a connection of its own, as a separate worker process has.
func open(t *testing.T, url string, now func() time.Time) *control.Control {
	t.Helper()
	_, js := natstest.Connect(t, url)
	c, err := control.Open(context.Background(), js, control.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startGuard(t *testing.T, c *control.Control, cfg control.GuardConfig) *control.Guard {
	t.Helper()
	g, err := c.NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g
}

func TestPauseHoldsSendsUntilResume(t *testing.T) {
	url := natstest.Start(t)
	c := open(t, url, nil)
	g := startGuard(t, c, control.GuardConfig{})
	ctx := context.Background()

	if err := g.Wait(ctx, "k0", func(r string) { t.Errorf("waiting(%q) while not paused", r) }); err != nil {
		t.Fatal(err)
	}
	// The CLI writes the flag through a connection of its own.
	cli := open(t, url, nil)
	if _, err := cli.SetPause(ctx, true, "alice@ops", "balance low"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { p, _ := g.State(); return p.Paused })

	reasons := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- g.Wait(ctx, "k1", func(r string) { reasons <- r }) }()
	select {
	case r := <-reasons:
		for _, want := range []string{"paused", "alice@ops", "balance low"} {
			if !strings.Contains(r, want) {
				t.Errorf("reason %q lacks %q", r, want)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting was not called")
	}
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v while paused", err)
	case <-time.After(300 * time.Millisecond):
	}
	resumed := time.Now()
	prev, err := cli.SetPause(ctx, false, "bob@ops", "")
	if err != nil {
		t.Fatal(err)
	}
	if !prev.Paused || prev.By != "alice@ops" {
		t.Errorf("previous flag %+v, want alice's pause", prev)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(resumed); d > time.Second {
			t.Errorf("resume took %s to reach the waiting saga, want under a second", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after resume")
	}

	// A waiting saga whose run ends gets ctx's error.
	if _, err := cli.SetPause(ctx, true, "alice@ops", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { p, _ := g.State(); return p.Paused })
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := g.Wait(cctx, "k2", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an ending ctx: %v, want deadline exceeded", err)
	}
}

// A guard started while the account is paused holds sends from the start.
func TestPauseSeenAtStart(t *testing.T) {
	url := natstest.Start(t)
	c := open(t, url, nil)
	if _, err := c.SetPause(context.Background(), true, "ops", "incident"); err != nil {
		t.Fatal(err)
	}
	g := startGuard(t, c, control.GuardConfig{})
	if p, known := g.State(); !known || !p.Paused || p.Reason != "incident" {
		t.Fatalf("state after Start: %+v known=%v", p, known)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx, "k", nil); err == nil {
		t.Fatal("Wait let a send through while paused")
	}
}

// The caps hold across two guards (two worker processes) sharing one bucket, and a held-back
// send goes ahead in the next window.
func TestSpendCapsSharedByTwoGuards(t *testing.T) {
	url := natstest.Start(t)
	clk := clocktest.New(time.Date(2026, 11, 30, 5, 58, 0, 0, time.UTC))
	cfg := control.GuardConfig{MaxPerHour: 5, MaxPerDay: 8, Recheck: 20 * time.Millisecond}
	guards := []*control.Guard{
		startGuard(t, open(t, url, clk.Now), cfg),
		startGuard(t, open(t, url, clk.Now), cfg),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var passed, waited atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := guards[i%2].Wait(ctx, "k", func(reason string) {
				waited.Add(1)
				if !strings.Contains(reason, "spend cap reached") {
					t.Errorf("reason %q", reason)
				}
			})
			if err == nil {
				passed.Add(1)
			}
		}()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() == 5 && waited.Load() == 15 })
	time.Sleep(200 * time.Millisecond) // rechecks happen meanwhile; nothing more may pass
	if n := passed.Load(); n != 5 {
		t.Fatalf("%d sends passed in one hour, cap 5", n)
	}
	// The next hour: the day cap (8) leaves room for 3 more.
	clk.Set(clk.Now().Add(5 * time.Minute))
	testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() == 8 })
	time.Sleep(200 * time.Millisecond)
	if n := passed.Load(); n != 8 {
		t.Fatalf("%d sends passed in the day, cap 8", n)
	}
	s, err := open(t, url, clk.Now).SpendAt(context.Background(), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 8 || s.Hours[5] != 5 || s.Hours[6] != 3 {
		t.Errorf("stored spend %+v, want 5 in hour 05 and 3 in hour 06", s)
	}
	// The next day the rest go ahead.
	clk.Set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() == 13 })
	cancel()
	wg.Wait()
	if n := passed.Load(); n != 13 {
		t.Errorf("%d sends passed, want 13 (5 + 3 + 5)", n)
	}
}

func TestGuardConfigRejectsNegativeCaps(t *testing.T) {
	url := natstest.Start(t)
	c := open(t, url, nil)
	if _, err := c.NewGuard(control.GuardConfig{MaxPerHour: -1, MaxPerDay: -2}); err == nil ||
		!strings.Contains(err.Error(), "per hour") || !strings.Contains(err.Error(), "per day") {
		t.Errorf("NewGuard with negative caps: %v", err)
	}
}

func TestClaimSweepOncePerInterval(t *testing.T) {
	url := natstest.Start(t)
	clk := clocktest.New(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC))
	a, b := open(t, url, clk.Now), open(t, url, clk.Now)
	ctx := context.Background()
	claim := func(c *control.Control, owner string) bool {
		ok, err := c.ClaimSweep(ctx, owner, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim(a, "a") || claim(b, "b") || claim(a, "a") {
		t.Fatal("two sweeps claimed within one interval")
	}
	clk.Set(clk.Now().Add(time.Hour))
	if !claim(b, "b") || claim(a, "a") {
		t.Fatal("the next interval's sweep was not claimed exactly once")
	}
}

// Ensure creates the bucket when missing and keeps an existing bucket's settings.
func TestEnsureCreatesOrBinds(t *testing.T) {
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx := context.Background()
	c, err := control.Ensure(ctx, js, control.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPause(ctx, true, "ops", ""); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, control.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := st.(*jetstream.KeyValueBucketStatus).StreamInfo(); info.Config.Storage != jetstream.FileStorage {
		t.Errorf("storage %v, want file", info.Config.Storage)
	}
	c2, err := control.Ensure(ctx, js, control.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c2.Pause(ctx); err != nil || !p.Paused {
		t.Errorf("pause through a second Ensure: %+v %v", p, err)
	}
}
