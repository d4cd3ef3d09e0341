package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

// roundPartner counts the round calls (every call but create order and the order lookups) in
// flight, and can hold PurchaseInfo until released.
type roundPartner struct {
	workflow.Partner
	hold chan struct{} // nil: do not hold

	mu        sync.Mutex
	now, peak int
}

func (p *roundPartner) enter() func() {
	p.mu.Lock()
	p.now++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.now--
		p.mu.Unlock()
	}
}

func (p *roundPartner) PurchaseInfo(ctx context.Context, id int64, no string) (partnerclient.PurchaseInfo, error) {
	defer p.enter()()
	if p.hold != nil {
		<-p.hold
	}
	return p.Partner.PurchaseInfo(ctx, id, no)
}

func (p *roundPartner) BillingContacts(ctx context.Context) ([]partnerclient.BillingContact, error) {
	defer p.enter()()
	return p.Partner.BillingContacts(ctx)
}

func (p *roundPartner) AutoRenewStatus(ctx context.Context, id int64, no string) (bool, error) {
	defer p.enter()()
	return p.Partner.AutoRenewStatus(ctx, id, no)
}

func (p *roundPartner) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	defer p.enter()()
	return p.Partner.EnableAutoRenewal(ctx, req)
}

func (p *roundPartner) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	defer p.enter()()
	return p.Partner.ActivationCode(ctx, id, no)
}

func TestMaxRoundsBoundsConcurrentRounds(t *testing.T) {
	saga, sim := newSaga(t)
	for _, ep := range partnerclient.AllEndpoints {
		sim.SetFaults(ep, partnertest.Faults{Latency: 10 * time.Millisecond})
	}
	p := &roundPartner{Partner: saga.Partner}
	saga.Partner = p
	saga.MaxRounds = 1
	const sagas = 8
	var wg sync.WaitGroup
	errs := make([]error, sagas)
	for i := range sagas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run(t, saga, request(fmt.Sprintf("rounds-%d", i)), &workflow.State{}, &memCheckpoints{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("saga %d: %v", i, err)
		}
	}
	// One saga in a round at a time: its lookups (plan and billing) or its renewal and
	// activation, never another saga's beside them.
	if p.peak > 2 {
		t.Errorf("peak round calls in flight = %d, want at most 2 (one saga's round)", p.peak)
	}
	if got := len(sim.Orders()); got != sagas {
		t.Errorf("%d orders, want %d", got, sagas)
	}
}

func TestMaxRoundsWaitCanceled(t *testing.T) {
	saga, sim := newSaga(t)
	p := &roundPartner{Partner: saga.Partner, hold: make(chan struct{})}
	saga.Partner = p
	saga.MaxRounds = 1

	first := make(chan error, 1)
	go func() { first <- run(t, saga, request("rounds-first"), &workflow.State{}, &memCheckpoints{}) }()
	for {
		p.mu.Lock()
		n := p.now
		p.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// The first saga holds the only round: the second gives up waiting when its ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := request("rounds-second")
	err := saga.Run(ctx, &req, &workflow.State{}, &memCheckpoints{}, workflow.RunOptions{})
	var re *workflow.RetryError
	if !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want a *RetryError wrapping the deadline", err)
	}
	close(p.hold)
	if err := <-first; err != nil {
		t.Fatalf("first saga: %v", err)
	}
	// Neither run kept its round: a third saga completes.
	p.hold = nil
	if err := run(t, saga, request("rounds-third"), &workflow.State{}, &memCheckpoints{}); err != nil {
		t.Fatalf("third saga: %v", err)
	}
	if got := len(sim.Orders()); got != 2 {
		t.Errorf("%d orders, want 2", got)
	}
}

// heldCall is a partner call that holdingPartner holds until release is closed.
type heldCall struct {
	name    string
	release chan struct{}
}

// holdingPartner holds every call until the test releases it, so that what the saga has in
// flight while nothing answers is one round of its critical path, and no clock decides it.
type holdingPartner struct {
	p    workflow.Partner
	held chan heldCall
}

func hold[T any](h *holdingPartner, ctx context.Context, name string, f func() (T, error)) (T, error) {
	c := heldCall{name: name, release: make(chan struct{})}
	h.held <- c
	select {
	case <-c.release:
		return f()
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (h *holdingPartner) ListProducts(ctx context.Context, p partnerclient.ListProductsParams) (partnerclient.Page[partnerclient.Product], error) {
	return hold(h, ctx, "ListProducts", func() (partnerclient.Page[partnerclient.Product], error) { return h.p.ListProducts(ctx, p) })
}

func (h *holdingPartner) PurchaseInfo(ctx context.Context, id int64, no string) (partnerclient.PurchaseInfo, error) {
	return hold(h, ctx, "PurchaseInfo", func() (partnerclient.PurchaseInfo, error) { return h.p.PurchaseInfo(ctx, id, no) })
}

func (h *holdingPartner) BillingContacts(ctx context.Context) ([]partnerclient.BillingContact, error) {
	return hold(h, ctx, "BillingContacts", func() ([]partnerclient.BillingContact, error) { return h.p.BillingContacts(ctx) })
}

func (h *holdingPartner) SubordinateUsers(ctx context.Context) ([]partnerclient.SubordinateUser, error) {
	return hold(h, ctx, "SubordinateUsers", func() ([]partnerclient.SubordinateUser, error) { return h.p.SubordinateUsers(ctx) })
}

func (h *holdingPartner) CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error) {
	return hold(h, ctx, "CreateOrder", func() (partnerclient.OrderResult, error) { return h.p.CreateOrder(ctx, req) })
}

func (h *holdingPartner) ListOrders(ctx context.Context, p partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error) {
	return hold(h, ctx, "ListOrders", func() (partnerclient.Page[partnerclient.OrderSummary], error) { return h.p.ListOrders(ctx, p) })
}

func (h *holdingPartner) OrderDetails(ctx context.Context, id string) (partnerclient.OrderDetails, error) {
	return hold(h, ctx, "OrderDetails", func() (partnerclient.OrderDetails, error) { return h.p.OrderDetails(ctx, id) })
}

func (h *holdingPartner) AutoRenewStatus(ctx context.Context, id int64, no string) (bool, error) {
	return hold(h, ctx, "AutoRenewStatus", func() (bool, error) { return h.p.AutoRenewStatus(ctx, id, no) })
}

func (h *holdingPartner) EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error) {
	return hold(h, ctx, "EnableAutoRenewal", func() (bool, error) { return h.p.EnableAutoRenewal(ctx, req) })
}

func (h *holdingPartner) ActivationCode(ctx context.Context, id int64, no string) (partnerclient.ActivationCode, error) {
	return hold(h, ctx, "ActivationCode", func() (partnerclient.ActivationCode, error) { return h.p.ActivationCode(ctx, id, no) })
}

// A purchase of a new license with auto-renewal makes three sequential partner rounds: the
// lookups, create order, then renewal beside activation; nothing else, and nothing waits for
// the renewal status. Each round is what the saga has in flight while every call is held.
func TestCriticalPathIsThreeRounds(t *testing.T) {
	tests := []struct {
		name string
		req  messages.PurchaseRequest
		want [][]string
	}{
		{name: "new license", req: request("three-rounds"), want: [][]string{
			{"BillingContacts", "PurchaseInfo"},
			{"CreateOrder"},
			{"ActivationCode", "EnableAutoRenewal"},
		}},
		{name: "existing PBX", req: messages.PurchaseRequest{IdempotencyKey: "three-rounds-sn", ProductNo: partnertest.ExistingSN,
			Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 30}.Normalize(), want: [][]string{
			{"BillingContacts", "ListProducts", "PurchaseInfo"},
			{"CreateOrder"},
			{"ActivationCode", "EnableAutoRenewal"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saga, sim := newSaga(t)
			h := &holdingPartner{p: saga.Partner, held: make(chan heldCall, 16)}
			saga.Partner = h
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st := &workflow.State{}
			done := make(chan error, 1)
			go func() { done <- saga.Run(ctx, &tt.req, st, &memCheckpoints{}, workflow.RunOptions{}) }()
			for i, round := range tt.want {
				var got []heldCall
				for len(got) < len(round) {
					select {
					case c := <-h.held:
						got = append(got, c)
					case err := <-done:
						t.Fatalf("round %d: the run ended (%v) with %v held, want %v", i+1, err, names(got), round)
					case <-ctx.Done():
						t.Fatalf("round %d: %v held, want %v", i+1, names(got), round)
					}
				}
				if g := names(got); !slices.Equal(g, round) {
					t.Fatalf("round %d: %v held, want %v", i+1, g, round)
				}
				for _, c := range got {
					close(c.release)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := len(h.held); n != 0 {
				t.Errorf("%d calls after the last round, first %s", n, (<-h.held).name)
			}
			if !st.Done() || !st.Renewal.Enabled || !sim.AutoRenewal(st.Order.Result.ProductNo) {
				t.Errorf("state %+v: want done with auto-renewal on", st)
			}
		})
	}
}

// names returns the calls' names, sorted.
func names(calls []heldCall) []string {
	var n []string
	for _, c := range calls {
		n = append(n, c.name)
	}
	slices.Sort(n)
	return n
}
