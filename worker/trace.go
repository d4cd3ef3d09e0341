package worker

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/fulfil/fulfil/partnerclient"
)

// childTraceParent returns the W3C traceparent for this delivery's work: the request's trace
// continued with a new parent (span) ID and the caller's flags, or, without a valid incoming
// one, a trace whose ID is the saga ID, so every delivery of one purchase shares a trace. A
// trace of fulfil's own is not marked sampled (flags 00): fulfil records no spans, and a
// sampled traceparent makes the NATS server parse every event's headers for message tracing.
func childTraceParent(incoming, sagaID string) string {
	var span [8]byte
	_, _ = rand.Read(span[:])
	if partnerclient.ValidTraceParent(incoming) {
		p := strings.SplitN(incoming, "-", 4)
		return "00-" + p[1] + "-" + hex.EncodeToString(span[:]) + "-" + p[3][:2]
	}
	traceID := strings.ReplaceAll(sagaID, "-", "")
	if len(traceID) != 32 {
		return ""
	}
	return "00-" + traceID + "-" + hex.EncodeToString(span[:]) + "-00"
}
