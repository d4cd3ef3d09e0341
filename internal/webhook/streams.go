package webhook

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
)

// StreamDeadLetter holds the events an endpoint did not take within the retry period
// (subject <prefix>.webhook.dead.<endpoint ID>) and those replayed to it
// (<prefix>.webhook.replay.<endpoint ID>).
const StreamDeadLetter = "FULFIL_WEBHOOK_DLQ"

// PriorityGroup is the pinned priority group of every webhook consumer.
const PriorityGroup = "webhook"

// Headers of a dead-lettered (and a replayed) webhook event, besides the event's own.
const (
	HeaderWebhookID  = "Fulfil-Webhook-Id"
	HeaderEndpoint   = "Fulfil-Webhook-Endpoint"
	HeaderHost       = "Fulfil-Webhook-Host"
	HeaderEventSeq   = "Fulfil-Webhook-Event-Seq"
	HeaderAttempts   = "Fulfil-Webhook-Attempts"
	HeaderLastResult = "Fulfil-Webhook-Last-Result"
	HeaderDeadTime   = "Fulfil-Webhook-Dead-Lettered"
)

// Consumer metadata keys.
const (
	metaHost     = "fulfil_webhook_host"
	metaEndpoint = "fulfil_webhook_endpoint"
)

func deadSubject(prefix, id string) string   { return prefix + ".webhook.dead." + id }
func replaySubject(prefix, id string) string { return prefix + ".webhook.replay." + id }

// DeadLetterStreamConfig is the webhook dead-letter stream.
func DeadLetterStreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDeadLetter,
		Description: "fulfil webhook events no endpoint took within the retry period, and their replays",
		Subjects:    []string{deadSubject(cfg.SubjectPrefix, "*"), replaySubject(cfg.SubjectPrefix, "*")},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.DeadLetterMaxAge,
	}
}

// ConsumerConfig is the endpoint's durable consumer on the events stream: explicit acks,
// pinned to one worker at a time, no delivery limit (the retry period bounds the retries), new
// events only (an endpoint added later does not get the stream's history).
func ConsumerConfig(cfg Config, e Endpoint) jetstream.ConsumerConfig {
	cfg = cfg.withDefaults()
	s := messages.SubjectsFor(cfg.SubjectPrefix)
	filter := []string{s.Completed, s.Failed}
	if cfg.Progress {
		filter = []string{s.Progress, s.Completed, s.Failed}
	}
	return consumerConfig(cfg, e, e.ConsumerName(), "fulfil webhooks to "+e.Host, filter, jetstream.DeliverNewPolicy)
}

// ReplayConsumerConfig is the endpoint's durable consumer of replayed dead letters.
func ReplayConsumerConfig(cfg Config, e Endpoint) jetstream.ConsumerConfig {
	cfg = cfg.withDefaults()
	return consumerConfig(cfg, e, e.ConsumerName()+"-replay", "fulfil webhook replays to "+e.Host,
		[]string{replaySubject(cfg.SubjectPrefix, e.ID)}, jetstream.DeliverAllPolicy)
}

func consumerConfig(cfg Config, e Endpoint, name, desc string, filter []string, deliver jetstream.DeliverPolicy) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		Description:    desc,
		FilterSubjects: filter,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  cfg.MaxAckPending,
		DeliverPolicy:  deliver,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroup},
		PinnedTTL:      cfg.PinnedTTL,
		Metadata:       map[string]string{metaHost: e.Host, metaEndpoint: e.ID},
	}
}

// backoff is the delay after the attempt-th failed attempt: FirstRetry doubling up to
// MaxRetry, ±20 % (jitter in [0,1)).
func backoff(cfg Config, attempt int, jitter float64) time.Duration {
	d := cfg.FirstRetry
	for i := 1; i < attempt && d < cfg.MaxRetry; i++ {
		d *= 2
	}
	d = min(d, cfg.MaxRetry)
	return time.Duration(float64(d) * (0.8 + 0.4*jitter))
}
