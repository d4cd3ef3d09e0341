package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// stack is a real embedded JetStream server, the partner simulator, and an event recorder.
type stack struct {
	t   *testing.T
	url string
	js  jetstream.JetStream
	sim *partnertest.Server

	mu     sync.Mutex
	events []received
	notify chan struct{}
}

// received is an event with its headers.
type received struct {
	ev     messages.Event
	header nats.Header
}

func newStack(t *testing.T, simOpts ...partnertest.Option) *stack {
	t.Helper()
	return newStackAt(t, natstest.Start(t), simOpts...)
}

// newStackAt is newStack on a server the test started itself (with a storage limit, say).
func newStackAt(t *testing.T, url string, simOpts ...partnertest.Option) *stack {
	t.Helper()
	_, js := natstest.Connect(t, url)
	sim := partnertest.NewServer(simOpts...)
	t.Cleanup(sim.Close)
	s := &stack{t: t, url: url, js: js, sim: sim, notify: make(chan struct{}, 1)}
	ctx := context.Background()
	cfg := testConfig()
	for _, sc := range []jetstream.StreamConfig{worker.RequestsStreamConfig(cfg), worker.EventsStreamConfig(cfg)} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.OrderedConsumer(ctx, messages.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := messages.DecodeEvent(m.Data())
		if err != nil {
			t.Errorf("undecodable event %s: %v", m.Data(), err)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, received{ev: ev, header: m.Headers()})
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return s
}

func testConfig() worker.Config {
	return worker.Config{
		Concurrency:    16,
		AckWait:        time.Second,
		MaxDeliver:     20,
		NakDelay:       20 * time.Millisecond,
		MaxNakDelay:    200 * time.Millisecond,
		MessageTimeout: 30 * time.Second,
	}
}

func fastRetry() workflow.RetryPolicy {
	return workflow.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsed: 5 * time.Second, MaxRetries: 30}
}

// runningWorker is a worker with its own NATS connection.
type runningWorker struct {
	nc     *nats.Conn
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// stop asks the worker to shut down gracefully and waits.
func (r *runningWorker) stop() error {
	r.cancel()
	err := <-r.done
	r.nc.Close()
	return err
}

// kill drops the worker's connection at once, as if its process died: nothing it does
// afterwards reaches NATS.
func (r *runningWorker) kill() {
	r.nc.Close()
	r.cancel()
	<-r.done
}

// startWorker starts a worker; cfg's zero fields take testConfig's values; wrap (optional)
// intercepts its partner.
func (s *stack) startWorker(cfg worker.Config, wrap func(workflow.Partner) workflow.Partner) *runningWorker {
	s.t.Helper()
	nc, err := nats.Connect(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	client, err := partnerclient.New(s.sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0))
	if err != nil {
		s.t.Fatal(err)
	}
	var p workflow.Partner = client
	if wrap != nil {
		p = wrap(p)
	}
	def := testConfig()
	if cfg.Concurrency == 0 {
		cfg.Concurrency = def.Concurrency
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = def.AckWait
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = def.MaxDeliver
	}
	if cfg.NakDelay == 0 {
		cfg.NakDelay, cfg.MaxNakDelay = def.NakDelay, def.MaxNakDelay
	}
	if cfg.MessageTimeout == 0 {
		cfg.MessageTimeout = def.MessageTimeout
	}
	if cfg.Idempotency.LeaseTTL == 0 {
		cfg.Idempotency.LeaseTTL = time.Second
	}
	cfg.Logger = zaptest.NewLogger(s.t)
	w, err := worker.New(js, &workflow.Saga{Partner: p, Retry: fastRetry()}, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := w.Setup(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningWorker{nc: nc, w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	s.t.Cleanup(func() {
		if !nc.IsClosed() {
			_ = r.stop()
		}
	})
	return r
}

// publish sends a raw request body with a Nats-Msg-Id and returns its stream sequence.
func (s *stack) publish(body, msgID string) uint64 {
	s.t.Helper()
	m := nats.NewMsg(messages.SubjectsFor("").Requested)
	m.Data = []byte(body)
	ack, err := s.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(msgID))
	if err != nil {
		s.t.Fatal(err)
	}
	return ack.Sequence
}

// results returns the result events for key received so far.
func (s *stack) results(key string) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, r := range s.events {
		if r.ev.Key() == key && (r.ev.EventType() == messages.TypeCompleted || r.ev.EventType() == messages.TypeFailed) {
			out = append(out, r)
		}
	}
	return out
}

// progress returns the progress events for key received so far.
func (s *stack) progress(key string) []*messages.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*messages.Progress
	for _, r := range s.events {
		if p, ok := r.ev.(*messages.Progress); ok && p.Key() == key {
			out = append(out, p)
		}
	}
	return out
}

// waitResults waits until key has n result events and returns them.
func (s *stack) waitResults(key string, n int) []received {
	s.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if got := s.results(key); len(got) >= n {
			return got
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			s.t.Fatalf("key %s: %d result events after 60s, want %d", key, len(s.results(key)), n)
		}
	}
}

// settle waits a little for anything unexpected (a second result) to arrive.
func (s *stack) settle() { time.Sleep(300 * time.Millisecond) }

func completed(t *testing.T, r received) *messages.Completed {
	t.Helper()
	c, ok := r.ev.(*messages.Completed)
	if !ok {
		t.Fatalf("event %T %+v, want completed", r.ev, r.ev)
	}
	return c
}

func failed(t *testing.T, r received) *messages.Failed {
	t.Helper()
	f, ok := r.ev.(*messages.Failed)
	if !ok {
		t.Fatalf("event %T %+v, want failed", r.ev, r.ev)
	}
	return f
}

// crashPartner kills its worker at one call: before the call is made, or after it returned
// (before the saga could checkpoint what it learnt). After the crash every call fails, as in
// a dead process.
type crashPartner struct {
	workflow.Partner
	at    partnerclient.Endpoint
	after bool
	kill  func()
	dead  chan struct{}
	once  sync.Once
}

var errDead = errors.New("worker process is dead")

func (c *crashPartner) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *crashPartner) crash() { c.once.Do(func() { c.kill(); close(c.dead) }) }

// call wraps one partner call.
func call[T any](c *crashPartner, ep partnerclient.Endpoint, f func() (T, error)) (T, error) {
	var zero T
	if c.isDead() {
		return zero, errDead
	}
	if ep == c.at && !c.after {
		c.crash()
		return zero, errDead
	}
	v, err := f()
	if ep == c.at && c.after && err == nil {
		c.crash()
		return zero, errDead
	}
	return v, err
}

func (c *crashPartner) ListProducts(ctx context.Context, p partnerclient.ListProductsParams) (partnerclient.Page[partnerclient.Product], error) {
	return call(c, partnerclient.EndpointProductList, func() (partnerclient.Page[partnerclient.Product], error) { return c.Partner.ListProducts(ctx, p) })
}

func (c *crashPartner) PurchaseInfo(ctx context.Context, id int64, no string) (partnerclient.PurchaseInfo, error) {
	return call(c, partnerclient.EndpointPurchaseInfo, func() (partnerclient.PurchaseInfo, error) { return c.Partner.PurchaseInfo(ctx, id, no) })
}

func (c *crashPartner) BillingContacts(ctx context.Context) ([]partnerclient.BillingContact, error) {
	return call(c, partnerclient.EndpointBillingContacts, func() ([]partnerclient.BillingContact, error) { return c.Partner.BillingContacts(ctx) })
}

func (c *crashPartner) SubordinateUsers(ctx context.Context) ([]partnerclient.SubordinateUser, error) {
	return call(c, partnerclient.EndpointSubordinateUsers, func() ([]partnerclient.SubordinateUser, error) { return c.Partner.SubordinateUsers(ctx) })
}

func (c *crashPartner) CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error) {
	return call(c, partnerclient.EndpointCreateOrder, func() (partnerclient.OrderResult, error) { return c.Partner.CreateOrder(ctx, req) })
}

func (c *crashPartner) ListOrders(ctx context.Context, p partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error) {
	return call(c, partnerclient.EndpointOrderList, func() (partnerclient.Page[partnerclient.OrderSummary], error) { return c.Partner.ListOrders(ctx, p) })
}

func (c *crashPartner) OrderDetails(ctx context.Context, id string) (partnerclient.OrderDetails, error) {
	return call(c, partnerclient.EndpointOrderDetails, func() (partnerclient.OrderDetails, error) { return c.Partner.OrderDetails(ctx, id) })
}

func (c *crashPartner) AutoRenewStatus(ctx context.Context, id int64, no string) (bool, error) {
	return call(c, partnerclient.EndpointAutoRenewStatus, func() (bool, error) { return c.Partner.AutoRenewStatus(ctx, id, no) })
}

func (c *crashPartner) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	return call(c, partnerclient.EndpointEnableAutoRenewal, func() (bool, error) { return c.Partner.EnableAutoRenewal(ctx, req) })
}

func (c *crashPartner) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	return call(c, partnerclient.EndpointActivationCode, func() (partnerclient.ActivationCode, error) { return c.Partner.ActivationCode(ctx, id, no) })
}
