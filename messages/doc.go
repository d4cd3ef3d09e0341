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
//
// # Headers
//
// Producers publish requests with Nats-Msg-Id set to RequestMsgID(key, body): the idempotency
// key, a colon and the first 32 hex digits of the SHA-256 of the exact body bytes. The
// requests stream then drops only an exact re-send within its duplicate window; any other
// message with the same key reaches a worker, which replays the stored outcome of the same
// purchase or answers a different one with failed / conflict. Every event carries
// Fulfil-Idempotency-Key, Nats-Msg-Id and the CloudEvents attributes ce-specversion, ce-type
// (the event's type string), ce-source, ce-id (equal to Nats-Msg-Id) and ce-time; the Header*
// constants name them.
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
