package webhook

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
)

// DeadLetter is an event in the webhook dead-letter stream.
type DeadLetter struct {
	Seq        uint64 // sequence in the dead-letter stream
	WebhookID  string
	EndpointID string
	Host       string
	Key        string // idempotency key
	Type       string // event type
	EventSeq   uint64 // sequence in the events stream (0 if unknown)
	Attempts   int
	LastResult string
	Time       time.Time // when it was dead-lettered
	Data       []byte
	Header     nats.Header
}

// ListDeadLetters returns the dead-lettered webhook events, oldest first (not those replayed).
// It returns none when the stream does not exist.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, StreamDeadLetter)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook dead-letter stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook dead-letter stream: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq != 0 && seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and deleted
		}
		if err != nil {
			return nil, fmt.Errorf("webhook dead letter %d: %w", seq, err)
		}
		if !strings.Contains(raw.Subject, ".webhook.dead.") {
			continue
		}
		h := raw.Header
		dl := DeadLetter{Seq: seq, WebhookID: h.Get(HeaderWebhookID), EndpointID: h.Get(HeaderEndpoint), Host: h.Get(HeaderHost),
			Key: h.Get(messages.HeaderIdempotencyKey), Type: h.Get(messages.HeaderCEType), LastResult: h.Get(HeaderLastResult),
			Data: raw.Data, Header: h}
		dl.EventSeq, _ = strconv.ParseUint(h.Get(HeaderEventSeq), 10, 64)
		dl.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
		dl.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDeadTime))
		out = append(out, dl)
	}
	return out, nil
}

// ReplayDeadLetter hands a dead letter to its endpoint's replay consumer, which the workers
// deliver with the same webhook-id and a new retry period, and removes it from the dead
// letters. It reports whether a worker is configured for the endpoint (its consumer exists).
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, prefix string, dl DeadLetter) (consumerExists bool, err error) {
	if dl.EndpointID == "" {
		return false, fmt.Errorf("webhook dead letter %d names no endpoint", dl.Seq)
	}
	if prefix == "" {
		prefix = messages.DefaultSubjectPrefix
	}
	m := nats.NewMsg(replaySubject(prefix, dl.EndpointID))
	m.Data = dl.Data
	for k, vs := range dl.Header {
		if k == messages.HeaderMsgID {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("whreplay/%d", dl.Seq))); err != nil {
		return false, fmt.Errorf("replay webhook dead letter %d: %w", dl.Seq, err)
	}
	stream, err := js.Stream(ctx, StreamDeadLetter)
	if err == nil {
		err = stream.DeleteMsg(ctx, dl.Seq)
	}
	if err != nil {
		return false, fmt.Errorf("webhook dead letter %d replayed, but not removed: %w", dl.Seq, err)
	}
	_, cerr := js.Consumer(ctx, StreamDeadLetter, ConsumerPrefix+dl.EndpointID+"-replay")
	return cerr == nil, nil
}

// EndpointStatus is the state of one endpoint's consumer.
type EndpointStatus struct {
	Consumer    string
	EndpointID  string
	Host        string
	Filter      []string
	Pending     uint64 // not yet delivered to a worker
	InRetry     int    // held by a worker: in flight or waiting for a retry
	Redelivered int
	Delivered   uint64 // the last stream sequence delivered
	Pinned      bool   // a worker is pinned
	PinnedSince time.Time
	Replays     uint64 // replayed dead letters not yet delivered
	DeadLetters int
}

// Lag is what the endpoint has not taken yet.
func (s EndpointStatus) Lag() uint64 { return s.Pending + uint64(s.InRetry) + s.Replays }

// Status returns every webhook consumer of the events stream, configured or not, with its dead
// letters counted.
func Status(ctx context.Context, js jetstream.JetStream) ([]EndpointStatus, error) {
	stream, err := js.Stream(ctx, messages.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	dead, err := ListDeadLetters(ctx, js)
	if err != nil {
		return nil, err
	}
	var out []EndpointStatus
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		if !strings.HasPrefix(info.Name, ConsumerPrefix) {
			continue
		}
		s := EndpointStatus{Consumer: info.Name, EndpointID: info.Config.Metadata[metaEndpoint], Host: info.Config.Metadata[metaHost],
			Filter: info.Config.FilterSubjects, Pending: info.NumPending, InRetry: info.NumAckPending, Redelivered: info.NumRedelivered,
			Delivered: info.Delivered.Stream}
		if s.EndpointID == "" {
			s.EndpointID = strings.TrimPrefix(info.Name, ConsumerPrefix)
		}
		for _, g := range info.PriorityGroups {
			if g.PinnedClientID != "" {
				s.Pinned, s.PinnedSince = true, g.PinnedTS
			}
		}
		if rc, err := js.Consumer(ctx, StreamDeadLetter, info.Name+"-replay"); err == nil {
			if ri, err := rc.Info(ctx); err == nil {
				s.Replays = ri.NumPending + uint64(ri.NumAckPending)
			}
		}
		for _, d := range dead {
			if d.EndpointID == s.EndpointID {
				s.DeadLetters++
			}
		}
		out = append(out, s)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return out, nil
}
