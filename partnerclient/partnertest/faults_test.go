package partnertest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// faultServer is a server whose client opens a new connection per request, so that the
// transport never replays a request after a reset and call counts are exact.
func faultServer(t *testing.T, opts ...partnertest.Option) (*partnertest.Server, *apiClient) {
	t.Helper()
	srv, c := newServer(t, opts...)
	c.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	c.login()
	return srv, c
}

// outcome is what a client saw of one call.
type outcome struct {
	status int
	code   string
	reset  bool
}

func (c *apiClient) callOutcome(ep partnerclient.Endpoint) outcome {
	c.t.Helper()
	var (
		a   answer
		err error
	)
	switch ep {
	case partnerclient.EndpointCreateOrder:
		a, err = c.do(http.MethodPost, docCreateOrder, nil, "application/json",
			mustJSON(c.t, newOrder("PO-fault")), nil)
	case partnerclient.EndpointBillingContacts:
		a, err = c.do(http.MethodGet, docBillingContacts, nil, "", nil, nil)
	default:
		c.t.Fatalf("no call for %s", ep)
	}
	if err != nil {
		return outcome{reset: true}
	}
	return outcome{status: a.HTTPStatus, code: a.Code}
}

var (
	ok200   = outcome{status: http.StatusOK, code: partnertest.CodeSuccess}
	err503  = outcome{status: http.StatusServiceUnavailable, code: partnertest.CodeServiceUnavailable}
	err429  = outcome{status: http.StatusTooManyRequests, code: partnertest.CodeTooManyRequests}
	err502  = outcome{status: http.StatusBadGateway, code: partnertest.CodeBadGateway}
	errDrop = outcome{reset: true}
)

func TestFailNext(t *testing.T) {
	tests := []struct {
		name       string
		ep         partnerclient.Endpoint
		give       partnertest.FaultKind
		want       outcome
		wantOrders int // orders committed by the two failed calls
	}{
		{"503", partnerclient.EndpointBillingContacts, partnertest.Fault503, err503, 0},
		{"429", partnerclient.EndpointBillingContacts, partnertest.Fault429, err429, 0},
		{"reset", partnerclient.EndpointBillingContacts, partnertest.FaultReset, errDrop, 0},
		{"503 on order", partnerclient.EndpointCreateOrder, partnertest.Fault503, err503, 0},
		{"reset on order", partnerclient.EndpointCreateOrder, partnertest.FaultReset, errDrop, 0},
		{"commit then reset", partnerclient.EndpointCreateOrder, partnertest.FaultCommitThenReset, errDrop, 2},
		{"commit then 502", partnerclient.EndpointCreateOrder, partnertest.FaultCommitThen502, err502, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := faultServer(t)
			srv.FailNext(tt.ep, 2, tt.give)
			got := []outcome{c.callOutcome(tt.ep), c.callOutcome(tt.ep), c.callOutcome(tt.ep)}
			if want := []outcome{tt.want, tt.want, ok200}; !slices.Equal(got, want) {
				t.Fatalf("outcomes %+v, want %+v", got, want)
			}
			if n := srv.Calls(tt.ep); n != 3 {
				t.Fatalf("calls = %d, want 3", n)
			}
			wantOrders := tt.wantOrders
			if tt.ep == partnerclient.EndpointCreateOrder {
				wantOrders++ // the third call succeeds
			}
			if n := len(srv.Orders()); n != wantOrders {
				t.Fatalf("ledger has %d orders, want %d", n, wantOrders)
			}
		})
	}
}

func TestFailNextQueuesInOrder(t *testing.T) {
	srv, c := faultServer(t)
	ep := partnerclient.EndpointBillingContacts
	srv.FailNext(ep, 1, partnertest.Fault503)
	srv.FailNext(ep, 1, partnertest.FaultReset)
	got := []outcome{c.callOutcome(ep), c.callOutcome(ep), c.callOutcome(ep)}
	if want := []outcome{err503, errDrop, ok200}; !slices.Equal(got, want) {
		t.Fatalf("outcomes %+v, want %+v", got, want)
	}
}

func TestFaultsComeAfterAuthChecks(t *testing.T) {
	srv, c := faultServer(t)
	ep := partnerclient.EndpointBillingContacts
	srv.FailNext(ep, 1, partnertest.Fault503)
	good := c.token
	c.token = "expired"
	if got := c.callOutcome(ep); got.status != http.StatusUnauthorized {
		t.Fatalf("bad token: %+v", got)
	}
	c.token = good
	if got := c.callOutcome(ep); got != err503 {
		t.Fatalf("the one-shot fault was used up by a refused call: %+v", got)
	}
}

func TestProbabilisticFaults(t *testing.T) {
	tests := []struct {
		name       string
		ep         partnerclient.Endpoint
		give       partnertest.Faults
		want       outcome
		wantOrders int
	}{
		{"error rate", partnerclient.EndpointBillingContacts, partnertest.Faults{ErrorRate: 1}, err503, 0},
		{"rate limit", partnerclient.EndpointBillingContacts, partnertest.Faults{RateLimitRate: 1}, err429, 0},
		{"reset", partnerclient.EndpointBillingContacts, partnertest.Faults{ResetRate: 1}, errDrop, 0},
		{"reset wins over 503", partnerclient.EndpointBillingContacts, partnertest.Faults{ResetRate: 1, ErrorRate: 1},
			errDrop, 0},
		{"commit then reset", partnerclient.EndpointCreateOrder, partnertest.Faults{CommitThenFail: 1}, errDrop, 1},
		{"commit then 502", partnerclient.EndpointCreateOrder,
			partnertest.Faults{CommitThenFail: 1, CommitThenFailMode: partnertest.Commit502}, err502, 1},
		{"503 commits nothing", partnerclient.EndpointCreateOrder, partnertest.Faults{ErrorRate: 1}, err503, 0},
		{"other endpoint unaffected", partnerclient.EndpointBillingContacts, partnertest.Faults{}, ok200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := faultServer(t, partnertest.WithSeed(1), partnertest.WithFaults(tt.ep, tt.give),
				partnertest.WithFaults(partnerclient.EndpointProductList, partnertest.Faults{ErrorRate: 1}))
			if got := c.callOutcome(tt.ep); got != tt.want {
				t.Fatalf("outcome %+v, want %+v", got, tt.want)
			}
			if n := len(srv.Orders()); n != tt.wantOrders {
				t.Fatalf("ledger has %d orders, want %d", n, tt.wantOrders)
			}
		})
	}
}

func TestCommitThenFailStoresOrder(t *testing.T) {
	srv, c := faultServer(t)
	srv.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultCommitThenReset)
	body := mustJSON(t, newOrder("PO-lost"))
	if _, err := c.do(http.MethodPost, docCreateOrder, nil, "application/json", body, nil); err == nil {
		t.Fatal("the reply was not lost")
	}
	orders := srv.OrdersByPONumber("PO-lost")
	if len(orders) != 1 {
		t.Fatalf("%d orders for the PO", len(orders))
	}
	// The order can be found again, as the worker's reconciliation would.
	var list pageOf[orderItem]
	c.get(docOrderList, nil).decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].OrderNo != orders[0].OrderNo || list.Results[0].PONumber != "PO-lost" {
		t.Fatalf("order list = %+v", list)
	}
	if rec := srv.Requests(partnerclient.EndpointCreateOrder); len(rec) != 1 || rec[0].Status != 0 {
		t.Fatalf("recorded = %+v", rec)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		give time.Duration
		want string
	}{
		{0, "0"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			srv, c := faultServer(t)
			ep := partnerclient.EndpointBillingContacts
			srv.SetFaults(ep, partnertest.Faults{RetryAfter: tt.give})
			srv.FailNext(ep, 1, partnertest.Fault429)
			a := c.get(docBillingContacts, nil)
			wantCode(t, a, http.StatusTooManyRequests, partnertest.CodeTooManyRequests)
			if got := a.Header.Get("Retry-After"); got != tt.want {
				t.Fatalf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSeedMakesFaultsDeterministic(t *testing.T) {
	run := func(seed int64) ([]outcome, string) {
		srv, c := faultServer(t, partnertest.WithSeed(seed),
			partnertest.WithFaults(partnerclient.EndpointBillingContacts, partnertest.Faults{ErrorRate: 0.5}))
		var got []outcome
		for range 30 {
			got = append(got, c.callOutcome(partnerclient.EndpointBillingContacts))
		}
		return got, c.createOrder(newOrder("PO-seed")).ProductNo + srv.Orders()[0].OrderNo
	}
	a, idsA := run(42)
	b, idsB := run(42)
	if !slices.Equal(a, b) || idsA != idsB {
		t.Fatalf("same seed, different runs:\n%v %s\n%v %s", a, idsA, b, idsB)
	}
	if !slices.Contains(a, ok200) || !slices.Contains(a, err503) {
		t.Fatalf("rate 0.5 gave only one outcome: %v", a)
	}
}

func TestSetAndClearFaults(t *testing.T) {
	srv, c := faultServer(t)
	ep := partnerclient.EndpointBillingContacts
	srv.SetFaults(ep, partnertest.Faults{ErrorRate: 1})
	srv.FailNext(ep, 5, partnertest.FaultReset)
	if got := c.callOutcome(ep); got != errDrop {
		t.Fatalf("one-shot fault: %+v", got)
	}
	srv.ClearFaults()
	if got := c.callOutcome(ep); got != ok200 {
		t.Fatalf("after ClearFaults: %+v", got)
	}
	srv.SetFaults(ep, partnertest.Faults{RateLimitRate: 1})
	if got := c.callOutcome(ep); got != err429 {
		t.Fatalf("after SetFaults: %+v", got)
	}
}

// TestLatency checks that an endpoint's latency delays its answers, and only its own. Both
// checks are one-sided, so no clock can fail them: a delay is at least the latency (timers
// never fire early), and an endpoint without latency answers while another's hour-long
// latency holds a call at the same server.
func TestLatency(t *testing.T) {
	const latency = 80 * time.Millisecond
	srv, c := faultServer(t)
	srv.SetFaults(partnerclient.EndpointBillingContacts, partnertest.Faults{Latency: latency, Jitter: 10 * time.Millisecond})
	start := time.Now()
	wantCode(t, c.get(docBillingContacts, nil), http.StatusOK, partnertest.CodeSuccess)
	if d := time.Since(start); d < latency {
		t.Fatalf("answered after %v, want at least %v", d, latency)
	}

	srv.SetFaults(partnerclient.EndpointBillingContacts, partnertest.Faults{Latency: time.Hour})
	held := make(chan error, 1)
	go func() {
		_, err := c.do(http.MethodGet, docBillingContacts, nil, "", nil, nil)
		held <- err
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return srv.Calls(partnerclient.EndpointBillingContacts) == 2 },
		"the slow call reached the simulator")
	// Were the latency not the endpoint's own, this call would wait the hour too: the client's
	// 10 s timeout would end it.
	wantCode(t, c.get(docSubordinateUsers, nil), http.StatusOK, partnertest.CodeSuccess)
	select {
	case err := <-held:
		t.Fatalf("the call with an hour of latency ended early: %v", err)
	default:
	}
	srv.Close() // cuts the hour short
	if err := <-held; err == nil {
		t.Fatal("the call cut short by Close succeeded")
	}
}

func TestLatencyEndsWithRequestContext(t *testing.T) {
	srv, c := faultServer(t)
	srv.SetFaults(partnerclient.EndpointCreateOrder, partnertest.Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.do(http.MethodPost, docCreateOrder, nil, "application/json",
		mustJSON(t, newOrder("PO-slow")), func(r *http.Request) { *r = *r.WithContext(ctx) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the client waited %v", d)
	}
	// The order was committed before the slow answer: the outcome is unknown to the client.
	if n := len(srv.OrdersByPONumber("PO-slow")); n != 1 {
		t.Fatalf("%d orders for the slow call", n)
	}
}
