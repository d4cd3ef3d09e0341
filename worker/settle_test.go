package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// settleMsg is a request message that records how it was acknowledged.
type settleMsg struct {
	data []byte
	hdr  nats.Header
	md   jetstream.MsgMetadata

	mu     sync.Mutex
	acks   []string
	reason string
}

func (m *settleMsg) Metadata() (*jetstream.MsgMetadata, error) { return &m.md, nil }
func (m *settleMsg) Data() []byte                              { return m.data }
func (m *settleMsg) Headers() nats.Header                      { return m.hdr }
func (m *settleMsg) Subject() string                           { return messages.SubjectsFor("").Requested }
func (m *settleMsg) Reply() string                             { return "" }
func (m *settleMsg) Ack() error                                { return m.record("ack", "") }
func (m *settleMsg) DoubleAck(context.Context) error           { return m.record("ack", "") }
func (m *settleMsg) Nak() error                                { return m.record("nak", "") }
func (m *settleMsg) NakWithDelay(time.Duration) error          { return m.record("nak", "") }
func (m *settleMsg) InProgress() error                         { return nil }
func (m *settleMsg) Term() error                               { return m.record("term", "") }
func (m *settleMsg) TermWithReason(r string) error             { return m.record("term", r) }

func (m *settleMsg) record(kind, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks = append(m.acks, kind)
	m.reason = reason
	return nil
}

type noPartner struct{ workflow.Partner }

// TestSettleTable checks settle's table on a real JetStream: for each outcome, what is stored
// in the idempotency record, what is published (with which Nats-Msg-Id), what is dead-lettered,
// and how the request is acknowledged.
func TestSettleTable(t *testing.T) {
	url := natstest.Start(t)
	nc, js := natstest.Connect(t, url)
	const maxDeliver = 5
	w, err := New(js, &workflow.Saga{Partner: noPartner{}}, Config{
		AckWait: time.Second, MaxDeliver: maxDeliver, NakDelay: 10 * time.Millisecond, MaxNakDelay: 50 * time.Millisecond,
		Idempotency: idempotency.Config{LeaseTTL: 30 * time.Second}, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.guard.Stop)

	published, forget := recordPublished(t, nc, w)

	seq := uint64(100)
	type fixture struct {
		d     *delivery
		msg   *settleMsg
		lease *leaseGuard
		st    *workflow.State
		key   string
	}
	// setup is a delivery of a new key (delivery num), with the key's lease when leased.
	setup := func(t *testing.T, num uint64, leased bool) fixture {
		seq++
		key := fmt.Sprintf("settle-%s", t.Name()[len("TestSettleTable/"):])
		body := fmt.Sprintf(`{"idempotency_key":%q}`, key)
		msg := &settleMsg{data: []byte(body), hdr: nats.Header{}, md: jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: num}}
		d := w.newDelivery(msg)
		d.key, d.sagaID = key, SagaID(key)
		f := fixture{d: d, msg: msg, key: key}
		if leased {
			h, err := w.store.Acquire(ctx, key, d.sagaID, "fp", []byte(body), fmt.Sprintf("test/%d/%d", seq, num))
			if err != nil {
				t.Fatal(err)
			}
			f.lease = &leaseGuard{h: h, ttl: w.store.Config().LeaseTTL}
			if f.st, err = workflow.DecodeState(h.State()); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	failure := &workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonInvalidRequest, Message: "bad"}

	tests := []struct {
		name    string
		num     uint64 // delivery
		leased  bool
		outcome func(f fixture) outcome
		before  func(t *testing.T, f fixture) // after setup, before settle

		wantAck    string
		wantReason string                            // the term's reason
		wantStatus idempotency.Status                // "": no record, or one left running
		wantLive   bool                              // the lease is still held after settle
		wantPub    func(f fixture) map[string]string // Nats-Msg-Id → subject, dead letters included
	}{
		{
			name: "ack", num: 1, leased: true,
			outcome: func(f fixture) outcome {
				ev := f.st.Completed(f.d.header(), 1)
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "ack", wantStatus: idempotency.StatusCompleted,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{OutcomeMsgID(f.key, messages.TypeCompleted, f.d.seq): w.subjects.Completed}
			},
		},
		{
			name: "term_failure", num: 1, leased: true,
			outcome: func(f fixture) outcome {
				ev := failure.Event(f.d.header())
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "term", wantReason: string(failure.Reason), wantStatus: idempotency.StatusFailed,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{
					OutcomeMsgID(f.key, messages.TypeFailed, f.d.seq): w.subjects.Failed,
					deadLetterMsgID(f.d.seq):                          w.subjects.DeadLetter,
				}
			},
		},
		{
			name: "term_rejected", num: 1,
			outcome: func(f fixture) outcome {
				return f.d.rejected(&workflow.Failure{Step: messages.StepValidate, Reason: messages.ReasonConflict, Message: "conflict"},
					messageMsgID("conflict", f.key, f.d.seq))
			},
			wantAck: "term", wantReason: string(messages.ReasonConflict),
			wantPub: func(f fixture) map[string]string {
				return map[string]string{
					messageMsgID("conflict", f.key, f.d.seq): w.subjects.Failed,
					deadLetterMsgID(f.d.seq):                 w.subjects.DeadLetter,
				}
			},
		},
		{
			name: "term_without_result", num: 1,
			outcome: func(fixture) outcome {
				return terminate(DeadLetterNoKey, 0, "no key", errors.New("no key"))
			},
			wantAck: "term", wantReason: DeadLetterNoKey,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{deadLetterMsgID(f.d.seq): w.subjects.DeadLetter}
			},
		},
		{
			name: "nak_releases_lease", num: 1, leased: true,
			outcome: func(f fixture) outcome { return f.d.retry(errors.New("partner down"), f.lease, f.st) },
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			name: "nak_plain", num: 1,
			outcome: func(f fixture) outcome { return f.d.redeliver() },
			wantAck: "nak",
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			name: "nak_last_delivery_ends_failed", num: maxDeliver, leased: true,
			outcome: func(f fixture) outcome { return f.d.retry(errors.New("partner down"), f.lease, f.st) },
			wantAck: "term", wantReason: string(workflow.Terminal(nil, errors.New("partner down")).Reason), wantStatus: idempotency.StatusFailed,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{
					OutcomeMsgID(f.key, messages.TypeFailed, f.d.seq): w.subjects.Failed,
					deadLetterMsgID(f.d.seq):                          w.subjects.DeadLetter,
				}
			},
		},
		{
			name: "lease_lost", num: 1, leased: true,
			outcome: func(f fixture) outcome { return f.d.leaseLost(idempotency.ErrLeaseLost, "lease lost") },
			wantAck: "nak", wantLive: true,
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			name: "ack_lease_lost_before_store", num: 1, leased: true,
			before: func(t *testing.T, f fixture) {
				// The key is taken over (the same owner may take a live lease over): this handle is fenced.
				if _, err := w.store.Acquire(ctx, f.key, f.d.sagaID, "fp", f.msg.data, f.lease.h.Lease().Owner); err != nil {
					t.Fatal(err)
				}
			},
			outcome: func(f fixture) outcome {
				ev := f.st.Completed(f.d.header(), 1)
				return f.d.done(f.lease, f.st, &ev)
			},
			wantAck: "nak", wantLive: true,
			wantPub: func(fixture) map[string]string { return map[string]string{} },
		},
		{
			name: "replay", num: 1, leased: true,
			before: func(t *testing.T, f fixture) {
				ev := f.st.Completed(f.d.header(), 1)
				o := f.d.done(f.lease, f.st, &ev)
				data, _ := json.Marshal(o.result.event)
				if err := f.lease.finish(ctx, f.st, idempotency.StatusCompleted, messages.TypeCompleted, data, f.d.seq-1); err != nil {
					t.Fatal(err)
				}
			},
			outcome: func(f fixture) outcome {
				rec, err := w.store.Get(ctx, f.key)
				if err != nil {
					panic(err)
				}
				return outcome{kind: outcomeReplay, rec: rec}
			},
			wantAck: "ack", wantStatus: idempotency.StatusCompleted,
			wantPub: func(f fixture) map[string]string {
				return map[string]string{ReplayMsgID(f.key, f.d.seq): w.subjects.Completed}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, tt.num, tt.leased)
			if tt.before != nil {
				tt.before(t, f)
			}
			forget()
			f.d.settle(ctx, tt.outcome(f))
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprint(tt.wantPub(f))
			testutil.Eventually(t, 10*time.Second, func() bool { return fmt.Sprint(published()) == want }, "want published %s", want)
			checkSettled(t, w, f.msg, f.key, tt.wantAck, tt.wantReason, tt.wantStatus, tt.wantLive)
		})
	}
}

// recordPublished records every event and dead letter published on w's subjects from now on:
// published returns them (Nats-Msg-Id → subject) once the server has sent what came before the
// call; forget starts again.
func recordPublished(t *testing.T, nc *nats.Conn, w *Worker) (published func() map[string]string, forget func()) {
	t.Helper()
	var (
		mu  sync.Mutex
		pub = map[string]string{}
	)
	for _, subj := range append(w.subjects.Events(), w.subjects.DeadLetter) {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			pub[m.Header.Get(messages.HeaderMsgID)] = m.Subject
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	published = func() map[string]string {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(pub)
	}
	forget = func() {
		mu.Lock()
		clear(pub)
		mu.Unlock()
	}
	return published, forget
}

// checkSettled checks how settle acknowledged msg and what it left in key's record: status
// wantStatus ("": no record, or one left running, whose lease is live when wantLive). A store
// whose bucket is gone (no stream answers) counts as no record.
func checkSettled(t *testing.T, w *Worker, msg *settleMsg, key, wantAck, wantReason string, wantStatus idempotency.Status, wantLive bool) {
	t.Helper()
	msg.mu.Lock()
	acks, reason := fmt.Sprint(msg.acks), msg.reason
	msg.mu.Unlock()
	if acks != fmt.Sprint([]string{wantAck}) || reason != wantReason {
		t.Errorf("acknowledged %v (reason %q), want [%s] (reason %q)", acks, reason, wantAck, wantReason)
	}
	rec, err := w.store.Get(context.Background(), key)
	switch {
	case errors.Is(err, idempotency.ErrNotFound), errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, nats.ErrNoResponders):
		if wantStatus != "" {
			t.Errorf("no record, want status %s", wantStatus)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if wantStatus != "" && rec.Status != wantStatus {
			t.Errorf("record status %s, want %s", rec.Status, wantStatus)
		}
		if wantStatus == "" && rec.Finished() {
			t.Errorf("record finished (%s), want it left running", rec.Status)
		}
		if !rec.Finished() && rec.Lease.Live(w.cfg.Now()) != wantLive {
			t.Errorf("lease live %v, want %v", rec.Lease.Live(w.cfg.Now()), wantLive)
		}
	}
}
