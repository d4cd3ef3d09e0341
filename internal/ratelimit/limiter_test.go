package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulfil/fulfil/internal/ratelimit"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
)

var _ partnerclient.Limiter = (*ratelimit.Limiter)(nil)

// waiters starts n callers of l.Wait and returns how many have passed, and a function that
// cancels the rest and waits for all of them.
func waiters(l *ratelimit.Limiter, n int) (passed *atomic.Int64, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	passed = new(atomic.Int64)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if l.Wait(ctx) == nil {
				passed.Add(1)
			}
		})
	}
	return passed, func() { cancel(); wg.Wait() }
}

// TestLimiterLowerRateAppliesToWaitingCallers is why the package has its own limiter: callers
// already waiting when the rate drops wait at the new rate. (A rate.Limiter lets them through at
// the old rate: they hold reservations made before the change.)
func TestLimiterLowerRateAppliesToWaitingCallers(t *testing.T) {
	l := ratelimit.NewLimiter(20, 1)
	passed, stop := waiters(l, 50)
	defer stop()
	testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() >= 2 }, "two calls at 20/s")
	l.SetRate(0.001, 1) // one call per 1000 s
	at := passed.Load()
	time.Sleep(500 * time.Millisecond) // at 20/s, ten more would pass
	if got := passed.Load() - at; got > 1 {
		t.Fatalf("%d calls passed in 500ms after the rate fell to one per 1000s; at most the one already waking may", got)
	}
}

// TestRateLimiterKeepsReservations shows the behaviour the Limiter avoids, so that the test
// above means something: with a rate.Limiter the waiting callers pass at the old rate.
func TestRateLimiterKeepsReservations(t *testing.T) {
	l := rate.NewLimiter(20, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if l.Wait(ctx) == nil {
				passed.Add(1)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() >= 2 }, "two calls at 20/s")
	l.SetLimit(0.001)
	at := passed.Load()
	testutil.Eventually(t, 30*time.Second, func() bool { return passed.Load()-at >= 5 },
		"reserved callers passing after the rate fell")
}

// TestLimiterHigherRateWakesTheWaitingCaller: a caller waiting for a token far away is let
// through when the rate rises (or becomes unlimited), without waiting out its old delay.
func TestLimiterHigherRateWakesTheWaitingCaller(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rps   float64
		burst int
	}{{"faster", 1000, 1}, {"unlimited", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			l := ratelimit.NewLimiter(0.001, 1)
			if err := l.Wait(context.Background()); err != nil { // the one token it starts with
				t.Fatal(err)
			}
			passed, stop := waiters(l, 3)
			defer stop()
			time.Sleep(50 * time.Millisecond)
			if n := passed.Load(); n != 0 {
				t.Fatalf("%d calls passed at one per 1000s", n)
			}
			l.SetRate(tc.rps, tc.burst)
			testutil.Eventually(t, 10*time.Second, func() bool { return passed.Load() == 3 }, "the waiting callers through")
		})
	}
}

// TestLimiterBurstAndRate: a full bucket lets burst calls through at once; the next waits.
func TestLimiterBurstAndRate(t *testing.T) {
	l := ratelimit.NewLimiter(0.001, 3)
	if l.Limit() != 0.001 || l.Burst() != 3 {
		t.Fatalf("limit %v burst %d", l.Limit(), l.Burst())
	}
	for i := range 3 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatalf("call %d of the burst: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fourth call: %v, want the context's deadline", err)
	}
}

// TestLimiterSmallerBurstDropsTokens: tokens above a lowered burst are gone.
func TestLimiterSmallerBurstDropsTokens(t *testing.T) {
	l := ratelimit.NewLimiter(0.001, 10)
	l.SetRate(0.001, 2)
	for range 2 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("a third call passed with a burst lowered to 2")
	}
}

// TestLimiterUnlimited: rate 0 means unlimited; a cancelled context still fails.
func TestLimiterUnlimited(t *testing.T) {
	l := ratelimit.NewLimiter(0, 0)
	if l.Limit() != rate.Inf || l.Burst() != 0 {
		t.Fatalf("limit %v burst %d, want unlimited", l.Limit(), l.Burst())
	}
	for range 1000 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}
