package control

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/metrics"
)

// GuardConfig configures a Guard.
type GuardConfig struct {
	// MaxPerHour and MaxPerDay cap the create-order sends of the whole account (all workers)
	// in one UTC hour and one UTC day; 0 means no cap.
	MaxPerHour int
	MaxPerDay  int
	// Recheck is how often a send held back by a cap looks at the counters again before the
	// window ends (default 30s).
	Recheck time.Duration
	// Logger receives the pause changes and the first hit of each cap window (default: none).
	Logger *zap.Logger
	// Metrics receives the paused gauge, the waiting gauges and the cap hits (optional).
	Metrics *metrics.Metrics
}

// Validate reports an invalid setting.
func (c GuardConfig) Validate() error {
	var errs []error
	if c.MaxPerHour < 0 {
		errs = append(errs, fmt.Errorf("max orders per hour must be 0 (no cap) or positive, got %d", c.MaxPerHour))
	}
	if c.MaxPerDay < 0 {
		errs = append(errs, fmt.Errorf("max orders per day must be 0 (no cap) or positive, got %d", c.MaxPerDay))
	}
	return errors.Join(errs...)
}

// Guard decides, right before each create-order send, whether the account may spend now: not
// while the pause flag is set, and not beyond the spend caps. It watches the pause flag, so a
// pause or a resume reaches every waiting saga within moments, and counts every send it lets
// through in the control bucket, shared by all workers. It is safe for concurrent use.
type Guard struct {
	c   *Control
	cfg GuardConfig
	log *zap.Logger

	mu      sync.Mutex
	pause   Pause
	known   bool          // the watch delivered the flag's current value
	changed chan struct{} // closed and replaced whenever pause or known changes

	spendMu sync.Mutex
	spend   Spend // last value this process read or wrote; Day "" when none
	warned  map[string]bool

	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// NewGuard returns a Guard on c's bucket; Start it before use.
func (c *Control) NewGuard(cfg GuardConfig) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Guard{c: c, cfg: cfg, log: log, changed: make(chan struct{}), warned: make(map[string]bool)}, nil
}

// Config returns the guard's configuration.
func (g *Guard) Config() GuardConfig { return g.cfg }

// Start watches the pause flag until Stop, and returns once its current value is known (or
// with ctx's error). Until then Wait holds every send back.
func (g *Guard) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := g.c.kv.Watch(wctx, keyPause)
	if err != nil {
		cancel()
		return fmt.Errorf("control: watch pause flag: %w", err)
	}
	g.stopWatch = cancel
	g.watchDone = make(chan struct{})
	go g.watch(w)
	for {
		g.mu.Lock()
		known, changed := g.known, g.changed
		g.mu.Unlock()
		if known {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			g.Stop()
			return fmt.Errorf("control: reading the pause flag: %w", ctx.Err())
		}
	}
}

// Stop ends the watch.
func (g *Guard) Stop() {
	if g.stopWatch != nil {
		g.stopWatch()
		<-g.watchDone
	}
}

func (g *Guard) watch(w jetstream.KeyWatcher) {
	defer close(g.watchDone)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		var p Pause
		if e != nil && e.Operation() == jetstream.KeyValuePut {
			var err error
			if p, err = decodePause(e.Value()); err != nil {
				// An unreadable flag is treated as a pause: better to hold orders than to spend.
				g.log.Error("pause flag unreadable; holding create order back", zap.Error(err))
				p = Pause{Paused: true, Reason: "the pause flag is unreadable", At: time.Now().UTC()}
			}
		} else if e != nil {
			p = Pause{} // deleted or purged: not paused
		} else {
			g.mu.Lock()
			initial := !g.known
			g.mu.Unlock()
			if !initial {
				continue
			}
			// The marker after the current values: when no value came, the flag was never set.
			g.mu.Lock()
			p = g.pause
			g.mu.Unlock()
		}
		g.set(p)
	}
}

// set records a new value of the pause flag and wakes every waiting saga.
func (g *Guard) set(p Pause) {
	g.mu.Lock()
	prev, wasKnown := g.pause, g.known
	g.pause, g.known = p, true
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
	g.cfg.Metrics.Paused(p.Paused)
	switch {
	case p.Paused && (!prev.Paused || !wasKnown):
		g.log.Warn("account paused: create order is held back on this worker until resumed",
			zap.String("by", p.By), zap.Time("at", p.At), zap.String("reason", p.Reason))
	case !p.Paused && prev.Paused:
		g.log.Warn("account resumed: create order goes ahead", zap.String("by", p.By), zap.Time("at", p.At))
	}
}

// State returns the pause flag as last seen by the watch; known is false before Start has
// seen it.
func (g *Guard) State() (p Pause, known bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pause, g.known
}

func (g *Guard) now() time.Time { return g.c.cfg.Now().UTC() }

// Wait is workflow.Saga.Guard: it returns nil once key's create order may be sent, having
// counted that send against the caps; while the account is paused or a cap is reached it
// waits, calling waiting once with the reason. It returns ctx's error if ctx ends first, or
// the bucket's error when the send cannot be counted.
func (g *Guard) Wait(ctx context.Context, key string, waiting func(reason string)) error {
	told := false
	cause := ""
	setCause := func(c string) {
		if c == cause {
			return
		}
		if cause != "" {
			g.cfg.Metrics.GuardWaiting(cause, -1)
		}
		if c != "" {
			g.cfg.Metrics.GuardWaiting(c, 1)
		}
		cause = c
	}
	defer setCause("")
	tell := func(reason string) {
		if !told && waiting != nil {
			told = true
			waiting(reason)
		}
	}
	hit := false
	for {
		g.mu.Lock()
		p, known, changed := g.pause, g.known, g.changed
		g.mu.Unlock()
		if !known || p.Paused {
			setCause(metrics.GuardPaused)
			if known {
				tell(pauseReason(p))
			} else {
				tell("the account's pause flag has not been read yet")
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if g.cfg.MaxPerHour == 0 && g.cfg.MaxPerDay == 0 {
			return nil
		}
		until, window, reason, err := g.reserve(ctx)
		if err != nil {
			return err
		}
		if until.IsZero() {
			return nil
		}
		setCause(metrics.GuardSpendCap)
		if !hit {
			hit = true
			g.cfg.Metrics.SpendCapHit(window)
		}
		tell(reason)
		t := time.NewTimer(min(max(until.Sub(g.now()), 0), g.cfg.Recheck))
		select {
		case <-t.C:
		case <-changed: // a pause meanwhile: wait for the resume instead
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

func pauseReason(p Pause) string {
	s := "the account is paused"
	if p.By != "" {
		s += " by " + p.By
	}
	if !p.At.IsZero() {
		s += " since " + p.At.UTC().Format(time.RFC3339)
	}
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s + " (fulfil resume lets orders go ahead)"
}

// reserve counts one send against the caps. It returns a zero until when the send may go
// ahead; otherwise when the full window ends, which window (hour or day) is full, and why.
func (g *Guard) reserve(ctx context.Context) (until time.Time, window, reason string, err error) {
	g.spendMu.Lock()
	defer g.spendMu.Unlock()
	for range 64 {
		now := g.now()
		day := spendDay(now)
		s := g.spend
		if s.Day != day {
			if s, err = g.c.readSpend(ctx, day); err != nil {
				return time.Time{}, "", "", err
			}
		}
		hourFull := g.cfg.MaxPerHour > 0 && s.Hour(now) >= g.cfg.MaxPerHour
		dayFull := g.cfg.MaxPerDay > 0 && s.Total >= g.cfg.MaxPerDay
		if hourFull || dayFull {
			g.spend = Spend{} // read afresh next time: the count may have been reset
			return g.full(now, s, hourFull, dayFull)
		}
		next, err := g.c.addSpend(ctx, s, now)
		if errors.Is(err, errSpendRace) {
			if s, err = g.c.readSpend(ctx, day); err != nil {
				return time.Time{}, "", "", err
			}
			g.spend = s
			continue
		}
		if err != nil {
			g.spend = Spend{}
			return time.Time{}, "", "", err
		}
		g.spend = next
		return time.Time{}, "", "", nil
	}
	return time.Time{}, "", "", errors.New("control: spend counter too contended; retrying the purchase later")
}

// full describes a reached cap and logs its first hit in this process.
func (g *Guard) full(now time.Time, s Spend, hourFull, dayFull bool) (time.Time, string, string, error) {
	hourEnd := now.Truncate(time.Hour).Add(time.Hour)
	y, m, d := now.Date()
	dayEnd := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	until, window, count, limit := hourEnd, "hour", s.Hour(now), g.cfg.MaxPerHour
	name := now.Format("2006-01-02T15") + "Z"
	if dayFull {
		until, window, count, limit, name = dayEnd, "day", s.Total, g.cfg.MaxPerDay, now.Format("2006-01-02")
	}
	reason := fmt.Sprintf("spend cap reached: %d orders in the %s %s (cap %d); waiting until %s",
		count, window, name, limit, until.Format(time.RFC3339))
	if k := window + " " + name; !g.warned[k] {
		g.warned[k] = true
		g.log.Warn("spend cap reached: create order waits for the next window",
			zap.String("window", window), zap.String("period", name), zap.Int("orders", count),
			zap.Int("cap", limit), zap.Time("until", until))
	}
	return until, window, reason, nil
}
