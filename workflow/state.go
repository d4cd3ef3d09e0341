package workflow

import (
	"context"
	"encoding/json"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// StateVersion is the version of the State encoding.
const StateVersion = 1

// State is the saga's progress for one idempotency key. Each field is set once its step has
// finished; a nil field means the step has not finished yet. It is JSON-encoded into the
// idempotency record.
type State struct {
	Version    int              `json:"version"`
	Product    *ProductStep     `json:"product,omitempty"`
	Plan       *PlanStep        `json:"plan,omitempty"`
	Billing    *BillingStep     `json:"billing,omitempty"`
	Order      OrderStep        `json:"order"`
	Renewal    *RenewalStep     `json:"renewal,omitempty"`
	Activation *ActivationStep  `json:"activation,omitempty"`
	Steps      map[string]*Step `json:"steps,omitempty"`
}

// Step records when a step finished and how many attempts it took.
type Step struct {
	Status   string    `json:"status"` // done or skipped
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// ProductStep is the resolved target of the purchase.
type ProductStep struct {
	// ProductNo is the SN of the existing PBX; empty for a new license.
	ProductNo string `json:"productNo,omitempty"`
	// PartnerID is the subordinate customer a new license is bought for; 0 for the partner itself.
	PartnerID partnerclient.ID `json:"partnerId,omitempty"`
	// CustomerEmail is the e-mail PartnerID was resolved from.
	CustomerEmail string `json:"customerEmail,omitempty"`
}

// PlanStep is the resolved plan and services.
type PlanStep struct {
	PlanID   partnerclient.ID  `json:"planId"`
	PlanName string            `json:"planName"`
	Services []ResolvedService `json:"services,omitempty"`
}

// ResolvedService is one resolved service line.
type ResolvedService struct {
	ServiceID   partnerclient.ID `json:"serviceId"`
	ServiceName string           `json:"serviceName"`
	Quantity    int              `json:"quantity,omitempty"`
}

// BillingStep is the resolved billing contact.
type BillingStep struct {
	ContactID partnerclient.ID `json:"contactId"`
	Email     string           `json:"email,omitempty"`
}

// OrderStep is the intent and outcome of create order.
type OrderStep struct {
	// Intent is written and checkpointed before the first send, and again before every re-send.
	Intent *OrderIntent `json:"intent,omitempty"`
	// Result is set once the order is known to exist (answered or adopted).
	Result *OrderResult `json:"result,omitempty"`
	// Reconciliations counts order-list searches after unknown outcomes.
	Reconciliations int `json:"reconciliations,omitempty"`
}

// OrderIntent is what was (or is about to be) sent to create order.
type OrderIntent struct {
	PONumber string                     `json:"poNumber"`
	Body     partnerclient.OrderRequest `json:"body"`
	// Sends counts the sends that may have reached the partner (including the one about to go).
	Sends int `json:"sends"`
	// FirstSentAt bounds the reconciliation window: no matching order can be older.
	FirstSentAt time.Time `json:"firstSentAt"`
	LastSentAt  time.Time `json:"lastSentAt"`
	// Unknown is set while a send may have reached the partner without an answer; the next
	// attempt reconciles first.
	Unknown bool `json:"unknown,omitempty"`
	// Absent counts unknown outcomes that reconciliation proved placed no order.
	Absent int `json:"absent,omitempty"`
	// AbsentSince is when the order list first showed no order for the outstanding unknown
	// outcome; a second look at least Saga.ResendAbsentGap later is needed before acting on it.
	AbsentSince time.Time `json:"absentSince,omitzero"`
	// Placed is set when the partner answered success without an order number: the order
	// exists, so it is looked for in the order list and never sent again.
	Placed bool `json:"placed,omitempty"`
	// Answer is the partner's non-success answer to the last send when it was neither a
	// documented refusal nor a server error (an undocumented code): the order is looked for
	// before the answer is believed.
	Answer *PartnerAnswer `json:"answer,omitempty"`
}

// PartnerAnswer is a partner's answer kept for the failure it may become.
type PartnerAnswer struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// Outstanding reports whether a send may have placed an order that is not yet known: its answer
// was lost, was not a documented one, or was a success without an order number.
func (in *OrderIntent) Outstanding() bool { return in != nil && (in.Unknown || in.Placed) }

// OrderResult is the order the saga placed or adopted.
type OrderResult struct {
	OrderNo       string `json:"orderNo"`
	OrderStatus   string `json:"orderStatus"`
	ProductNo     string `json:"productNo"`
	TransactionNo string `json:"transactionNo,omitempty"`
	InstanceID    string `json:"instanceId,omitempty"`
	Adopted       bool   `json:"adopted,omitempty"`
}

// RenewalStep is the outcome of enable_renewal.
type RenewalStep struct {
	Enabled bool `json:"enabled"`
	Skipped bool `json:"skipped,omitempty"`
}

// ActivationStep is the outcome of fetch_activation.
type ActivationStep struct {
	Code         string    `json:"code"`
	GenerateTime time.Time `json:"generateTime,omitempty"`
}

// Done reports whether every step has finished.
func (s *State) Done() bool {
	return s.Product != nil && s.Plan != nil && s.Billing != nil && s.Order.Result != nil &&
		s.Renewal != nil && s.Activation != nil
}

// DecodeState decodes a checkpoint; empty input gives a fresh State.
func DecodeState(b []byte) (*State, error) {
	st := &State{Version: StateVersion}
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Encode returns the JSON of s.
func (s *State) Encode() ([]byte, error) { return json.Marshal(s) }

func (s *State) markStep(step, status string, attempts int, at time.Time) {
	if s.Steps == nil {
		s.Steps = make(map[string]*Step)
	}
	s.Steps[step] = &Step{Status: status, Attempts: attempts, At: at}
}

// Checkpointer durably persists a State; the saga calls it before starting the next step. An
// error stops the saga (for example when another worker took over the key).
type Checkpointer interface {
	Checkpoint(ctx context.Context, s *State) error
}

// Fenced is implemented by a Checkpointer whose writes are guarded by a lease. SendDeadline
// is the time until which this run is still the key's only owner, from its last checkpoint:
// create order is never sent after it, so a run paused past its lease cannot place an order
// after a successor has taken over and reconciled.
type Fenced interface {
	SendDeadline() time.Time
}

// CheckpointFunc adapts a function to Checkpointer.
type CheckpointFunc func(ctx context.Context, s *State) error

// Checkpoint calls f.
func (f CheckpointFunc) Checkpoint(ctx context.Context, s *State) error { return f(ctx, s) }

// Observer is told about step progress; the worker publishes it as progress events. It must not
// block for long.
type Observer interface {
	StepProgress(step, status string, attempt int, message string)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(step, status string, attempt int, message string)

// StepProgress calls f.
func (f ObserverFunc) StepProgress(step, status string, attempt int, message string) {
	f(step, status, attempt, message)
}
