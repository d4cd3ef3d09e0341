package worker

import (
	"crypto/sha1" // UUIDv5 is defined on SHA-1
	"strconv"

	"github.com/google/uuid"
)

// The derived IDs of fulfil, in one place. There are three schemes, and each is what it is
// because of where its value lives; none may change, because each is on the wire or stored and
// deduplication across versions depends on it (TestIDsGolden, TestDefaultPONumberGolden and
// ExampleRequestMsgID pin them):
//
//   - UUIDv5 (uuid.NewSHA1 under namespace, parts joined with NUL), here: the saga ID of a key
//     (SagaID, in every event and idempotency record, and the trace ID of a saga without a
//     traceparent) and the Nats-Msg-Ids of the events the worker publishes (OutcomeMsgID,
//     ReplayMsgID, messageMsgID, progressMsgID). The events contract says a saga ID is a UUID;
//     the Msg-Ids follow suit so that every ID the worker derives comes from one function.
//   - messages.RequestMsgID: the Nats-Msg-Id a producer puts on a request, the key and the
//     first 128 bits of SHA-256 of the body in hex. Producers in any language compute it (the
//     contract and the Node.js example spell it out), so it is plain SHA-256, readable, and
//     starts with the key.
//   - workflow.DefaultPONumber: "FUL-" and the first 96 bits of SHA-256 of the key in upper-case
//     hex. It is sent to the Partner Portal and searched for in its order list after a lost
//     reply, so it must fit the portal's poNumber (short, printable ASCII) and be derivable
//     from the key alone.
//
// Nothing the worker derives is internal only: every ID is either published or stored, so
// there is nothing to unify without breaking deduplication of in-flight work.

// namespace roots every derived ID; changing it would break deduplication across versions.
var namespace = uuid.MustParse("3b0f8f4e-9f43-5c1e-8d5e-6a2b1f0c7d11")

// derive is uuid.NewSHA1(namespace, parts joined with NUL).String(), without the hash's and
// the joined parts' allocations: a saga derives one for each event it publishes.
func derive(parts ...string) string {
	var stack [256]byte
	b := append(stack[:0], namespace[:]...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	sum := sha1.Sum(b)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u.String()
}

// SagaID is the saga ID of an idempotency key: stable for the key, a UUID.
func SagaID(key string) string { return derive("saga", key) }

// OutcomeMsgID is the Nats-Msg-Id of a key's original terminal event of type typ, produced
// by the request message at stream sequence seq. Every run of a key (the first, and each
// dead-letter replay that runs it again) has an outcome of its own that the events stream must
// not drop as a duplicate; a redelivery of the same message keeps the id, so publishing its
// stored outcome again is deduplicated.
func OutcomeMsgID(key, typ string, seq uint64) string {
	return derive("outcome", key, typ, strconv.FormatUint(seq, 10))
}

// ReplayMsgID is the Nats-Msg-Id of an outcome replayed for the request at stream sequence seq.
func ReplayMsgID(key string, seq uint64) string {
	return derive("replay", key, strconv.FormatUint(seq, 10))
}

// messageMsgID is the Nats-Msg-Id of an outcome that belongs to one request message only
// (invalid request, conflict).
func messageMsgID(kind, key string, seq uint64) string {
	return derive(kind, key, strconv.FormatUint(seq, 10))
}

// progressMsgID is the Nats-Msg-Id of a progress event.
func progressMsgID(key, step, status string, attempt int, delivery uint64) string {
	if status != "retrying" {
		return derive("progress", key, step, status)
	}
	return derive("progress", key, step, status, strconv.Itoa(attempt), strconv.FormatUint(delivery, 10))
}
