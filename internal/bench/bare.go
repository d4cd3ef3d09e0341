package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

// The bare loop's own streams, beside fulfil's.
const (
	bareRequestsStream = "BENCH_BARE_REQUESTS"
	bareEventsStream   = "BENCH_BARE_EVENTS"
	bareRequested      = "bench.bare.requested"
	bareCompleted      = "bench.bare.completed"
	bareDurable        = "bench-bare"
)

// bareLoop is the ceiling of a worker that guarantees nothing: the saga's partner calls with
// the saga's concurrency, and one JetStream publish per purchase. No idempotency record, no
// checkpoints, no progress events, no lease, no retries.
type bareLoop struct {
	client   *partnerclient.Client
	inFlight atomic.Int64
}

// runBare measures the bare loop with the same workers, concurrency and partner client.
func (st *stack) runBare(ctx context.Context) (Phase, error) {
	cfg := st.cfg
	for _, sc := range []jetstream.StreamConfig{
		{Name: bareRequestsStream, Subjects: []string{bareRequested}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute},
		{Name: bareEventsStream, Subjects: []string{bareCompleted}, Storage: jetstream.FileStorage},
	} {
		if _, err := st.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return Phase{}, fmt.Errorf("bench: stream %s: %w", sc.Name, err)
		}
	}
	if _, err := st.js.CreateOrUpdateConsumer(ctx, bareRequestsStream, jetstream.ConsumerConfig{
		Durable:       bareDurable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: max(16384, cfg.Workers*cfg.Concurrency),
	}); err != nil {
		return Phase{}, fmt.Errorf("bench: bare consumer: %w", err)
	}

	b := &bareLoop{client: st.client}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var conns []*nats.Conn
	defer func() {
		stop()
		wg.Wait()
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range cfg.Workers {
		nc, err := st.connect(fmt.Sprintf("bare-%d", i))
		if err != nil {
			return Phase{}, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return Phase{}, err
		}
		cons, err := js.Consumer(ctx, bareRequestsStream, bareDurable)
		if err != nil {
			return Phase{}, fmt.Errorf("bench: bare consumer: %w", err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Concurrency))
		if err != nil {
			return Phase{}, fmt.Errorf("bench: bare consume: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.run(runCtx, js, it, cfg.Concurrency)
		}()
	}
	return st.measure(ctx, target{
		name:      "bare",
		requested: bareRequested,
		stream:    bareEventsStream,
		completed: bareCompleted,
		msgs:      connMsgs(conns),
		inFlight:  func() int { return int(b.inFlight.Load()) },
	})
}

// run handles messages with at most concurrency in flight until ctx ends, like worker.Run.
func (b *bareLoop) run(ctx context.Context, js jetstream.JetStream, it jetstream.MessagesContext, concurrency int) {
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, err := it.Next()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.inFlight.Add(1)
			defer b.inFlight.Add(-1)
			if err := b.handle(ctx, js, msg); err != nil {
				_ = msg.Nak()
				return
			}
			_ = msg.Ack()
		}()
	}
}

// handle makes the saga's partner calls for one request, with the saga's parallelism, and
// publishes one completed event.
func (b *bareLoop) handle(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg) error {
	req, err := messages.DecodeRequest(msg.Data())
	if err != nil {
		return err
	}
	productID := int64(partnertest.ProductID)
	var info partnerclient.PurchaseInfo
	var contacts []partnerclient.BillingContact
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { info, err = b.client.PurchaseInfo(gctx, productID, ""); return err })
	g.Go(func() (err error) { contacts, err = b.client.BillingContacts(gctx); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	var planID partnerclient.ID
	for _, p := range info.Plans {
		if strings.EqualFold(p.PlanName, req.Plan.Name) {
			planID = p.PlanID
		}
	}
	if planID == 0 || len(contacts) == 0 {
		return fmt.Errorf("plan %q or billing contact not found", req.Plan.Name)
	}
	order, err := b.client.CreateOrder(ctx, partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan,
		ProductID:     productID,
		BillingID:     contacts[0].BillingContactID,
		PONumber:      workflow.DefaultPONumber(req.IdempotencyKey),
		ServiceList: []partnerclient.OrderLine{{
			ServiceType:  partnerclient.ServiceTypePlan,
			ServiceID:    planID,
			Quantity:     req.Quantity,
			PurchaseType: partnerclient.PurchaseTypePurchase,
			BillingModel: partnerclient.BillingModelRecurring,
			BillingCycle: partnerclient.BillingCycleAnnually,
			MultiCycle:   max(1, req.Years),
		}},
	})
	if err != nil {
		return err
	}
	var code partnerclient.ActivationCode
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() error {
		_, err := b.client.EnableAutoRenewal(gctx, partnerclient.AutoRenewalRequest{
			ProductNo: order.ProductNo, ProductID: strconv.FormatInt(productID, 10), PlanOrServiceID: planID})
		return err
	})
	g.Go(func() (err error) { code, err = b.client.ActivationCode(gctx, productID, order.ProductNo); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	ev := messages.Completed{
		EventHeader: messages.NewHeader(messages.TypeCompleted, req.IdempotencyKey, "", time.Now()),
		ProductID:   productID, ProductNo: order.ProductNo, OrderNo: order.OrderNo, OrderStatus: order.OrderStatus,
		TransactionNo: order.TransactionNo, InstanceID: string(order.InstanceID), AutoRenewal: true, ActivationCode: code.Code,
	}
	m := nats.NewMsg(bareCompleted)
	m.Header.Set(messages.HeaderIdempotencyKey, req.IdempotencyKey)
	if m.Data, err = json.Marshal(ev); err != nil {
		return err
	}
	_, err = js.PublishMsg(ctx, m)
	return err
}
