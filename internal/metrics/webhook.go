package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhooks are the collectors of webhook delivery, labelled by endpoint: the endpoint's host
// (never its full URL, which may hold a token). Every method is safe on a nil *Webhooks.
type Webhooks struct {
	deliveries *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	latency    *prometheus.HistogramVec
}

// Results of a webhook delivery attempt.
const (
	WebhookOK          = "ok"           // 2xx
	WebhookClientError = "client_error" // 4xx other than 408 and 429 (retried: the receiver may be misconfigured)
	WebhookServerError = "server_error" // 5xx, 408, 429
	WebhookRedirect    = "redirect"     // 3xx (redirects are not followed)
	WebhookNetwork     = "network"      // no answer: refused, reset, timeout
	WebhookDeadLetter  = "dead_letter"  // retry period over: moved to the webhook dead-letter stream
)

// NewWebhooks creates the webhook collectors and registers them on reg (nil: not registered).
func NewWebhooks(reg prometheus.Registerer) *Webhooks {
	w := &Webhooks{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts by endpoint host and result (ok, client_error, server_error, redirect, network, dead_letter)."},
			[]string{"endpoint", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fulfil", Name: "webhook_lag",
			Help: "Events not yet delivered to the endpoint: its consumer's pending plus unacknowledged (in retry) events."},
			[]string{"endpoint"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fulfil", Name: "webhook_request_duration_seconds",
			Help:    "Webhook request latency by endpoint host, failed requests included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"endpoint"}),
	}
	if reg != nil {
		reg.MustRegister(w.deliveries, w.lag, w.latency)
	}
	return w
}

// Delivery counts an attempt with result; a non-negative d is observed as its latency.
func (w *Webhooks) Delivery(endpoint, result string, d time.Duration) {
	if w == nil {
		return
	}
	w.deliveries.WithLabelValues(endpoint, result).Inc()
	if d >= 0 {
		w.latency.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

// Lag sets the endpoint's undelivered events.
func (w *Webhooks) Lag(endpoint string, n uint64) {
	if w != nil {
		w.lag.WithLabelValues(endpoint).Set(float64(n))
	}
}
