package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// Saga runs purchases against a Partner. A Saga is safe for concurrent use; each Run works on
// its own State.
type Saga struct {
	Partner Partner
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retry bounds the in-process retries of each step.
	Retry RetryPolicy
	// Timer makes the timer that a step waits on between its retries (default: a real timer,
	// as time.NewTimer). Retry.MaxElapsed is measured on Now, so a test that passes a timer
	// which moves its own clock forward by the wait and fires at once runs every backoff,
	// Retry-After and order-list gap in no time, with the intervals the service uses.
	Timer func() backoff.Timer
	// Logger receives debug lines about retries (default: none), unless Run is given one. The
	// worker logs outcomes.
	Logger *zap.Logger
	// ReconcileMargin widens the order-list search window before the first send, to absorb
	// clock skew between fulfil and the partner (default 15 minutes).
	ReconcileMargin time.Duration
	// ReconcilePageSize is the order-list page size while reconciling (default 50).
	ReconcilePageSize int
	// ReconcileMaxPages bounds the pages searched; a window that does not end within them cannot
	// prove that no order exists (default 40).
	ReconcileMaxPages int
	// Hooks receive measurements (optional).
	Hooks Hooks
	// MaxOrderSends bounds how often a send may end without an answer and then be proven absent
	// from the order list before the saga stops with needs_reconciliation instead of sending
	// again (default 5). Refusals with a definite answer (429) do not count.
	MaxOrderSends int
	// MaxRounds bounds the sagas in a concurrent partner round (the lookups, or renewal with
	// activation) at once (default DefaultMaxRounds; negative: unbounded). A saga past it waits
	// before the round starts its goroutines: with thousands of sagas in flight and a partner
	// that serves a few hundred calls at a time, a waiting saga holds one small goroutine
	// instead of one per call, each deep in the partner client.
	MaxRounds int
	// Guard, when set, is asked right before every create-order send whether the account may
	// spend now (a pause, a spend cap). It blocks until the send may go ahead, calling waiting
	// once with a human-readable reason when it has to wait, and returns nil; or it returns an
	// error: ctx's error when the run ends while it waits. Any error puts the purchase back to be
	// retried later; it never fails the purchase.
	Guard func(ctx context.Context, key string, waiting func(reason string)) error
	// Resend decides what happens after a create-order send whose outcome stayed unknown and
	// whose order the order list does not show: ResendAuto (the default) sends again only once
	// the list has shown the order absent twice, ResendAbsentGap apart; ResendNever stops with
	// needs_reconciliation for a human to decide.
	Resend ResendPolicy
	// ResendAbsentGap is how far apart the two order-list searches that must both miss the order
	// are, before an unknown outcome is taken as "no order" (default 5s): order lists can lag.
	ResendAbsentGap time.Duration
	// TracerProvider, when set, makes each step a span (named after the step, child of the span
	// in Run's context), with the partner calls' spans below it; nil records none and costs
	// nothing. The worker also takes its saga span from it.
	TracerProvider trace.TracerProvider

	roundsOnce sync.Once
	rounds     chan struct{} // nil: unbounded
	tracerOnce sync.Once
	tr         trace.Tracer // nil: no spans
}

// ResendPolicy is Saga.Resend.
type ResendPolicy string

// Resend policies.
const (
	ResendAuto  ResendPolicy = "auto"
	ResendNever ResendPolicy = "never"
)

// ParseResendPolicy parses "auto", "never" or "" (auto).
func ParseResendPolicy(s string) (ResendPolicy, error) {
	switch p := ResendPolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case "", ResendAuto:
		return ResendAuto, nil
	case ResendNever:
		return p, nil
	}
	return "", fmt.Errorf("resend policy %q: want auto or never", s)
}

// DefaultMaxRounds is the default Saga.MaxRounds: the partner client's default calls in flight.
const DefaultMaxRounds = partnerclient.DefaultMaxInFlight

// gate returns the channel whose slots bound the rounds in flight, nil when unbounded.
func (s *Saga) gate() chan struct{} {
	s.roundsOnce.Do(func() {
		switch {
		case s.MaxRounds == 0:
			s.rounds = make(chan struct{}, DefaultMaxRounds)
		case s.MaxRounds > 0:
			s.rounds = make(chan struct{}, s.MaxRounds)
		}
	})
	return s.rounds
}

// gated decorates round, a step that is one concurrent partner round, so that it first waits
// for a slot of Saga.MaxRounds and holds it for exactly the round. The wait is in this frame,
// one below run.run, before round starts its goroutines: with thousands of sagas in flight and
// a partner that serves a few hundred calls at a time, a waiting saga holds one goroutine with a
// shallow stack instead of one per call, each deep in the partner client. A round step does
// nothing but the round (its checkpoint is a step of its own), so no slot is held while a
// checkpoint is written. If ctx ends while it waits, the run is retried later as step.
func (r *run) gated(step string, round func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		g := r.saga.gate()
		if g == nil {
			return round(ctx)
		}
		select {
		case g <- struct{}{}:
		case <-ctx.Done():
			return &RetryError{Step: step, Err: ctx.Err()}
		}
		defer func() { <-g }()
		return round(ctx)
	}
}

func (s *Saga) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// RunOptions are what one Run reports to besides its checkpoints. Every field is optional.
type RunOptions struct {
	// Observer is told about step progress.
	Observer Observer
	// Logger receives this run's lines instead of Saga.Logger, so that the caller can add the
	// request's fields (idempotency key, saga ID) to every line.
	Logger *zap.Logger
}

// logger is the run's logger: o.Logger, else Saga.Logger, else none.
func (s *Saga) logger(o RunOptions) *zap.Logger {
	switch {
	case o.Logger != nil:
		return o.Logger
	case s.Logger != nil:
		return s.Logger
	}
	return zap.NewNop()
}

func (s *Saga) margin() time.Duration {
	if s.ReconcileMargin > 0 {
		return s.ReconcileMargin
	}
	return 15 * time.Minute
}

func (s *Saga) pageSize() int {
	if s.ReconcilePageSize > 0 {
		return s.ReconcilePageSize
	}
	return 50
}

func (s *Saga) maxPages() int {
	if s.ReconcileMaxPages > 0 {
		return s.ReconcileMaxPages
	}
	return 40
}

func (s *Saga) absentGap() time.Duration {
	if s.ResendAbsentGap > 0 {
		return s.ResendAbsentGap
	}
	return DefaultResendAbsentGap
}

// DefaultResendAbsentGap is the default Saga.ResendAbsentGap.
const DefaultResendAbsentGap = 5 * time.Second

// placedWait is how long an order the partner answered without an order number is looked for
// in the order list before a human is asked to find it.
func (s *Saga) placedWait() time.Duration { return 6 * s.absentGap() }

func (s *Saga) maxSends() int {
	if s.MaxOrderSends > 0 {
		return s.MaxOrderSends
	}
	return 5
}

// Hooks receive measurements of a saga, for metrics. Every field is optional and must be quick
// and safe for concurrent use.
type Hooks struct {
	// StepDone is called when a step finished (done or skipped), with its duration in this run.
	StepDone func(step string, d time.Duration)
	// Reconciled is called after each order-list search: adopted, absent, ambiguous or
	// incomplete.
	Reconciled func(result string)
}

func (h Hooks) stepDone(step string, d time.Duration) {
	if h.StepDone != nil {
		h.StepDone(step, d)
	}
}

func (h Hooks) reconciled(result string) {
	if h.Reconciled != nil {
		h.Reconciled(result)
	}
}

// DefaultPONumber is the poNumber sent when the request has none: derived from the idempotency
// key, so that every attempt sends the same body and the order stays findable.
//
// It is "FUL-" and the first 96 bits of SHA-256 of the key in upper-case hex, not a UUIDv5 like
// the worker's saga IDs: it must fit the portal's poNumber, and it cannot change, because a
// worker looks in the order list for the poNumber a previous version sent (the derived IDs and
// why each keeps its scheme are listed in worker/ids.go; TestDefaultPONumberGolden pins it).
func DefaultPONumber(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "FUL-" + strings.ToUpper(hex.EncodeToString(sum[:12]))
}

// Run executes (or resumes) the saga for req, a validated and normalized request. st holds the
// progress so far and is updated in place; cp persists it before each next step; o holds the
// run's observer and logger. Renewal and activation are safe to repeat and run last, so they are not
// checkpointed one by one: the caller stores the final st together with the outcome. Run
// returns nil when the purchase completed, a *Failure for a terminal failure, and any other
// error (a *RetryError, ctx's error, or the checkpointer's error) when the request should be
// retried later. Run does not modify *req.
func (s *Saga) Run(ctx context.Context, req *messages.PurchaseRequest, st *State, cp Checkpointer, o RunOptions) error {
	obs := o.Observer
	if obs == nil {
		obs = ObserverFunc(func(string, string, int, string) {})
	}
	r := &run{saga: s, req: *req, st: st, cp: cp, obs: obs, log: s.logger(o)}
	return asStop(r.run(ctx))
}

// sagaStep is one step of the saga as run sees it.
type sagaStep struct {
	name string
	// done reports that the State says the step is finished; nil: the step always runs (it
	// skips what is done inside).
	done func(*State) bool
	run  func(context.Context) error
}

// steps are the saga's steps, in order. The two concurrent partner rounds are gated (see
// gated); the rest runs one call at a time.
func (r *run) steps() []sagaStep {
	intentStored := func(st *State) bool { return st.Order.Result != nil || st.Order.Intent != nil }
	return []sagaStep{
		// The three lookups, concurrently.
		{name: "lookups", done: intentStored, run: r.gated(messages.StepResolveProduct, r.lookups)},
		// The lookups and the order intent in one checkpoint: create order starts only once
		// they are durable.
		{name: "intent", done: intentStored, run: r.storeIntent},
		// Place the order exactly once, then make sure it succeeded.
		{name: messages.StepCreateOrder, done: func(st *State) bool {
			return st.Order.Result != nil && orderSettled(st.Order.Result.OrderStatus)
		}, run: r.order},
		// The SN of the PBX, when the order's answer lacked it.
		{name: "product_no", run: r.learnProductNo},
		// Auto-renewal and the activation code, concurrently; each skips what the State holds.
		{name: "post_order", done: func(st *State) bool { return st.Renewal != nil && st.Activation != nil },
			run: r.gated(messages.StepEnableRenewal, r.postOrder)},
	}
}

// run runs the steps in order, skipping those the State says are done.
func (r *run) run(ctx context.Context) error {
	for _, s := range r.steps() {
		if s.done != nil && s.done(r.st) {
			continue
		}
		if err := s.run(ctx); err != nil {
			return err
		}
	}
	return nil
}

// run is one execution of the saga.
type run struct {
	saga *Saga
	req  messages.PurchaseRequest
	st   *State
	cp   Checkpointer
	obs  Observer
	log  *zap.Logger // RunOptions.Logger, else Saga.Logger
	mu   sync.Mutex  // serialises State changes and checkpoints of concurrent steps

	// looked holds the lookups' results until storeIntent applies them.
	looked []lookup

	// freshIntent is set when this run has just stored the intent, marked as sent, together
	// with the lookups: the first send needs no reconciliation and no further checkpoint.
	freshIntent bool
}

func (r *run) productID() int64 { return int64(r.req.ProductID) }

// checkpoint persists the state; its error stops the saga.
func (r *run) checkpoint(ctx context.Context) error {
	if err := r.cp.Checkpoint(ctx, r.st); err != nil {
		return stopError{err: err}
	}
	return nil
}

// finish records a finished step, checkpoints, then reports it.
func (r *run) finish(ctx context.Context, step, status string, attempts int, start time.Time, apply func(*State)) error {
	return r.done(ctx, true, step, status, attempts, start, apply)
}

// record records a finished step that is safe to repeat and reports it, without a checkpoint
// of its own: the caller stores the final State with the outcome.
func (r *run) record(ctx context.Context, step, status string, attempts int, start time.Time, apply func(*State)) error {
	return r.done(ctx, false, step, status, attempts, start, apply)
}

func (r *run) done(ctx context.Context, checkpoint bool, step, status string, attempts int, start time.Time, apply func(*State)) error {
	r.mu.Lock()
	apply(r.st)
	r.st.markStep(step, status, attempts, r.saga.now())
	var err error
	if checkpoint {
		err = r.checkpoint(ctx)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.obs.StepProgress(step, status, attempts, "")
	r.saga.Hooks.stepDone(step, r.saga.now().Sub(start))
	return nil
}

// asStop turns a stopError back into the checkpointer's error for the caller.
func asStop(err error) error {
	var se stopError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}
