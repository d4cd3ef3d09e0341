package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// faultyJS is a real JetStream whose publishes to chosen subjects fail, as they do when the
// stream's leader is gone or the server refuses the write. Everything else (the key-value
// store included) goes to the server untouched.
type faultyJS struct {
	jetstream.JetStream

	mu   sync.Mutex
	fail map[string]bool // subject → publishes fail
}

var errPublishRefused = errors.New("injected: no stream answered the publish")

func (f *faultyJS) failing(subjects ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = map[string]bool{}
	for _, s := range subjects {
		f.fail[s] = true
	}
}

func (f *faultyJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.mu.Lock()
	bad := f.fail[m.Subject]
	f.mu.Unlock()
	if bad {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, errPublishRefused)
	}
	return f.JetStream.PublishMsg(ctx, m, opts...)
}

// ackFailingMsg is a settleMsg whose acknowledgements reach no server.
type ackFailingMsg struct{ *settleMsg }

func (m ackFailingMsg) Ack() error {
	_ = m.settleMsg.Ack()
	return nats.ErrConnectionClosed
}

// TestSettleWhenNATSFails is settle's table for the paths where NATS refuses a write: the
// result event, the dead-letter copy, the outcome in the idempotency store, or the ack. For
// each, the request must stay recoverable: either left to a redelivery that finishes the job,
// or ended with its outcome stored and published. Nothing may be acknowledged away unrecorded.
func TestSettleWhenNATSFails(t *testing.T) {
	const maxDeliver = 5
	failure := &workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonInvalidRequest, Message: "bad"}

	type fixture struct {
		w     *Worker
		js    *faultyJS
		d     *delivery
		msg   *settleMsg
		lease *leaseGuard
		st    *workflow.State
		key   string
	}
	ctx := context.Background()

	tests := []struct {
		name   string
		num    uint64 // delivery
		leased bool
		fail   func(w *Worker) []string // subjects whose publishes fail
		before func(t *testing.T, f fixture)
		// wrap, when set, replaces the message settle acknowledges.
		wrap    func(m *settleMsg) jetstream.Msg
		outcome func(f fixture) outcome

		wantAck    string
		wantReason string
		wantStatus idempotency.Status // "": no record, or one left running
		wantLive   bool               // a running record's lease is still held
		wantPub    func(f fixture) map[string]string
		// after, when set, checks what a later delivery does with what settle left.
		after func(t *testing.T, f fixture, published func() map[string]string)
	}{
		{
			// The completed outcome is stored but its event not published: a nak that keeps the
			// record finished, so the redelivery republishes the stored outcome under the
			// original Nats-Msg-Id and never runs the saga again.
			name: "completed_stored_not_published", num: 1, leased: true,
			fail: func(w *Worker) []string { return []string{w.subjects.Completed} },
			outcome: func(f fixture) outcome {
				ev := f.st.Completed(f.d.header(), 1)
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "nak", wantStatus: idempotency.StatusCompleted,
			wantPub: func(fixture) map[string]string { return map[string]string{} },
			after: func(t *testing.T, f fixture, published func() map[string]string) {
				f.js.failing()
				rec, err := f.w.store.Get(ctx, f.key)
				if err != nil {
					t.Fatal(err)
				}
				msg := &settleMsg{data: f.msg.data, hdr: nats.Header{}, md: f.msg.md}
				msg.md.NumDelivered = 2
				d := f.w.newDelivery(msg)
				d.key, d.sagaID = f.key, SagaID(f.key)
				d.settle(ctx, outcome{kind: outcomeReplay, rec: rec})
				want := fmt.Sprint(map[string]string{OutcomeMsgID(f.key, messages.TypeCompleted, f.d.seq): f.w.subjects.Completed})
				testutil.Eventually(t, 10*time.Second, func() bool { return fmt.Sprint(published()) == want }, "the redelivery republishes the stored outcome %s", want)
				if fmt.Sprint(msg.acks) != "[ack]" {
					t.Errorf("redelivery acknowledged %v, want [ack]", msg.acks)
				}
			},
		},
		{
			// A failure stored but not published: the same, and no dead-letter copy yet (the
			// redelivery that publishes it terminates the request).
			name: "failed_stored_not_published", num: 1, leased: true,
			fail: func(w *Worker) []string { return []string{w.subjects.Failed} },
			outcome: func(f fixture) outcome {
				ev := failure.Event(f.d.header())
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "nak", wantStatus: idempotency.StatusFailed,
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// A rejection (never stored) whose event cannot be published: retried.
			name: "rejected_not_published", num: 1,
			fail: func(w *Worker) []string { return []string{w.subjects.Failed} },
			outcome: func(f fixture) outcome {
				return f.d.rejected(&workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonConflict, Message: "conflict"},
					messageMsgID("conflict", f.key, f.d.seq))
			},
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// On the last delivery there is no retry: the request is terminated with its reason
			// and copied to the dead-letter stream, where an operator finds it.
			name: "rejected_not_published_last_delivery", num: maxDeliver,
			fail: func(w *Worker) []string { return []string{w.subjects.Failed} },
			outcome: func(f fixture) outcome {
				return f.d.rejected(&workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonConflict, Message: "conflict"},
					messageMsgID("conflict", f.key, f.d.seq))
			},
			wantAck: "term", wantReason: string(messages.ReasonConflict),
			wantPub: func(f fixture) map[string]string {
				return map[string]string{deadLetterMsgID(f.d.seq): f.w.subjects.DeadLetter}
			},
		},
		{
			// The dead-letter copy fails: the request is not terminated (that would lose it) but
			// left to redelivery.
			name: "dead_letter_copy_fails", num: 1,
			fail:    func(w *Worker) []string { return []string{w.subjects.DeadLetter} },
			outcome: func(fixture) outcome { return terminate(DeadLetterNoKey, 0, "no key", errors.New("no key")) },
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// The same on the last delivery: a term would delete the request from the work queue
			// with no copy anywhere, so it is nak'ed; JetStream's max-deliveries advisory then
			// moves it to the dead-letter stream, or it stays in the requests stream.
			name: "dead_letter_copy_fails_last_delivery", num: maxDeliver,
			fail:    func(w *Worker) []string { return []string{w.subjects.DeadLetter} },
			outcome: func(fixture) outcome { return terminate(DeadLetterNoKey, 0, "no key", errors.New("no key")) },
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// The store is gone (its bucket deleted): the outcome cannot be stored, so nothing
			// is published (an unstored completed event could be contradicted later) and the
			// request is retried.
			name: "outcome_not_stored", num: 1, leased: true,
			before: func(t *testing.T, f fixture) {
				if err := f.w.js.DeleteKeyValue(ctx, f.w.store.Config().Bucket); err != nil {
					t.Fatal(err)
				}
			},
			outcome: func(f fixture) outcome {
				ev := f.st.Completed(f.d.header(), 1)
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// On the last delivery too: the terminal failure cannot be stored either, so the
			// request is nak'ed and left to the max-deliveries advisory, never acknowledged away.
			name: "outcome_not_stored_last_delivery", num: maxDeliver, leased: true,
			before: func(t *testing.T, f fixture) {
				if err := f.w.js.DeleteKeyValue(ctx, f.w.store.Config().Bucket); err != nil {
					t.Fatal(err)
				}
			},
			outcome: func(f fixture) outcome { return f.d.retry(errors.New("partner down"), f.lease, f.st) },
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// A replay whose event cannot be published: retried, the record untouched.
			name: "replay_not_published", num: 2, leased: true,
			fail: func(w *Worker) []string { return []string{w.subjects.Completed} },
			before: func(t *testing.T, f fixture) {
				ev := f.st.Completed(f.d.header(), 1)
				data := mustJSON(t, ev)
				if err := f.lease.finish(ctx, f.st, idempotency.StatusCompleted, messages.TypeCompleted, data, f.d.seq); err != nil {
					t.Fatal(err)
				}
			},
			outcome: func(f fixture) outcome {
				rec, err := f.w.store.Get(ctx, f.key)
				if err != nil {
					panic(err)
				}
				return outcome{kind: outcomeReplay, rec: rec}
			},
			wantAck: "nak", wantStatus: idempotency.StatusCompleted,
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			// The ack is lost on the way: the outcome is already stored and published, so the
			// redelivery only republishes it (under the same Nats-Msg-Id).
			name: "ack_lost", num: 1, leased: true,
			wrap: func(m *settleMsg) jetstream.Msg { return ackFailingMsg{m} },
			outcome: func(f fixture) outcome {
				ev := f.st.Completed(f.d.header(), 1)
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "ack", wantStatus: idempotency.StatusCompleted,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{OutcomeMsgID(f.key, messages.TypeCompleted, f.d.seq): f.w.subjects.Completed}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := natstest.Start(t)
			nc, js := natstest.Connect(t, url)
			fjs := &faultyJS{JetStream: js}
			w, err := New(fjs, &workflow.Saga{Partner: noPartner{}}, Config{
				AckWait: time.Second, MaxDeliver: maxDeliver, NakDelay: 10 * time.Millisecond, MaxNakDelay: 50 * time.Millisecond,
				Idempotency: idempotency.Config{LeaseTTL: 30 * time.Second}, Logger: zaptest.NewLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.guard.Stop)

			published, forget := recordPublished(t, nc, w)

			const seq = 42
			key := "faults-" + tt.name
			body := fmt.Sprintf(`{"idempotency_key":%q}`, key)
			msg := &settleMsg{data: []byte(body), hdr: nats.Header{}, md: jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: tt.num}}
			var m jetstream.Msg = msg
			if tt.wrap != nil {
				m = tt.wrap(msg)
			}
			d := w.newDelivery(m)
			d.key, d.sagaID = key, SagaID(key)
			f := fixture{w: w, js: fjs, d: d, msg: msg, key: key}
			if tt.leased {
				h, err := w.store.Acquire(ctx, key, d.sagaID, "fp", []byte(body), fmt.Sprintf("test/%d/%d", seq, tt.num))
				if err != nil {
					t.Fatal(err)
				}
				f.lease = &leaseGuard{h: h, ttl: w.store.Config().LeaseTTL}
				if f.st, err = workflow.DecodeState(h.State()); err != nil {
					t.Fatal(err)
				}
			}
			if tt.before != nil {
				tt.before(t, f)
			}
			if tt.fail != nil {
				fjs.failing(tt.fail(w)...)
			}

			d.settle(ctx, tt.outcome(f))

			want := fmt.Sprint(tt.wantPub(f))
			if len(tt.wantPub(f)) > 0 {
				testutil.Eventually(t, 10*time.Second, func() bool { return fmt.Sprint(published()) == want }, "want published %s", want)
			} else if got := fmt.Sprint(published()); got != want {
				t.Errorf("published %s, want nothing", got)
			}
			checkSettled(t, w, msg, key, tt.wantAck, tt.wantReason, tt.wantStatus, tt.wantLive)
			if tt.after != nil {
				forget()
				tt.after(t, f, published)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
