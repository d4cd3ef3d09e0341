package partnercheck

import (
	"context"
	"testing"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// checkClient is a client that sends through its recorder.
type checkClient struct {
	*partnerclient.Client
	rec *Recorder
}

func newCheckClient(url string, opts ...partnerclient.Option) (*checkClient, error) {
	rec := NewRecorder(nil)
	c, err := partnerclient.New(url, append(opts, rec.Option())...)
	if err != nil {
		return nil, err
	}
	return &checkClient{Client: c, rec: rec}, nil
}

func check(ctx context.Context, c *checkClient, opts Options) (*Report, error) {
	return Check(ctx, c.Client, c.rec, opts)
}

func newSim(t *testing.T, opts ...partnertest.Option) *partnertest.Server {
	t.Helper()
	s := partnertest.NewServer(append([]partnertest.Option{partnertest.WithSeed(7)}, opts...)...)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, sim *partnertest.Server, opts ...partnerclient.Option) *checkClient {
	t.Helper()
	base := []partnerclient.Option{
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0),
		partnerclient.WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))),
	}
	c, err := newCheckClient(sim.URL, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// newLicence is an order for a new PBX: Ultimate Plan for 10 extensions with Disaster
// Recovery, for one year.
func newLicence(po string) partnerclient.OrderRequest {
	line := partnerclient.OrderLine{
		PurchaseType: partnerclient.PurchaseTypePurchase,
		BillingModel: partnerclient.BillingModelRecurring,
		BillingCycle: partnerclient.BillingCycleAnnually,
		MultiCycle:   1,
	}
	plan, service := line, line
	plan.ServiceType, plan.ServiceID, plan.Quantity = partnerclient.ServiceTypePlan, partnertest.PlanUltimateID, 10
	service.ServiceType, service.ServiceID = partnerclient.ServiceTypeService, partnertest.ServiceDisasterRecoveryID
	service.ConnectionPlanID, service.Quantity = partnertest.PlanUltimateID, 1
	return partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan,
		ProductID:     partnertest.ProductID,
		BillingID:     partnertest.BillingContactID,
		PONumber:      po,
		ServiceList:   []partnerclient.OrderLine{plan, service},
	}
}
