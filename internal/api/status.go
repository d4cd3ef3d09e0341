package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// Status of a purchase, as GET /v1/purchases/{key} and `fulfil status --json` show it.
const (
	// StatusAccepted: the request is in the requests stream; no worker has taken it yet.
	StatusAccepted = "accepted"
	// StatusRunning: a worker runs the saga (or it waits for its next delivery).
	StatusRunning = "running"
	// StatusCompleted: terminal success; the order, its activation code and the outcome are shown.
	StatusCompleted = "completed"
	// StatusFailed: terminal failure; the outcome says why.
	StatusFailed = "failed"
)

// Step statuses besides the progress statuses done and skipped.
const (
	StepPending = "pending"
	StepFailed  = "failed"
)

// Purchase is the state of one idempotency key's purchase.
type Purchase struct {
	IdempotencyKey string `json:"idempotencyKey"`
	SagaID         string `json:"sagaId"`
	Status         string `json:"status"`
	// AcceptedAt is when the HTTP intake accepted it (absent for a request published to NATS).
	AcceptedAt *time.Time `json:"acceptedAt,omitempty"`
	// CreatedAt is when a worker first took the key; UpdatedAt its record's last change.
	CreatedAt  *time.Time `json:"createdAt,omitempty"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
	Deliveries int        `json:"deliveries"`
	// Steps are the saga's steps in order.
	Steps []Step `json:"steps"`
	// Order is the order intent and, once it exists, the order.
	Order *Order `json:"order,omitempty"`
	// AutoRenewal is set once enable_renewal has finished.
	AutoRenewal *bool `json:"autoRenewal,omitempty"`
	// ActivationCode is set when the purchase completed.
	ActivationCode string `json:"activationCode,omitempty"`
	// Outcome is the result event (purchase.completed or purchase.failed) as first published.
	Outcome json.RawMessage `json:"outcome,omitempty"`
	Links   Links           `json:"links"`
}

// Step is one saga step.
type Step struct {
	Name string `json:"name"`
	// Status is done, skipped, failed (the step a failed outcome names) or pending.
	Status   string     `json:"status"`
	Attempts int        `json:"attempts,omitempty"`
	At       *time.Time `json:"at,omitempty"`
}

// Order is the create-order intent and result.
type Order struct {
	// PONumber is the poNumber sent with the order: look it up in the Partner Portal.
	PONumber string `json:"poNumber,omitempty"`
	// Sends counts the create-order sends that may have reached the partner.
	Sends int `json:"sends"`
	// OutcomeUnknown is true while a send's outcome is not known (reconciliation pending).
	OutcomeUnknown bool   `json:"outcomeUnknown"`
	OrderNo        string `json:"orderNo,omitempty"`
	OrderStatus    string `json:"orderStatus,omitempty"`
	ProductNo      string `json:"productNo,omitempty"`
	TransactionNo  string `json:"transactionNo,omitempty"`
	InstanceID     string `json:"instanceId,omitempty"`
	// Adopted is true when the order was found in the order list after an unknown outcome.
	Adopted bool `json:"adopted"`
}

// Links are the purchase's URLs, relative to the API's root.
type Links struct {
	Self string `json:"self"`
}

// PurchasePath is the path of a key's purchase: /v1/purchases/ and the path-escaped key.
func PurchasePath(key string) string { return "/v1/purchases/" + url.PathEscape(key) }

// FromRecord returns the purchase an idempotency record describes.
func FromRecord(rec idempotency.Record) (Purchase, error) {
	st, err := workflow.DecodeState(rec.State)
	if err != nil {
		return Purchase{}, fmt.Errorf("decode the checkpoint of %q: %w", rec.Key, err)
	}
	p := Purchase{
		IdempotencyKey: rec.Key,
		SagaID:         rec.SagaID,
		Status:         StatusRunning,
		CreatedAt:      timePtr(rec.CreatedAt),
		UpdatedAt:      timePtr(rec.UpdatedAt),
		Deliveries:     rec.Deliveries,
		Links:          Links{Self: PurchasePath(rec.Key)},
	}
	failedStep := ""
	switch rec.Status {
	case idempotency.StatusCompleted:
		p.Status = StatusCompleted
	case idempotency.StatusFailed:
		p.Status = StatusFailed
		var f messages.Failed
		if json.Unmarshal(rec.Outcome, &f) == nil {
			failedStep = f.Step
		}
	}
	if len(rec.Outcome) > 0 && rec.Finished() {
		p.Outcome = json.RawMessage(rec.Outcome)
	}
	p.Steps = make([]Step, len(messages.Steps))
	for i, name := range messages.Steps {
		p.Steps[i] = Step{Name: name, Status: StepPending}
		if s := st.Steps[name]; s != nil {
			p.Steps[i] = Step{Name: name, Status: s.Status, Attempts: s.Attempts, At: timePtr(s.At)}
		} else if name == failedStep {
			p.Steps[i].Status = StepFailed
		}
	}
	if in, res := st.Order.Intent, st.Order.Result; in != nil || res != nil {
		o := &Order{}
		if in != nil {
			o.PONumber, o.Sends, o.OutcomeUnknown = in.PONumber, in.Sends, in.Outstanding()
		}
		if res != nil {
			o.OrderNo, o.OrderStatus, o.ProductNo = res.OrderNo, res.OrderStatus, res.ProductNo
			o.TransactionNo, o.InstanceID, o.Adopted = res.TransactionNo, res.InstanceID, res.Adopted
			o.OutcomeUnknown = false
		}
		p.Order = o
	}
	if st.Renewal != nil {
		on := st.Renewal.Enabled
		p.AutoRenewal = &on
	}
	if p.Status == StatusCompleted {
		var c messages.Completed
		if json.Unmarshal(rec.Outcome, &c) == nil && c.ActivationCode != "" {
			p.ActivationCode = c.ActivationCode
		} else if st.Activation != nil {
			p.ActivationCode = st.Activation.Code
		}
	}
	return p, nil
}

// fromIntake returns the purchase of a request the intake accepted and no worker has taken yet.
func fromIntake(ent IntakeEntry, sagaID string) Purchase {
	p := Purchase{
		IdempotencyKey: ent.Key,
		SagaID:         sagaID,
		Status:         StatusAccepted,
		AcceptedAt:     timePtr(ent.AcceptedAt),
		Links:          Links{Self: PurchasePath(ent.Key)},
	}
	p.Steps = make([]Step, len(messages.Steps))
	for i, name := range messages.Steps {
		p.Steps[i] = Step{Name: name, Status: StepPending}
	}
	return p
}

// Terminal reports whether the purchase has ended.
func (p Purchase) Terminal() bool { return p.Status == StatusCompleted || p.Status == StatusFailed }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ErrNotFound means neither a worker nor the intake knows the key.
var ErrNotFound = errors.New("no purchase under this key")

// Reader reads purchases from the sagas bucket and the intake bucket. It binds them when
// first needed, so it works before any worker has created them. It is safe for concurrent use.
type Reader struct {
	js jetstream.JetStream
	// SagaID derives a key's saga ID (for a purchase only the intake knows).
	SagaID func(key string) string

	mu     sync.Mutex
	sagas  jetstream.KeyValue
	intake *Intake
}

// NewReader returns a Reader on js; sagaID derives a key's saga ID.
func NewReader(js jetstream.JetStream, sagaID func(string) string) *Reader {
	return &Reader{js: js, SagaID: sagaID}
}

// buckets returns the sagas and intake buckets that exist (nil for one that does not).
func (r *Reader) buckets(ctx context.Context) (jetstream.KeyValue, *Intake, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sagas == nil {
		kv, err := r.js.KeyValue(ctx, idempotency.DefaultBucket)
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil, fmt.Errorf("bind bucket %s: %w", idempotency.DefaultBucket, err)
		}
		r.sagas = kv
	}
	if r.intake == nil {
		in, _, err := BindIntake(ctx, r.js)
		if err != nil {
			return nil, nil, err
		}
		r.intake = in
	}
	return r.sagas, r.intake, nil
}

// record returns key's idempotency record; ok is false when there is none.
func (r *Reader) record(ctx context.Context, key string) (rec idempotency.Record, ok bool, err error) {
	sagas, _, err := r.buckets(ctx)
	if err != nil || sagas == nil {
		return rec, false, err
	}
	e, err := sagas.Get(ctx, idempotency.EncodeKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read %s: %w", idempotency.DefaultBucket, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, false, fmt.Errorf("decode the record of %q: %w", key, err)
	}
	return rec, true, nil
}

// Purchase returns the purchase under key: from its idempotency record once a worker has taken
// it, else from the intake. It returns ErrNotFound when neither knows the key (never
// submitted, failed validation, or older than the retention).
func (r *Reader) Purchase(ctx context.Context, key string) (Purchase, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return Purchase{}, ErrNotFound
	}
	rec, ok, err := r.record(ctx, key)
	if err != nil {
		return Purchase{}, err
	}
	if ok {
		return FromRecord(rec)
	}
	_, intake, err := r.buckets(ctx)
	if err != nil || intake == nil {
		return Purchase{}, errors.Join(err, ErrNotFound)
	}
	ent, _, err := intake.get(ctx, key)
	if errors.Is(err, errNoEntry) {
		return Purchase{}, ErrNotFound
	}
	if err != nil {
		return Purchase{}, err
	}
	return fromIntake(ent, r.SagaID(key)), nil
}

// Wait returns the purchase under key once it has ended, or its state when ctx ends; the error
// is ctx's only if not even the state could be read. It watches the key's record, so it
// answers as soon as the worker stores the outcome.
func (r *Reader) Wait(ctx context.Context, key string) (Purchase, error) {
	p, err := r.Purchase(ctx, key)
	if err != nil || p.Terminal() {
		return p, err
	}
	for ctx.Err() == nil {
		sagas, _, err := r.buckets(ctx)
		if err != nil || sagas == nil {
			// No worker has created the sagas bucket yet: look again in a while.
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		} else {
			r.watch(ctx, sagas, key)
		}
		if q, err := r.Purchase(context.WithoutCancel(ctx), key); err == nil {
			p = q
			if p.Terminal() {
				return p, nil
			}
		}
	}
	return p, nil
}

// watch returns when key's record has ended, when its watcher stops, or when ctx ends.
func (r *Reader) watch(ctx context.Context, sagas jetstream.KeyValue, key string) {
	// The watcher's subscription lives until its context ends, not only until Stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := sagas.Watch(ctx, idempotency.EncodeKey(key), jetstream.IgnoreDeletes())
	if err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the current value has been delivered
			}
			var rec idempotency.Record
			if json.Unmarshal(e.Value(), &rec) == nil && rec.Finished() {
				return
			}
		}
	}
}
