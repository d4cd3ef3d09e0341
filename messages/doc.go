// Package messages is the v1 wire contract of fulfil: what checkouts, CRMs and operators
// publish and read on NATS. It is a leaf package; every other package speaks to the outside
// through these types.
//
// # Subjects
//
// Subjects are built from a configurable prefix (DefaultSubjectPrefix, "fulfil"); see
// SubjectsFor:
//
//	<prefix>.purchase.requested   stream FULFIL_REQUESTS (work queue)   PurchaseRequest
//	<prefix>.purchase.progress    stream FULFIL_EVENTS                  Progress
//	<prefix>.purchase.completed   stream FULFIL_EVENTS                  Completed
//	<prefix>.purchase.failed      stream FULFIL_EVENTS                  Failed
//	<prefix>.dlq.purchase         stream FULFIL_DLQ                     a copy of a request
//
// The dead-letter subject (Subjects.DeadLetter, stream StreamDeadLetter) is an addition to v1:
// the worker copies there, with its headers, every request that ended without a normal
// outcome (invalid, a reused key, no key, out of deliveries), and `fulfil dlq replay` republishes a
// copy to the requests subject.
//
// # Headers
//
// The Header* constants name every header of the contract.
//
// On a request, producers set Nats-Msg-Id (HeaderMsgID) to RequestMsgID(key, body): the
// idempotency key, a colon and the first 32 hex digits of the SHA-256 of the exact body bytes.
// The requests stream then drops only an exact re-send within its duplicate window; any other
// message with the same key reaches a worker, which replays the stored outcome of the same
// purchase or answers a different one with failed / conflict. Deriving the id from the key
// alone would let the stream drop a conflicting reuse unseen. A request may carry a W3C
// traceparent (HeaderTraceParent); the saga's spans and its events continue that trace.
//
// Every event carries:
//
//	Fulfil-Idempotency-Key   the request's key (HeaderIdempotencyKey)
//	Fulfil-Request-Seq       the requests-stream sequence of the request message the event
//	                         answers (HeaderRequestSeq): a producer reports the outcome of its
//	                         own message, the one whose publish acknowledgement had this sequence
//	Nats-Msg-Id              derived from the key, the event and the request message, so a
//	                         worker that publishes twice is deduplicated by the events stream
//	traceparent              the saga's trace, when it has one
//	ce-specversion, ce-type, ce-source, ce-id, ce-time
//	                         CloudEvents attributes; ce-type is the event's type string and
//	                         ce-id equals Nats-Msg-Id
//
// A dead-letter copy keeps the request's own headers (except Nats-Msg-Id) and adds
// Fulfil-Dlq-Reason (a Reason, or no_key / max_deliveries), Fulfil-Dlq-Time,
// Fulfil-Dlq-Stream-Seq (the request's sequence in the requests stream) and
// Fulfil-Dlq-Deliveries (HeaderDLQ*). A request too large to be copied whole also gets
// Fulfil-Dlq-Truncated ("body", or "body,headers" when its own headers had to go too) and
// Fulfil-Dlq-Original-Size (the body's size in bytes); package worker names those two. A
// request replayed from the dead-letter stream carries Fulfil-Replay (HeaderReplay): a key that
// failed runs again from its checkpoint, a completed key still only replays its outcome.
//
// # Requests
//
// DecodeRequest reads a request body: at most MaxRequestBytes of one JSON object, field names
// matched exactly, unknown fields ignored, IDs as JSON strings or integers (never floating
// point, see ID and Int64). PurchaseRequest.Validate applies every rule of the contract and
// reports all problems at once in a *ValidationError, which matches ErrInvalidRequest.
// PurchaseRequest.Normalize applies defaults and canonical spelling, and
// PurchaseRequest.Fingerprint identifies a purchase so that a reused idempotency key can be
// told apart from a redelivery.
//
// # Events
//
// Every event embeds an EventHeader (type, idempotencyKey, sagaId, time) and implements Event.
// The type strings are TypeCompleted, TypeFailed and TypeProgress; DecodeEvent turns a body
// back into *Completed, *Failed or *Progress.
//
// # Schemas
//
// The JSON Schemas (draft 2020-12) of the four bodies live in the schema directory of this
// package and are embedded: see Schema and SchemaNames. They describe the shape; Validate is
// the authority on what a worker accepts (it also rejects, for example, duplicate services).
//
// # Compatibility
//
// Additions (new optional fields, new event types) keep v1. A breaking change needs v2
// subjects and types served beside these.
package messages
