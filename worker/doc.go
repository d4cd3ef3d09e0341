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
// On shutdown Run stops pulling, lets in-flight sagas finish (up to Config.ShutdownTimeout) and
// returns; sagas cut off then are left to redelivery, which resumes them from their checkpoint.
package worker
