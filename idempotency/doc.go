// Package idempotency remembers, per idempotency key, what fulfil did with a purchase request.
//
// Each key has one record in a JetStream key-value bucket (FULFIL_SAGAS by default). The record
// holds the request's fingerprint, the saga's checkpoint (opaque JSON owned by package
// workflow), a lease naming the worker that runs the key, and, once finished, the terminal
// outcome event exactly as first published. It backs the guarantees of the public contract:
//
//   - At most one order per key: a worker runs a key only while it holds the key's lease
//     ([Store.Acquire]), and every write is a compare-and-set on the record's KV revision.
//   - One worker at a time: a live lease held by another owner makes Acquire fail with
//     [ErrLeased]. A crashed worker's lease expires after Config.LeaseTTL; the next Acquire
//     takes the key over and increments the lease epoch.
//   - Fencing: a worker that was paused past its lease and woke up after someone else took
//     over cannot write any more. Its next write finds the revision moved and the lease no
//     longer its own, writes nothing and fails with [ErrLeaseLost].
//   - Replays: a finished key fails Acquire with a [*FinishedError] carrying the stored
//     outcome, so the worker publishes it again instead of calling the partner API.
//   - Conflicts: a key reused with a different request fingerprint fails with [ErrConflict]
//     and the record stays untouched.
//
// # Retention
//
// The requests stream deduplicates on Nats-Msg-Id only within its duplicate window, a few
// minutes. This store is the long-term memory: a record is kept for Config.TTL (default 30
// days) after its last write; the bucket's TTL is the stream's MaxAge. A key whose record has
// expired is forgotten and a request with it would run again and place a new order. Keep TTL
// longer than any producer may retry a purchase.
//
// # Keys
//
// Idempotency keys are 1–128 printable ASCII characters; KV keys allow fewer, so records are
// stored under [EncodeKey] (unpadded URL-safe base64, at most 171 characters), which
// [DecodeKey] reverses.
//
// # Use
//
//	h, err := store.Acquire(ctx, key, sagaID, fingerprint, requestJSON, workerID)
//	var fin *idempotency.FinishedError
//	switch {
//	case errors.As(err, &fin): // republish fin.Record.Outcome
//	case errors.Is(err, idempotency.ErrConflict): // publish failed/conflict
//	case errors.Is(err, idempotency.ErrLeased): // another worker runs it: retry later
//	case err != nil: // transient: retry later
//	}
//	err = h.SaveState(ctx, checkpoint) // after each step; ErrLeaseLost: stop at once
//	err = h.Finish(ctx, idempotency.StatusCompleted, eventType, eventJSON, streamSeq)
package idempotency
