package idempotency

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrConflict means the key was used before with a different request. See ConflictError.
	ErrConflict = errors.New("idempotency: key used with a different request")
	// ErrFinished means the key's saga already ended. See FinishedError.
	ErrFinished = errors.New("idempotency: key already finished")
	// ErrLeased means another owner holds a live lease on the key. See LeasedError.
	ErrLeased = errors.New("idempotency: key leased by another owner")
	// ErrLeaseLost means another owner took the key over; the write was not made.
	ErrLeaseLost = errors.New("idempotency: lease lost")
	// ErrNotFound means the store has no record for the key.
	ErrNotFound = errors.New("idempotency: key not found")
	// ErrInvalidKey means the key is not 1–128 printable ASCII characters.
	ErrInvalidKey = errors.New("idempotency: invalid key")
	// ErrContended means the record kept changing while Acquire or a Handle write retried.
	ErrContended = errors.New("idempotency: record changed concurrently too often")
)

// ConflictError is returned by Acquire when the key's record has a different fingerprint.
// It matches ErrConflict.
type ConflictError struct {
	// Record is the stored record of the first request; it is left untouched.
	Record Record
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q was used with a different request", e.Record.Key)
}

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// FinishedError is returned by Acquire when the key's saga already ended; Record holds the
// stored outcome to publish again. It matches ErrFinished.
type FinishedError struct {
	Record Record
}

func (e *FinishedError) Error() string {
	return fmt.Sprintf("idempotency key %q already %s", e.Record.Key, e.Record.Status)
}

// Is reports whether target is ErrFinished.
func (e *FinishedError) Is(target error) bool { return target == ErrFinished }

// LeasedError is returned by Acquire when another owner holds a live lease on the key.
// It matches ErrLeased.
type LeasedError struct {
	Key     string
	Owner   string
	Expires time.Time
}

func (e *LeasedError) Error() string {
	return fmt.Sprintf("idempotency key %q is leased by %s until %s", e.Key, e.Owner, e.Expires.Format(time.RFC3339Nano))
}

// Is reports whether target is ErrLeased.
func (e *LeasedError) Is(target error) bool { return target == ErrLeased }
