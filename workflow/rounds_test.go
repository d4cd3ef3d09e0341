package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
