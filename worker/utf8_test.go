package worker_test

import (
	"strings"
	"testing"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

// A name with a broken UTF-8 byte is an invalid request naming the field: nothing reaches the
// partner as U+FFFD, and the key stays free for the corrected request.
func TestInvalidUTF8IsAnInvalidRequestAndLeavesTheKeyFree(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	tests := []struct {
		key, body, field string
	}{
		{"utf8-plan", `{"idempotencyKey":"utf8-plan","plan":{"name":"Ultimate` + "\xff" + ` Plan"},"quantity":1}`, "plan.name"},
		{"utf8-service", `{"idempotencyKey":"utf8-service","plan":{"name":"Ultimate Plan"},"services":[{"name":"Disaster` + "\xc3" + ` Recovery"}],"quantity":1}`, "services[0].name"},
		{"utf8-po", `{"idempotencyKey":"utf8-po","plan":{"name":"Ultimate Plan"},"quantity":1,"poNumber":"PO-` + "\xe2\x82" + `"}`, "poNumber"},
		{"utf8-email", `{"idempotencyKey":"utf8-email","customerEmail":"it` + "\xff" + `@customer.example","plan":{"name":"Ultimate Plan"},"quantity":1}`, "customerEmail"},
	}
	for _, tt := range tests {
		s.publish(tt.body, tt.key)
	}
	for _, tt := range tests {
		f := failed(t, s.waitResults(tt.key, 1)[0])
		if f.Reason != messages.ReasonInvalidRequest || !strings.Contains(f.Message, tt.field+": must be valid UTF-8") {
			t.Errorf("%s: failed = %+v, want invalid_request naming %s", tt.key, f, tt.field)
		}
	}
	if n := len(s.sim.Orders()); n != 0 {
		t.Fatalf("%d orders placed for invalid requests", n)
	}
	// The key was not used up: the corrected request completes.
	s.publish(`{"idempotencyKey":"utf8-plan","plan":{"name":"Ultimate Plan"},"quantity":1}`, "utf8-plan/fixed")
	c := completed(t, s.waitResults("utf8-plan", 2)[1])
	if c.Replayed || c.OrderNo == "" {
		t.Errorf("corrected request: %+v, want a fresh completion", c)
	}
}
