// Package webhook delivers fulfil's events to HTTP endpoints, signed per the Standard Webhooks
// specification (https://www.standardwebhooks.com/): the way out for shops and CRMs that do not
// speak NATS.
//
// Every endpoint has a durable pull consumer of its own on the events stream, named from a hash
// of its URL (ConsumerName), shared by all workers. The consumer is pinned (a JetStream priority
// group with the pinned-client policy): one worker at a time delivers an endpoint's events, and
// another takes over when it stops or goes silent. Inside that worker the events of one
// idempotency key are delivered one after the other, in stream order, while different keys go
// out in parallel (a lane per key).
//
// An event is acknowledged only after the endpoint answered 2xx. Until then the worker holds the
// message (signalling InProgress) and retries with exponential backoff and jitter, for
// RetryPeriod (24 h by default) counted from the time the event was stored; a worker that stops
// hands its held events back to the consumer in order, and one that dies leaves them to
// redelivery. An event still failing at the end of the period is copied to the webhook
// dead-letter stream (FULFIL_WEBHOOK_DLQ), from which List and Replay serve `fulfil webhooks`.
package webhook
