package testutil

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the test.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	var f fakeTB
	Eventually(&f, time.Minute, func() bool { return calls.Add(1) == 3 })
	if f.failed != "" || calls.Load() != 3 {
		t.Fatalf("failed %q after %d calls, want success after 3", f.failed, calls.Load())
	}
}

func TestEventuallyFailsWithTheMessage(t *testing.T) {
	var f fakeTB
	Eventually(&f, 0, func() bool { return false }, "key %s completed", "k-1")
	if want := "not within 0s: key k-1 completed"; f.failed != want {
		t.Fatalf("failure %q, want %q", f.failed, want)
	}
	f = fakeTB{}
	Eventually(&f, 0, func() bool { return false })
	if want := "not within 0s: condition never held"; f.failed != want {
		t.Fatalf("failure %q, want %q", f.failed, want)
	}
}

func TestPollChecksOnceMoreAtTheEnd(t *testing.T) {
	// A zero timeout still evaluates the condition once.
	if !Poll(0, func() bool { return true }) {
		t.Fatal("Poll(0) did not evaluate the condition")
	}
}
