// Package metrics holds fulfil's Prometheus metrics. One Metrics is shared by the worker, the
// saga (through workflow.Hooks) and the partner client (through its observer).
package metrics

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fulfil/fulfil/partnerclient"
)

// Metrics are the collectors; every method is safe on a nil *Metrics (no-op).
type Metrics struct {
	sagasStarted    prometheus.Counter
	sagasFinished   *prometheus.CounterVec
	sagaDuration    *prometheus.HistogramVec
	stepDuration    *prometheus.HistogramVec
	stepRetries     *prometheus.CounterVec
	partnerCalls    *prometheus.CounterVec
	partnerLatency  *prometheus.HistogramVec
	redeliveries    prometheus.Counter
	reconciliations *prometheus.CounterVec
	inFlight        prometheus.Gauge
	replays         prometheus.Counter
	acks            *prometheus.CounterVec

	paused          prometheus.Gauge
	pauseWaiting    prometheus.Gauge
	spendWaiting    prometheus.Gauge
	spendCapHits    *prometheus.CounterVec
	auditFindings   *prometheus.GaugeVec
	auditLastSweep  prometheus.Gauge
	auditSweepsDone *prometheus.CounterVec
}

// New creates the collectors and registers them on reg (nil: not registered).
func New(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		sagasStarted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "fulfil", Name: "sagas_started_total",
			Help: "Sagas started (first acquisition of an idempotency key)."}),
		sagasFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "sagas_finished_total",
			Help: "Sagas finished, by outcome (completed, failed) and failure reason."}, []string{"outcome", "reason"}),
		sagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fulfil", Name: "saga_duration_seconds",
			Help: "Time from a request's delivery to its outcome, by outcome.", Buckets: buckets}, []string{"outcome"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fulfil", Name: "step_duration_seconds",
			Help: "Duration of finished saga steps, retries included.", Buckets: buckets}, []string{"step"}),
		stepRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "step_retries_total",
			Help: "In-process retries of saga steps."}, []string{"step"}),
		partnerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "partner_calls_total",
			Help: "Partner API requests by endpoint and outcome (ok, http_<status>, business, transport)."}, []string{"endpoint", "outcome"}),
		partnerLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fulfil", Name: "partner_call_duration_seconds",
			Help: "Partner API request latency by endpoint.", Buckets: buckets}, []string{"endpoint"}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "fulfil", Name: "redeliveries_total",
			Help: "Request deliveries after the first."}),
		reconciliations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "reconciliations_total",
			Help: "Order-list searches after an unknown create-order outcome, by result (adopted, absent, ambiguous, incomplete)."}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fulfil", Name: "sagas_in_flight",
			Help: "Requests being processed by this process."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "fulfil", Name: "outcomes_replayed_total",
			Help: "Stored outcomes republished for a request whose key had finished."}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "acks_total",
			Help: "Acknowledgements sent, by kind (ack, term, nak)."}, []string{"kind"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fulfil", Name: "paused",
			Help: "1 while the account is paused (fulfil pause): no create-order request is sent."}),
		pauseWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fulfil", Name: "pause_waiting",
			Help: "Sagas of this process waiting before create order for the account to be resumed."}),
		spendWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fulfil", Name: "spend_cap_waiting",
			Help: "Sagas of this process waiting before create order for the next spend-cap window."}),
		spendCapHits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "spend_cap_hits_total",
			Help: "Create-order sends held back by a spend cap, by window (hour, day)."}, []string{"window"}),
		auditFindings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fulfil", Name: "audit_findings",
			Help: "Findings of the last audit sweep, by kind (orphan, duplicate, missing, incomplete)."}, []string{"kind"}),
		auditLastSweep: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fulfil", Name: "audit_last_sweep_timestamp_seconds",
			Help: "Unix time at which the last audit sweep (by any worker) finished."}),
		auditSweepsDone: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "audit_sweeps_total",
			Help: "Audit sweeps run by this process, by result (ok, error)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.sagasStarted, m.sagasFinished, m.sagaDuration, m.stepDuration, m.stepRetries, m.partnerCalls,
			m.partnerLatency, m.redeliveries, m.reconciliations, m.inFlight, m.replays, m.acks,
			m.paused, m.pauseWaiting, m.spendWaiting, m.spendCapHits, m.auditFindings, m.auditLastSweep, m.auditSweepsDone)
		for _, w := range []string{"hour", "day"} {
			m.spendCapHits.WithLabelValues(w)
		}
	}
	return m
}

// SagaStarted counts a first acquisition of a key.
func (m *Metrics) SagaStarted() {
	if m != nil {
		m.sagasStarted.Inc()
	}
}

// SagaFinished counts an outcome and observes its duration.
func (m *Metrics) SagaFinished(outcome, reason string, d time.Duration) {
	if m != nil {
		m.sagasFinished.WithLabelValues(outcome, reason).Inc()
		m.sagaDuration.WithLabelValues(outcome).Observe(d.Seconds())
	}
}

// StepDone observes a finished step's duration.
func (m *Metrics) StepDone(step string, d time.Duration) {
	if m != nil {
		m.stepDuration.WithLabelValues(step).Observe(d.Seconds())
	}
}

// StepRetry counts a retry of step.
func (m *Metrics) StepRetry(step string) {
	if m != nil {
		m.stepRetries.WithLabelValues(step).Inc()
	}
}

// Redelivered counts a delivery after the first.
func (m *Metrics) Redelivered() {
	if m != nil {
		m.redeliveries.Inc()
	}
}

// Reconciled counts a reconciliation by result.
func (m *Metrics) Reconciled(result string) {
	if m != nil {
		m.reconciliations.WithLabelValues(result).Inc()
	}
}

// InFlight adds delta to the in-flight gauge.
func (m *Metrics) InFlight(delta float64) {
	if m != nil {
		m.inFlight.Add(delta)
	}
}

// InFlightNow returns the in-flight gauge: the sagas in flight (0 for a nil Metrics). It is
// cheap enough to sample often, unlike gathering the registry.
func (m *Metrics) InFlightNow() int {
	if m == nil {
		return 0
	}
	var pb dto.Metric
	if err := m.inFlight.Write(&pb); err != nil {
		return 0
	}
	return int(pb.GetGauge().GetValue())
}

// Replayed counts a replayed outcome.
func (m *Metrics) Replayed() {
	if m != nil {
		m.replays.Inc()
	}
}

// Acked counts an acknowledgement of kind ack, term or nak.
func (m *Metrics) Acked(kind string) {
	if m != nil {
		m.acks.WithLabelValues(kind).Inc()
	}
}

// PartnerCall records one partner request; use it with partnerclient.WithObserver.
func (m *Metrics) PartnerCall(ci partnerclient.CallInfo) {
	if m == nil {
		return
	}
	ep := string(ci.Endpoint)
	m.partnerCalls.WithLabelValues(ep, callOutcome(ci)).Inc()
	m.partnerLatency.WithLabelValues(ep).Observe(ci.Duration.Seconds())
}

func callOutcome(ci partnerclient.CallInfo) string {
	switch {
	case ci.Err == nil:
		return "ok"
	case ci.StatusCode == 0:
		return "transport"
	case ci.StatusCode >= 300:
		return "http_" + strconv.Itoa(ci.StatusCode)
	}
	var pe *partnerclient.Error
	if errors.As(ci.Err, &pe) && pe.Code != "" && pe.Code != partnerclient.CodeSuccess {
		return "business"
	}
	return "decode"
}

// Causes of a wait before create order.
const (
	GuardPaused   = "paused"
	GuardSpendCap = "spend_cap"
)

// Paused sets the paused gauge.
func (m *Metrics) Paused(paused bool) {
	if m != nil {
		v := 0.0
		if paused {
			v = 1
		}
		m.paused.Set(v)
	}
}

// GuardWaiting adds delta to the sagas waiting before create order for cause (GuardPaused,
// GuardSpendCap).
func (m *Metrics) GuardWaiting(cause string, delta float64) {
	if m == nil {
		return
	}
	switch cause {
	case GuardPaused:
		m.pauseWaiting.Add(delta)
	case GuardSpendCap:
		m.spendWaiting.Add(delta)
	}
}

// SpendCapHit counts a send held back by the spend cap of window (hour, day).
func (m *Metrics) SpendCapHit(window string) {
	if m != nil {
		m.spendCapHits.WithLabelValues(window).Inc()
	}
}

// AuditFindings sets the findings gauge of every kind from counts (a kind not in counts is 0)
// and the time of the sweep.
func (m *Metrics) AuditFindings(kinds []string, counts map[string]int, at time.Time) {
	if m != nil {
		for _, k := range kinds {
			m.auditFindings.WithLabelValues(k).Set(float64(counts[k]))
		}
		m.auditLastSweep.Set(float64(at.UnixNano()) / 1e9)
	}
}

// AuditSwept counts a sweep run by this process with result ok or error.
func (m *Metrics) AuditSwept(result string) {
	if m != nil {
		m.auditSweepsDone.WithLabelValues(result).Inc()
	}
}
