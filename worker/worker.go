package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// Worker runs purchase sagas for the messages of the requests stream.
type Worker struct {
	cfg      Config
	js       jetstream.JetStream
	saga     *workflow.Saga
	subjects messages.Subjects
	log      *zap.Logger

	store    *idempotency.Store
	consumer jetstream.Consumer
	starting chan struct{} // slots of Config.MaxStarting

	control  *control.Control // after Setup
	guard    *control.Guard   // after Setup: watches the pause flag until Run returns
	stopping context.Context  // Run's ctx: when it ends, waits before create order give up
	tracer   trace.Tracer     // the saga's TracerProvider's; nil: no spans (trace.go)
}

// New returns a Worker; call Setup, then Run. It returns an error when cfg is invalid. A saga
// without a Guard gets Guard, so that its create-order sends obey the pause flag and the
// spend caps; the saga may be shared by several workers. With the saga's TracerProvider set,
// each delivery of a valid request is a saga span (see trace.go).
func New(js jetstream.JetStream, saga *workflow.Saga, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	if js == nil || saga == nil || saga.Partner == nil {
		return nil, errors.New("worker: jetstream, saga and partner are required")
	}
	if saga.Guard == nil {
		saga.Guard = Guard
	}
	w := &Worker{
		cfg:      cfg,
		js:       js,
		saga:     saga,
		subjects: messages.SubjectsFor(cfg.SubjectPrefix),
		log:      cfg.Logger,
		starting: make(chan struct{}, cfg.MaxStarting),
	}
	if saga.TracerProvider != nil {
		w.tracer = saga.TracerProvider.Tracer(TracerName)
	}
	return w, nil
}

// Config returns the worker's configuration with defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// Store returns the idempotency store (after Setup).
func (w *Worker) Store() *idempotency.Store { return w.store }

// Control returns the control bucket (after Setup).
func (w *Worker) Control() *control.Control { return w.control }

// ControlGuard returns the guard before create order (after Setup).
func (w *Worker) ControlGuard() *control.Guard { return w.guard }

// Setup checks, then creates or updates, the streams, the consumer and the idempotency bucket.
// It is idempotent and safe to run from many workers at once. When any of them already exists
// with settings that break fulfil's guarantees, Setup refuses with a *SelfCheckError naming
// each problem, unless Config.Repair is set, in which case it overwrites them.
func (w *Worker) Setup(ctx context.Context) error {
	if err := w.selfCheck(ctx); err != nil {
		return err
	}
	for _, sc := range []jetstream.StreamConfig{RequestsStreamConfig(w.cfg), EventsStreamConfig(w.cfg), DeadLetterStreamConfig(w.cfg)} {
		if _, err := w.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	cons, err := w.js.CreateOrUpdateConsumer(ctx, messages.StreamRequests, ConsumerConfig(w.cfg))
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	w.consumer = cons
	icfg := w.cfg.Idempotency
	if icfg.Now == nil {
		icfg.Now = w.cfg.Now
	}
	store, err := idempotency.Open(ctx, w.js, icfg)
	if err != nil {
		return fmt.Errorf("idempotency bucket: %w", err)
	}
	w.store = store
	return w.setupControl(ctx)
}

// setupControl creates or updates the control bucket, with the idempotency bucket's replicas
// and storage, and starts watching the pause flag (once; Run stops the watch).
func (w *Worker) setupControl(ctx context.Context) error {
	now := w.cfg.Control.Now
	if now == nil {
		now = w.cfg.Now
	}
	ctl, err := control.Open(ctx, w.js, control.Config{
		Bucket:   w.cfg.Control.Bucket,
		Replicas: w.cfg.Idempotency.Replicas,
		Storage:  w.cfg.Idempotency.Storage,
		Now:      now,
	})
	if err != nil {
		return err
	}
	w.control = ctl
	if w.guard != nil {
		return nil
	}
	g, err := ctl.NewGuard(control.GuardConfig{
		MaxPerHour: w.cfg.Control.MaxOrdersPerHour,
		MaxPerDay:  w.cfg.Control.MaxOrdersPerDay,
		Recheck:    w.cfg.Control.Recheck,
		Logger:     w.log,
		Metrics:    w.cfg.Metrics,
	})
	if err != nil {
		return err
	}
	if err := g.Start(ctx); err != nil {
		return err
	}
	w.guard = g
	return nil
}

// RequestsStreamConfig is the requests stream: a file-backed work queue.
func RequestsStreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	sc := fileStream(cfg, messages.StreamRequests, "fulfil purchase requests (work queue)", messages.SubjectsFor(cfg.SubjectPrefix).Requested)
	sc.Retention = jetstream.WorkQueuePolicy
	return sc
}

// EventsStreamConfig is the events stream: progress and result events, kept EventsMaxAge.
func EventsStreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	sc := fileStream(cfg, messages.StreamEvents, "fulfil purchase progress and result events", messages.SubjectsFor(cfg.SubjectPrefix).Events()...)
	sc.MaxAge = cfg.EventsMaxAge
	return sc
}

// DeadLetterStreamConfig is the dead-letter stream: requests that ended without a normal
// outcome (terminated, or out of deliveries), kept EventsMaxAge.
func DeadLetterStreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	sc := fileStream(cfg, messages.StreamDeadLetter, "fulfil requests that ended without a normal outcome", messages.SubjectsFor(cfg.SubjectPrefix).DeadLetter)
	sc.MaxAge = cfg.EventsMaxAge
	return sc
}

// fileStream is what fulfil's streams share: file storage, the configured replicas and
// duplicate window, limits retention.
func fileStream(cfg Config, name, description string, subjects ...string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// pullWait is how long one pull request waits for requests on an idle stream.
const pullWait = 5 * time.Second

// pullRetryDelay spaces pulls that failed (no stream, no connection), doubling while they fail.
const pullRetryDelay = 250 * time.Millisecond

// takeSlots waits for one free slot, then takes every other free one without waiting. It
// returns how many it took: 0 once ctx has ended.
func takeSlots(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < cap(slots) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// pull asks for up to n requests in one pull request, passing each to handle as it arrives,
// and returns how many arrived. It returns when n arrived, after pullWait, or when ctx ends.
func (w *Worker) pull(ctx context.Context, n int, handle func(jetstream.Msg)) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, pullWait)
	defer cancel()
	batch, err := w.consumer.Fetch(n, jetstream.FetchContext(pctx))
	if err != nil {
		return 0, err
	}
	got := 0
	for msg := range batch.Messages() {
		if got == n {
			// Never more sagas than the slots taken for them: a message past the pull's size
			// would release a slot nobody took, and Run would wait for ever for slots to come
			// back (a cluster chaos run once hung so, every handler blocked releasing its slot).
			// It goes back to the stream at once.
			w.log.Warn("a pull delivered more requests than it asked for; returning the extra one", zap.Int("asked", n))
			_ = msg.Nak()
			continue
		}
		got++
		handle(msg)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return got, err
	}
	return got, nil
}

// ConsumerConfig is the durable pull consumer shared by all workers.
func ConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	cfg = cfg.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "fulfil saga workers",
		FilterSubject: messages.SubjectsFor(cfg.SubjectPrefix).Requested,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// consumerGrace is how long Run waits for its consumer to reappear before it ends.
const consumerGrace = 10 * time.Second

// consumerGone looks the worker's consumer up until it is found (nil) or has been reported
// missing for consumerGrace (the error). Lookups that fail otherwise (JetStream restarting) do
// not count as missing.
func (w *Worker) consumerGone(ctx context.Context) error {
	var missingSince time.Time
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.js.Consumer(lctx, messages.StreamRequests, w.consumer.CachedInfo().Name)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return nil // Run ends on ctx
		case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
			if missingSince.IsZero() {
				missingSince = time.Now()
				w.log.Warn("the requests consumer is missing; waiting for it", zap.Duration("up_to", consumerGrace))
			}
			if time.Since(missingSince) >= consumerGrace {
				return fmt.Errorf("%w for %s", err, consumerGrace)
			}
		default:
			missingSince = time.Time{}
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
	}
}

// Run pulls and processes requests until ctx ends, then stops pulling and waits for in-flight
// sagas (up to ShutdownTimeout, after which they are cancelled and left to redelivery). It
// returns nil after a clean shutdown.
//
// It pulls only as many requests as it has free slots (Concurrency), so a request is never
// delivered to wait in the client without InProgress: if every slot stayed busy longer than
// AckWait, such a request would be redelivered and spend deliveries it never used.

func (w *Worker) Run(ctx context.Context) error {
	if w.consumer == nil {
		return errors.New("worker: Run before Setup")
	}
	stopDLQ, err := w.watchMaxDeliveries(ctx, w.js.Conn())
	if err != nil {
		return err
	}
	defer stopDLQ()
	if w.guard != nil {
		defer w.guard.Stop()
	}
	w.stopping = ctx
	// Sagas outlive ctx during the drain; hard is cancelled when the drain times out.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()

	slots := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	w.log.Info("worker started", zap.String("worker_id", w.cfg.WorkerID), zap.Int("concurrency", w.cfg.Concurrency))
	var runErr error
	failures := 0 // pulls failed in a row
	for {
		n := takeSlots(ctx, slots)
		if n == 0 {
			break
		}
		got, err := w.pull(ctx, n, func(msg jetstream.Msg) {
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				w.Handle(hard, msg)
			}()
		})
		for range n - got {
			<-slots
		}
		if ctx.Err() != nil {
			break
		}
		// As a consumer iterator would: a closed connection ends Run, and so does a consumer that
		// stays deleted. A consumer missing for a moment (JetStream restarting, e.g. after a full
		// disk was freed, reloads every consumer from disk) is waited for.
		if errors.Is(err, nats.ErrConnectionClosed) {
			runErr = fmt.Errorf("consume: %w", err)
			break
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			if gone := w.consumerGone(ctx); gone != nil {
				runErr = fmt.Errorf("consume: %w", gone)
				break
			}
			continue
		}
		if err == nil {
			failures = 0
			continue
		}
		// Doubling from pullRetryDelay up to pullWait, so a long outage logs every few seconds.
		delay := min(pullRetryDelay<<min(failures, 5), pullWait)
		failures++
		w.log.Warn("pulling requests failed; trying again", zap.Error(err), zap.Duration("in", delay))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("shutdown timeout: cancelling in-flight sagas; they resume on redelivery")
		cancelHard()
		<-done
	}
	w.log.Info("worker stopped", zap.String("worker_id", w.cfg.WorkerID))
	return runErr
}
