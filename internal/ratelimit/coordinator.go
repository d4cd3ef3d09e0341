package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/messages"
)

// Defaults of Config.
const (
	DefaultHeartbeat = time.Second
	// DefaultBucket is the bucket of the heartbeats. Like fulfil's other names it does not
	// depend on the subject prefix; the keys do (<prefix>.<random>).
	DefaultBucket = "FULFIL_RATE"
	// BurstSeconds is the burst of a share, in seconds of the share (at least one call).
	BurstSeconds = 0.1
)

// Config configures a Coordinator. Zero fields take the defaults given beside them.
type Config struct {
	// Budget is the partner calls per second of the whole account, token calls included; 0
	// means unlimited (nothing is shared, nothing is written).
	Budget float64
	// Prefix is the subject prefix: the workers of one prefix share one budget (default
	// messages.DefaultSubjectPrefix).
	Prefix string
	// Bucket is the KV bucket of the heartbeats (default DefaultBucket).
	Bucket string
	// Replicas of the bucket (default 1; 3 on a cluster, like the other buckets).
	Replicas int
	// Heartbeat is how often a worker rewrites its key (default DefaultHeartbeat).
	Heartbeat time.Duration
	// TTL is how long a key lives without a heartbeat: the bucket's max age, and how long the
	// others count a worker that stopped writing (default 3 heartbeats).
	TTL time.Duration
	// Settle is how long a newcomer keeps its smallest burst after it has seen its own key,
	// for the others to see it too (default half a heartbeat).
	Settle time.Duration
	// Worker names this worker in its key's value (default a random ID).
	Worker string
	// Logger receives the share changes (info) and NATS trouble (warn) (default: none).
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = messages.DefaultSubjectPrefix
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.TTL == 0 {
		c.TTL = 3 * c.Heartbeat
	}
	if c.Settle == 0 {
		c.Settle = c.Heartbeat / 2
	}
	if c.Worker == "" {
		c.Worker = uuid.NewString()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if math.IsNaN(c.Budget) || math.IsInf(c.Budget, 0) || c.Budget < 0 {
		errs = append(errs, fmt.Errorf("budget %v: want 0 (unlimited) or a positive number of calls per second", c.Budget))
	}
	if c.Heartbeat < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("heartbeat %s: want at least 10ms", c.Heartbeat))
	}
	if c.TTL < 2*c.Heartbeat {
		errs = append(errs, fmt.Errorf("TTL %s: want at least two heartbeats (%s)", c.TTL, 2*c.Heartbeat))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("settle %s is negative", c.Settle))
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("subject prefix %q: want one NATS token", c.Prefix))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to 5", c.Replicas))
	}
	return errors.Join(errs...)
}

// StartLimiter returns the Limiter a worker gives its partner client before it has read the
// bucket: unlimited for a budget of 0, else at most one call per second (the start-up token
// call), so that a newcomer does not spend what the others hold.
func StartLimiter(budget float64) *Limiter {
	if budget <= 0 {
		return NewLimiter(0, 0)
	}
	return NewLimiter(min(budget, 1), 1)
}

// Share is a worker's part of the budget.
type Share struct {
	Rate    float64 // calls per second; 0: unlimited
	Burst   int
	Workers int  // live workers counted, this one included
	Settled bool // this worker has seen its key and the settle time has passed
}

// beat is the value of a worker's key.
type beat struct {
	Worker string  `json:"worker"`
	Budget float64 `json:"budget"`
}

type member struct {
	budget float64
	seen   time.Time // local time of the last write seen
}

// Coordinator keeps a worker's Limiter at its share of the budget. Start it with Start; Stop it
// when the worker stops. It is safe for concurrent use.
type Coordinator struct {
	cfg Config
	lim *Limiter
	js  jetstream.JetStream
	key string
	val []byte
	log *zap.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	kv       jetstream.KeyValue // nil while the bucket cannot be opened
	members  map[string]member  // others
	joinedAt time.Time          // when this worker first saw its key; zero before
	selfSeen time.Time          // last time its key came back through the watch
	share    Share
	blind    bool    // logged that the bucket cannot be read
	warned   float64 // the smallest budget last logged
}

// Start opens (or creates) the bucket, reads who is there, sets lim to the smallest share
// (the budget over the workers seen, this one included, with a burst of one call), writes this
// worker's key and returns; the coordinator then follows the bucket until Stop. With a budget of
// 0 it sets lim unlimited and does nothing else. It fails when the bucket cannot be opened or
// read: a worker that cannot take part must not guess its share.
func Start(ctx context.Context, js jetstream.JetStream, lim *Limiter, cfg Config) (*Coordinator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	c := &Coordinator{cfg: cfg, lim: lim, js: js, log: cfg.Logger, members: make(map[string]member), done: make(chan struct{})}
	if cfg.Budget == 0 {
		lim.SetRate(0, 0)
		close(c.done)
		return c, nil
	}
	c.key = cfg.Prefix + "." + strings.ReplaceAll(uuid.NewString(), "-", "")
	c.val, _ = json.Marshal(beat{Worker: cfg.Worker, Budget: cfg.Budget})

	kv, err := js.CreateOrUpdateKeyValue(ctx, kvConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("ratelimit: open bucket %s: %w", cfg.Bucket, err)
	}
	c.kv = kv
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.Watch(wctx, cfg.Prefix+".*")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ratelimit: watch bucket %s: %w", cfg.Bucket, err)
	}
	if err := c.replay(ctx, w); err != nil {
		_ = w.Stop()
		cancel()
		return nil, err
	}
	c.mu.Lock()
	c.apply(c.cfg.Now(), true)
	c.mu.Unlock()
	if _, err := kv.Put(ctx, c.key, c.val); err != nil {
		_ = w.Stop()
		cancel()
		return nil, fmt.Errorf("ratelimit: write heartbeat: %w", err)
	}
	c.cancel = cancel
	go c.run(wctx, w)
	return c, nil
}

func kvConfig(cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "fulfil: live workers sharing the partner rate budget (heartbeats)",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.MemoryStorage, // a heartbeat is worthless after a restart
		Replicas:    cfg.Replicas,
	}
}

// replay reads the watch's initial values, up to its end marker.
func (c *Coordinator) replay(ctx context.Context, w jetstream.KeyWatcher) error {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("ratelimit: the bucket's watch ended while reading it")
			}
			if e == nil {
				return nil
			}
			c.mu.Lock()
			c.seen(e, c.cfg.Now())
			c.mu.Unlock()
		case <-ctx.Done():
			return fmt.Errorf("ratelimit: reading the bucket: %w", ctx.Err())
		}
	}
}

// seen records one entry of the watch. The caller holds c.mu.
func (c *Coordinator) seen(e jetstream.KeyValueEntry, now time.Time) {
	if e.Key() == c.key {
		if e.Operation() == jetstream.KeyValuePut {
			c.selfSeen = now
			if c.joinedAt.IsZero() {
				c.joinedAt = now
			}
		}
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(c.members, e.Key())
		return
	}
	var b beat
	if err := json.Unmarshal(e.Value(), &b); err != nil || !(b.Budget > 0) {
		c.log.Warn("ignoring an unreadable partner-budget heartbeat", zap.String("key", e.Key()))
		return
	}
	c.members[e.Key()] = member{budget: b.Budget, seen: now}
}

// healthy reports whether this worker's own heartbeats come back through the watch: only then
// does it believe that a silent worker has gone. The caller holds c.mu.
func (c *Coordinator) healthy(now time.Time) bool {
	return !c.selfSeen.IsZero() && now.Sub(c.selfSeen) <= c.cfg.TTL
}

// apply computes the share and sets the limiter. A share may always shrink; it grows only
// while the watch is healthy (NATS trouble keeps the last share). The caller holds c.mu.
func (c *Coordinator) apply(now time.Time, first bool) {
	healthy := c.healthy(now)
	// A worker has gone when this one has seen its own key come back more than a TTL after
	// that worker's last heartbeat: measured against the own key, silence caused by a broken
	// watch or connection never counts as a departure.
	for k, m := range c.members {
		if c.selfSeen.Sub(m.seen) > c.cfg.TTL {
			delete(c.members, k)
		}
	}
	budget := c.cfg.Budget
	for _, m := range c.members {
		budget = min(budget, m.budget)
	}
	n := 1 + len(c.members)
	settled := !c.joinedAt.IsZero() && now.Sub(c.joinedAt) >= c.cfg.Settle
	s := Share{Rate: budget / float64(n), Workers: n, Settled: settled}
	s.Burst = 1
	if settled {
		s.Burst = max(1, int(s.Rate*BurstSeconds))
	}
	if !first && !healthy && s.Rate > c.share.Rate {
		s.Rate, s.Burst, s.Workers = c.share.Rate, c.share.Burst, c.share.Workers
	}
	if s == c.share && budget == c.warned {
		return
	}
	if s.Rate != c.share.Rate || s.Burst != c.share.Burst {
		c.lim.SetRate(s.Rate, s.Burst)
	}
	if s.Workers != c.share.Workers || s.Settled != c.share.Settled || first {
		c.log.Info("partner budget share", zap.Float64("budget", c.cfg.Budget), zap.Float64("share_per_second", s.Rate),
			zap.Int("burst", s.Burst), zap.Int("workers", s.Workers), zap.Bool("settled", s.Settled))
	}
	if budget < c.cfg.Budget && budget != c.warned {
		c.log.Warn("another worker has a smaller partner budget; sharing the smallest",
			zap.Float64("budget", c.cfg.Budget), zap.Float64("smallest", budget))
	}
	c.warned = budget
	c.share = s
}

// Share returns this worker's current share.
func (c *Coordinator) Share() Share {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.Budget == 0 {
		return Share{Workers: 1, Settled: true}
	}
	return c.share
}

// run follows the watch and writes the heartbeats until ctx ends. When the watch ends (the
// connection or the bucket is gone) it opens the bucket and watches again at every heartbeat.
func (c *Coordinator) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(c.done)
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	settle := time.NewTimer(c.cfg.Settle)
	defer settle.Stop()
	var updates <-chan jetstream.KeyValueEntry
	if w != nil {
		updates = w.Updates()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				_ = w.Stop()
				w, updates = nil, nil
				c.trouble(errors.New("the watch ended"))
				continue
			}
			if e == nil {
				continue
			}
			c.mu.Lock()
			now := c.cfg.Now()
			first := c.joinedAt.IsZero()
			c.seen(e, now)
			if first && !c.joinedAt.IsZero() {
				settle.Reset(c.cfg.Settle)
			}
			c.apply(now, false)
			c.mu.Unlock()
		case <-settle.C:
			c.mu.Lock()
			c.apply(c.cfg.Now(), false)
			c.mu.Unlock()
		case <-tick.C:
			if w == nil {
				if nw, err := c.rewatch(ctx); err != nil {
					c.trouble(err)
				} else {
					w, updates = nw, nw.Updates()
				}
			}
			if !c.heartbeat(ctx) && w != nil {
				// The bucket may be gone: open it and watch again at the next heartbeat.
				_ = w.Stop()
				w, updates = nil, nil
			}
			c.mu.Lock()
			c.apply(c.cfg.Now(), false)
			c.mu.Unlock()
		}
	}
}

// rewatch opens the bucket again (it may have been deleted) and watches it.
func (c *Coordinator) rewatch(ctx context.Context) (jetstream.KeyWatcher, error) {
	octx, cancel := context.WithTimeout(ctx, c.cfg.Heartbeat)
	defer cancel()
	kv, err := c.js.CreateOrUpdateKeyValue(octx, kvConfig(c.cfg))
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", c.cfg.Bucket, err)
	}
	w, err := kv.Watch(ctx, c.cfg.Prefix+".*")
	if err != nil {
		return nil, fmt.Errorf("watch bucket %s: %w", c.cfg.Bucket, err)
	}
	c.mu.Lock()
	c.kv = kv
	c.mu.Unlock()
	return w, nil
}

// heartbeat rewrites this worker's key and reports whether it could.
func (c *Coordinator) heartbeat(ctx context.Context) bool {
	c.mu.Lock()
	kv := c.kv
	c.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Heartbeat)
	defer cancel()
	if _, err := kv.Put(pctx, c.key, c.val); err != nil {
		if ctx.Err() == nil {
			c.trouble(fmt.Errorf("write heartbeat: %w", err))
		}
		return false
	}
	c.mu.Lock()
	if c.blind {
		c.blind = false
		c.log.Info("partner budget bucket reachable again", zap.String("bucket", c.cfg.Bucket))
	}
	c.mu.Unlock()
	return true
}

// trouble logs, once until the next good heartbeat, that the bucket cannot be used.
func (c *Coordinator) trouble(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blind {
		return
	}
	c.blind = true
	c.log.Warn("partner budget bucket unavailable; keeping the last share (it does not grow meanwhile)",
		zap.String("bucket", c.cfg.Bucket), zap.Float64("share_per_second", c.share.Rate), zap.Int("workers", c.share.Workers),
		zap.Error(err))
}

// Stop stops following the bucket and deletes this worker's key (within a heartbeat), so that
// the others' shares grow at once rather than after the TTL. The limiter keeps its last rate.
func (c *Coordinator) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.mu.Lock()
	kv := c.kv
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Heartbeat)
	defer cancel()
	if err := kv.Delete(ctx, c.key); err != nil {
		c.log.Debug("partner budget: could not delete the heartbeat; it expires", zap.Error(err))
	}
}
