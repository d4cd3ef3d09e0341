//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// seedFor returns the seed of a test's fault schedule: CHAOS_SEED when set, else the clock.
// It is logged so that a failing schedule can be run again.
func seedFor(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (run again with CHAOS_SEED=%d)", seed, seed)
	return seed
}

// sagaEndpoints are the partner endpoints a purchase calls.
var sagaEndpoints = []partnerclient.Endpoint{
	partnerclient.EndpointToken, partnerclient.EndpointProductList, partnerclient.EndpointPurchaseInfo,
	partnerclient.EndpointBillingContacts, partnerclient.EndpointSubordinateUsers, partnerclient.EndpointCreateOrder,
	partnerclient.EndpointOrderList, partnerclient.EndpointOrderDetails, partnerclient.EndpointAutoRenewStatus,
	partnerclient.EndpointEnableAutoRenewal, partnerclient.EndpointActivationCode,
}

// newSim starts the partner simulator with latency (plus as much jitter) on every endpoint.
func newSim(t *testing.T, seed uint64, latency time.Duration) *partnertest.Server {
	t.Helper()
	sim := partnertest.NewServer(partnertest.WithSeed(int64(seed)))
	t.Cleanup(sim.Close)
	for _, ep := range sagaEndpoints {
		sim.SetFaults(ep, partnertest.Faults{Latency: latency, Jitter: latency})
	}
	return sim
}

// purchase is the request body of the i-th purchase: a new licence, varied in plan, services,
// size and term.
func purchase(key string, i int) []byte {
	req := messages.PurchaseRequest{
		IdempotencyKey: key,
		Plan:           &messages.Ref{Name: partnertest.PlanEnterpriseName},
		Quantity:       5 + i%95,
		Years:          1 + i%3,
	}
	if i%2 == 1 {
		req.Plan.Name = partnertest.PlanUltimateName
		req.Services = []messages.ServiceRef{{Name: partnertest.ServiceDisasterRecoveryName}}
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// publish publishes body with Nats-Msg-Id msgID (a producer's is messages.RequestMsgID of key
// and body; another id stands for a re-send the stream's duplicate window no longer catches),
// retrying (with the same id, so the stream deduplicates) until the stream acknowledges it or
// timeout passes.
func publish(js jetstream.JetStream, body []byte, msgID string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		m := nats.NewMsg(messages.SubjectsFor("").Requested)
		m.Data = body
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s: %w", msgID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connect connects to urls (comma separated), reconnecting for ever, and closes the
// connection when the test ends.
func connect(t *testing.T, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, reconnecting()...)
	if err != nil {
		t.Fatalf("connect %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func reconnecting() []nats.Option {
	return []nats.Option{nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.ErrorHandler(countAsyncError)}
}

// asyncErrors counts the asynchronous errors of all connections (slow consumers above all),
// which nats.go would otherwise print to stderr; tests log the count.
var asyncErrors struct {
	mu    sync.Mutex
	count map[string]int
}

func countAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	asyncErrors.mu.Lock()
	defer asyncErrors.mu.Unlock()
	if asyncErrors.count == nil {
		asyncErrors.count = map[string]int{}
	}
	asyncErrors.count[err.Error()]++
}

// logAsyncErrors logs and resets the asynchronous errors counted so far.
func logAsyncErrors(t *testing.T) {
	asyncErrors.mu.Lock()
	defer asyncErrors.mu.Unlock()
	if len(asyncErrors.count) > 0 {
		t.Logf("asynchronous NATS client errors: %v", asyncErrors.count)
	}
	asyncErrors.count = nil
}

// errKilled is what a killed worker's partner calls return. It wraps context.Canceled, so the
// saga takes it for an interrupted call, not for an answer of the partner.
var errKilled = fmt.Errorf("worker killed: %w", context.Canceled)

// mortalPartner is a worker's partner client that stops answering once the worker is killed,
// as in a dead process: a call that was in flight may have reached the partner, but its answer
// is lost.
type mortalPartner struct {
	p    workflow.Partner
	dead atomic.Bool
}

func mortal[T any](m *mortalPartner, f func() (T, error)) (T, error) {
	var zero T
	if m.dead.Load() {
		return zero, errKilled
	}
	v, err := f()
	if m.dead.Load() {
		return zero, errKilled
	}
	return v, err
}

func (m *mortalPartner) ListProducts(ctx context.Context, p partnerclient.ListProductsParams) (partnerclient.Page[partnerclient.Product], error) {
	return mortal(m, func() (partnerclient.Page[partnerclient.Product], error) { return m.p.ListProducts(ctx, p) })
}

func (m *mortalPartner) PurchaseInfo(ctx context.Context, id int64, no string) (partnerclient.PurchaseInfo, error) {
	return mortal(m, func() (partnerclient.PurchaseInfo, error) { return m.p.PurchaseInfo(ctx, id, no) })
}

func (m *mortalPartner) BillingContacts(ctx context.Context) ([]partnerclient.BillingContact, error) {
	return mortal(m, func() ([]partnerclient.BillingContact, error) { return m.p.BillingContacts(ctx) })
}

func (m *mortalPartner) SubordinateUsers(ctx context.Context) ([]partnerclient.SubordinateUser, error) {
	return mortal(m, func() ([]partnerclient.SubordinateUser, error) { return m.p.SubordinateUsers(ctx) })
}

func (m *mortalPartner) CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error) {
	return mortal(m, func() (partnerclient.OrderResult, error) { return m.p.CreateOrder(ctx, req) })
}

func (m *mortalPartner) ListOrders(ctx context.Context, p partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error) {
	return mortal(m, func() (partnerclient.Page[partnerclient.OrderSummary], error) { return m.p.ListOrders(ctx, p) })
}

func (m *mortalPartner) OrderDetails(ctx context.Context, id string) (partnerclient.OrderDetails, error) {
	return mortal(m, func() (partnerclient.OrderDetails, error) { return m.p.OrderDetails(ctx, id) })
}

func (m *mortalPartner) AutoRenewStatus(ctx context.Context, id int64, no string) (bool, error) {
	return mortal(m, func() (bool, error) { return m.p.AutoRenewStatus(ctx, id, no) })
}

func (m *mortalPartner) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	return mortal(m, func() (bool, error) { return m.p.EnableAutoRenewal(ctx, req) })
}

func (m *mortalPartner) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	return mortal(m, func() (partnerclient.ActivationCode, error) { return m.p.ActivationCode(ctx, id, no) })
}

// runner is one worker "process": its own NATS connection and partner client.
type runner struct {
	name    string
	nc      *nats.Conn
	w       *worker.Worker
	partner *mortalPartner
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // Run's result, once done is closed
	killed  atomic.Bool
}

// workerSpec says how to start workers.
type workerSpec struct {
	urls       string
	partnerURL string
	cfg        worker.Config
	retry      workflow.RetryPolicy
	// dial (optional) replaces nats.Connect.
	dial func() (*nats.Conn, error)
}

// startWorker starts a worker named name, retrying Setup (which needs the cluster's meta
// leader) for up to 30 seconds, as a supervisor restarts a process that failed to start.
func startWorker(t *testing.T, spec workerSpec, name string) *runner {
	t.Helper()
	mp := &mortalPartner{p: newPartnerClient(t, spec.partnerURL)}
	cfg := spec.cfg
	cfg.WorkerID = name
	cfg.Logger = testLogger(t, name)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := trySetup(spec, cfg, mp, name)
		if err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			r.cancel = cancel
			go r.run(ctx)
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s: %v", name, err)
		}
		t.Logf("worker %s not started, retrying: %v", name, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// newPartnerClient returns a client of the simulator at url, without rate limit.
func newPartnerClient(t *testing.T, url string) *partnerclient.Client {
	t.Helper()
	client, err := partnerclient.New(url, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0), partnerclient.WithRequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// testLogger logs warnings and errors of the worker called name to t.
func testLogger(t *testing.T, name string) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(name)
}

func trySetup(spec workerSpec, cfg worker.Config, mp *mortalPartner, name string) (*runner, error) {
	dial := spec.dial
	if dial == nil {
		dial = func() (*nats.Conn, error) { return nats.Connect(spec.urls, append(reconnecting(), nats.Name(name))...) }
	}
	nc, err := dial()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	// The simulator's order list never lags: a short gap between the two looks that prove an order absent.
	w, err := worker.New(js, &workflow.Saga{Partner: mp, Retry: spec.retry, ResendAbsentGap: 100 * time.Millisecond}, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = w.Setup(ctx)
	cancel()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("setup: %w", err)
	}
	return &runner{name: name, nc: nc, w: w, partner: mp, done: make(chan struct{})}, nil
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	r.err = r.w.Run(ctx)
}

// exited reports whether Run returned.
func (r *runner) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// kill ends the worker as a crash would: its NATS connection drops at once and its partner
// calls stop answering; it then waits for Run to return.
func (r *runner) kill() {
	r.killed.Store(true)
	r.nc.Close()
	r.partner.dead.Store(true)
	r.cancel()
	<-r.done
}

// pool is a set of workers that a test kills and restarts; names carry a generation
// (w2.3 is the third worker started in slot 2).
type pool struct {
	t    *testing.T
	spec workerSpec
	// urls (optional) gives the NATS URLs of slot i, so that the slots start on different servers.
	urls func(i int) string

	mu    sync.Mutex
	slots []*runner
	gens  []int
	// exits are the workers whose Run returned without being killed.
	exits []string
}

func newPool(t *testing.T, spec workerSpec, urls func(int) string, n int) *pool {
	p := &pool{t: t, spec: spec, urls: urls, slots: make([]*runner, n), gens: make([]int, n)}
	for i := range n {
		p.start(i)
	}
	t.Cleanup(p.stopAll)
	return p
}

// start starts a new generation in slot i.
func (p *pool) start(i int) *runner {
	p.mu.Lock()
	p.gens[i]++
	name := fmt.Sprintf("w%d.%d", i+1, p.gens[i])
	p.mu.Unlock()
	spec := p.spec
	if p.urls != nil {
		spec.urls = p.urls(i)
	}
	r := startWorker(p.t, spec, name)
	p.mu.Lock()
	p.slots[i] = r
	p.mu.Unlock()
	return r
}

// kill kills the worker in slot i and returns its name.
func (p *pool) kill(i int) string {
	p.mu.Lock()
	r := p.slots[i]
	p.mu.Unlock()
	r.kill()
	return r.name
}

// supervise restarts the workers whose Run returned by itself, and remembers them.
func (p *pool) supervise() {
	for i := range p.slots {
		p.mu.Lock()
		r := p.slots[i]
		p.mu.Unlock()
		if r.exited() && !r.killed.Load() {
			msg := fmt.Sprintf("%s: Run returned %v", r.name, r.err)
			p.t.Logf("supervisor: %s; restarting", msg)
			p.mu.Lock()
			p.exits = append(p.exits, msg)
			p.mu.Unlock()
			r.killed.Store(true)
			r.nc.Close()
			p.start(i)
		}
	}
}

func (p *pool) stopAll() {
	for _, r := range p.slots {
		if r != nil && !r.exited() {
			r.kill()
		}
	}
}

// takeovers counts the keys that more than one delivery acquired (a worker died or lost its
// lease mid-saga, or another message of the key came), and the most acquisitions of one key.
func takeovers(t *testing.T, js jetstream.JetStream) (keys, most int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := idempotency.Bind(ctx, js, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Deliveries > 1 {
			keys++
		}
		most = max(most, r.Deliveries)
	}
	return keys, most
}

// waitQuiet waits until the shared consumer has nothing pending and nothing unacknowledged,
// twice in a row half a second apart, calling tick on every poll.
func waitQuiet(t *testing.T, js jetstream.JetStream, timeout time.Duration, tick func()) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	quiet := 0
	var last string
	for time.Now().Before(deadline) {
		if tick != nil {
			tick()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ci, err := js.Consumer(ctx, messages.StreamRequests, "fulfil-worker")
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = ci.Info(ctx)
		}
		cancel()
		switch {
		case err != nil:
			quiet, last = 0, err.Error()
		case info.NumPending == 0 && info.NumAckPending == 0:
			quiet++
			last = fmt.Sprintf("pending 0, ack pending 0, redelivered %d", info.NumRedelivered)
		default:
			quiet = 0
			last = fmt.Sprintf("pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		if quiet == 2 {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("not quiet after %s: consumer %s", timeout, last)
	return false
}

// producer publishes purchases in the background, one per tick, like a shop's checkout.
type producer struct {
	mu        sync.Mutex
	submitted []string
	done      chan struct{} // closed after the last publish
}

// startProducer publishes n purchases with keys prefix-0000…, one per interval; again(i) makes it
// publish purchase i a second time under another Nats-Msg-Id, as a producer retrying after the
// stream's duplicate window would.
func startProducer(t *testing.T, js jetstream.JetStream, prefix string, n int, interval time.Duration, again func(i int) bool) *producer {
	t.Helper()
	p := &producer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			key := fmt.Sprintf("%s-%04d", prefix, i)
			body := purchase(key, i)
			// The first publish may come before any worker created the stream: publish retries.
			if err := publish(js, body, messages.RequestMsgID(key, body), time.Minute); err != nil {
				t.Errorf("request never acknowledged: %v", err)
				return
			}
			p.mu.Lock()
			p.submitted = append(p.submitted, key)
			p.mu.Unlock()
			if again != nil && again(i) {
				if err := publish(js, body, key+"/again", time.Minute); err != nil {
					t.Errorf("request never acknowledged: %v", err)
					return
				}
			}
		}
	}()
	return p
}

// keys returns the keys published so far.
func (p *producer) keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.submitted...)
}
