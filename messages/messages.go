package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the contract version of every subject and type in this package.
const Version = "v1"

// DefaultSubjectPrefix is the first token of every subject unless configured otherwise.
const DefaultSubjectPrefix = "fulfil"

// Subject suffixes; a full subject is prefix + "." + suffix (see Subjects).
const (
	suffixRequested = "purchase.requested"
	suffixProgress  = "purchase.progress"
	suffixCompleted = "purchase.completed"
	suffixFailed    = "purchase.failed"
	suffixDLQ       = "dlq.purchase"
)

// Stream names (fixed by the contract; independent of the subject prefix).
const (
	StreamRequests = "FULFIL_REQUESTS"
	StreamEvents   = "FULFIL_EVENTS"
	// StreamDeadLetter holds requests that ended without a normal outcome.
	StreamDeadLetter = "FULFIL_DLQ"
)

// Subjects holds the concrete subject names for one subject prefix.
type Subjects struct {
	Requested string
	Progress  string
	Completed string
	Failed    string
	// DeadLetter is the subject of the dead-letter stream (an addition to the v1 contract).
	DeadLetter string
}

// SubjectsFor returns the subjects under prefix ("" means DefaultSubjectPrefix).
func SubjectsFor(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultSubjectPrefix
	}
	return Subjects{
		Requested:  prefix + "." + suffixRequested,
		Progress:   prefix + "." + suffixProgress,
		Completed:  prefix + "." + suffixCompleted,
		Failed:     prefix + "." + suffixFailed,
		DeadLetter: prefix + "." + suffixDLQ,
	}
}

// Events lists the subjects of the events stream.
func (s Subjects) Events() []string { return []string{s.Progress, s.Completed, s.Failed} }

// Event type strings (the "type" field and the ce-type header).
const (
	TypeCompleted = "purchase.completed"
	TypeFailed    = "purchase.failed"
	TypeProgress  = "purchase.progress"
)

// NATS headers set on events (and read on requests).
const (
	HeaderIdempotencyKey = "Fulfil-Idempotency-Key"
	// HeaderRequestSeq is the stream sequence of the request message an event answers, so a
	// producer can tell its own request's events from those of an earlier one with the same key.
	HeaderRequestSeq    = "Fulfil-Request-Seq"
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderTraceParent   = "traceparent"
	HeaderCESpecVersion = "ce-specversion"
	HeaderCEType        = "ce-type"
	HeaderCESource      = "ce-source"
	HeaderCEID          = "ce-id"
	HeaderCETime        = "ce-time"
	CESpecVersion       = "1.0"
	CESource            = "fulfil"
)

// Step names, in saga order.
const (
	StepResolveProduct  = "resolve_product"
	StepResolvePlan     = "resolve_plan"
	StepResolveBilling  = "resolve_billing"
	StepCreateOrder     = "create_order"
	StepEnableRenewal   = "enable_renewal"
	StepFetchActivation = "fetch_activation"
	// StepValidate names failures found before any step ran (bad JSON, missing fields).
	StepValidate = "validate"
)

// Steps lists the saga steps in order.
var Steps = []string{StepResolveProduct, StepResolvePlan, StepResolveBilling, StepCreateOrder, StepEnableRenewal, StepFetchActivation}

// Progress statuses.
const (
	StatusDone     = "done"
	StatusSkipped  = "skipped"
	StatusRetrying = "retrying"
)

// Reason says why a purchase failed; see the contract's table.
type Reason string

// Failure reasons.
const (
	ReasonInvalidRequest      Reason = "invalid_request"
	ReasonConflict            Reason = "conflict"
	ReasonRejected            Reason = "rejected"
	ReasonExhausted           Reason = "exhausted"
	ReasonNeedsReconciliation Reason = "needs_reconciliation"
	ReasonPostOrderFailed     Reason = "post_order_failed"
)

// Defaults applied by PurchaseRequest.Normalize, and the request limits.
//
// The limits here and in validate.go are the single source of their numbers: the request's
// JSON Schema (schema/purchase-request.v1.json, and through it the OpenAPI document of
// internal/api) and docs/contract.md state them too, and TestSchemaLimits and
// TestContractLimits fail when either disagrees with these constants.
const (
	DefaultProductID = 12
	DefaultYears     = 1
	MaxKeyLength     = 128
	MinQuantity      = 1
	MaxQuantity      = 100000
	MinYears         = 1
	MaxYears         = 5
	// MaxRequestBytes bounds a request message; larger ones are rejected unread.
	MaxRequestBytes = 64 << 10
)

// ID is an identifier that producers may send as a JSON string or number. It is kept as its
// decimal text and never parsed as floating point. It marshals as a JSON string.
type ID string

// UnmarshalJSON accepts "123", 123 and null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(strings.TrimSpace(s))
		return nil
	}
	// A bare JSON number: keep its literal text, but only integers are IDs.
	s := string(b)
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		if _, uerr := strconv.ParseUint(s, 10, 64); uerr != nil {
			return fmt.Errorf("id %s is not an integer or string", s)
		}
	}
	*id = ID(s)
	return nil
}

// String returns the ID's text.
func (id ID) String() string { return string(id) }

// Int64 is an integer that producers may send as a JSON string or number.
type Int64 int64

// UnmarshalJSON accepts 12, "12" and null.
func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*n = Int64(v)
	return nil
}

// Ref names a plan by ID or by name.
type Ref struct {
	ID   ID     `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// ServiceRef names a service by ID or by name, with an optional quantity.
type ServiceRef struct {
	ID       ID     `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Quantity int    `json:"quantity,omitempty"`
}

// ContactRef names a billing contact by ID or by e-mail.
type ContactRef struct {
	ID    ID     `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
}

// PurchaseRequest is the body of a message on the requested subject.
type PurchaseRequest struct {
	IdempotencyKey string       `json:"idempotencyKey"`
	ProductID      Int64        `json:"productId,omitempty"`
	ProductNo      string       `json:"productNo,omitempty"`
	CustomerEmail  string       `json:"customerEmail,omitempty"`
	Plan           *Ref         `json:"plan,omitempty"`
	Services       []ServiceRef `json:"services,omitempty"`
	Quantity       int          `json:"quantity"`
	Years          int          `json:"years,omitempty"`
	BillingContact *ContactRef  `json:"billingContact,omitempty"`
	PONumber       string       `json:"poNumber,omitempty"`
	AutoRenew      *bool        `json:"autoRenew,omitempty"`
}

// Event is implemented by every event type.
type Event interface {
	EventType() string
	Key() string
}

// EventHeader holds the fields every event carries.
type EventHeader struct {
	Type           string    `json:"type"`
	IdempotencyKey string    `json:"idempotencyKey"`
	SagaID         string    `json:"sagaId"`
	Time           time.Time `json:"time"`
}

// EventType returns the event's type string.
func (h EventHeader) EventType() string { return h.Type }

// Key returns the idempotency key the event is about.
func (h EventHeader) Key() string { return h.IdempotencyKey }

// Completed is published on the completed subject when a purchase finished.
type Completed struct {
	EventHeader
	ProductID      int64  `json:"productId"`
	ProductNo      string `json:"productNo"`
	OrderNo        string `json:"orderNo"`
	OrderStatus    string `json:"orderStatus"`
	TransactionNo  string `json:"transactionNo"`
	InstanceID     string `json:"instanceId"`
	AutoRenewal    bool   `json:"autoRenewal"`
	ActivationCode string `json:"activationCode"`
	Replayed       bool   `json:"replayed"`
}

// Failed is published on the failed subject when a purchase cannot complete.
type Failed struct {
	EventHeader
	Step             string `json:"step"`
	Reason           Reason `json:"reason"`
	Message          string `json:"message"`
	PartnerCode      string `json:"partnerCode"`
	PartnerRequestID string `json:"partnerRequestId"`
	OrderNo          string `json:"orderNo"`
	Replayed         bool   `json:"replayed"`
}

// Progress is published on the progress subject when a step finished, was skipped or is
// being retried.
type Progress struct {
	EventHeader
	Step    string `json:"step"`
	Status  string `json:"status"`
	Attempt int    `json:"attempt,omitempty"`
	Message string `json:"message,omitempty"`
}

// Dead-letter headers: why and when a request was dead-lettered, its sequence in the requests
// stream and how often it had been delivered.
const (
	HeaderDLQReason     = "Fulfil-Dlq-Reason"
	HeaderDLQTime       = "Fulfil-Dlq-Time"
	HeaderDLQSeq        = "Fulfil-Dlq-Stream-Seq"
	HeaderDLQDeliveries = "Fulfil-Dlq-Deliveries"
	// HeaderReplay marks a request republished from the dead-letter stream: a key that failed
	// runs again from its checkpoint (a completed key still only replays its outcome).
	HeaderReplay = "Fulfil-Replay"
)
