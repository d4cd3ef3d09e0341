package worker

import (
	"strconv"

	"github.com/google/uuid"
)

// namespace roots every derived ID; changing it would break deduplication across versions.
var namespace = uuid.MustParse("3b0f8f4e-9f43-5c1e-8d5e-6a2b1f0c7d11")

func derive(parts ...string) string {
	b := make([]byte, 0, 64)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return uuid.NewSHA1(namespace, b).String()
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
