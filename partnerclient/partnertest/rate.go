package partnertest

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// RatePath is where Handler serves the simulator's RateStats as JSON (GET), and resets them
// (DELETE). It is outside the API's paths.
const RatePath = "/_sim/rate"

// rateSeconds is how many whole seconds RateStats.Seconds keeps.
const rateSeconds = 600

// RateStats is the rate of requests the simulator has received since it started or since
// ResetRate, every request counted (token calls, refused and unknown ones included), timed by
// the simulator on arrival.
type RateStats struct {
	// Total is the number of requests.
	Total int64 `json:"total"`
	// MaxPerSecond is the most requests in one whole second of the clock (12:00:01.000 to
	// 12:00:01.999).
	MaxPerSecond int `json:"max_per_second"`
	// MaxPerWindow is the most requests in any one-second window, wherever it starts: the number
	// to compare with a rate limit, at least MaxPerSecond.
	MaxPerWindow int `json:"max_per_window"`
	// Seconds counts the requests of each whole second that had any, oldest first (the last
	// ten minutes).
	Seconds []SecondCount `json:"seconds"`
}

// SecondCount is the number of requests received in one whole second.
type SecondCount struct {
	Second time.Time `json:"second"` // its start
	Calls  int       `json:"calls"`
}

// meter counts the arrivals of one Sim.
type meter struct {
	mu        sync.Mutex
	total     int64
	window    []time.Time // arrivals of the last second, oldest first
	maxWindow int
	seconds   []SecondCount
	maxSecond int
}

// add counts one arrival at now(), read under the lock so that arrivals are in order.
func (m *meter) add(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := now()
	m.total++
	cut := t.Add(-time.Second)
	i := 0
	for i < len(m.window) && !m.window[i].After(cut) {
		i++
	}
	m.window = append(m.window[i:], t)
	m.maxWindow = max(m.maxWindow, len(m.window))
	sec := t.Truncate(time.Second)
	if n := len(m.seconds); n > 0 && m.seconds[n-1].Second.Equal(sec) {
		m.seconds[n-1].Calls++
	} else {
		if n == rateSeconds {
			m.seconds = append(m.seconds[:0], m.seconds[1:]...)
		}
		m.seconds = append(m.seconds, SecondCount{Second: sec, Calls: 1})
	}
	m.maxSecond = max(m.maxSecond, m.seconds[len(m.seconds)-1].Calls)
}

func (m *meter) stats() RateStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	secs := make([]SecondCount, len(m.seconds))
	copy(secs, m.seconds)
	return RateStats{Total: m.total, MaxPerSecond: m.maxSecond, MaxPerWindow: m.maxWindow, Seconds: secs}
}

func (m *meter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total, m.window, m.maxWindow, m.seconds, m.maxSecond = 0, nil, 0, nil, 0
}

// meter returns s's meter.
func (s *Sim) meter() *meter { return &s.arrivals }

// countArrival counts one request for Rate.
func (s *Sim) countArrival() { s.meter().add(time.Now) }

// Rate returns the rate of requests received so far (see RateStats).
func (s *Sim) Rate() RateStats { return s.meter().stats() }

// ResetRate starts Rate's counts again, e.g. after a warm-up.
func (s *Sim) ResetRate() { s.meter().reset() }

// Handler returns s with its statistics: RatePath answers GET with Rate as JSON and DELETE with
// ResetRate; every other request goes to s unchanged. `fulfil partnersim` serves it, so that a
// test driving the binaries can read the rate the simulator received.
func (s *Sim) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != RatePath {
			s.ServeHTTP(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Type", contentTypeJSON)
			_ = json.NewEncoder(w).Encode(s.Rate())
		case http.MethodDelete:
			s.ResetRate()
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, DELETE")
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}
