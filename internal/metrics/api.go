package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// API are the collectors of the HTTP intake. Every method is safe on a nil *API.
type API struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewAPI creates the HTTP intake's collectors and registers them on reg (nil: not registered).
func NewAPI(reg prometheus.Registerer) *API {
	a := &API{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fulfil", Name: "api_requests_total",
			Help: "HTTP intake requests by route (/v1/purchases, /v1/purchases/{key}, /v1/openapi.json, other), method and status code."},
			[]string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fulfil", Name: "api_request_duration_seconds",
			Help:    "HTTP intake request latency by route, long polls (?wait=) included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(a.requests, a.latency)
	}
	return a
}

// Request counts one answered request and observes its duration. Methods other than the
// standard ones are counted as "other", so a client cannot grow the label set.
func (a *API) Request(route, method string, code int, d time.Duration) {
	if a == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	a.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	a.latency.WithLabelValues(route).Observe(d.Seconds())
}
