package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket whose rate and burst may change at any time, with effect at once.
//
// Unlike a rate.Limiter, whose Wait reserves a future instant for every caller (so a rate
// lowered while callers wait applies only once every reservation made at the old rate has been
// served), a Limiter lets one caller at a time wait for the next token, the others queue behind
// it in arrival order, and nobody holds a token in the future: a lowered share holds from the
// next call on. It is safe for concurrent use; it satisfies partnerclient.Limiter.
type Limiter struct {
	head chan struct{} // capacity 1: held by the one caller waiting for a token
	now  func() time.Time

	mu      sync.Mutex
	limit   float64 // tokens per second; +Inf: unlimited
	burst   float64
	tokens  float64
	last    time.Time
	changed chan struct{} // closed (and replaced) when the rate changes
}

// NewLimiter returns a Limiter of rps calls per second with bursts of burst (at least 1),
// starting full. rps 0 (or +Inf) means unlimited.
func NewLimiter(rps float64, burst int) *Limiter {
	l := &Limiter{head: make(chan struct{}, 1), now: time.Now, changed: make(chan struct{})}
	l.set(rps, burst)
	l.tokens = l.burst
	l.last = l.now()
	return l
}

// set stores the rate; the caller holds l.mu or owns l.
func (l *Limiter) set(rps float64, burst int) {
	if rps <= 0 || math.IsInf(rps, 1) || math.IsNaN(rps) {
		l.limit, l.burst = math.Inf(1), 0
		return
	}
	l.limit, l.burst = rps, float64(max(1, burst))
}

// SetRate changes the rate and the burst (see NewLimiter). Tokens above the new burst are
// dropped, and the caller waiting for a token reckons again at the new rate.
func (l *Limiter) SetRate(rps float64, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(l.now())
	l.set(rps, burst)
	l.tokens = min(l.tokens, l.burst)
	close(l.changed)
	l.changed = make(chan struct{})
}

// Limit returns the current rate (rate.Inf: unlimited).
func (l *Limiter) Limit() rate.Limit {
	l.mu.Lock()
	defer l.mu.Unlock()
	if math.IsInf(l.limit, 1) {
		return rate.Inf
	}
	return rate.Limit(l.limit)
}

// Burst returns the current burst (0 when unlimited).
func (l *Limiter) Burst() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.burst)
}

// advance adds the tokens earned since l.last, up to the burst. The caller holds l.mu.
func (l *Limiter) advance(now time.Time) {
	if math.IsInf(l.limit, 1) {
		l.last = now
		return
	}
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.burst, l.tokens+d.Seconds()*l.limit)
	}
	l.last = now
}

// Wait blocks until a call may be made, or ctx ends (its error is returned; no token is
// taken then).
func (l *Limiter) Wait(ctx context.Context) error {
	if l.unlimited() {
		return ctx.Err()
	}
	select {
	case l.head <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.head }()
	for {
		l.mu.Lock()
		now := l.now()
		l.advance(now)
		if math.IsInf(l.limit, 1) || l.tokens >= 1 {
			if !math.IsInf(l.limit, 1) {
				l.tokens--
			}
			l.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - l.tokens) / l.limit * float64(time.Second))
		changed := l.changed
		l.mu.Unlock()
		t := time.NewTimer(max(wait, time.Microsecond))
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func (l *Limiter) unlimited() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return math.IsInf(l.limit, 1)
}
