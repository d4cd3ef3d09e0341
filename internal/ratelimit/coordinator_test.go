package ratelimit_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/ratelimit"
	"github.com/fulfil/fulfil/internal/testutil"
)

// Short heartbeats keep the tests quick; the TTL leaves room for a slow, shared machine.
const (
	heartbeat = 100 * time.Millisecond
	ttl       = 600 * time.Millisecond
	patience  = 20 * time.Second
)

// member is one worker in a test: its connection, limiter and coordinator.
type member struct {
	nc    *nats.Conn
	lim   *ratelimit.Limiter
	coord *ratelimit.Coordinator
}

// join starts a coordinator on its own connection to url, as a worker process would.
func join(t *testing.T, url string, budget float64) *member {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{nc: nc, lim: ratelimit.StartLimiter(budget)}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	m.coord, err = ratelimit.Start(ctx, js, m.lim, ratelimit.Config{Budget: budget, Heartbeat: heartbeat, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.coord.Stop)
	return m
}

// near reports whether a and b are equal but for float rounding.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// converged waits until every member has rate each and counts n workers, with its limiter set
// accordingly.
func converged(t *testing.T, ms []*member, n int, each float64) {
	t.Helper()
	testutil.Eventually(t, patience, func() bool {
		for _, m := range ms {
			s := m.coord.Share()
			if s.Workers != n || !near(s.Rate, each) || !near(float64(m.lim.Limit()), each) || !s.Settled {
				return false
			}
		}
		return true
	}, "%d workers at %v calls/s each (%s)", n, each, shares(ms))
}

func shares(ms []*member) string {
	out := ""
	for i, m := range ms {
		s := m.coord.Share()
		out += fmt.Sprintf(" #%d: %v/s burst %d of %d settled %v;", i, s.Rate, s.Burst, s.Workers, s.Settled)
	}
	return out
}

// TestSharesConvergeJoinAndLeave: three workers share 30 calls/s at 10 each; a fourth joins
// taking at most its smallest share, and all go to 7.5; one stops (its key is deleted) and the
// rest go back to 10; one crashes (its connection dies, its key ages out) and the rest go to 15.
func TestSharesConvergeJoinAndLeave(t *testing.T) {
	url := natstest.Start(t)
	var ms []*member
	for range 3 {
		ms = append(ms, join(t, url, 30))
	}
	converged(t, ms, 3, 10)
	if b := ms[0].lim.Burst(); b != 1 {
		t.Errorf("burst %d at 10/s, want 1 (a tenth of a second)", b)
	}

	late := join(t, url, 30)
	if s := late.coord.Share(); s.Rate > 7.5 || s.Burst != 1 || s.Workers != 4 {
		t.Errorf("a newcomer started at %+v, want at most 7.5/s with a burst of 1 among 4", s)
	}
	ms = append(ms, late)
	converged(t, ms, 4, 7.5)

	ms[0].coord.Stop()
	ms = ms[1:]
	converged(t, ms, 3, 10)

	ms[0].nc.Close() // a crash: no delete, no more heartbeats
	converged(t, ms[1:], 2, 15)
}

// TestBurstIsATenthOfASecond: at 100 calls/s a lone worker's burst is 10.
func TestBurstIsATenthOfASecond(t *testing.T) {
	m := join(t, natstest.Start(t), 100)
	converged(t, []*member{m}, 1, 100)
	if b := m.lim.Burst(); b != 10 {
		t.Errorf("burst %d, want 10", b)
	}
}

// TestSmallestBudgetWins: workers given different budgets share the smallest.
func TestSmallestBudgetWins(t *testing.T) {
	url := natstest.Start(t)
	ms := []*member{join(t, url, 30), join(t, url, 10)}
	converged(t, ms, 2, 5)
}

// TestZeroBudgetIsUnlimited: budget 0 sets the limiter unlimited and writes nothing.
func TestZeroBudgetIsUnlimited(t *testing.T) {
	url := natstest.Start(t)
	m := join(t, url, 0)
	if s := m.coord.Share(); s.Rate != 0 || m.lim.Burst() != 0 || m.lim.Limit() != rate.Inf {
		t.Fatalf("share %+v, limiter %v/%d: want unlimited", s, m.lim.Limit(), m.lim.Burst())
	}
	_, js := natstest.Connect(t, url)
	if _, err := js.KeyValue(context.Background(), "FULFIL_RATE"); err == nil {
		t.Error("a budget of 0 created the bucket")
	}
}

// TestBucketUnavailableKeepsTheLastShare: when the server goes away the workers keep 15 each
// (neither growing as if the other had gone, nor stopping); when it is back (empty: the bucket
// is in memory) they re-create the bucket and find each other again.
func TestBucketUnavailableKeepsTheLastShare(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()
	ms := []*member{join(t, srv.ClientURL(), 30), join(t, srv.ClientURL(), 30)}
	converged(t, ms, 2, 15)

	srv.Shutdown()
	time.Sleep(5 * ttl) // long enough for a silent worker to be counted gone, were it believed
	for i, m := range ms {
		if s := m.coord.Share(); s.Rate != 15 || s.Workers != 2 || float64(m.lim.Limit()) != 15 {
			t.Errorf("worker %d without NATS: share %+v, limiter %v/s; want the last share, 15/s of 2", i, s, m.lim.Limit())
		}
	}

	srv, err = natsembed.Start(natsembed.Options{DataDir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	_, js := natstest.Connect(t, srv.ClientURL())
	testutil.Eventually(t, patience, func() bool {
		kv, err := js.KeyValue(context.Background(), "FULFIL_RATE")
		if err != nil {
			return false
		}
		keys, err := kv.Keys(context.Background())
		return err == nil && len(keys) == 2
	}, "both heartbeats back in a re-created bucket")
	converged(t, ms, 2, 15)
}

// TestBucketDeletedKeepsTheLastShare: a deleted bucket is re-created, and meanwhile nobody
// grows.
func TestBucketDeletedKeepsTheLastShare(t *testing.T) {
	url := natstest.Start(t)
	ms := []*member{join(t, url, 30), join(t, url, 30), join(t, url, 30)}
	converged(t, ms, 3, 10)
	_, js := natstest.Connect(t, url)
	if err := js.DeleteKeyValue(context.Background(), "FULFIL_RATE"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * ttl)
	for time.Now().Before(deadline) {
		for i, m := range ms {
			if r := float64(m.lim.Limit()); r > 10 {
				t.Fatalf("worker %d grew to %v/s while the bucket was gone", i, r)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	testutil.Eventually(t, patience, func() bool {
		kv, err := js.KeyValue(context.Background(), "FULFIL_RATE")
		if err != nil {
			return false
		}
		keys, err := kv.Keys(context.Background())
		return err == nil && len(keys) == 3
	}, "the three heartbeats in a re-created bucket")
	converged(t, ms, 3, 10)
}

// TestPrefixesDoNotShare: workers of another subject prefix have their own keys and budget.
func TestPrefixesDoNotShare(t *testing.T) {
	url := natstest.Start(t)
	a := join(t, url, 30)
	_, js := natstest.Connect(t, url)
	lim := ratelimit.StartLimiter(30)
	b, err := ratelimit.Start(context.Background(), js, lim, ratelimit.Config{Budget: 30, Prefix: "other", Heartbeat: heartbeat, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	converged(t, []*member{a}, 1, 30)
	testutil.Eventually(t, patience, func() bool { s := b.Share(); return s.Workers == 1 && s.Rate == 30 }, "the other prefix alone")
	kv, err := js.KeyValue(context.Background(), ratelimit.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil || len(keys) != 2 || strings.HasPrefix(keys[0], "other.") == strings.HasPrefix(keys[1], "other.") {
		t.Errorf("keys %v (%v), want one fulfil.* and one other.*", keys, err)
	}
}

// TestConfigChecked: nonsense settings are refused.
func TestConfigChecked(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	for _, cfg := range []ratelimit.Config{
		{Budget: -1}, {Budget: math.NaN()}, {Budget: math.Inf(1)},
		{Budget: 1, Heartbeat: time.Second, TTL: time.Second}, {Budget: 1, Replicas: 7}, {Budget: 1, Prefix: "a.b"},
	} {
		if c, err := ratelimit.Start(context.Background(), js, ratelimit.StartLimiter(1), cfg); err == nil {
			c.Stop()
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}
