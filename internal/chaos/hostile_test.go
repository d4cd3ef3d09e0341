//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
)

// TestHostilePartner runs purchases through two workers against a partner that does not behave
// as documented: 30 % of the create-order answers are lost after the order was placed (half of
// them as an HTTP 200 with an error envelope), 10 % say success without an order number, 10 %
// of the orders carry an undocumented status for a second, the order list drops poNumber and
// shifts as it is paged, and for the first seconds every call is redirected to another
// listener; meanwhile a worker is killed now and then. Every purchase must end completed with
// its single order, and no credential may reach the other listener.
func TestHostilePartner(t *testing.T) {
	const (
		purchases = 150
		interval  = 25 * time.Millisecond
	)
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, seed^0xbad))
	url := natstest.Start(t)
	_, js := connect(t, url)

	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	sim := newSim(t, seed, 2*time.Millisecond)
	sim.SetFaults(partnerclient.EndpointCreateOrder, partnertest.Faults{
		Latency: 2 * time.Millisecond, CommitThenFail: 0.15, CommitThenFailMode: partnertest.Commit502,
	})
	sim.SetHostile(partnertest.Hostile{
		OrderErrorEnvelopeRate: 0.15 / 0.85, // of the answers that survive the 15 % above: 15 % overall
		OrderNoOrderNoRate:     0.1,
		UndocumentedStatusRate: 0.1,
		UndocumentedStatusFor:  time.Second,
		RedirectTo:             trap.URL,
		RedirectFor:            2 * time.Second,
		OrderListShift:         1,
		// The list drops poNumber: every order in the window is looked at in detail.
		OrderListWithoutPONumber: true,
	})

	cfg := worker.Config{
		Concurrency:     8,
		AckWait:         2 * time.Second,
		MaxDeliver:      20,
		NakDelay:        200 * time.Millisecond,
		MaxNakDelay:     time.Second,
		MessageTimeout:  time.Minute,
		ShutdownTimeout: 2 * time.Second,
		Idempotency:     idempotency.Config{LeaseTTL: 2 * time.Second},
	}
	workers := newPool(t, workerSpec{urls: url, partnerURL: sim.URL, cfg: cfg, retry: quickRetry()}, nil, 2)
	prod := startProducer(t, js, fmt.Sprintf("hostile-%d", seed), purchases, interval, nil)
	for running := true; running; {
		select {
		case <-prod.done:
			running = false
			continue
		case <-time.After(time.Duration(300+rng.IntN(500)) * time.Millisecond):
		}
		i := rng.IntN(2)
		t.Logf("nemesis: killed %s", workers.kill(i))
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		workers.start(i)
	}
	waitQuiet(t, js, 3*time.Minute, workers.supervise)

	v := collect(t, js, prod.keys(), sim.Sim)
	if v.completed != purchases {
		t.Errorf("%d of %d purchases completed (failures by reason: %v); every order exists, so every purchase must complete", v.completed, purchases, v.reasons)
	}
	if n := v.reasons[messages.ReasonNeedsReconciliation]; n > 0 {
		t.Errorf("%d false needs_reconciliation", n)
	}
	if got := trap.Requests(); len(got) > 0 {
		t.Errorf("%d requests reached the other listener; the first: %+v", len(got), got[0])
	}
	if n := sim.Calls(partnerclient.EndpointOrderList); n == 0 {
		t.Error("no order-list search: the lost answers missed every purchase, so the run proves little")
	}
	logAsyncErrors(t)
}
