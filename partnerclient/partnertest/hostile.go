package partnertest

import (
	"cmp"
	"net/http"
	"strings"
	"time"
)

// DefaultUndocumentedStatus is the orderStatus of Hostile.UndocumentedStatusRate when
// Hostile.UndocumentedStatus is empty. It is not one of the documented values.
const DefaultUndocumentedStatus = "in_review"

// CodeSystemError is the envelope code of Hostile.OrderErrorEnvelopeRate.
const CodeSystemError = "system_error"

// Values of Hostile.EnableWhenOn.
const (
	EnableWhenOnFalse   = "false"
	EnableWhenOnRefused = "refused"
)

// CodeAlreadyEnabled is the envelope code of Hostile.EnableWhenOn = EnableWhenOnRefused.
const CodeAlreadyEnabled = "auto_renewal_already_enabled"

// Hostile describes ways in which a real portal may differ from its documentation. The zero
// value is the documented behaviour. Rates are probabilities in [0, 1], drawn from the Sim's
// seeded random source, so a seeded Sim given the same calls answers the same way. Durations
// are measured on the Sim's clock (WithClock).
type Hostile struct {
	// OrderErrorEnvelopeRate is the probability that Create an Order commits the order and then
	// answers HTTP 200 with an error envelope: code "system_error", result null, status 500.
	OrderErrorEnvelopeRate float64
	// OrderNoOrderNoRate is the probability that Create an Order commits the order and answers
	// a success envelope whose result has no orderNo (the other fields are present).
	OrderNoOrderNoRate float64

	// UndocumentedStatusRate is the probability that a committed order carries the orderStatus
	// UndocumentedStatus (default DefaultUndocumentedStatus) in the create answer, the order
	// list and the order details, for UndocumentedStatusFor after its creation (0: until
	// UpdateOrderStatus changes it); then it has the status it would otherwise have had
	// ("succeed", or what SetOrderStatus says).
	UndocumentedStatusRate float64
	UndocumentedStatus     string
	UndocumentedStatusFor  time.Duration

	// RedirectTo, when not empty, is the base URL of another listener: every request, the token
	// request included, is answered RedirectStatus (0: 307 Temporary Redirect) with Location
	// RedirectTo followed by the request's path and query, and nothing is carried out. It lasts
	// RedirectFor (0: for ever) from the Sim's creation (WithHostile) or from SetHostile.
	RedirectTo     string
	RedirectFor    time.Duration
	RedirectStatus int

	// EmptyBillingContacts makes Query Billing Contact List answer "result":{}.
	EmptyBillingContacts bool
	// AutoRenewalAsBool makes Query Product List and Get Product Details encode
	// planAutoRenewal and serviceAutoRenewal as JSON true/false instead of the documented 1/0.
	AutoRenewalAsBool bool

	// EnableWhenOn is how Enable Auto-renewal answers when auto-renewal is already on: ""
	// as documented (result true), EnableWhenOnFalse (result false) or EnableWhenOnRefused (an
	// HTTP 200 error envelope with code CodeAlreadyEnabled). Nothing changes either way.
	EnableWhenOn string

	// OrderListOldestFirst makes Query Order List answer oldest first, whatever sort says,
	// instead of newest first.
	OrderListOldestFirst bool
	// OrderListShift models orders arriving while a client pages: every page of Query Order
	// List after the first starts OrderListShift items earlier than it should, so the last
	// items of page N-1 come again at the start of page N. The totals do not change.
	OrderListShift int
	// OrderListWithoutPONumber leaves poNumber out of the Query Order List items (Get Order
	// Details still carries it).
	OrderListWithoutPONumber bool
}

// WithHostile sets the hostile behaviours of the Sim; RedirectFor counts from the Sim's
// creation.
func WithHostile(h Hostile) Option {
	return func(s *Sim) { s.hostile = h }
}

// SetHostile replaces the hostile behaviours; RedirectFor counts from now. Orders already
// committed keep the status they were given.
func (s *Sim) SetHostile(h Hostile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostile = h
	s.hostileSince = s.clock()
}

// Hostile returns the hostile behaviours in force.
func (s *Sim) Hostile() Hostile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostile
}

// redirect returns the Location and status of a redirect of r, when Hostile.RedirectTo is in
// force.
func (s *Sim) redirect(r *http.Request) (location string, status int, ok bool) {
	s.mu.Lock()
	h, since := s.hostile, s.hostileSince
	now := s.clock()
	s.mu.Unlock()
	if h.RedirectTo == "" || (h.RedirectFor > 0 && !now.Before(since.Add(h.RedirectFor))) {
		return "", 0, false
	}
	location = strings.TrimRight(h.RedirectTo, "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		location += "?" + r.URL.RawQuery
	}
	status = h.RedirectStatus
	if status < 300 || status > 399 {
		status = http.StatusTemporaryRedirect
	}
	return location, status, true
}

// markUndocumented gives a newly committed order the undocumented status, if the draw says
// so. The caller holds s.mu.
func (s *Sim) markUndocumented(o *order, now time.Time) {
	h := s.hostile
	if !s.draw(h.UndocumentedStatusRate) {
		return
	}
	o.undocumented = cmp.Or(h.UndocumentedStatus, DefaultUndocumentedStatus)
	if h.UndocumentedStatusFor > 0 {
		o.undocumentedUntil = now.Add(h.UndocumentedStatusFor)
	}
}

// statusOf returns the orderStatus the API shows for o now. The caller holds s.mu.
func (s *Sim) statusOf(o *order) string {
	if o.undocumented != "" {
		if o.undocumentedUntil.IsZero() || s.clock().Before(o.undocumentedUntil) {
			return o.undocumented
		}
		o.undocumented = ""
	}
	return o.OrderStatus
}

// orderErrorEnvelope is the answer of Hostile.OrderErrorEnvelopeRate: HTTP 200, envelope
// status 500.
func orderErrorEnvelope() reply {
	return reply{status: http.StatusOK, envStatus: http.StatusInternalServerError, code: CodeSystemError,
		detail: "system error, please try again later"}
}
