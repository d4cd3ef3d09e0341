package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
)

// SelfCheckError lists the existing settings that break fulfil's guarantees.
type SelfCheckError struct {
	Problems []string
}

// Error names every problem and how to repair them.
func (e *SelfCheckError) Error() string {
	return "existing JetStream settings break fulfil's guarantees:\n  - " + strings.Join(e.Problems, "\n  - ") +
		"\nfix them, or start once with --repair (FULFIL_REPAIR=true) to overwrite them with fulfil's settings"
}

// selfCheck inspects what already exists and refuses settings that break the guarantees.
func (w *Worker) selfCheck(ctx context.Context) error {
	var problems []string
	for _, want := range []jetstream.StreamConfig{RequestsStreamConfig(w.cfg), EventsStreamConfig(w.cfg), DeadLetterStreamConfig(w.cfg)} {
		s, err := w.js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("self-check: stream %s: %w", want.Name, err)
		}
		problems = append(problems, checkStream(s.CachedInfo().Config, want)...)
	}
	want := ConsumerConfig(w.cfg)
	c, err := w.js.Consumer(ctx, messages.StreamRequests, want.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return fmt.Errorf("self-check: consumer %s: %w", want.Durable, err)
	default:
		problems = append(problems, checkConsumer(c.CachedInfo().Config, want)...)
	}
	bucket := w.cfg.Idempotency.Bucket
	if bucket == "" {
		bucket = idempotency.DefaultBucket
	}
	kv, err := w.js.KeyValue(ctx, bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return fmt.Errorf("self-check: bucket %s: %w", bucket, err)
	default:
		st, err := kv.Status(ctx)
		if err != nil {
			return fmt.Errorf("self-check: bucket %s: %w", bucket, err)
		}
		problems = append(problems, checkBucket(bucket, st)...)
	}
	if len(problems) == 0 {
		return nil
	}
	if w.cfg.Repair {
		for _, p := range problems {
			w.log.Warn("repairing JetStream setting", zapProblem(p))
		}
		return nil
	}
	return &SelfCheckError{Problems: problems}
}

// checkStream returns what in got breaks the guarantees that want provides.
func checkStream(got, want jetstream.StreamConfig) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, want.Name+": "+fmt.Sprintf(format, args...)) }
	if got.Retention != want.Retention {
		add("retention is %s, want %s (cannot be changed in place: drain and recreate the stream)", got.Retention, want.Retention)
	}
	if got.Storage != jetstream.FileStorage {
		add("storage is %s: requests and events would be lost on a restart", got.Storage)
	}
	for _, s := range want.Subjects {
		if !slices.Contains(got.Subjects, s) {
			add("does not capture subject %s", s)
		}
	}
	if got.Duplicates < MinDuplicateWindow {
		add("duplicate window %s is shorter than %s", got.Duplicates, MinDuplicateWindow)
	}
	if want.Name == messages.StreamRequests {
		if got.MaxAge > 0 && got.MaxAge < 7*24*time.Hour {
			add("max age %s: unprocessed requests would expire", got.MaxAge)
		}
		if got.MaxMsgs > 0 || got.MaxBytes > 0 || got.MaxMsgsPerSubject > 0 {
			add("message or byte limits would discard unprocessed requests")
		}
	}
	return p
}

// checkConsumer returns what in got breaks the guarantees that want provides.
func checkConsumer(got, want jetstream.ConsumerConfig) []string {
	var p []string
	add := func(format string, args ...any) {
		p = append(p, "consumer "+want.Durable+": "+fmt.Sprintf(format, args...))
	}
	if got.AckPolicy != jetstream.AckExplicitPolicy {
		add("ack policy is %s, want explicit", got.AckPolicy)
	}
	if got.MaxDeliver < 2 || got.MaxDeliver > MaxMaxDeliver {
		add("max deliver %d: want 2..%d (unlimited redelivery never ends a poison request)", got.MaxDeliver, MaxMaxDeliver)
	}
	if got.AckWait < time.Second {
		add("ack wait %s is below 1s", got.AckWait)
	}
	if got.FilterSubject != want.FilterSubject && !slices.Contains(got.FilterSubjects, want.FilterSubject) {
		add("filters %q, want %q", got.FilterSubject+strings.Join(got.FilterSubjects, ","), want.FilterSubject)
	}
	if len(got.BackOff) > 0 {
		add("has a BackOff list, which would override the worker's redelivery delays")
	}
	return p
}

// checkBucket returns what in the idempotency bucket breaks the guarantees.
func checkBucket(name string, st jetstream.KeyValueStatus) []string {
	var p []string
	if ttl := st.TTL(); ttl > 0 && ttl < MinKeyRetention {
		p = append(p, fmt.Sprintf("bucket %s: key retention %s is shorter than %s: a purchase could be bought again", name, ttl, MinKeyRetention))
	}
	if info, ok := st.(*jetstream.KeyValueBucketStatus); ok && info.StreamInfo().Config.Storage != jetstream.FileStorage {
		p = append(p, fmt.Sprintf("bucket %s: memory storage loses every key on a restart", name))
	}
	return p
}
