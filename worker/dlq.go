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

// Headers of a dead letter that could not be copied whole: a request near the server's maximum
// payload leaves no room for the dead-letter headers.
const (
	// HeaderDLQTruncated says what was cut: "body" (only the first DeadLetterKeepBytes of the
	// body are kept), or "body,headers" (the request's own headers were dropped too).
	HeaderDLQTruncated = "Fulfil-Dlq-Truncated"
	// HeaderDLQOriginalSize is the size in bytes of the request's body before it was cut.
	HeaderDLQOriginalSize = "Fulfil-Dlq-Original-Size"
)

// DeadLetterKeepBytes is how much of a body too large to be copied whole into the dead-letter
// stream is kept: more than any valid request (messages.MaxRequestBytes), enough to see what
// was sent.
const DeadLetterKeepBytes = messages.MaxRequestBytes

// deadLetterMsgID deduplicates copies of one request into the dead-letter stream.
func deadLetterMsgID(seq uint64) string { return "dlq/" + strconv.FormatUint(seq, 10) }

// deadLetter copies a request message, with its headers, into the dead-letter stream. A copy
// that would exceed the server's maximum payload keeps the headers and the first
// DeadLetterKeepBytes of the body (or, when the headers alone are too large, only fulfil's
// own), marked with HeaderDLQTruncated and HeaderDLQOriginalSize: a request that cannot be
// copied whole must still end, not loop until its last delivery.
func (w *Worker) deadLetter(ctx context.Context, data []byte, hdr nats.Header, seq, deliveries uint64, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	msgID := deadLetterMsgID(seq)
	limit := w.js.Conn().MaxPayload()
	m := w.deadLetterMsg(data, hdr, true, seq, deliveries, reason)
	if limit > 0 && msgSize(m, msgID) > limit {
		m = fitDeadLetter(m, data, w.deadLetterMsg(data, nil, false, seq, deliveries, reason), msgID, limit)
	}
	_, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
	if tooLarge(err) && m.Header.Get(HeaderDLQTruncated) != "body,headers" {
		// A limit below the server's (the stream's maximum message size): keep only fulfil's
		// headers and as much of the body as a small message holds.
		m = fitDeadLetter(m, data, w.deadLetterMsg(data, nil, false, seq, deliveries, reason), msgID, 0)
		_, err = w.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
	}
	return err
}

// deadLetterMsg is the dead-letter copy of a request with all of its body; with withOwn the
// request's own headers are copied too.
func (w *Worker) deadLetterMsg(data []byte, hdr nats.Header, withOwn bool, seq, deliveries uint64, reason string) *nats.Msg {
	m := nats.NewMsg(w.subjects.DeadLetter)
	m.Data = data
	if withOwn {
		for k, vs := range hdr {
			if k == messages.HeaderMsgID {
				continue
			}
			m.Header[k] = append([]string(nil), vs...)
		}
	}
	m.Header.Set(messages.HeaderDLQReason, reason)
	m.Header.Set(messages.HeaderDLQTime, w.cfg.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(messages.HeaderDLQSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(messages.HeaderDLQDeliveries, strconv.FormatUint(deliveries, 10))
	if key := messages.PeekKey(data); key != "" {
		m.Header.Set(messages.HeaderIdempotencyKey, key)
	}
	return m
}

// fitDeadLetter cuts the body of full (the copy with the request's headers) to fit limit; if
// the headers leave no room for DeadLetterKeepBytes, it falls back to bare (fulfil's headers
// only). A limit of 0 means the smallest copy: bare, with the first 4 KiB of the body.
func fitDeadLetter(full *nats.Msg, data []byte, bare *nats.Msg, msgID string, limit int64) *nats.Msg {
	const slack = 64 // the truncation headers' values may grow by a few digits
	keep := func(m *nats.Msg, what string, room int64) *nats.Msg {
		n := min(int64(len(data)), room)
		m.Data = data[:max(n, 0)]
		m.Header.Set(HeaderDLQTruncated, what)
		m.Header.Set(HeaderDLQOriginalSize, strconv.Itoa(len(data)))
		return m
	}
	if limit > 0 {
		room := limit - msgSize(full, msgID) + int64(len(full.Data)) - headerLine(HeaderDLQTruncated, "body,headers") -
			headerLine(HeaderDLQOriginalSize, strconv.Itoa(len(data))) - slack
		if room >= int64(DeadLetterKeepBytes) || room >= int64(len(data)) {
			return keep(full, "body", min(room, int64(DeadLetterKeepBytes)))
		}
		room = limit - msgSize(bare, msgID) + int64(len(bare.Data)) - headerLine(HeaderDLQTruncated, "body,headers") -
			headerLine(HeaderDLQOriginalSize, strconv.Itoa(len(data))) - slack
		return keep(bare, "body,headers", min(room, int64(DeadLetterKeepBytes)))
	}
	return keep(bare, "body,headers", 4<<10)
}

// msgSize is what m counts against the server's maximum payload once published with msgID:
// its body and its headers as the NATS protocol encodes them ("NATS/1.0\r\n", a line per
// value, a blank line).
func msgSize(m *nats.Msg, msgID string) int64 {
	n := int64(len("NATS/1.0\r\n\r\n")) + headerLine(messages.HeaderMsgID, msgID) + int64(len(m.Data))
	for k, vs := range m.Header {
		for _, v := range vs {
			n += headerLine(k, v)
		}
	}
	return n
}

func headerLine(k, v string) int64 { return int64(len(k) + len(": ") + len(v) + len("\r\n")) }

// tooLarge reports whether a publish failed for the message's size.
func tooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum)
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
	// Truncated is set when the request was too large to be copied whole: Data is only the
	// start of its body (HeaderDLQTruncated), and OriginalSize the size of the whole body.
	Truncated    bool
	OriginalSize int
	Data         []byte
	Header       nats.Header
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
		dl.Truncated = raw.Header.Get(HeaderDLQTruncated) != ""
		dl.OriginalSize = len(raw.Data)
		if dl.Truncated {
			dl.OriginalSize, _ = strconv.Atoi(raw.Header.Get(HeaderDLQOriginalSize))
		}
		if key == "" || dl.Key == key {
			out = append(out, dl)
		}
	}
	return out, nil
}

// ReplayDeadLetter republishes a dead-lettered request to the requests subject, marked as a
// replay, and removes it from the dead-letter stream. A replayed key that had failed runs
// again from its checkpoint (so an order that exists is found, not placed again); a completed
// key only republishes its outcome. It returns the new request's stream sequence. A truncated
// dead letter is refused: its body is not the request that was sent.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, prefix string, dl DeadLetter) (uint64, error) {
	if dl.Truncated {
		return 0, fmt.Errorf("dead letter %d: only the first %d of its %d bytes were kept (truncated: the request was too large to copy whole); it cannot be replayed",
			dl.Seq, len(dl.Data), dl.OriginalSize)
	}
	m := nats.NewMsg(messages.SubjectsFor(prefix).Requested)
	m.Data = dl.Data
	for k, vs := range dl.Header {
		switch k {
		case messages.HeaderMsgID, messages.HeaderDLQReason, messages.HeaderDLQTime, messages.HeaderDLQSeq, messages.HeaderDLQDeliveries,
			HeaderDLQTruncated, HeaderDLQOriginalSize:
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
