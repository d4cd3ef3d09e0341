package workflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

// The tests in this file put a small hostile proxy between the saga and the simulator: the
// partner carries every call out, and the proxy changes what fulfil is told, the way a portal
// that differs from its documentation would.

// rewrite changes one answer of the partner: path is the request's path, q its query, body the
// answer's body. It returns the body to send instead.
type rewrite func(path string, q url.Values, body []byte) []byte

// hostile is a reverse proxy to a simulator that runs every answer through its rewrite.
type hostile struct {
	mu      sync.Mutex
	rewrite rewrite
	// query, when set, changes the query sent to the simulator (the answer's rewrite still sees
	// the original one).
	query func(path string, q url.Values) url.Values
}

func (h *hostile) set(rw rewrite) {
	h.mu.Lock()
	h.rewrite = rw
	h.mu.Unlock()
}

// newHostileSaga returns a saga whose partner calls go through a hostile proxy to a simulator.
func newHostileSaga(t *testing.T) (*workflow.Saga, *partnertest.Server, *hostile) {
	t.Helper()
	clock := &skipClock{}
	sim := partnertest.NewServer(partnertest.WithClock(clock.Now))
	t.Cleanup(sim.Close)
	target, _ := url.Parse(sim.URL)
	h := &hostile{}
	rp := httputil.NewSingleHostReverseProxy(target)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		orig := r.URL.Query()
		r.Header.Set("X-Original-Query", r.URL.RawQuery)
		director(r)
		if h.query != nil {
			r.URL.RawQuery = h.query(r.URL.Path, orig).Encode()
		}
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		h.mu.Lock()
		rw := h.rewrite
		h.mu.Unlock()
		if rw == nil {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		q, _ := url.ParseQuery(resp.Request.Header.Get("X-Original-Query"))
		body = rw(resp.Request.URL.Path, q, body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	saga := sagaAt(t, srv.URL, clock)
	saga.Retry.MaxRetries = 40
	return saga, sim, h
}

// onPath applies f to the answers of one endpoint path only, once per call while n > 0 (n < 0:
// always).
func onPath(path string, n int, f func(body map[string]any)) rewrite {
	var left atomic.Int64
	left.Store(int64(n))
	return func(p string, _ url.Values, body []byte) []byte {
		if p != path || n >= 0 && left.Add(-1) < 0 {
			return body
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return body
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
}

func resultOf(m map[string]any) map[string]any {
	r, _ := m["result"].(map[string]any)
	if r == nil {
		r = map[string]any{}
	}
	return r
}

func wantFailure(t *testing.T, err error, reason messages.Reason) *workflow.Failure {
	t.Helper()
	var f *workflow.Failure
	if !errors.As(err, &f) || f.Reason != reason {
		t.Fatalf("err = %v, want a %s failure", err, reason)
	}
	return f
}

// An error envelope in an HTTP 200 after the order was placed: the order is found and adopted,
// not reported as refused.
func TestErrorEnvelopeAfterCommitIsAdopted(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	h.set(onPath(partnerclient.PathCreateOrder, 1, func(m map[string]any) {
		m["code"], m["status"], m["detailMessage"], m["result"] = "system_error", 500, "internal error", nil
	}))
	st := &workflow.State{}
	if err := run(t, saga, request("envelope"), st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	orders := sim.Orders()
	if len(orders) != 1 || !st.Order.Result.Adopted || st.Order.Result.OrderNo != orders[0].OrderNo {
		t.Fatalf("orders %+v, result %+v: want the one order, adopted", orders, st.Order.Result)
	}
	if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 1 {
		t.Errorf("create_order calls = %d, want 1", n)
	}
}

// An undocumented refusal is believed only once the order list has shown, twice, that no order
// exists; then it is reported with the partner's code, and never sent again.
func TestUndocumentedRefusalIsRejectedAfterTheListShowsNoOrder(t *testing.T) {
	saga, sim, _ := newHostileSaga(t)
	sim.SetOrderRefusal("insufficient_balance", "account balance too low")
	err := run(t, saga, request("refused"), &workflow.State{}, &memCheckpoints{})
	f := wantFailure(t, err, messages.ReasonRejected)
	if f.PartnerCode != "insufficient_balance" || !strings.Contains(f.Message, "account balance too low") {
		t.Errorf("failure %+v: want the partner's code and message", f)
	}
	if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 1 {
		t.Errorf("create_order calls = %d, want 1", n)
	}
	if n := sim.Calls(partnerclient.EndpointOrderList); n < 2 {
		t.Errorf("order_list calls = %d, want at least 2 looks before believing the refusal", n)
	}
}

// A success without an order number: the order is found by its poNumber.
func TestSuccessWithoutOrderNoIsFound(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	h.set(onPath(partnerclient.PathCreateOrder, 1, func(m map[string]any) { delete(resultOf(m), "orderNo") }))
	st := &workflow.State{}
	if err := run(t, saga, request("noorderno"), st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	orders := sim.Orders()
	if len(orders) != 1 || st.Order.Result.OrderNo != orders[0].OrderNo || st.Order.Result.OrderNo == "" {
		t.Fatalf("orders %+v, result %+v: want the one order with its number", orders, st.Order.Result)
	}
	ev := st.Completed(messages.EventHeader{}, 12)
	if ev.OrderNo == "" {
		t.Error("completed event without an order number")
	}
}

// A success without an order number whose order the list never shows: never sent again, and a
// human is asked to find it.
func TestSuccessWithoutOrderNoNeverListedNeedsReconciliation(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	h.set(func(p string, q url.Values, body []byte) []byte {
		switch p {
		case partnerclient.PathCreateOrder:
			return onPath(p, -1, func(m map[string]any) { delete(resultOf(m), "orderNo") })(p, q, body)
		case partnerclient.PathOrderList:
			return []byte(`{"code":"success","detailMessage":"","requestId":"x","status":200,"result":{"pageNo":1,"pageSize":50,"total":0,"totalPage":0,"results":[]}}`)
		}
		return body
	})
	err := run(t, saga, request("unlisted"), &workflow.State{}, &memCheckpoints{})
	wantFailure(t, err, messages.ReasonNeedsReconciliation)
	if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 1 {
		t.Errorf("create_order calls = %d, want 1 (the partner said it placed the order)", n)
	}
}

// An undocumented order status is "not yet succeeded": polled, then post_order_failed with the
// order number, never rejected.
func TestUndocumentedOrderStatus(t *testing.T) {
	inReview := func(m map[string]any) {
		r := resultOf(m)
		if info, ok := r["orderInformation"].(map[string]any); ok {
			info["orderStatus"] = "in_review"
		} else {
			r["orderStatus"] = "in_review"
		}
	}
	t.Run("stays undocumented", func(t *testing.T) {
		saga, sim, h := newHostileSaga(t)
		saga.Retry.MaxRetries = 3
		h.set(func(p string, q url.Values, body []byte) []byte {
			if p == partnerclient.PathCreateOrder || strings.HasPrefix(p, partnerclient.PathOrderDetailsPrefix) {
				return onPath(p, -1, inReview)(p, q, body)
			}
			return body
		})
		err := run(t, saga, request("inreview"), &workflow.State{}, &memCheckpoints{})
		f := wantFailure(t, err, messages.ReasonPostOrderFailed)
		if orders := sim.Orders(); len(orders) != 1 || f.OrderNo != orders[0].OrderNo {
			t.Errorf("failure order %q, orders %+v: want the placed order's number", f.OrderNo, orders)
		}
	})
	t.Run("turns succeed", func(t *testing.T) {
		saga, sim, h := newHostileSaga(t)
		h.set(onPath(partnerclient.PathCreateOrder, 1, inReview))
		st := &workflow.State{}
		if err := run(t, saga, request("inreview-ok"), st, &memCheckpoints{}); err != nil {
			t.Fatal(err)
		}
		if len(sim.Orders()) != 1 || st.Order.Result.OrderStatus != partnerclient.OrderSucceed {
			t.Errorf("result %+v, want the one order, succeed", st.Order.Result)
		}
	})
}

// placeByHand places an order with its own poNumber, as someone in the Partner Portal would.
func placeByHand(t *testing.T, saga *workflow.Saga, po string) {
	t.Helper()
	body := partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan, ProductID: 12, BillingID: partnertest.BillingContactID, PONumber: po,
		ServiceList: []partnerclient.OrderLine{{ServiceType: partnerclient.ServiceTypePlan, ServiceID: partnertest.PlanUltimateID, Quantity: 5,
			PurchaseType: partnerclient.PurchaseTypePurchase, BillingModel: partnerclient.BillingModelRecurring, BillingCycle: partnerclient.BillingCycleAnnually, MultiCycle: 1}},
	}
	if _, err := saga.Partner.CreateOrder(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // distinct creation times
}

// resumeUnknown runs req to completion, then resumes it from its intent checkpoint as if the
// answer of its send had been lost, after before() changed the world.
func resumeUnknown(t *testing.T, saga *workflow.Saga, req messages.PurchaseRequest, before func()) (*workflow.State, error) {
	t.Helper()
	cp := &memCheckpoints{}
	if err := run(t, saga, req, &workflow.State{}, cp); err != nil {
		t.Fatal(err)
	}
	before()
	st, err := workflow.DecodeState(cp.all()[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Order.Intent == nil || st.Order.Result != nil {
		t.Fatalf("first checkpoint %+v is not the intent", st.Order)
	}
	st.Order.Intent.Unknown = true
	return st, run(t, saga, req, st, &memCheckpoints{})
}

// New orders arriving while the list is paged shift its items: an order seen on two pages is one
// order, not two.
func TestReconcileCountsAShiftedOrderOnce(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	saga.ReconcilePageSize = 2
	placeByHand(t, saga, "PO-OLDER")
	req := request("shifted")
	st, err := resumeUnknown(t, saga, req, func() {
		placeByHand(t, saga, "PO-NEWER")
		// Page n > 1 starts one item early: the last item of page n-1 is seen again.
		h.query = func(p string, q url.Values) url.Values {
			if p != partnerclient.PathOrderList {
				return q
			}
			no, _ := strconv.Atoi(q.Get("pageNo"))
			size, _ := strconv.Atoi(q.Get("pageSize"))
			if no > 1 {
				q.Set("pageNo", "1")
				q.Set("pageSize", strconv.Itoa(no*size))
			}
			return q
		}
		h.set(func(p string, q url.Values, body []byte) []byte {
			if p != partnerclient.PathOrderList {
				return body
			}
			no, _ := strconv.Atoi(q.Get("pageNo"))
			size, _ := strconv.Atoi(q.Get("pageSize"))
			if no <= 1 {
				return body
			}
			return onPath(p, -1, func(m map[string]any) {
				r := resultOf(m)
				items, _ := r["results"].([]any)
				from := min(len(items), (no-1)*size-1)
				r["results"] = items[from:min(len(items), from+size)]
				r["pageNo"], r["pageSize"] = no, size
				r["totalPage"] = (len(sim.Orders()) + size - 1) / size
			})(p, q, body)
		})
	})
	if err != nil {
		t.Fatalf("err = %v, want the order adopted", err)
	}
	if !st.Order.Result.Adopted || len(sim.OrdersByPONumber(workflow.DefaultPONumber(req.IdempotencyKey))) != 1 {
		t.Errorf("result %+v: want the one order adopted", st.Order.Result)
	}
}

// A list that is not newest first (here oldest first) is scanned whole: an old order at the top
// does not end the search.
func TestReconcileScansAListThatIsNotNewestFirst(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	saga.ReconcilePageSize = 2
	saga.ReconcileMargin = time.Millisecond
	for _, po := range []string{"PO-1", "PO-2", "PO-3"} {
		placeByHand(t, saga, po)
	}
	time.Sleep(10 * time.Millisecond)
	sim.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultCommitThenReset)
	// The whole list, oldest first, paged as asked.
	h.query = func(p string, q url.Values) url.Values {
		if p == partnerclient.PathOrderList {
			q.Set("pageNo", "1")
			q.Set("pageSize", "1000")
		}
		return q
	}
	h.set(func(p string, q url.Values, body []byte) []byte {
		if p != partnerclient.PathOrderList {
			return body
		}
		return onPath(p, -1, func(m map[string]any) {
			r := resultOf(m)
			items, _ := r["results"].([]any)
			for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
				items[i], items[j] = items[j], items[i]
			}
			no, _ := strconv.Atoi(q.Get("pageNo"))
			size, _ := strconv.Atoi(q.Get("pageSize"))
			from := min(len(items), (no-1)*size)
			r["results"] = items[from:min(len(items), from+size)]
			r["pageNo"], r["pageSize"], r["totalPage"] = no, size, (len(items)+size-1)/size
		})(p, q, body)
	})
	req := request("oldestfirst")
	st := &workflow.State{}
	if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.OrdersByPONumber(workflow.DefaultPONumber(req.IdempotencyKey))); n != 1 || !st.Order.Result.Adopted {
		t.Errorf("%d orders for the key, result %+v: want exactly one, adopted", n, st.Order.Result)
	}
}

// An empty billing-contact answer is not a contact: nothing is ordered without a billingId.
func TestEmptyBillingContactAnswerPlacesNoOrder(t *testing.T) {
	saga, sim, h := newHostileSaga(t)
	saga.Retry.MaxRetries = 2
	h.set(onPath(partnerclient.PathBillingContacts, -1, func(m map[string]any) { m["result"] = map[string]any{} }))
	err := run(t, saga, request("nobilling"), &workflow.State{}, &memCheckpoints{})
	var re *workflow.RetryError
	if !errors.As(err, &re) || re.Step != messages.StepResolveBilling {
		t.Fatalf("err = %v, want a RetryError at resolve_billing", err)
	}
	if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 0 {
		t.Errorf("create_order calls = %d, want 0", n)
	}
}

// A lost answer is sent again only after two looks at the order list, the gap apart; with the
// resend policy "never" a human decides instead.
func TestResendPolicy(t *testing.T) {
	t.Run("auto", func(t *testing.T) {
		saga, sim, _ := newHostileSaga(t)
		sim.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultReset)
		st := &workflow.State{}
		if err := run(t, saga, request("auto"), st, &memCheckpoints{}); err != nil {
			t.Fatal(err)
		}
		reqs := sim.Requests(partnerclient.EndpointCreateOrder)
		if len(reqs) != 2 || len(sim.Orders()) != 1 {
			t.Fatalf("create_order calls %d, orders %d: want 2 and 1", len(reqs), len(sim.Orders()))
		}
		lists := 0
		var first, last time.Time
		for _, r := range sim.Requests(partnerclient.EndpointOrderList) {
			if r.Time.After(reqs[0].Time) && r.Time.Before(reqs[1].Time) {
				lists++
				if first.IsZero() {
					first = r.Time
				}
				last = r.Time
			}
		}
		if gap := workflow.DefaultResendAbsentGap; lists < 2 || last.Sub(first) < gap {
			t.Errorf("%d order-list looks %v apart before the re-send, want 2 at least %v apart", lists, last.Sub(first), gap)
		}
	})
	t.Run("never", func(t *testing.T) {
		saga, sim, _ := newHostileSaga(t)
		saga.Resend = workflow.ResendNever
		sim.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultReset)
		err := run(t, saga, request("never"), &workflow.State{}, &memCheckpoints{})
		wantFailure(t, err, messages.ReasonNeedsReconciliation)
		if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 1 {
			t.Errorf("create_order calls = %d, want 1", n)
		}
	})
}

// The Guard holds create order until it lets go; its error retries the purchase later.
func TestGuard(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		saga, sim, _ := newHostileSaga(t)
		release := make(chan struct{})
		var reasons atomic.Int64
		saga.Guard = func(ctx context.Context, _ string, waiting func(string)) error {
			waiting("paused")
			reasons.Add(1)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		done := make(chan error, 1)
		go func() { done <- run(t, saga, request("guarded"), &workflow.State{}, &memCheckpoints{}) }()
		testutil.Eventually(t, 30*time.Second, func() bool { return reasons.Load() > 0 }, "the guard asked")
		if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 0 {
			t.Fatalf("create_order calls = %d while the guard holds, want 0", n)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(sim.Orders()) != 1 {
			t.Errorf("orders = %d, want 1", len(sim.Orders()))
		}
	})
	t.Run("error", func(t *testing.T) {
		saga, sim, _ := newHostileSaga(t)
		saga.Guard = func(context.Context, string, func(string)) error { return errors.New("control bucket unreachable") }
		err := run(t, saga, request("guard-error"), &workflow.State{}, &memCheckpoints{})
		var re *workflow.RetryError
		if !errors.As(err, &re) || re.Step != messages.StepCreateOrder {
			t.Fatalf("err = %v, want a RetryError at create_order", err)
		}
		if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 0 {
			t.Errorf("create_order calls = %d, want 0", n)
		}
	})
}

// An unexpected type in a field the saga does not use (planAutoRenewal as a Boolean) must not
// block purchases for an existing PBX.
func TestDriftInAnUnusedFieldDoesNotBlockPurchases(t *testing.T) {
	saga, sim, _ := newHostileSaga(t)
	sim.SetHostile(partnertest.Hostile{AutoRenewalAsBool: true})
	req := messages.PurchaseRequest{IdempotencyKey: "drift", ProductNo: partnertest.ExistingSN,
		Plan: &messages.Ref{Name: "Ultimate Plan"}, Quantity: 30}.Normalize()
	st := &workflow.State{}
	if err := run(t, saga, req, st, &memCheckpoints{}); err != nil {
		t.Fatal(err)
	}
	if len(sim.Orders()) != 1 || st.Order.Result.ProductNo != partnertest.ExistingSN {
		t.Errorf("orders %d, result %+v: want one order on %s", len(sim.Orders()), st.Order.Result, partnertest.ExistingSN)
	}
}
