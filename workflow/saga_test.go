package workflow_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

var _ workflow.Partner = (*partnerclient.Client)(nil)

// memCheckpoints records every checkpoint as encoded JSON.
type memCheckpoints struct {
	mu    sync.Mutex
	snaps [][]byte
}

func (m *memCheckpoints) Checkpoint(_ context.Context, st *workflow.State) error {
	b, err := st.Encode()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.snaps = append(m.snaps, b)
	m.mu.Unlock()
	return nil
}

func (m *memCheckpoints) all() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.snaps...)
}

func newSaga(t *testing.T, opts ...partnertest.Option) (*workflow.Saga, *partnertest.Server) {
	t.Helper()
	saga, sim, _ := newSagaClock(t, opts...)
	return saga, sim
}

// newSagaClock is newSaga, with the clock the saga and the simulator share.
func newSagaClock(t *testing.T, opts ...partnertest.Option) (*workflow.Saga, *partnertest.Server, *skipClock) {
	t.Helper()
	clock := &skipClock{}
	sim := partnertest.NewServer(append(opts, partnertest.WithClock(clock.Now))...)
	t.Cleanup(sim.Close)
	return sagaAt(t, sim.URL, clock), sim, clock
}

// sagaAt returns a saga whose partner is the simulator at url and whose retries wait on clock,
// in no real time.
func sagaAt(t *testing.T, url string, clock *skipClock) *workflow.Saga {
	t.Helper()
	client, err := partnerclient.New(url, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	return &workflow.Saga{
		Partner: client,
		Now:     clock.Now,
		Timer:   clock.Timer,
		// The default intervals; a budget of retries rather than of time, as the tests make
		// many faults. The waits are skipped, not slept.
		Retry: workflow.RetryPolicy{MaxElapsed: 2 * time.Minute, MaxRetries: 20},
	}
}

// skipClock is real time plus the retry waits it has skipped. Its timers (Saga.Timer) move it
// forward by the wait and fire at once, so that backoffs, Retry-After and the order-list gap
// before a re-send take no real time; a simulator given the same clock (WithClock) sees the
// time pass.
type skipClock struct {
	mu      sync.Mutex
	skipped time.Duration
	waits   []time.Duration
}

func (c *skipClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skipped)
}

// Waits returns the waits skipped so far, in order.
func (c *skipClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// Timer is Saga.Timer.
func (c *skipClock) Timer() backoff.Timer { return &skipTimer{clock: c, c: make(chan time.Time, 1)} }

type skipTimer struct {
	clock *skipClock
	c     chan time.Time
}

func (t *skipTimer) Start(d time.Duration) {
	t.clock.mu.Lock()
	t.clock.skipped += d
	t.clock.waits = append(t.clock.waits, d)
	t.clock.mu.Unlock()
	select {
	case <-t.c: // a firing nobody took (the wait ended with its context)
	default:
	}
	t.c <- t.clock.Now()
}

func (t *skipTimer) Stop()               {}
func (t *skipTimer) C() <-chan time.Time { return t.c }

func request(key string) messages.PurchaseRequest {
	return messages.PurchaseRequest{IdempotencyKey: key, Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 25}.Normalize()
}

func run(t *testing.T, saga *workflow.Saga, req messages.PurchaseRequest, st *workflow.State, cp workflow.Checkpointer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return saga.Run(ctx, &req, st, cp, workflow.RunOptions{})
}

func TestRunPurchases(t *testing.T) {
	tests := []struct {
		name string
		give messages.PurchaseRequest
	}{
		{name: "new license", give: messages.PurchaseRequest{IdempotencyKey: "new", Plan: &messages.Ref{Name: "Enterprise Plan"}, Quantity: 20}},
		{name: "existing PBX with a service", give: messages.PurchaseRequest{IdempotencyKey: "existing", ProductNo: partnertest.ExistingSN,
			Plan: &messages.Ref{Name: "Ultimate Plan"}, Services: []messages.ServiceRef{{Name: "Disaster Recovery"}}, Quantity: 100, Years: 2, PONumber: "PO-77812"}},
		{name: "subordinate customer", give: messages.PurchaseRequest{IdempotencyKey: "customer", CustomerEmail: partnertest.CustomerEmail,
			Plan: &messages.Ref{ID: messages.ID(strconv.FormatInt(partnertest.PlanUltimateID, 10))}, Quantity: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saga, sim := newSaga(t)
			req := tt.give.Normalize()
			st := &workflow.State{}
			if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
				t.Fatal(err)
			}
			if !st.Done() {
				t.Fatalf("state not done: %+v", st)
			}
			orders := sim.Orders()
			if len(orders) != 1 {
				t.Fatalf("orders = %d, want 1", len(orders))
			}
			o := orders[0]
			wantPO := req.PONumber
			if wantPO == "" {
				wantPO = workflow.DefaultPONumber(req.IdempotencyKey)
			}
			if o.PONumber != wantPO || o.OrderNo != st.Order.Result.OrderNo || o.ProductNo != st.Order.Result.ProductNo {
				t.Errorf("ledger order %+v does not match state %+v (want poNumber %s)", o, st.Order.Result, wantPO)
			}
			if req.ProductNo != "" && o.ProductNo != req.ProductNo {
				t.Errorf("order on PBX %s, want %s", o.ProductNo, req.ProductNo)
			}
			if req.CustomerEmail != "" && o.PartnerID != int64(partnertest.CustomerPartnerID) {
				t.Errorf("order for partner %d, want %d", o.PartnerID, partnertest.CustomerPartnerID)
			}
			if len(o.Lines) != 1+len(req.Services) {
				t.Errorf("order lines = %d, want %d", len(o.Lines), 1+len(req.Services))
			}
			if !sim.AutoRenewal(o.ProductNo) {
				t.Error("auto-renewal not enabled on the partner")
			}
			p, ok := sim.Product(o.ProductNo)
			if !ok || p.ActivationCode == "" || p.ActivationCode != st.Activation.Code {
				t.Errorf("activation code %q, partner has %q", st.Activation.Code, p.ActivationCode)
			}
		})
	}
}

// Resuming from every checkpoint of a finished run must never place a second order.
func TestResumeFromEveryCheckpoint(t *testing.T) {
	saga, sim := newSaga(t)
	req := request("resume")
	cp := &memCheckpoints{}
	final := &workflow.State{}
	if err := run(t, saga, req, final, cp); err != nil {
		t.Fatal(err)
	}
	// The intent (with the lookups), the order, and the final state the caller stores with the
	// outcome.
	if err := cp.Checkpoint(context.Background(), final); err != nil {
		t.Fatal(err)
	}
	snaps := cp.all()
	if len(snaps) != 3 {
		t.Fatalf("%d checkpoints, want 3", len(snaps))
	}
	first := sim.Orders()[0]
	for i, snap := range snaps {
		st, err := workflow.DecodeState(snap)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
			t.Fatalf("resume from checkpoint %d: %v", i, err)
		}
		if n := len(sim.Orders()); n != 1 {
			t.Fatalf("resume from checkpoint %d: %d orders, want 1", i, n)
		}
		if st.Order.Result.OrderNo != first.OrderNo {
			t.Errorf("resume from checkpoint %d: order %s, want %s", i, st.Order.Result.OrderNo, first.OrderNo)
		}
	}
}

func TestCreateOrderUnknownOutcome(t *testing.T) {
	tests := []struct {
		name      string
		give      partnertest.FaultKind
		wantCalls int
		wantAdopt bool
	}{
		{name: "reply lost after commit", give: partnertest.FaultCommitThenReset, wantCalls: 1, wantAdopt: true},
		{name: "502 after commit", give: partnertest.FaultCommitThen502, wantCalls: 1, wantAdopt: true},
		{name: "reset before commit: proven absent, sent again", give: partnertest.FaultReset, wantCalls: 2},
		{name: "503 before commit: reconciled, sent again", give: partnertest.Fault503, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saga, sim := newSaga(t)
			sim.FailNext(partnerclient.EndpointCreateOrder, 1, tt.give)
			st := &workflow.State{}
			if err := run(t, saga, request("unknown"), st, &memCheckpoints{}); err != nil {
				t.Fatal(err)
			}
			if n := len(sim.Orders()); n != 1 {
				t.Fatalf("orders = %d, want exactly 1", n)
			}
			if got := sim.Calls(partnerclient.EndpointCreateOrder); got != tt.wantCalls {
				t.Errorf("create_order calls = %d, want %d", got, tt.wantCalls)
			}
			if st.Order.Result.Adopted != tt.wantAdopt {
				t.Errorf("adopted = %v, want %v", st.Order.Result.Adopted, tt.wantAdopt)
			}
			if st.Order.Reconciliations == 0 {
				t.Error("no reconciliation happened")
			}
			for _, r := range sim.Requests(partnerclient.EndpointCreateOrder) {
				if string(r.Body) != string(sim.Requests(partnerclient.EndpointCreateOrder)[0].Body) {
					t.Errorf("create_order bodies differ between attempts:\n%s\n%s", r.Body, sim.Requests(partnerclient.EndpointCreateOrder)[0].Body)
				}
			}
		})
	}
}

func TestAmbiguousOrdersNeedReconciliation(t *testing.T) {
	saga, sim := newSaga(t)
	req := request("ambiguous")
	cp := &memCheckpoints{}
	if err := run(t, saga, req, &workflow.State{}, cp); err != nil {
		t.Fatal(err)
	}
	// Someone placed the same order by hand with the same poNumber.
	o := sim.Orders()[0]
	var body partnerclient.OrderRequest
	st0, _ := workflow.DecodeState(cp.all()[0])
	body = st0.Order.Intent.Body
	body.ProductNo = ""
	if _, err := saga.Partner.CreateOrder(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	// Resume from the intent checkpoint, as after a crash mid-send.
	st, _ := workflow.DecodeState(cp.all()[0])
	st.Order.Intent.Sends = 1
	st.Order.Intent.Unknown = true
	err := run(t, saga, req, st, &memCheckpoints{})
	var f *workflow.Failure
	if !errors.As(err, &f) || f.Reason != messages.ReasonNeedsReconciliation {
		t.Fatalf("err = %v, want needs_reconciliation (first order %s)", err, o.OrderNo)
	}
	if n := len(sim.Orders()); n != 2 {
		t.Errorf("orders = %d, want the 2 that exist (no third)", n)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*partnertest.Server)
		give     messages.PurchaseRequest
		wantStep string
		want     messages.Reason
		wantCode string
	}{
		{name: "unknown plan", give: messages.PurchaseRequest{IdempotencyKey: "k", Plan: &messages.Ref{Name: "Ultimite Plan"}, Quantity: 1},
			wantStep: messages.StepResolvePlan, want: messages.ReasonInvalidRequest},
		{name: "unknown SN", give: messages.PurchaseRequest{IdempotencyKey: "k", ProductNo: "3651E0000000", Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 1},
			wantStep: messages.StepResolveProduct, want: messages.ReasonInvalidRequest},
		{name: "unknown customer", give: messages.PurchaseRequest{IdempotencyKey: "k", CustomerEmail: "nobody@example.com", Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 1},
			wantStep: messages.StepResolveProduct, want: messages.ReasonInvalidRequest},
		{name: "unknown billing contact", give: messages.PurchaseRequest{IdempotencyKey: "k", BillingContact: &messages.ContactRef{Email: "x@example.com"}, Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 1},
			wantStep: messages.StepResolveBilling, want: messages.ReasonInvalidRequest},
		{name: "order refused", setup: func(s *partnertest.Server) { s.SetOrderRefusal("insufficient_balance", "account balance too low") },
			give:     messages.PurchaseRequest{IdempotencyKey: "k", Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 1},
			wantStep: messages.StepCreateOrder, want: messages.ReasonRejected, wantCode: "insufficient_balance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saga, sim := newSaga(t)
			if tt.setup != nil {
				tt.setup(sim)
			}
			err := run(t, saga, tt.give.Normalize(), &workflow.State{}, &memCheckpoints{})
			var f *workflow.Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want a *Failure", err)
			}
			if f.Step != tt.wantStep || f.Reason != tt.want || f.PartnerCode != tt.wantCode {
				t.Errorf("failure = %s/%s/%q, want %s/%s/%q (%s)", f.Step, f.Reason, f.PartnerCode, tt.wantStep, tt.want, tt.wantCode, f.Message)
			}
			if n := len(sim.Orders()); n != 0 {
				t.Errorf("orders = %d, want 0", n)
			}
		})
	}
}

func TestTransientFaultsExhaustTheBudget(t *testing.T) {
	saga, _, clock := newSagaClock(t, partnertest.WithFaults(partnerclient.EndpointPurchaseInfo, partnertest.Faults{ErrorRate: 1}))
	saga.Retry.MaxRetries = 3
	st := &workflow.State{}
	err := run(t, saga, request("exhaust"), st, &memCheckpoints{})
	var re *workflow.RetryError
	if !errors.As(err, &re) || re.Step != messages.StepResolvePlan {
		t.Fatalf("err = %v, want a RetryError at resolve_plan", err)
	}
	// Three waits on the saga's timer, the default backoff (200ms ± 50%, doubling), none slept.
	waits := clock.Waits()
	if len(waits) != 3 || waits[0] < 100*time.Millisecond || waits[0] > 300*time.Millisecond || waits[2] < 400*time.Millisecond {
		t.Errorf("waits %v, want 3 growing from 200ms ± 50%%", waits)
	}
	if f := workflow.Terminal(st, err); f.Reason != messages.ReasonExhausted {
		t.Errorf("terminal reason = %s, want exhausted", f.Reason)
	}
}

func TestTransientFaultsEverywhereComplete(t *testing.T) {
	var opts []partnertest.Option
	for _, ep := range partnerclient.AllEndpoints {
		if ep == partnerclient.EndpointToken {
			continue
		}
		opts = append(opts, partnertest.WithFaults(ep, partnertest.Faults{ErrorRate: 0.2, RateLimitRate: 0.1, ResetRate: 0.1}))
	}
	opts = append(opts, partnertest.WithSeed(42), partnertest.WithTokenTTL(time.Second))
	saga, sim := newSaga(t, opts...)
	for i := 0; i < 5; i++ {
		st := &workflow.State{}
		req := request("faulty-" + string(rune('a'+i)))
		if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
			t.Fatalf("%s: %v", req.IdempotencyKey, err)
		}
		if n := len(sim.OrdersByPONumber(workflow.DefaultPONumber(req.IdempotencyKey))); n != 1 {
			t.Fatalf("%s: %d orders, want 1", req.IdempotencyKey, n)
		}
	}
}

func TestPendingOrderIsPostOrderFailure(t *testing.T) {
	saga, sim := newSaga(t)
	sim.SetOrderStatus(partnerclient.OrderPending)
	saga.Retry.MaxRetries = 2
	st := &workflow.State{}
	err := run(t, saga, request("pending"), st, &memCheckpoints{})
	var re *workflow.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want RetryError while the order is pending", err)
	}
	f := workflow.Terminal(st, err)
	if f.Reason != messages.ReasonPostOrderFailed || f.OrderNo == "" {
		t.Errorf("terminal = %+v, want post_order_failed with the order number", f)
	}
}

func TestAutoRenewFalseSkipsRenewal(t *testing.T) {
	saga, sim := newSaga(t)
	no := false
	req := messages.PurchaseRequest{IdempotencyKey: "norenew", Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 3, AutoRenew: &no}.Normalize()
	st := &workflow.State{}
	if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	if !st.Renewal.Skipped || sim.AutoRenewal(st.Order.Result.ProductNo) || sim.Calls(partnerclient.EndpointEnableAutoRenewal) != 0 {
		t.Errorf("renewal = %+v; partner flag %v", st.Renewal, sim.AutoRenewal(st.Order.Result.ProductNo))
	}
}

func TestActivationCodeNotReadyIsRetried(t *testing.T) {
	saga, sim := newSaga(t)
	sim.SetActivationDelay(2)
	st := &workflow.State{}
	if err := run(t, saga, request("delay"), st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	if st.Activation.Code == "" || st.Steps[messages.StepFetchActivation].Attempts != 3 {
		t.Errorf("activation %+v after %d attempts, want 3", st.Activation, st.Steps[messages.StepFetchActivation].Attempts)
	}
}

// Bad credentials are the account's problem, not the purchase's: retried later, never
// "rejected".
func TestBadCredentialsAtCreateOrderAreRetried(t *testing.T) {
	saga, sim := newSaga(t)
	st := &workflow.State{}
	// Resolve with good credentials, then the secret is rotated before the order is sent.
	bad, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, "rotated"))
	if err != nil {
		t.Fatal(err)
	}
	ordering := &switchingPartner{Partner: saga.Partner, order: bad}
	saga.Partner = ordering
	saga.Retry.MaxRetries = 2
	err = run(t, saga, request("badcreds"), st, &memCheckpoints{})
	var re *workflow.RetryError
	if !errors.As(err, &re) || re.Step != messages.StepCreateOrder {
		t.Fatalf("err = %v, want a RetryError at create_order", err)
	}
	if n := len(sim.Orders()); n != 0 {
		t.Errorf("orders = %d, want 0", n)
	}
}

// switchingPartner sends create order through another client.
type switchingPartner struct {
	workflow.Partner
	order workflow.Partner
}

func (p *switchingPartner) CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error) {
	return p.order.CreateOrder(ctx, req)
}

// answerWhenOn answers enabling an auto-renewal that is already on with err instead of the
// partner's answer, and, when refuseWhenOff, enabling one that is off too (nothing changes).
type answerWhenOn struct {
	workflow.Partner
	sim           *partnertest.Server
	err           error
	refuseWhenOff bool
}

func (p *answerWhenOn) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	if p.refuseWhenOff || p.sim.AutoRenewal(req.ProductNo) {
		return false, p.err
	}
	return p.Partner.EnableAutoRenewal(ctx, req)
}

// Enabling auto-renewal again (a redelivery after a crash before the outcome was stored) is
// done in one call when the portal answers as documented (true); an answer that may mean
// "already on" is confirmed by one status read after it, and a refusal while it is off still
// fails the step.
func TestEnableRenewalAlreadyOn(t *testing.T) {
	undocumented := &partnerclient.Error{Endpoint: partnerclient.EndpointEnableAutoRenewal, StatusCode: 200, EnvelopeStatus: 200,
		Code: "auto_renew_exists", Sent: true}
	refused := &partnerclient.Error{Endpoint: partnerclient.EndpointEnableAutoRenewal, StatusCode: 200, EnvelopeStatus: 400,
		Code: "auto_renewal_not_allowed", Sent: true}
	tests := []struct {
		name        string
		hostile     string // Hostile.EnableWhenOn
		wrap        *answerWhenOn
		wantStatus  int // status reads
		wantFailure messages.Reason
	}{
		{name: "documented: true", wantStatus: 0},
		{name: "false", hostile: partnertest.EnableWhenOnFalse, wantStatus: 1},
		{name: "refused", hostile: partnertest.EnableWhenOnRefused, wantStatus: 1},
		{name: "undocumented 2xx answer", wrap: &answerWhenOn{err: undocumented}, wantStatus: 1},
		{name: "refused while off", wrap: &answerWhenOn{err: refused, refuseWhenOff: true}, wantStatus: 1,
			wantFailure: messages.ReasonPostOrderFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saga, sim := newSaga(t)
			req := request("renew-" + strings.ReplaceAll(tt.name, " ", "-"))
			st := &workflow.State{}
			if tt.wantFailure != "" {
				// A purchase whose renewal has never been enabled.
				req.AutoRenew = new(bool)
				if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
					t.Fatal(err)
				}
				req.AutoRenew = nil
			} else if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
				t.Fatal(err)
			}
			// The outcome of enable_renewal was never stored.
			st.Renewal = nil
			sim.SetHostile(partnertest.Hostile{EnableWhenOn: tt.hostile})
			if tt.wrap != nil {
				tt.wrap.Partner, tt.wrap.sim = saga.Partner, sim
				saga.Partner = tt.wrap
			}
			enables, statuses := sim.Calls(partnerclient.EndpointEnableAutoRenewal), sim.Calls(partnerclient.EndpointAutoRenewStatus)
			err := run(t, saga, req, st, &memCheckpoints{})
			if tt.wantFailure != "" {
				wantFailure(t, err, tt.wantFailure)
			} else if err != nil || !st.Renewal.Enabled {
				t.Fatalf("Run = %v, renewal %+v: want enabled", err, st.Renewal)
			}
			wantEnables := 1
			if tt.wrap != nil {
				wantEnables = 0 // answered by the wrapper
			}
			if n := sim.Calls(partnerclient.EndpointEnableAutoRenewal) - enables; n != wantEnables {
				t.Errorf("%d enable calls reached the partner, want %d", n, wantEnables)
			}
			if n := sim.Calls(partnerclient.EndpointAutoRenewStatus) - statuses; n != tt.wantStatus {
				t.Errorf("%d status reads, want %d", n, tt.wantStatus)
			}
			if len(sim.Orders()) != 1 {
				t.Errorf("%d orders, want 1", len(sim.Orders()))
			}
		})
	}
}
