package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
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
}

// New returns a Worker; call Setup, then Run. It returns an error when cfg is invalid.
func New(js jetstream.JetStream, saga *workflow.Saga, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	if js == nil || saga == nil || saga.Partner == nil {
		return nil, errors.New("worker: jetstream, saga and partner are required")
	}
	return &Worker{
		cfg:      cfg,
		js:       js,
		saga:     saga,
		subjects: messages.SubjectsFor(cfg.SubjectPrefix),
		log:      cfg.Logger,
		starting: make(chan struct{}, cfg.MaxStarting),
	}, nil
}

// Config returns the worker's configuration with defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// Store returns the idempotency store (after Setup).
func (w *Worker) Store() *idempotency.Store { return w.store }

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

// Run pulls and processes requests until ctx ends, then stops pulling and waits for in-flight
// sagas (up to ShutdownTimeout, after which they are cancelled and left to redelivery). It
// returns nil after a clean shutdown.
func (w *Worker) Run(ctx context.Context) error {
	if w.consumer == nil {
		return errors.New("worker: Run before Setup")
	}
	it, err := w.consumer.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	stopDLQ, err := w.watchMaxDeliveries(ctx, w.js.Conn())
	if err != nil {
		it.Stop()
		return err
	}
	defer stopDLQ()
	// Sagas outlive ctx during the drain; hard is cancelled when the drain times out.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()

	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		it.Stop()
		close(stopped)
	}()
	w.log.Info("worker started", zap.String("worker_id", w.cfg.WorkerID), zap.Int("concurrency", w.cfg.Concurrency))
	var runErr error
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				break
			}
			runErr = fmt.Errorf("consume: %w", err)
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.Handle(hard, msg)
		}()
	}
	it.Stop()
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
