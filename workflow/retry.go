package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

// RetryPolicy bounds the in-process retries of one step. Zero fields take the defaults.
type RetryPolicy struct {
	InitialInterval time.Duration // default 200ms
	MaxInterval     time.Duration // default 5s
	Multiplier      float64       // default 2
	Jitter          float64       // randomization factor, default 0.5
	MaxElapsed      time.Duration // per step, default 30s
	MaxRetries      uint64        // per step, default 8
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialInterval <= 0 {
		p.InitialInterval = 200 * time.Millisecond
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = 5 * time.Second
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.Jitter <= 0 || p.Jitter > 1 {
		p.Jitter = 0.5
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 30 * time.Second
	}
	if p.MaxRetries == 0 {
		p.MaxRetries = 8
	}
	return p
}

// retryAfterBackOff waits at least the partner's Retry-After before the next attempt.
type retryAfterBackOff struct {
	backoff.BackOff
	after time.Duration
}

func (b *retryAfterBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if d != backoff.Stop && b.after > d {
		d = b.after
	}
	b.after = 0
	return d
}

// clockFunc adapts Saga.now to backoff.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// waiter is an error that asks for at least retryAfter before the next attempt.
type waiter interface {
	error
	retryAfter() time.Duration
}

// stopError marks an error that must end the saga at once (a failed checkpoint).
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

// do runs op, a step of kind k, with backoff until it succeeds, fails with an error that
// stepErrors does not retry in a step of that kind, or the policy runs out. It returns the
// number of attempts, and on exhaustion a *RetryError. The caller maps any other error with
// stepError.
func (r *run) do(ctx context.Context, k stepKind, step string, op func(context.Context) error) (int, error) {
	s, obs := r.saga, r.obs
	canRetry := func(err error) bool { return decide(k, err).retry }
	p := s.Retry.withDefaults()
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = p.InitialInterval
	exp.MaxInterval = p.MaxInterval
	exp.Multiplier = p.Multiplier
	exp.RandomizationFactor = p.Jitter
	exp.MaxElapsedTime = p.MaxElapsed
	exp.Clock = clockFunc(s.now)
	ra := &retryAfterBackOff{BackOff: exp}
	b := backoff.WithContext(backoff.WithMaxRetries(ra, p.MaxRetries), ctx)

	attempt := 0
	var last error
	operation := func() error {
		attempt++
		err := op(ctx)
		if err == nil {
			return nil
		}
		last = err
		var se stopError
		if errors.As(err, &se) || !canRetry(err) {
			return backoff.Permanent(err)
		}
		var pe *partnerclient.Error
		var w waiter
		switch {
		case errors.As(err, &w):
			ra.after = w.retryAfter()
		case errors.As(err, &pe):
			ra.after = pe.RetryAfter
		}
		return err
	}
	notify := func(err error, wait time.Duration) {
		r.log.Debug("step retry", stepFields(step, attempt, err, wait)...)
		retryEvent(ctx, attempt, err, wait)
		if obs != nil {
			obs.StepProgress(step, messages.StatusRetrying, attempt, retryMessage(err))
		}
	}
	var timer backoff.Timer // nil: the package's real timer
	if s.Timer != nil {
		timer = s.Timer()
	}
	err := backoff.RetryNotifyWithTimer(operation, b, notify, timer)
	if err == nil {
		return attempt, nil
	}
	var se stopError
	if errors.As(err, &se) {
		return attempt, err // the caller's Run returns the checkpointer's error
	}
	if ctx.Err() != nil {
		if last == nil {
			last = ctx.Err()
		}
		return attempt, &RetryError{Step: step, Err: fmt.Errorf("%w (last error: %v)", ctx.Err(), last)}
	}
	if !canRetry(err) {
		return attempt, err
	}
	return attempt, &RetryError{Step: step, Err: last}
}

// retryMessage is the progress message of a retry: the error without internals.
func retryMessage(err error) string {
	var pe *partnerclient.Error
	if errors.As(err, &pe) {
		if pe.StatusCode != 0 {
			return fmt.Sprintf("partner answered %d %s", pe.StatusCode, pe.Code)
		}
		return "partner unreachable"
	}
	return err.Error()
}
