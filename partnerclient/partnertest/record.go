package partnertest

import (
	"maps"
	"slices"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// Recorded is one request received by the simulator. The Authorization header is not kept;
// for the token endpoint Body holds only grant_type and client_id (no secret, no refresh token).
type Recorded struct {
	Endpoint  partnerclient.Endpoint // "" for an unknown path
	Method    string
	Path      string
	RawQuery  string
	UserAgent string
	// TraceParent is the W3C traceparent header the request carried, if any.
	TraceParent string
	Body        []byte
	Time        time.Time // simulator clock at arrival
	Status      int       // HTTP status answered; 0 when the connection was closed instead
}

// WithRequestLimit keeps only the newest n recorded requests (n <= 0: none), for long load
// runs. Calls and CallCounts still count every request. By default every request is kept.
func WithRequestLimit(n int) Option {
	return func(s *Sim) { s.requestLimit = max(0, n); s.limitRequests = true }
}

// record stores rec and counts the call.
func (s *Sim) record(rec Recorded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[rec.Endpoint]++
	if !s.limitRequests {
		s.requests = append(s.requests, rec)
		return
	}
	if s.requestLimit == 0 {
		return
	}
	if len(s.requests) >= s.requestLimit {
		n := copy(s.requests, s.requests[len(s.requests)-s.requestLimit+1:])
		s.requests = s.requests[:n]
	}
	s.requests = append(s.requests, rec)
}

// Requests returns the recorded requests to ep, oldest first.
func (s *Sim) Requests(ep partnerclient.Endpoint) []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Recorded
	for _, r := range s.requests {
		if r.Endpoint == ep {
			r.Body = slices.Clone(r.Body)
			out = append(out, r)
		}
	}
	return out
}

// Calls returns how many requests ep received, whatever they were answered.
func (s *Sim) Calls(ep partnerclient.Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[ep]
}

// CallCounts returns the number of requests per endpoint.
func (s *Sim) CallCounts() map[partnerclient.Endpoint]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}
