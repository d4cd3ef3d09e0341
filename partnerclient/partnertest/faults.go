package partnertest

import (
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// Faults are the probabilistic faults and the latency of one endpoint. Rates are probabilities
// in [0, 1]; 1 makes every call fail that way.
type Faults struct {
	// Latency, plus a uniform random part in [0, Jitter), delays every answer of the endpoint,
	// faults and errors included. The delay ends early when the request's context ends.
	Latency, Jitter time.Duration
	// ErrorRate is the probability of HTTP 503 with code "service_unavailable".
	ErrorRate float64
	// RateLimitRate is the probability of HTTP 429 with code "too_many_requests" and a
	// Retry-After header of RetryAfter in whole seconds (rounded up, at least 0).
	RateLimitRate float64
	RetryAfter    time.Duration
	// ResetRate is the probability that the connection is closed with no response.
	ResetRate float64
	// CommitThenFail is the probability that the call is carried out (for create_order: the
	// order is committed) and then the reply is lost, as CommitThenFailMode says.
	CommitThenFail     float64
	CommitThenFailMode CommitMode
}

// CommitMode says how the reply of a "commit then fail" fault is lost.
type CommitMode int

// Commit modes.
const (
	// CommitReset closes the connection with no response.
	CommitReset CommitMode = iota
	// Commit502 answers HTTP 502 with code "bad_gateway".
	Commit502
)

// FaultKind is a deterministic one-shot fault queued by FailNext.
type FaultKind int

// Fault kinds.
const (
	// Fault503 answers HTTP 503, code "service_unavailable", without doing anything.
	Fault503 FaultKind = iota
	// Fault429 answers HTTP 429, code "too_many_requests", with the endpoint's Retry-After.
	Fault429
	// FaultReset closes the connection with no response, without doing anything.
	FaultReset
	// FaultCommitThenReset carries the call out, then closes the connection with no response.
	FaultCommitThenReset
	// FaultCommitThen502 carries the call out, then answers HTTP 502, code "bad_gateway".
	FaultCommitThen502
)

// String names the fault kind, e.g. "commit-then-502".
func (k FaultKind) String() string {
	switch k {
	case Fault503:
		return "503"
	case Fault429:
		return "429"
	case FaultReset:
		return "reset"
	case FaultCommitThenReset:
		return "commit-then-reset"
	case FaultCommitThen502:
		return "commit-then-502"
	default:
		return "unknown"
	}
}

// faultNone marks "no fault": the real handler answers.
const faultNone FaultKind = -1

// SetFaults replaces the probabilistic faults and latency of ep.
func (s *Sim) SetFaults(ep partnerclient.Endpoint, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[ep] = f
}

// ClearFaults removes every probabilistic fault, latency and queued one-shot fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
	clear(s.oneShot)
}

// FailNext makes the next n calls to ep that pass the authentication checks fail with kind,
// before any probabilistic fault. Calls queue up: FailNext(ep, 1, Fault503) followed by
// FailNext(ep, 1, FaultReset) fails the next call with 503 and the one after with a reset.
func (s *Sim) FailNext(ep partnerclient.Endpoint, n int, kind FaultKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.oneShot[ep] = append(s.oneShot[ep], kind)
	}
}

// pickFault decides the fault of one call to ep: a queued one-shot fault, else a draw
// for reset, 503, 429 and commit-then-fail in that order, else faultNone.
func (s *Sim) pickFault(ep partnerclient.Endpoint) FaultKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.oneShot[ep]; len(q) > 0 {
		s.oneShot[ep] = q[1:]
		return q[0]
	}
	f := s.faults[ep]
	switch {
	case s.draw(f.ResetRate):
		return FaultReset
	case s.draw(f.ErrorRate):
		return Fault503
	case s.draw(f.RateLimitRate):
		return Fault429
	case s.draw(f.CommitThenFail):
		if f.CommitThenFailMode == Commit502 {
			return FaultCommitThen502
		}
		return FaultCommitThenReset
	}
	return faultNone
}

// draw reports true with probability p; it uses the random source only when 0 < p < 1.
// The caller holds s.mu.
func (s *Sim) draw(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	default:
		return s.rng.Float64() < p
	}
}

// latency returns the delay of one answer of ep.
func (s *Sim) latency(ep partnerclient.Endpoint) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[ep]
	d := f.Latency
	if f.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(f.Jitter)))
	}
	return d
}

// retryAfter returns the Retry-After header value of ep in whole seconds, rounded up.
func (s *Sim) retryAfter(ep partnerclient.Endpoint) string {
	s.mu.Lock()
	d := s.faults[ep].RetryAfter
	s.mu.Unlock()
	secs := max(0, int64((d+time.Second-1)/time.Second))
	return itoa(secs)
}
