// Package worker consumes purchase requests from JetStream and runs each through the saga.
//
// A Worker creates (or updates) what it needs at start-up, idempotently: the requests stream
// (work queue), the events stream, the durable pull consumer and the idempotency bucket. It then
// pulls messages with bounded concurrency (Config.Concurrency sagas in flight, and never more
// messages pulled than free slots; a burst starts through Config.MaxStarting start slots) and
// decides every acknowledgement in one place:
//
//	completed, or an outcome replayed      → result event published, then Ack
//	failed (invalid, conflict, rejected…)  → failed event published, then Term
//	transient trouble, deliveries left     → lease released, NakWithDelay (growing with deliveries)
//	transient trouble, last delivery       → the failure it amounts to (workflow.Terminal), then Term
//	saga still running                     → InProgress every AckWait/3
//
// Result events are published with a Nats-Msg-Id derived from the idempotency key and the
// stream sequence of the request message they answer (see OutcomeMsgID), so a worker that
// publishes twice is deduplicated by the events stream. The terminal outcome is stored in the
// idempotency record before it is published, so a redelivery republishes the very same event.
//
// Every request that ends without a normal outcome (invalid, a reused key, no idempotency key
// at all, or out of deliveries, learnt from the server's max-deliveries advisory) is copied,
// with its headers, into the dead-letter stream (messages.StreamDeadLetter), under a
// Nats-Msg-Id of its stream sequence, so a second copy is deduplicated. A copy too large for
// the server keeps the headers and the first DeadLetterKeepBytes of the body, marked with
// HeaderDLQTruncated and HeaderDLQOriginalSize. ListDeadLetters lists the stream and
// ReplayDeadLetter republishes a copy with messages.HeaderReplay.
//
// Before the saga sends create order it asks Guard, which the worker installs on a saga
// without one: the send waits while the account is paused or a spend cap of the control
// bucket (internal/control) is reached. The request stays in progress and its lease renewed
// meanwhile, its MessageTimeout is suspended, and the wait ends when the worker shuts down.
//
// A full store does not lose work. Every saga checkpoints before its next step, so while the
// idempotency bucket cannot be written no step runs and the request is retried or redelivered;
// CheckStore reports it (for /readyz), probing a store that has not been written for
// StoreProbeAfter. When JetStream recovers (the embedded server restarts it once the disk has
// room, reloading its consumers from disk) Run waits (up to 10 s) for a consumer missing for
// a moment instead of ending, and the sagas resume from their checkpoints.
//
// On shutdown Run stops pulling, lets in-flight sagas finish (up to Config.ShutdownTimeout) and
// returns; sagas cut off then are left to redelivery, which resumes them from their checkpoint.
package worker
