package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fulfil/fulfil/partnerclient"
)

func TestCallOutcome(t *testing.T) {
	tests := []struct {
		name string
		give partnerclient.CallInfo
		want string
	}{
		{name: "success", give: partnerclient.CallInfo{StatusCode: 200}, want: "ok"},
		{name: "no response", give: partnerclient.CallInfo{Err: errors.New("reset")}, want: "transport"},
		{name: "http status", give: partnerclient.CallInfo{StatusCode: 503, Err: &partnerclient.Error{StatusCode: 503}}, want: "http_503"},
		{name: "business refusal", give: partnerclient.CallInfo{StatusCode: 200, Err: &partnerclient.Error{StatusCode: 200, Code: "insufficient_balance"}}, want: "business"},
		{name: "undecodable body", give: partnerclient.CallInfo{StatusCode: 200, Err: &partnerclient.Error{StatusCode: 200, Code: "success"}}, want: "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := callOutcome(tt.give); got != tt.want {
				t.Errorf("callOutcome = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMetricsAreRegisteredAndCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SagaFinished("failed", "conflict", time.Second)
	m.PartnerCall(partnerclient.CallInfo{Endpoint: partnerclient.EndpointCreateOrder, StatusCode: 200, Duration: time.Millisecond})
	m.InFlight(1)
	want := `
# HELP fulfil_sagas_finished_total Sagas finished, by outcome (completed, failed) and failure reason.
# TYPE fulfil_sagas_finished_total counter
fulfil_sagas_finished_total{outcome="failed",reason="conflict"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "fulfil_sagas_finished_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.partnerCalls.WithLabelValues("create_order", "ok")); got != 1 {
		t.Errorf("partner calls = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.SagaStarted()
	m.SagaFinished("completed", "", time.Second)
	m.StepDone("create_order", time.Second)
	m.StepRetry("create_order")
	m.Redelivered()
	m.Reconciled("adopted")
	m.InFlight(1)
	m.Replayed()
	m.Acked("ack")
	m.PartnerCall(partnerclient.CallInfo{})
}
