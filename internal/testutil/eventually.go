// Package testutil holds the helpers the tests of several packages share.
package testutil

import (
	"fmt"
	"time"
)

// TB is the part of testing.TB that Eventually uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Eventually calls cond until it returns true and fails t (Fatalf) when it has not within
// timeout. It polls with backoff: first at once, then after 1 ms, doubling up to 100 ms, so a
// condition that holds soon is seen soon and a slow one costs few calls. cond runs on the
// test's goroutine; it must not call t.Fatal itself when it only means "not yet".
//
// msgAndArgs, when given, says what was awaited: a format string and its arguments.
//
// The timeout is the test's patience, not a property under test: make it generous (seconds),
// so that a slow machine is never mistaken for a failure.
func Eventually(t TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("not within %s: %s", timeout, describe(msgAndArgs))
	}
}

// Poll is Eventually without a test: it reports whether cond returned true within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return "condition never held"
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return fmt.Sprint(msgAndArgs...)
}
