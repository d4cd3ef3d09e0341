package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/audit"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// world is a worker that has run three purchases against the simulator, and orders planted on
// the simulator behind fulfil's back.
type world struct {
	sim    *partnertest.Server
	client *partnerclient.Client
	w      *worker.Worker
	// planted orders
	dupOrder, orphanFailed, orphanUnknown, foreign partnerclient.OrderResult
}

func newWorld(t *testing.T) *world {
	t.Helper()
	url := natstest.Start(t)
	nc, js := natstest.Connect(t, url)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	client, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(js, &workflow.Saga{Partner: client}, worker.Config{AckWait: 5 * time.Second, NakDelay: 50 * time.Millisecond, MaxNakDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for key, body := range map[string]string{
		"done-1":   `{"idempotencyKey":"done-1","plan":{"name":"Ultimate Plan"},"quantity":5}`,
		"dup-1":    `{"idempotencyKey":"dup-1","plan":{"name":"Ultimate Plan"},"quantity":7}`,
		"failed-1": `{"idempotencyKey":"failed-1","plan":{"name":"Gold Plan"},"quantity":5}`,
	} {
		m := nats.NewMsg(messages.SubjectsFor("").Requested)
		m.Data = []byte(body)
		m.Header.Set(nats.MsgIdHdr, key)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc
	wd := &world{sim: sim, client: client, w: w}
	for _, key := range []string{"done-1", "dup-1", "failed-1"} {
		wd.waitFinished(t, key)
	}
	// Plant: a second order for dup-1, orders with the poNumbers of a failed key and of a key
	// never submitted, and an order that is not fulfil's.
	body := wd.intent(t, "dup-1").Body
	wd.dupOrder = wd.order(t, body, workflow.DefaultPONumber("dup-1"))
	wd.orphanFailed = wd.order(t, body, workflow.DefaultPONumber("failed-1"))
	wd.orphanUnknown = wd.order(t, body, workflow.DefaultPONumber("never-submitted"))
	wd.foreign = wd.order(t, body, "SHOP-PO-991")
	return wd
}

func (wd *world) waitFinished(t *testing.T, key string) idempotency.Record {
	t.Helper()
	var rec idempotency.Record
	testutil.Eventually(t, 30*time.Second, func() bool {
		var err error
		rec, err = wd.w.Store().Get(context.Background(), key)
		return err == nil && rec.Finished()
	}, "%s finished", key)
	return rec
}

func (wd *world) intent(t *testing.T, key string) *workflow.OrderIntent {
	t.Helper()
	rec := wd.waitFinished(t, key)
	st, err := workflow.DecodeState(rec.State)
	if err != nil || st.Order.Intent == nil {
		t.Fatalf("%s: no order intent (%v)", key, err)
	}
	return st.Order.Intent
}

func (wd *world) order(t *testing.T, body partnerclient.OrderRequest, po string) partnerclient.OrderResult {
	t.Helper()
	body.PONumber = po
	res, err := wd.client.CreateOrder(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (wd *world) records(t *testing.T) []idempotency.Record {
	t.Helper()
	recs, err := wd.w.Store().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// summary is a finding reduced to what the tests compare.
type summary struct {
	kind   audit.Kind
	key    string
	po     string
	orders string
	saga   string
}

func summarize(r audit.Report) []summary {
	var out []summary
	for _, f := range r.Findings {
		var nos []string
		for _, o := range f.Orders {
			nos = append(nos, o.OrderNo)
		}
		slices.Sort(nos)
		out = append(out, summary{f.Kind, f.Key, f.PONumber, strings.Join(nos, ","), f.SagaStatus})
	}
	return out
}

func (wd *world) want(t *testing.T) []summary {
	dupNos := []string{wd.intentResult(t, "dup-1"), wd.dupOrder.OrderNo}
	slices.Sort(dupNos)
	return []summary{
		{audit.Orphan, "", workflow.DefaultPONumber("never-submitted"), wd.orphanUnknown.OrderNo, "none"},
		{audit.Orphan, "failed-1", workflow.DefaultPONumber("failed-1"), wd.orphanFailed.OrderNo, "failed"},
		{audit.Duplicate, "dup-1", workflow.DefaultPONumber("dup-1"), strings.Join(dupNos, ","), "completed"},
	}
}

func (wd *world) intentResult(t *testing.T, key string) string {
	rec := wd.waitFinished(t, key)
	st, _ := workflow.DecodeState(rec.State)
	return st.Order.Result.OrderNo
}

func sortSummaries(s []summary) {
	slices.SortFunc(s, func(a, b summary) int { return strings.Compare(string(a.kind)+a.key+a.po, string(b.kind)+b.key+b.po) })
}

func TestAuditFindsPlantedOrphansAndDuplicate(t *testing.T) {
	wd := newWorld(t)
	rep, err := audit.Run(context.Background(), wd.client, wd.records(t), audit.Options{Since: time.Now().Add(-time.Hour), PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, want := summarize(rep), wd.want(t)
	sortSummaries(got)
	sortSummaries(want)
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %+v\nwant %+v", got, want)
	}
	if !rep.Complete || rep.Orders != 6 || rep.Sagas != 3 || rep.Details != 0 {
		t.Errorf("report: complete %v, %d orders (want 6), %d sagas (want 3), %d details calls (want 0)", rep.Complete, rep.Orders, rep.Sagas, rep.Details)
	}
	var table bytes.Buffer
	if err := audit.WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"3 finding(s): 2 orphan, 1 duplicate", wd.orphanUnknown.OrderNo, "dup-1"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}

	// Orders created before the window are not reported.
	rep, err = audit.Run(context.Background(), wd.client, wd.records(t), audit.Options{Since: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("findings for a window after every order: %+v", rep.Findings)
	}
}

// noPONumbers is the partner's order list without poNumber, as the real list may be.
type noPONumbers struct{ *partnerclient.Client }

func (p noPONumbers) ListOrders(ctx context.Context, lp partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error) {
	page, err := p.Client.ListOrders(ctx, lp)
	for i := range page.Results {
		page.Results[i].PONumber = ""
	}
	return page, err
}

func TestAuditReadsPONumbersFromOrderDetails(t *testing.T) {
	wd := newWorld(t)
	rep, err := audit.Run(context.Background(), noPONumbers{wd.client}, wd.records(t), audit.Options{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, want := summarize(rep), wd.want(t)
	sortSummaries(got)
	sortSummaries(want)
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %+v\nwant %+v", got, want)
	}
	if rep.Details != 6 {
		t.Errorf("%d details calls, want 6 (one per order)", rep.Details)
	}
}

func TestAuditMissingAndIncomplete(t *testing.T) {
	wd := newWorld(t)
	recs := wd.records(t)
	// A completed purchase whose order the partner does not know.
	i := slices.IndexFunc(recs, func(r idempotency.Record) bool { return r.Key == "done-1" })
	gone := recs[i]
	st, err := workflow.DecodeState(gone.State)
	if err != nil {
		t.Fatal(err)
	}
	st.Order.Result.OrderNo = "ZC0000000000000000001"
	gone.Key = "done-gone"
	if gone.State, err = st.Encode(); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, gone)
	rep, err := audit.Run(context.Background(), wd.client, recs, audit.Options{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Counts(); c["missing"] != 1 || c["orphan"] != 2 || c["duplicate"] != 1 {
		t.Fatalf("counts %v, want 1 missing, 2 orphans, 1 duplicate", c)
	}
	for _, f := range rep.Findings {
		if f.Kind == audit.Missing && (f.Key != "done-gone" || f.SagaOrderNo != "ZC0000000000000000001") {
			t.Errorf("missing finding %+v", f)
		}
	}

	// A list that does not end within the bound: incomplete, and nothing said about missing.
	rep, err = audit.Run(context.Background(), wd.client, recs, audit.Options{Since: time.Now().Add(-time.Hour), PageSize: 2, MaxPages: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Counts(); rep.Complete || c["incomplete"] != 1 || c["missing"] != 0 {
		t.Errorf("bounded scan: complete %v, counts %v", rep.Complete, c)
	}
	var js bytes.Buffer
	if err := audit.WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back audit.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Complete || len(back.Findings) != len(rep.Findings) {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

// A sweep logs, stores its summary in the control bucket and sets the findings gauges.
func TestSweepStoresSummaryAndMetrics(t *testing.T) {
	wd := newWorld(t)
	reg := prometheus.NewRegistry()
	s := &audit.Sweeper{Control: wd.w.Control(), Store: wd.w.Store(), Partner: wd.client, Interval: time.Hour,
		Owner: "test", Metrics: metrics.New(reg)}
	rep, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 3 {
		t.Errorf("%d findings, want 3", len(rep.Findings))
	}
	sum, ok, err := wd.w.Control().LastAudit(context.Background())
	if err != nil || !ok {
		t.Fatalf("summary: %v %v", ok, err)
	}
	if sum.Counts["orphan"] != 2 || sum.Counts["duplicate"] != 1 || sum.Counts["missing"] != 0 || !sum.Complete || sum.By != "test" {
		t.Errorf("summary %+v", sum)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "fulfil_audit_findings" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["orphan"] != 2 || got["duplicate"] != 1 || got["missing"] != 0 || got["incomplete"] != 0 || len(got) != 4 {
		t.Errorf("fulfil_audit_findings = %v", got)
	}
}
