package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/jsonenc"
	"github.com/fulfil/fulfil/messages"
)

// header is the common part of this delivery's events.
func (d *delivery) header() messages.EventHeader {
	return messages.EventHeader{
		IdempotencyKey: d.key,
		SagaID:         d.sagaID,
		Time:           d.w.cfg.Now().UTC().Truncate(time.Millisecond),
	}
}

// publish encodes ev and publishes it with msgID, waiting for the stream's acknowledgement.
func (d *delivery) publish(ctx context.Context, subject string, ev messages.Event, msgID string) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return d.publishRaw(ctx, subject, ev.EventType(), data, msgID)
}

// publishRaw publishes an encoded event with the contract's headers.
func (d *delivery) publishRaw(ctx context.Context, subject, typ string, data []byte, msgID string) error {
	e := d.eventMsg(subject, typ, data, msgID)
	defer e.free()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := d.w.js.PublishMsg(ctx, &e.msg, jetstream.WithMsgID(msgID))
	return err
}

// eventMsg is an event message and the backing array of its header values, reused: a saga
// publishes several events, and a header map and slices per event showed in the profiles. The
// client encodes the message before its publish returns, so free may follow at once.
type eventMsg struct {
	msg  nats.Msg
	vals [9]string
}

var eventMsgs = sync.Pool{New: func() any { return &eventMsg{msg: nats.Msg{Header: make(nats.Header, 9)}} }}

// free returns e to the pool; e must not be used afterwards.
func (e *eventMsg) free() {
	e.msg.Data = nil
	clear(e.vals[:])
	eventMsgs.Put(e)
}

// eventMsg builds an event message with the contract's headers, Nats-Msg-Id included; free it
// once published. Each header value is its own one-element slice of e.vals.
func (d *delivery) eventMsg(subject, typ string, data []byte, msgID string) *eventMsg {
	e := eventMsgs.Get().(*eventMsg)
	h := e.msg.Header
	clear(h)
	n := 0
	set := func(k, v string) {
		e.vals[n] = v
		h[k] = e.vals[n : n+1 : n+1]
		n++
	}
	set(messages.HeaderMsgID, msgID)
	set(messages.HeaderIdempotencyKey, d.key)
	set(messages.HeaderRequestSeq, d.seqText)
	set(messages.HeaderCESpecVersion, messages.CESpecVersion)
	set(messages.HeaderCEType, typ)
	set(messages.HeaderCESource, messages.CESource)
	set(messages.HeaderCEID, msgID)
	set(messages.HeaderCETime, d.w.cfg.Now().UTC().Format(time.RFC3339Nano))
	if d.trace != "" {
		set(messages.HeaderTraceParent, d.trace)
	}
	e.msg.Subject, e.msg.Data = subject, data
	return e
}

// progress publishes a progress event as a plain NATS publish: the events stream stores it (and
// drops a duplicate by its Nats-Msg-Id), and it reaches the stream before this delivery's result
// event, which goes over the same connection later. Progress events are best effort: no
// acknowledgement is awaited, so a stream that is unavailable at that moment misses one, while
// result events are always confirmed.
func (d *delivery) progress(step, status string, attempt int, message string) {
	if status == messages.StatusRetrying {
		d.w.cfg.Metrics.StepRetry(step)
	}
	ev := messages.Progress{EventHeader: d.header(), Step: step, Status: status, Attempt: attempt, Message: message}
	ev.Type = messages.TypeProgress
	buf := progressBufs.Get().(*[]byte)
	defer progressBufs.Put(buf)
	data, err := appendProgress((*buf)[:0], &ev)
	if err != nil {
		return
	}
	*buf = data
	msgID := progressMsgID(d.key, step, status, attempt, d.num)
	e := d.eventMsg(d.w.subjects.Progress, messages.TypeProgress, data, msgID)
	defer e.free()
	// The client copies the message to its buffer before PublishMsg returns: buf and e are
	// free again.
	if err := d.w.js.Conn().PublishMsg(&e.msg); err != nil {
		d.log.Debug("progress event not published", zap.String("step", step), zap.Error(err))
	}
}

// progressBufs holds the buffers progress events are encoded into.
var progressBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendProgress appends ev's JSON to b, byte for byte as json.Marshal encodes it, without
// reflection: a saga publishes several progress events.
func appendProgress(b []byte, ev *messages.Progress) ([]byte, error) {
	b = append(b, `{"type":`...)
	b = jsonenc.AppendString(b, ev.Type)
	b = append(b, `,"idempotencyKey":`...)
	b = jsonenc.AppendString(b, ev.IdempotencyKey)
	b = append(b, `,"sagaId":`...)
	b = jsonenc.AppendString(b, ev.SagaID)
	b = append(b, `,"time":`...)
	b, err := jsonenc.AppendTime(b, ev.Time)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"step":`...)
	b = jsonenc.AppendString(b, ev.Step)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, ev.Status)
	if ev.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(ev.Attempt), 10)
	}
	if ev.Message != "" {
		b = append(b, `,"message":`...)
		b = jsonenc.AppendString(b, ev.Message)
	}
	return append(b, '}'), nil
}
