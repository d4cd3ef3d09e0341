package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/messages"
)

func zapProblem(p string) zap.Field { return zap.String("problem", p) }

// Dead-letter reasons besides the failure reasons of the contract.
const (
	DeadLetterNoKey         = "no_key"
	DeadLetterMaxDeliveries = "max_deliveries"
)

// deadLetterMsgID deduplicates copies of one request into the dead-letter stream.
func deadLetterMsgID(seq uint64) string { return "dlq/" + strconv.FormatUint(seq, 10) }

// deadLetter copies a request message, with its headers, into the dead-letter stream.
func (w *Worker) deadLetter(ctx context.Context, data []byte, hdr nats.Header, seq, deliveries uint64, reason string) error {
	m := nats.NewMsg(w.subjects.DeadLetter)
	m.Data = data
	for k, vs := range hdr {
		if k == messages.HeaderMsgID {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	m.Header.Set(messages.HeaderDLQReason, reason)
	m.Header.Set(messages.HeaderDLQTime, w.cfg.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(messages.HeaderDLQSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(messages.HeaderDLQDeliveries, strconv.FormatUint(deliveries, 10))
	if key := messages.PeekKey(data); key != "" {
		m.Header.Set(messages.HeaderIdempotencyKey, key)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID(deadLetterMsgID(seq)))
	return err
}

// maxDeliveriesAdvisory is the part of JetStream's max-deliveries advisory fulfil reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries moves requests that ran out of deliveries (a worker died during the last
// one) to the dead-letter stream. One worker of the queue group handles each advisory.
func (w *Worker) watchMaxDeliveries(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", messages.StreamRequests, w.cfg.Durable)
	sub, err := nc.QueueSubscribe(subject, "fulfil-dlq", func(msg *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data, &adv); err != nil || adv.StreamSeq == 0 {
			return
		}
		w.moveToDeadLetter(ctx, adv.StreamSeq, adv.Deliveries)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to max-deliveries advisories: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (w *Worker) moveToDeadLetter(ctx context.Context, seq, deliveries uint64) {
	log := w.log.With(zap.Uint64("stream_seq", seq))
	stream, err := w.js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		log.Warn("dead-letter: requests stream", zap.Error(err))
		return
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		log.Debug("dead-letter: request already gone", zap.Error(err))
		return
	}
	if err := w.deadLetter(ctx, raw.Data, raw.Header, seq, deliveries, DeadLetterMaxDeliveries); err != nil {
		log.Warn("dead-letter: copy failed; the request stays in the requests stream", zap.Error(err))
		return
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		log.Warn("dead-letter: copied, but not deleted from the requests stream", zap.Error(err))
		return
	}
	log.Warn("request ran out of deliveries; moved to the dead-letter stream", zap.String("idempotency_key", messages.PeekKey(raw.Data)))
}

// DeadLetter is a request in the dead-letter stream.
type DeadLetter struct {
	Seq        uint64 // sequence in the dead-letter stream
	Key        string // idempotency key, if readable
	Reason     string
	Time       time.Time
	RequestSeq uint64 // sequence it had in the requests stream
	Deliveries uint64
	Data       []byte
	Header     nats.Header
}

// ListDeadLetters returns the dead-lettered requests, oldest first; with key set, only its.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, key string) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, messages.StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq != 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and deleted
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		dl := DeadLetter{Seq: seq, Key: raw.Header.Get(messages.HeaderIdempotencyKey), Reason: raw.Header.Get(messages.HeaderDLQReason),
			Data: raw.Data, Header: raw.Header}
		dl.Time, _ = time.Parse(time.RFC3339Nano, raw.Header.Get(messages.HeaderDLQTime))
		dl.RequestSeq, _ = strconv.ParseUint(raw.Header.Get(messages.HeaderDLQSeq), 10, 64)
		dl.Deliveries, _ = strconv.ParseUint(raw.Header.Get(messages.HeaderDLQDeliveries), 10, 64)
		if key == "" || dl.Key == key {
			out = append(out, dl)
		}
	}
	return out, nil
}

// ReplayDeadLetter republishes a dead-lettered request to the requests subject, marked as a
// replay, and removes it from the dead-letter stream. A replayed key that had failed runs
// again from its checkpoint (so an order that exists is found, not placed again); a completed
// key only republishes its outcome. It returns the new request's stream sequence.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, prefix string, dl DeadLetter) (uint64, error) {
	m := nats.NewMsg(messages.SubjectsFor(prefix).Requested)
	m.Data = dl.Data
	for k, vs := range dl.Header {
		switch k {
		case messages.HeaderMsgID, messages.HeaderDLQReason, messages.HeaderDLQTime, messages.HeaderDLQSeq, messages.HeaderDLQDeliveries:
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	m.Header.Set(messages.HeaderReplay, deadLetterMsgID(dl.Seq))
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("replay/%d/%d", dl.Seq, time.Now().UnixNano())))
	if err != nil {
		return 0, fmt.Errorf("replay dead letter %d: %w", dl.Seq, err)
	}
	stream, err := js.Stream(ctx, messages.StreamDeadLetter)
	if err == nil {
		err = stream.DeleteMsg(ctx, dl.Seq)
	}
	if err != nil {
		return ack.Sequence, fmt.Errorf("dead letter %d replayed as request %d, but not removed: %w", dl.Seq, ack.Sequence, err)
	}
	return ack.Sequence, nil
}
