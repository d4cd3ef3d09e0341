package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/messages"
)

// pullWait is how long one pull request waits on an idle consumer. It is not cut short when
// the runner stops, so that no event is left delivered but never seen.
const pullWait = 2 * time.Second

// fetchBatch is the most events one pull asks for.
const fetchBatch = 64

// runner delivers one consumer's events (an endpoint's events, or its replays) to the endpoint.
type runner struct {
	cfg      Config
	js       jetstream.JetStream
	ep       Endpoint
	stream   string
	name     string
	cons     jetstream.Consumer
	replay   bool
	log      *zap.Logger
	sem      chan struct{}
	tracer   trace.Tracer // nil: no spans
	lanesRun sync.WaitGroup
	pin      string // the pin ID of the last delivery (the run loop's)

	mu       sync.Mutex
	held     map[uint64]*item // by stream sequence
	lanes    map[string]*lane // by idempotency key
	failures int              // failed attempts since the last success
	kick     chan struct{}    // closed when the endpoint answers 2xx again after failures
}

// item is an event held by this worker: in flight, waiting for a retry, or waiting behind an
// earlier event of its key.
type item struct {
	msg      jetstream.Msg // the latest delivery
	seq      uint64
	key      string
	id       string // webhook-id
	stored   time.Time
	attempts int
	last     string // result of the last attempt, e.g. "http 503"
}

// lane is the events of one key, in stream order; only the first is being delivered.
type lane struct {
	items   []*item
	running bool
}

func newRunner(cfg Config, js jetstream.JetStream, e Endpoint, stream, name string, cons jetstream.Consumer, replay bool) *runner {
	r := &runner{
		cfg: cfg, js: js, ep: e, stream: stream, name: name, cons: cons, replay: replay,
		log:  cfg.Logger.With(zap.String("endpoint", e.Host), zap.String("consumer", name)),
		sem:  make(chan struct{}, cfg.Concurrency),
		held: map[uint64]*item{}, lanes: map[string]*lane{}, kick: make(chan struct{}),
	}
	if cfg.TracerProvider != nil {
		r.tracer = cfg.TracerProvider.Tracer(TracerName)
	}
	return r
}

func (r *runner) run(ctx context.Context) {
	bg, stopBG := context.WithCancel(ctx)
	var bgDone sync.WaitGroup
	bgDone.Add(1)
	go func() { defer bgDone.Done(); r.keepAlive(bg) }()
	failures := 0
	// Settling: after a start, and whenever this worker may have lost its pin, the first
	// deliveries can be another worker's events handed back or redelivered, which the server
	// does not always send in stream order. Lanes wait until those are all in and sorted: until
	// a first delivery arrives (the server sends every redelivery before any new event), a
	// pull comes back empty, or PinnedTTL has passed.
	settling, settleUntil := true, time.Now().Add(r.cfg.PinnedTTL)
	for ctx.Err() == nil {
		batch, err := r.cons.Fetch(fetchBatch, jetstream.FetchMaxWait(pullWait), jetstream.FetchPriorityGroup(PriorityGroup))
		if err == nil {
			got := 0
			for msg := range batch.Messages() {
				got++
				if pin := msg.Headers().Get("Nats-Pin-Id"); pin != "" && pin != r.pin {
					// Newly pinned: what the previous worker held comes first.
					r.pin = pin
					settling, settleUntil = true, time.Now().Add(r.cfg.PinnedTTL)
				}
				fresh := r.accept(ctx, msg, !settling)
				if settling && (fresh || time.Now().After(settleUntil)) {
					settling = false
					r.startLanes(ctx)
				}
			}
			if settling && (got == 0 || time.Now().After(settleUntil)) {
				settling = false
				r.startLanes(ctx)
			}
			err = batch.Error()
		}
		if errors.Is(err, jetstream.ErrPinIDMismatch) && !settling {
			settling, settleUntil = true, time.Now().Add(r.cfg.PinnedTTL)
		}
		if errors.Is(err, jetstream.ErrPinIDMismatch) {
			settling = true
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrPinIDMismatch) {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		delay := min(250*time.Millisecond<<min(failures, 5), 5*time.Second)
		failures++
		r.log.Warn("pulling webhook events failed; trying again", zap.Error(err), zap.Duration("in", delay))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	r.lanesRun.Wait()
	stopBG()
	bgDone.Wait()
	r.release()
}

// accept holds a delivered event in its key's lane, in stream order, and reports whether it
// was a first delivery. With start it starts the lane unless it runs; otherwise startLanes
// does.
func (r *runner) accept(ctx context.Context, msg jetstream.Msg, start bool) (fresh bool) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Warn("webhook event without JetStream metadata; left to redelivery", zap.Error(err))
		return false
	}
	seq := meta.Sequence.Stream
	r.mu.Lock()
	defer r.mu.Unlock()
	if it, ok := r.held[seq]; ok {
		it.msg = msg // redelivered while held: keep the newest delivery
		return meta.NumDelivered == 1
	}
	h := msg.Headers()
	it := &item{msg: msg, seq: seq, key: h.Get(messages.HeaderIdempotencyKey), id: webhookID(h, r.stream, seq), stored: meta.Timestamp}
	r.held[seq] = it
	ln := r.lanes[it.key]
	if ln == nil {
		ln = &lane{}
		r.lanes[it.key] = ln
	}
	i, _ := slices.BinarySearchFunc(ln.items, seq, func(x *item, s uint64) int { return cmpUint(x.seq, s) })
	if i == 0 && ln.running && len(ln.items) > 0 {
		// The first is in flight: an earlier event that comes back this late (from a worker
		// that lost its pin while alive) can only go next.
		i = 1
	}
	ln.items = slices.Insert(ln.items, i, it)
	if start && !ln.running {
		ln.running = true
		r.lanesRun.Add(1)
		go r.runLane(ctx, it.key, ln)
	}
	return meta.NumDelivered == 1
}

// startLanes starts the lane of every key with events and no running lane.
func (r *runner) startLanes(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, ln := range r.lanes {
		if !ln.running && len(ln.items) > 0 {
			ln.running = true
			r.lanesRun.Add(1)
			go r.runLane(ctx, key, ln)
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// webhookID is the event's stable id: the dead letter's record of it, else its Nats-Msg-Id,
// else its place in the stream.
func webhookID(h nats.Header, stream string, seq uint64) string {
	if id := h.Get(HeaderWebhookID); id != "" {
		return id
	}
	if id := h.Get(messages.HeaderMsgID); id != "" {
		return id
	}
	return fmt.Sprintf("%s-%d", stream, seq)
}

// runLane delivers a key's events one after the other until none is left or the runner stops.
func (r *runner) runLane(ctx context.Context, key string, ln *lane) {
	defer r.lanesRun.Done()
	for {
		r.mu.Lock()
		if len(ln.items) == 0 || ctx.Err() != nil {
			ln.running = false
			if len(ln.items) == 0 {
				delete(r.lanes, key)
			}
			r.mu.Unlock()
			return
		}
		it := ln.items[0]
		r.mu.Unlock()
		if !r.deliver(ctx, it) {
			r.mu.Lock()
			ln.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		ln.items = ln.items[1:]
		delete(r.held, it.seq)
		r.mu.Unlock()
	}
}

// deliver sends it until the endpoint answers 2xx (then acknowledges it) or its retry period is
// over (then dead-letters it), and reports true; false when the runner stopped first.
func (r *runner) deliver(ctx context.Context, it *item) bool {
	deadline := it.stored.Add(r.cfg.RetryPeriod)
	for {
		if ctx.Err() != nil {
			return false
		}
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		res, retryAfter := r.attempt(it)
		<-r.sem
		if res == metrics.WebhookOK {
			r.ack(it)
			r.succeeded()
			return true
		}
		kick := r.failed()
		now := r.cfg.Now()
		if !now.Before(deadline) {
			if r.deadLetter(ctx, it) {
				return true
			}
			select {
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			continue
		}
		delay := max(backoff(r.cfg, it.attempts, rand.Float64()), retryAfter)
		delay = min(delay, deadline.Sub(now))
		r.log.Debug("webhook delivery failed; retrying", zap.String("webhook_id", it.id), zap.String("result", it.last),
			zap.Int("attempt", it.attempts), zap.Duration("in", delay))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-kick:
			t.Stop()
			// The endpoint answers again: retry soon, spread over a moment.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(250 * time.Millisecond)))):
			case <-ctx.Done():
			}
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// attempt POSTs the event once and returns the result (a metrics.Webhook* value) and, for a
// 429 or 503 with Retry-After, the delay the endpoint asked for (at most MaxRetry).
func (r *runner) attempt(it *item) (string, time.Duration) {
	it.attempts++
	r.mu.Lock()
	msg := it.msg
	r.mu.Unlock()
	body := msg.Data()
	now := r.cfg.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.ep.URL, bytes.NewReader(body))
	if err != nil {
		it.last = "bad request: " + scrubURL(err)
		r.cfg.Metrics.Delivery(r.ep.Host, metrics.WebhookNetwork, -1)
		return metrics.WebhookNetwork, 0
	}
	h := msg.Headers()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fulfil-webhook/1")
	req.Header.Set(HeaderID, it.id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, SignatureHeader(r.cfg.Secrets, it.id, now, body))
	for _, k := range []string{messages.HeaderIdempotencyKey, messages.HeaderRequestSeq, messages.HeaderTraceParent} {
		if v := h.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	if v := h.Get(messages.HeaderCEType); v != "" {
		req.Header.Set("Fulfil-Event-Type", v)
	}
	// With tracing on, the POST is a span below the event's trace context, and carries its own.
	span := tracing.StartHTTPClientSpan(r.tracer, req, SpanDelivery, h.Get(messages.HeaderTraceParent))
	if span != nil {
		span.SetAttributes(attribute.String("fulfil.webhook.id", it.id), attribute.Int("fulfil.webhook.attempt", it.attempts),
			attribute.String("fulfil.event_type", h.Get(messages.HeaderCEType)))
	}
	start := time.Now()
	resp, err := r.cfg.Client.Do(req)
	took := time.Since(start)
	if span != nil {
		var serr error
		status := 0
		if err != nil {
			serr = errors.New(scrubURL(err))
		} else {
			status = resp.StatusCode
		}
		tracing.EndHTTPClientSpan(span, status, serr)
	}
	if err != nil {
		it.last = "network: " + scrubURL(err)
		r.cfg.Metrics.Delivery(r.ep.Host, metrics.WebhookNetwork, took)
		return metrics.WebhookNetwork, 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	res := classify(resp.StatusCode)
	it.last = "http " + strconv.Itoa(resp.StatusCode)
	r.cfg.Metrics.Delivery(r.ep.Host, res, took)
	var retryAfter time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = min(time.Duration(s)*time.Second, r.cfg.MaxRetry)
		}
	}
	if res != metrics.WebhookOK && res != metrics.WebhookServerError {
		// 4xx other than 408 and 429, and redirects, are retried too (the receiver may be
		// misconfigured), but said louder.
		r.log.Warn("webhook endpoint refused an event; retrying", zap.String("webhook_id", it.id), zap.String("result", it.last),
			zap.Int("attempt", it.attempts))
	}
	return res, retryAfter
}

// classify maps an HTTP status to a delivery result.
func classify(status int) string {
	switch {
	case status >= 200 && status < 300:
		return metrics.WebhookOK
	case status >= 300 && status < 400:
		return metrics.WebhookRedirect
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return metrics.WebhookServerError
	}
	return metrics.WebhookClientError
}

// scrubURL is err without the request's URL, which may hold a token.
func scrubURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}

// ack acknowledges a delivered event and waits for the server, so that the next event of its
// key goes out only once this one will not come back.
func (r *runner) ack(it *item) {
	r.mu.Lock()
	msg := it.msg
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		r.log.Warn("webhook delivered, but its acknowledgement failed; it may be delivered again with the same webhook-id",
			zap.String("webhook_id", it.id), zap.Error(err))
	}
}

func (r *runner) succeeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures = 0
		close(r.kick)
		r.kick = make(chan struct{})
	}
}

// failed counts a failure and returns the channel closed at the next success.
func (r *runner) failed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	return r.kick
}

// deadLetter copies the event into the dead-letter stream, then acknowledges it. It reports
// false when the copy failed (the event stays held and is tried again).
func (r *runner) deadLetter(ctx context.Context, it *item) bool {
	r.mu.Lock()
	msg := it.msg
	r.mu.Unlock()
	m := nats.NewMsg(deadSubject(r.cfg.SubjectPrefix, r.ep.ID))
	m.Data = msg.Data()
	for k, vs := range msg.Headers() {
		if k == messages.HeaderMsgID || k == "Nats-Expected-Stream" {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	m.Header.Set(HeaderWebhookID, it.id)
	m.Header.Set(HeaderEndpoint, r.ep.ID)
	m.Header.Set(HeaderHost, r.ep.Host)
	if !r.replay {
		m.Header.Set(HeaderEventSeq, strconv.FormatUint(it.seq, 10))
	}
	m.Header.Set(HeaderAttempts, strconv.Itoa(it.attempts))
	m.Header.Set(HeaderLastResult, it.last)
	m.Header.Set(HeaderDeadTime, r.cfg.Now().UTC().Format(time.RFC3339Nano))
	msgID := fmt.Sprintf("whdlq/%s/%s/%d", r.ep.ID, r.stream, it.seq)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, m, jetstream.WithMsgID(msgID)); err != nil {
		r.log.Warn("webhook retry period over, but the dead-letter copy failed; trying again", zap.String("webhook_id", it.id), zap.Error(err))
		return false
	}
	r.cfg.Metrics.Delivery(r.ep.Host, metrics.WebhookDeadLetter, -1)
	r.log.Warn("webhook retry period over: event moved to the dead-letter stream", zap.String("webhook_id", it.id),
		zap.String("idempotency_key", it.key), zap.Int("attempts", it.attempts), zap.String("result", it.last),
		zap.Duration("retry_period", r.cfg.RetryPeriod))
	r.ack(it)
	return true
}

// keepAlive keeps the held events in progress, in stream order (so that a dead worker's events
// are redelivered in that order), and refreshes the lag gauge, until ctx ends.
func (r *runner) keepAlive(ctx context.Context) {
	progress := time.NewTicker(max(r.cfg.AckWait/3, 100*time.Millisecond))
	defer progress.Stop()
	lag := time.NewTicker(r.cfg.LagInterval)
	defer lag.Stop()
	r.updateLag(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-progress.C:
			for _, m := range r.heldMsgs() {
				_ = m.InProgress()
			}
		case <-lag.C:
			r.updateLag(ctx)
		}
	}
}

func (r *runner) updateLag(ctx context.Context) {
	if r.replay {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := r.cons.Info(ictx)
	if err != nil {
		return
	}
	r.cfg.Metrics.Lag(r.ep.Host, info.NumPending+uint64(info.NumAckPending))
}

// heldMsgs returns the latest delivery of every held event, in stream order.
func (r *runner) heldMsgs() []jetstream.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	seqs := make([]uint64, 0, len(r.held))
	for s := range r.held {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	out := make([]jetstream.Msg, len(seqs))
	for i, s := range seqs {
		out[i] = r.held[s].msg
	}
	return out
}

// release hands the held events back to the consumer, in stream order, and unpins this worker
// so that another can take over at once.
func (r *runner) release() {
	msgs := r.heldMsgs()
	r.mu.Lock()
	r.held = map[uint64]*item{}
	r.lanes = map[string]*lane{}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One at a time, each confirmed by the server, so that they queue for redelivery in this
	// order before another worker is pinned.
	for _, m := range msgs {
		if _, err := r.js.Conn().RequestWithContext(ctx, m.Reply(), []byte("-NAK")); err != nil {
			_ = m.Nak()
		}
	}
	if s, err := r.js.Stream(ctx, r.stream); err == nil {
		_ = s.UnpinConsumer(ctx, r.name, PriorityGroup)
	}
	if len(msgs) > 0 {
		r.log.Info("webhook events handed back for another worker", zap.Int("events", len(msgs)))
	}
}
