package partnercheck

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when its tests leave a goroutine behind: a worker, consumer,
// watcher or server that a test started and did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
