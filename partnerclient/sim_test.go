package partnerclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fulfil/fulfil/internal/clocktest"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// Tests of the client against the partner API simulator.

func newSim(t *testing.T, opts ...partnertest.Option) *partnertest.Server {
	t.Helper()
	s := partnertest.NewServer(append([]partnertest.Option{partnertest.WithSeed(7)}, opts...)...)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, sim *partnertest.Server, opts ...partnerclient.Option) *partnerclient.Client {
	t.Helper()
	base := []partnerclient.Option{
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0),
		partnerclient.WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))),
	}
	c, err := partnerclient.New(sim.URL, append(base, opts...)...)
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

func TestSimEveryEndpoint(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, sim)
	ctx := context.Background()

	page, err := c.ListProducts(ctx, partnerclient.ListProductsParams{ProductID: partnertest.ProductID, PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != partnertest.SeedProductCount || len(page.Results) != 5 || page.TotalPage != 2 {
		t.Errorf("product page: total %d, %d results, %d pages", page.Total, len(page.Results), page.TotalPage)
	}

	p, err := c.ProductDetails(ctx, partnertest.ProductID, partnertest.ExistingSN)
	if err != nil || p.ProductNo != partnertest.ExistingSN || p.PlanID != partnertest.PlanEnterpriseID {
		t.Errorf("ProductDetails = %+v, %v", p, err)
	}

	info, err := c.PurchaseInfo(ctx, partnertest.ProductID, "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(info.Services, func(s partnerclient.ServiceInfo) bool { return s.ServiceID == partnertest.ServiceDisasterRecoveryID })
	if i < 0 || !slices.Equal(info.Services[i].ConnectionPlanIDs, []partnerclient.ID{partnertest.PlanUltimateID}) ||
		!slices.ContainsFunc(info.Plans, func(p partnerclient.PlanInfo) bool { return p.PlanID == partnertest.PlanUltimateID }) {
		t.Errorf("PurchaseInfo = %+v", info)
	}

	contacts, err := c.BillingContacts(ctx)
	if err != nil || len(contacts) != 1 || contacts[0].BillingContactID != partnertest.BillingContactID {
		t.Errorf("BillingContacts = %+v, %v", contacts, err)
	}

	users, err := c.SubordinateUsers(ctx)
	if err != nil || !slices.ContainsFunc(users, func(u partnerclient.SubordinateUser) bool {
		return u.PartnerID == partnertest.CustomerPartnerID && u.Email == partnertest.CustomerEmail
	}) {
		t.Errorf("SubordinateUsers = %+v, %v", users, err)
	}

	res, err := c.CreateOrder(ctx, newLicence("PO-1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.OrderStatus != partnerclient.OrderSucceed || res.OrderNo == "" || res.ProductNo == "" || res.TransactionNo == "" {
		t.Errorf("CreateOrder = %+v", res)
	}
	if got := sim.OrdersByPONumber("PO-1"); len(got) != 1 || got[0].OrderNo != res.OrderNo {
		t.Errorf("ledger %+v", got)
	}

	orders, err := c.ListOrders(ctx, partnerclient.ListOrdersParams{})
	if err != nil || len(orders.Results) == 0 || orders.Results[0].OrderNo != res.OrderNo {
		t.Errorf("ListOrders = %+v, %v; want the new order first", orders, err)
	}

	for _, key := range []string{res.OrderNo, orders.Results[0].ID.String()} {
		d, err := c.OrderDetails(ctx, key)
		if err != nil || d.Order.OrderNo != res.OrderNo || d.Basic.ProductNo != res.ProductNo || d.Order.PONumber != "PO-1" {
			t.Errorf("OrderDetails(%s) = %+v, %v", key, d, err)
		}
	}

	on, err := c.AutoRenewStatus(ctx, partnertest.ProductID, partnertest.ExistingSN)
	if err != nil || on {
		t.Errorf("AutoRenewStatus(existing) = %v, %v; want false", on, err)
	}
	ok, err := c.EnableAutoRenewal(ctx, partnerclient.AutoRenewalRequest{
		ProductNo: res.ProductNo, ProductID: "12", PlanOrServiceID: partnertest.PlanUltimateID,
	})
	if err != nil || !ok || !sim.AutoRenewal(res.ProductNo) {
		t.Errorf("EnableAutoRenewal = %v, %v", ok, err)
	}
	on, err = c.AutoRenewStatus(ctx, partnertest.ProductID, res.ProductNo)
	if err != nil || !on {
		t.Errorf("AutoRenewStatus(new) = %v, %v; want true", on, err)
	}

	code, err := c.ActivationCode(ctx, partnertest.ProductID, res.ProductNo)
	if err != nil || code.Code == "" || code.GenerateTime == 0 {
		t.Errorf("ActivationCode = %+v, %v", code, err)
	}

	st := c.Stats()
	for _, ep := range partnerclient.AllEndpoints {
		if st.Calls[ep] == 0 || int64(sim.Calls(ep)) != st.Calls[ep] {
			t.Errorf("%s: client counted %d calls, simulator %d", ep, st.Calls[ep], sim.Calls(ep))
		}
	}
	if st.TokenRequests != 1 {
		t.Errorf("TokenRequests = %d, want 1", st.TokenRequests)
	}
}

func TestSimErrorClasses(t *testing.T) {
	ctx := context.Background()
	readCall := func(c *partnerclient.Client) error {
		_, err := c.ProductDetails(ctx, partnertest.ProductID, partnertest.ExistingSN)
		return err
	}
	orderCall := func(c *partnerclient.Client) error {
		_, err := c.CreateOrder(ctx, newLicence("PO-E"))
		return err
	}
	tests := []struct {
		name       string
		setup      func(*partnertest.Server)
		opts       []partnerclient.Option
		call       func(*partnerclient.Client) error
		want       partnerclient.Outcome
		wantIs     error
		wantStatus int
		wantOrders int
	}{
		{name: "not found", call: func(c *partnerclient.Client) error {
			_, err := c.ProductDetails(ctx, partnertest.ProductID, "NOPE")
			return err
		}, want: partnerclient.OutcomePermanent, wantIs: partnerclient.ErrNotFound, wantStatus: 404},
		{name: "order not found", call: func(c *partnerclient.Client) error {
			_, err := c.OrderDetails(ctx, "ZC0000000000000000000")
			return err
		}, want: partnerclient.OutcomePermanent, wantIs: partnerclient.ErrNotFound, wantStatus: 404},
		{name: "validation", call: func(c *partnerclient.Client) error {
			o := newLicence("PO-V")
			o.BillingID = 0
			_, err := c.CreateOrder(ctx, o)
			return err
		}, want: partnerclient.OutcomePermanent, wantIs: partnerclient.ErrValidation, wantStatus: 400},
		// An undocumented code in a 200 may still have placed the order: look before resending.
		{name: "business refusal", setup: func(s *partnertest.Server) { s.SetOrderRefusal("insufficient_balance", "balance too low") },
			call: orderCall, want: partnerclient.OutcomeUnknown, wantStatus: 200},
		{name: "bad credentials", opts: []partnerclient.Option{partnerclient.WithCredentials(partnertest.DefaultClientID, "wrong")},
			call: readCall, want: partnerclient.OutcomeAccount, wantIs: partnerclient.ErrUnauthorized, wantStatus: 401},
		{name: "503 read", setup: func(s *partnertest.Server) { s.FailNext(partnerclient.EndpointProductDetails, 1, partnertest.Fault503) },
			call: readCall, want: partnerclient.OutcomeRetryable, wantStatus: 503},
		{name: "503 order", setup: func(s *partnertest.Server) { s.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.Fault503) },
			call: orderCall, want: partnerclient.OutcomeUnknown, wantStatus: 503},
		{name: "429 order", setup: func(s *partnertest.Server) { s.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.Fault429) },
			call: orderCall, want: partnerclient.OutcomeRetryable, wantIs: partnerclient.ErrRateLimited, wantStatus: 429},
		// net/http repeats a GET once when a reused connection is closed, so it takes two.
		{name: "reset read", setup: func(s *partnertest.Server) {
			s.FailNext(partnerclient.EndpointProductDetails, 2, partnertest.FaultReset)
		},
			call: readCall, want: partnerclient.OutcomeRetryable},
		{name: "reset order", setup: func(s *partnertest.Server) { s.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultReset) },
			call: orderCall, want: partnerclient.OutcomeUnknown},
		{name: "commit then reset", setup: func(s *partnertest.Server) {
			s.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultCommitThenReset)
		}, call: orderCall, want: partnerclient.OutcomeUnknown, wantOrders: 1},
		{name: "commit then 502", setup: func(s *partnertest.Server) {
			s.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultCommitThen502)
		}, call: orderCall, want: partnerclient.OutcomeUnknown, wantStatus: 502, wantOrders: 1},
		{name: "commit then 502 renewal", setup: func(s *partnertest.Server) {
			s.FailNext(partnerclient.EndpointEnableAutoRenewal, 1, partnertest.FaultCommitThen502)
		}, call: func(c *partnerclient.Client) error {
			_, err := c.EnableAutoRenewal(ctx, partnerclient.AutoRenewalRequest{
				ProductNo: partnertest.ExistingSN, ProductID: "12", PlanOrServiceID: partnertest.PlanEnterpriseID,
			})
			return err
		}, want: partnerclient.OutcomeUnknown, wantStatus: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t)
			if tt.setup != nil {
				tt.setup(sim)
			}
			c := newClient(t, sim, tt.opts...)
			err := tt.call(c)
			var e *partnerclient.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if o, reason := partnerclient.Classify(err); o != tt.want {
				t.Errorf("Classify = %v (%s), want %v; err %v", o, reason, tt.want, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if e.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", e.StatusCode, tt.wantStatus)
			}
			if e.StatusCode != 0 && e.RequestID == "" {
				t.Errorf("no request ID in %v", err)
			}
			if got := len(sim.Orders()); got != tt.wantOrders {
				t.Errorf("%d orders committed, want %d", got, tt.wantOrders)
			}
		})
	}
}

func TestSimRetryAfter(t *testing.T) {
	sim := newSim(t, partnertest.WithFaults(partnerclient.EndpointOrderList, partnertest.Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second}))
	c := newClient(t, sim)
	_, err := c.ListOrders(context.Background(), partnerclient.ListOrdersParams{})
	var e *partnerclient.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusTooManyRequests || e.RetryAfter != 3*time.Second {
		t.Fatalf("err = %v (%+v), want 429 with Retry-After 3s", err, e)
	}
}

// TestSimFaultKnobs runs each probabilistic fault at rate 1.
func TestSimFaultKnobs(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		ep         partnerclient.Endpoint
		faults     partnertest.Faults
		opts       []partnerclient.Option
		want       partnerclient.Outcome
		wantStatus int
		wantOrders int
		wantIs     error
	}{
		{name: "error rate read", ep: partnerclient.EndpointBillingContacts, faults: partnertest.Faults{ErrorRate: 1},
			want: partnerclient.OutcomeRetryable, wantStatus: 503},
		{name: "error rate order", ep: partnerclient.EndpointCreateOrder, faults: partnertest.Faults{ErrorRate: 1},
			want: partnerclient.OutcomeUnknown, wantStatus: 503},
		{name: "rate limit", ep: partnerclient.EndpointCreateOrder, faults: partnertest.Faults{RateLimitRate: 1},
			want: partnerclient.OutcomeRetryable, wantStatus: 429, wantIs: partnerclient.ErrRateLimited},
		{name: "reset read", ep: partnerclient.EndpointBillingContacts, faults: partnertest.Faults{ResetRate: 1},
			want: partnerclient.OutcomeRetryable},
		{name: "reset order", ep: partnerclient.EndpointCreateOrder, faults: partnertest.Faults{ResetRate: 1},
			want: partnerclient.OutcomeUnknown},
		{name: "commit then reset", ep: partnerclient.EndpointCreateOrder,
			faults: partnertest.Faults{CommitThenFail: 1, CommitThenFailMode: partnertest.CommitReset},
			want:   partnerclient.OutcomeUnknown, wantOrders: 1},
		{name: "commit then 502", ep: partnerclient.EndpointCreateOrder,
			faults: partnertest.Faults{CommitThenFail: 1, CommitThenFailMode: partnertest.Commit502},
			want:   partnerclient.OutcomeUnknown, wantStatus: 502, wantOrders: 1},
		{name: "latency past the timeout read", ep: partnerclient.EndpointBillingContacts,
			faults: partnertest.Faults{Latency: 10 * time.Second, Jitter: time.Second},
			opts:   []partnerclient.Option{partnerclient.WithRequestTimeout(100 * time.Millisecond)},
			want:   partnerclient.OutcomeRetryable, wantIs: context.DeadlineExceeded},
		{name: "latency past the timeout order", ep: partnerclient.EndpointCreateOrder,
			faults: partnertest.Faults{Latency: 10 * time.Second},
			opts:   []partnerclient.Option{partnerclient.WithRequestTimeout(100 * time.Millisecond)},
			want:   partnerclient.OutcomeUnknown, wantOrders: 1, wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, partnertest.WithFaults(tt.ep, tt.faults))
			c := newClient(t, sim, tt.opts...)
			var err error
			switch tt.ep {
			case partnerclient.EndpointCreateOrder:
				_, err = c.CreateOrder(ctx, newLicence("PO-F"))
			default:
				_, err = c.BillingContacts(ctx)
			}
			var e *partnerclient.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if o, reason := partnerclient.Classify(err); o != tt.want {
				t.Errorf("Classify = %v (%s), want %v; err %v", o, reason, tt.want, err)
			}
			if e.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", e.StatusCode, tt.wantStatus)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if got := len(sim.Orders()); got != tt.wantOrders {
				t.Errorf("%d orders committed, want %d", got, tt.wantOrders)
			}
		})
	}
}

func TestSimLatencyWithinTimeout(t *testing.T) {
	sim := newSim(t, partnertest.WithFaults(partnerclient.EndpointBillingContacts, partnertest.Faults{Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}))
	c := newClient(t, sim)
	start := time.Now()
	if _, err := c.BillingContacts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("answered in %v, before the simulated latency", d)
	}
}

func TestSimTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("expired access token", func(t *testing.T) {
		sim := newSim(t)
		c := newClient(t, sim)
		if err := c.Authenticate(ctx); err != nil {
			t.Fatal(err)
		}
		sim.ExpireTokens()
		if _, err := c.BillingContacts(ctx); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if st.TokenRequests != 2 || st.TokenRefreshes != 1 || sim.Calls(partnerclient.EndpointBillingContacts) != 2 {
			t.Errorf("stats %+v, billing calls %d; want a refresh and one repeat", st, sim.Calls(partnerclient.EndpointBillingContacts))
		}
	})
	t.Run("revoked refresh token", func(t *testing.T) {
		sim := newSim(t)
		c := newClient(t, sim)
		if err := c.Authenticate(ctx); err != nil {
			t.Fatal(err)
		}
		sim.RevokeRefreshTokens()
		if _, err := c.CreateOrder(ctx, newLicence("PO-R")); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if st.TokenRequests != 3 || st.TokenRefreshes != 1 || len(sim.Orders()) != 1 {
			t.Errorf("stats %+v, %d orders; want login, failed refresh, login, one order", st, len(sim.Orders()))
		}
	})
	t.Run("proactive refresh", func(t *testing.T) {
		clock := newClock()
		sim := newSim(t, partnertest.WithClock(clock.Now), partnertest.WithTokenTTL(10*time.Minute))
		c := newClient(t, sim, partnerclient.WithClock(clock.Now))
		if err := c.Authenticate(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(9*time.Minute + time.Second) // inside the 60 s margin
		if _, err := c.BillingContacts(ctx); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if st.TokenRefreshes != 1 || sim.Calls(partnerclient.EndpointBillingContacts) != 1 {
			t.Errorf("stats %+v; want a refresh before the call and no refused call", st)
		}
		if got := sim.Requests(partnerclient.EndpointToken); len(got) != 2 || !strings.Contains(string(got[1].Body), "refresh_token") {
			t.Errorf("token requests %+v", got)
		}
	})
}

// TestSimTokenConcurrency: rounds of concurrent calls, each after the tokens expired,
// aged past their lifetime or were revoked. Every call succeeds, and each round costs
// exactly the token requests it needs, shared by all goroutines.
func TestSimTokenConcurrency(t *testing.T) {
	clock := newClock()
	sim := newSim(t, partnertest.WithClock(clock.Now), partnertest.WithTokenTTL(5*time.Minute))
	c := newClient(t, sim, partnerclient.WithClock(clock.Now))
	ctx := context.Background()
	const workers = 32
	rounds := []struct {
		name        string
		disturb     func()
		wantRequest int64 // token requests
		wantRefresh int64
	}{
		{"cold", func() {}, 1, 0},
		{"expired", sim.ExpireTokens, 1, 1},
		{"aged", func() { clock.Advance(5 * time.Minute) }, 1, 1},
		{"revoked", sim.RevokeRefreshTokens, 2, 1},
		{"expired again", sim.ExpireTokens, 1, 1},
		{"aged again", func() { clock.Advance(5 * time.Minute) }, 1, 1},
	}
	for _, r := range rounds {
		before := c.Stats()
		r.disturb()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				_, err := c.AutoRenewStatus(ctx, partnertest.ProductID, partnertest.ExistingSN)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
		}
		after := c.Stats()
		if got, ref := after.TokenRequests-before.TokenRequests, after.TokenRefreshes-before.TokenRefreshes; got != r.wantRequest || ref != r.wantRefresh {
			t.Errorf("%s: %d token requests (%d refreshes), want %d (%d)", r.name, got, ref, r.wantRequest, r.wantRefresh)
		}
	}
	if got := sim.Calls(partnerclient.EndpointToken); int64(got) != c.Stats().TokenRequests {
		t.Errorf("simulator saw %d token requests, client sent %d", got, c.Stats().TokenRequests)
	}
}

func TestSimStampede(t *testing.T) {
	sim := newSim(t, partnertest.WithFaults(partnerclient.EndpointToken, partnertest.Faults{Latency: 20 * time.Millisecond}))
	c := newClient(t, sim)
	const n = 100
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range n {
		wg.Go(func() {
			if _, err := c.BillingContacts(context.Background()); err != nil {
				failed.Store(i, err)
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool {
		t.Errorf("call %v: %v", k, v)
		return true
	})
	if got := sim.Calls(partnerclient.EndpointToken); got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
}

// TestSimNoSecrets runs calls with faults and token churn and checks that the client
// secret and every token stay out of errors, String and the logs.
func TestSimNoSecrets(t *testing.T) {
	sim := newSim(t,
		partnertest.WithFaults(partnerclient.EndpointBillingContacts, partnertest.Faults{ErrorRate: 0.3, ResetRate: 0.2, RateLimitRate: 0.2}),
		partnertest.WithFaults(partnerclient.EndpointCreateOrder, partnertest.Faults{CommitThenFail: 0.5, CommitThenFailMode: partnertest.Commit502}),
	)
	core, logs := observer.New(zapcore.DebugLevel)
	rec := &tokenRecorder{next: http.DefaultTransport}
	c := newClient(t, sim,
		partnerclient.WithLogger(zap.New(core)),
		partnerclient.WithHTTPClient(&http.Client{Transport: rec}))
	ctx := context.Background()
	texts := []string{c.String(), (partnerclient.Token{AccessToken: "x"}).String()}
	for i := range 30 {
		var err error
		switch i % 5 {
		case 0:
			_, err = c.BillingContacts(ctx)
		case 1:
			_, err = c.CreateOrder(ctx, newLicence("PO-S"))
		case 2:
			sim.ExpireTokens()
			_, err = c.ProductDetails(ctx, partnertest.ProductID, "NOPE")
		case 3:
			sim.RevokeRefreshTokens()
			sim.ExpireTokens()
			_, err = c.BillingContacts(ctx)
		case 4:
			o := newLicence("PO-S")
			o.BillingID = 1
			_, err = c.CreateOrder(ctx, o)
		}
		if err != nil {
			texts = append(texts, err.Error())
		}
	}
	bad := newClient(t, sim, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret+"-old"),
		partnerclient.WithLogger(zap.New(core)))
	if err := bad.Authenticate(ctx); err == nil {
		t.Fatal("wrong secret accepted")
	} else {
		texts = append(texts, err.Error(), bad.String())
	}
	for _, e := range logs.All() {
		texts = append(texts, e.Message)
		for k, v := range e.ContextMap() {
			texts = append(texts, k, fmt.Sprint(v))
		}
	}
	secrets := append(rec.secrets(), partnertest.DefaultClientSecret)
	if len(secrets) < 4 || len(texts) < 20 {
		t.Fatalf("too little to check: %d secrets, %d texts", len(secrets), len(texts))
	}
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%q contains a secret", text)
			}
		}
	}
}

// tokenRecorder collects the access and refresh tokens the token endpoint issues.
type tokenRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || req.URL.Path != partnerclient.PathToken {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil
	}
	var env struct {
		Result struct {
			Token        string `json:"token"`
			RefreshToken string `json:"refreshToken"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &env) == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range []string{env.Result.Token, env.Result.RefreshToken} {
			if s != "" {
				r.seen = append(r.seen, s)
			}
		}
	}
	return resp, nil
}

func (r *tokenRecorder) secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// clock is a manual clock.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) }
