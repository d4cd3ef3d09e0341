//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

// history is what a chaos run did and what it left behind, in the manner of a Jepsen queue
// history: the purchases it submitted, every event of the events stream, and the partner's
// ledger.
type history struct {
	// submitted are the idempotency keys whose request the requests stream acknowledged.
	submitted []string
	// events are all events read back from the events stream.
	events []observed
	// orders is the simulator's ledger.
	orders []partnertest.LedgerOrder
	// autoRenewal reports whether auto-renewal is on for a PBX at the partner.
	autoRenewal func(productNo string) bool
}

// observed is one event as stored in the events stream.
type observed struct {
	seq   uint64
	msgID string
	ev    messages.Event
}

// verdict is the checker's answer. It is valid when nothing was lost, duplicated, unexpected,
// incomplete or inconsistent.
type verdict struct {
	attempts  int // keys submitted
	completed int // keys with a completed outcome
	failed    int // keys with a failed outcome
	replayed  int // replayed outcomes (another message of a finished key)
	orders    int
	events    int
	reasons   map[messages.Reason]int

	lost         []string // submitted, no original terminal outcome
	duplicated   []string // more than one original outcome, or more than one order
	unexpected   []string // events or orders of keys never submitted
	incomplete   []string // completed without its order, renewal or activation code
	inconsistent []string // failed with a reason that promises no order, yet ordered
}

func (v verdict) valid() bool {
	return len(v.lost)+len(v.duplicated)+len(v.unexpected)+len(v.incomplete)+len(v.inconsistent) == 0
}

// String is a one-line summary in the manner of Jepsen's total-queue checker, followed by the
// anomalies (at most ten of each).
func (v verdict) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{:valid? %t :attempt-count %d :ok-count %d :failed-count %d :replayed-count %d :order-count %d :event-count %d"+
		" :lost-count %d :duplicated-count %d :unexpected-count %d :incomplete-count %d :inconsistent-count %d",
		v.valid(), v.attempts, v.completed, v.failed, v.replayed, v.orders, v.events,
		len(v.lost), len(v.duplicated), len(v.unexpected), len(v.incomplete), len(v.inconsistent))
	if len(v.reasons) > 0 {
		var rs []string
		for r, n := range v.reasons {
			rs = append(rs, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(&b, " :failure-reasons {%s}", strings.Join(rs, ", "))
	}
	b.WriteString("}")
	for _, l := range []struct {
		name  string
		items []string
	}{{"lost", v.lost}, {"duplicated", v.duplicated}, {"unexpected", v.unexpected}, {"incomplete", v.incomplete}, {"inconsistent", v.inconsistent}} {
		for i, it := range l.items {
			if i == 10 {
				fmt.Fprintf(&b, "\n  %s: ... %d more", l.name, len(l.items)-10)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.name, it)
		}
	}
	return b.String()
}

// noOrderReasons are the failure reasons after which the contract promises no order.
var noOrderReasons = map[messages.Reason]bool{
	messages.ReasonInvalidRequest: true,
	messages.ReasonConflict:       true,
	messages.ReasonRejected:       true,
	messages.ReasonExhausted:      true,
}

// check counts, per submitted key, its original terminal outcomes (distinct Nats-Msg-Id,
// replays aside) and its orders (by the poNumber derived from the key), and reports what
// breaks exactly-once.
func check(h history) verdict {
	v := verdict{attempts: len(h.submitted), orders: len(h.orders), events: len(h.events), reasons: map[messages.Reason]int{}}
	submitted := make(map[string]bool, len(h.submitted))
	keyOfPO := make(map[string]string, len(h.submitted))
	for _, k := range h.submitted {
		submitted[k] = true
		keyOfPO[workflow.DefaultPONumber(k)] = k
	}

	originals := map[string]map[string]messages.Event{} // key → Nats-Msg-Id → outcome
	for _, o := range h.events {
		key := o.ev.Key()
		if !submitted[key] {
			v.unexpected = append(v.unexpected, fmt.Sprintf("event %s (seq %d) of key %q, never submitted", o.ev.EventType(), o.seq, key))
			continue
		}
		if !isOutcome(o.ev) {
			continue
		}
		if replayed(o.ev) {
			v.replayed++
			continue
		}
		if originals[key] == nil {
			originals[key] = map[string]messages.Event{}
		}
		originals[key][o.msgID] = o.ev
	}

	ordersOf := map[string][]partnertest.LedgerOrder{}
	for _, o := range h.orders {
		key, ok := keyOfPO[o.PONumber]
		if !ok {
			v.unexpected = append(v.unexpected, fmt.Sprintf("order %s with poNumber %q of no submitted key", o.OrderNo, o.PONumber))
			continue
		}
		ordersOf[key] = append(ordersOf[key], o)
	}

	keys := slices.Clone(h.submitted)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, key := range keys {
		outs, orders := originals[key], ordersOf[key]
		if len(orders) > 1 {
			var nos []string
			for _, o := range orders {
				nos = append(nos, o.OrderNo)
			}
			v.duplicated = append(v.duplicated, fmt.Sprintf("%s: %d orders %v", key, len(orders), nos))
		}
		switch len(outs) {
		case 0:
			v.lost = append(v.lost, fmt.Sprintf("%s: no outcome (%d orders)", key, len(orders)))
			continue
		case 1:
		default:
			var ids []string
			for id, ev := range outs {
				ids = append(ids, ev.EventType()+" "+id)
			}
			sort.Strings(ids)
			v.duplicated = append(v.duplicated, fmt.Sprintf("%s: %d outcomes %v", key, len(outs), ids))
		}
		for _, ev := range outs {
			switch e := ev.(type) {
			case *messages.Completed:
				v.completed++
				if msg := completeness(e, orders, h.autoRenewal); msg != "" {
					v.incomplete = append(v.incomplete, key+": "+msg)
				}
			case *messages.Failed:
				v.failed++
				v.reasons[e.Reason]++
				if noOrderReasons[e.Reason] && len(orders) > 0 {
					v.inconsistent = append(v.inconsistent, fmt.Sprintf("%s: failed %s, yet order %s exists", key, e.Reason, orders[0].OrderNo))
				}
			}
		}
	}
	return v
}

// completeness reports what a completed outcome lacks: its single order in the ledger,
// auto-renewal on at the partner, an activation code.
func completeness(c *messages.Completed, orders []partnertest.LedgerOrder, autoRenewal func(string) bool) string {
	var missing []string
	switch {
	case len(orders) == 0:
		missing = append(missing, "no order in the ledger")
	case !slices.ContainsFunc(orders, func(o partnertest.LedgerOrder) bool { return o.OrderNo == c.OrderNo }):
		missing = append(missing, fmt.Sprintf("order %s not in the ledger", c.OrderNo))
	}
	if !c.AutoRenewal || autoRenewal == nil || !autoRenewal(c.ProductNo) {
		missing = append(missing, fmt.Sprintf("auto-renewal off for %s", c.ProductNo))
	}
	if c.ActivationCode == "" {
		missing = append(missing, "no activation code")
	}
	return strings.Join(missing, "; ")
}

func isOutcome(ev messages.Event) bool {
	t := ev.EventType()
	return t == messages.TypeCompleted || t == messages.TypeFailed
}

func replayed(ev messages.Event) bool {
	switch e := ev.(type) {
	case *messages.Completed:
		return e.Replayed
	case *messages.Failed:
		return e.Replayed
	}
	return false
}

// readEvents reads the whole events stream with an ordered consumer, up to its last message
// at the time of the call.
func readEvents(ctx context.Context, js jetstream.JetStream) ([]observed, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last uint64
	for {
		st, err := js.Stream(ctx, messages.StreamEvents)
		if err == nil {
			last = st.CachedInfo().State.LastSeq
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("events stream: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last == 0 {
		return nil, nil
	}
	// Right after a node restart the cluster may still answer 503 (JetStream temporarily
	// unavailable): retry like the stream lookup above.
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = js.OrderedConsumer(ctx, messages.StreamEvents, jetstream.OrderedConsumerConfig{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ordered consumer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out []observed
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("read events: %w", err)
			}
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			ev, err := messages.DecodeEvent(m.Data())
			if err != nil {
				return nil, fmt.Errorf("event seq %d undecodable: %w", md.Sequence.Stream, err)
			}
			out = append(out, observed{seq: md.Sequence.Stream, msgID: m.Headers().Get(messages.HeaderMsgID), ev: ev})
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read events: %d read, last sequence %d: %w", len(out), last, errors.Join(ctx.Err(), batch.Error()))
		}
	}
}

// collect reads back the events and the ledger and checks the history; it fails the test on
// any lost, duplicated, unexpected, incomplete or inconsistent purchase.
func collect(t *testing.T, js jetstream.JetStream, submitted []string, sim *partnertest.Sim) verdict {
	t.Helper()
	events, err := readEvents(context.Background(), js)
	if err != nil {
		t.Fatalf("read back events: %v", err)
	}
	v := check(history{submitted: submitted, events: events, orders: sim.Orders(), autoRenewal: sim.AutoRenewal})
	t.Logf("checker: %s", v)
	if !v.valid() {
		t.Errorf("exactly-once violated: %s", v)
	}
	return v
}

// TestChecker shows that the checker finds each anomaly, so that a clean verdict of a chaos run
// means something.
func TestChecker(t *testing.T) {
	po := workflow.DefaultPONumber
	order := func(key, no string) partnertest.LedgerOrder {
		return partnertest.LedgerOrder{OrderNo: no, PONumber: po(key), ProductNo: "SN-" + no}
	}
	done := func(seq uint64, key, no string, replay bool) observed {
		return observed{seq: seq, msgID: "completed-" + key, ev: &messages.Completed{
			EventHeader: messages.EventHeader{Type: messages.TypeCompleted, IdempotencyKey: key},
			OrderNo:     no, ProductNo: "SN-" + no, AutoRenewal: true, ActivationCode: "CODE", Replayed: replay,
		}}
	}
	fail := func(seq uint64, key string, reason messages.Reason) observed {
		return observed{seq: seq, msgID: "failed-" + key, ev: &messages.Failed{
			EventHeader: messages.EventHeader{Type: messages.TypeFailed, IdempotencyKey: key}, Reason: reason,
		}}
	}
	progress := func(seq uint64, key string) observed {
		return observed{seq: seq, msgID: fmt.Sprint("p", seq), ev: &messages.Progress{
			EventHeader: messages.EventHeader{Type: messages.TypeProgress, IdempotencyKey: key}, Step: "create_order", Status: "done",
		}}
	}
	renewed := func(string) bool { return true }
	type counts struct{ lost, duplicated, unexpected, incomplete, inconsistent, completed, failed, replayed int }
	tests := []struct {
		name string
		give history
		want counts
	}{
		{
			name: "clean, with a replay and a deduplicated re-send",
			give: history{
				submitted:   []string{"a", "b"},
				events:      []observed{progress(1, "a"), done(2, "a", "O1", false), done(3, "a", "O1", false), done(4, "a", "O1", true), fail(5, "b", messages.ReasonRejected)},
				orders:      []partnertest.LedgerOrder{order("a", "O1")},
				autoRenewal: renewed,
			},
			want: counts{completed: 1, failed: 1, replayed: 1},
		},
		{
			name: "lost: no outcome, only a replay",
			give: history{submitted: []string{"a", "b"}, events: []observed{done(1, "a", "O1", false), done(2, "b", "O2", true)},
				orders: []partnertest.LedgerOrder{order("a", "O1"), order("b", "O2")}, autoRenewal: renewed},
			want: counts{lost: 1, completed: 1, replayed: 1},
		},
		{
			name: "duplicated: completed and failed",
			give: history{submitted: []string{"a"}, events: []observed{done(1, "a", "O1", false), fail(2, "a", messages.ReasonNeedsReconciliation)},
				orders: []partnertest.LedgerOrder{order("a", "O1")}, autoRenewal: renewed},
			want: counts{duplicated: 1, completed: 1, failed: 1},
		},
		{
			name: "duplicated: two orders",
			give: history{submitted: []string{"a"}, events: []observed{done(1, "a", "O1", false)},
				orders: []partnertest.LedgerOrder{order("a", "O1"), order("a", "O2")}, autoRenewal: renewed},
			want: counts{duplicated: 1, completed: 1},
		},
		{
			name: "unexpected: event and order of a key never submitted",
			give: history{submitted: []string{"a"}, events: []observed{done(1, "a", "O1", false), progress(2, "x")},
				orders: []partnertest.LedgerOrder{order("a", "O1"), order("x", "O9")}, autoRenewal: renewed},
			want: counts{unexpected: 2, completed: 1},
		},
		{
			name: "incomplete: renewal off, no code, order missing",
			give: history{submitted: []string{"a"}, events: []observed{func() observed {
				o := done(1, "a", "O1", false)
				o.ev.(*messages.Completed).ActivationCode = ""
				return o
			}()}, autoRenewal: func(string) bool { return false }},
			want: counts{incomplete: 1, completed: 1},
		},
		{
			name: "inconsistent: exhausted, yet ordered",
			give: history{submitted: []string{"a"}, events: []observed{fail(1, "a", messages.ReasonExhausted)},
				orders: []partnertest.LedgerOrder{order("a", "O1")}, autoRenewal: renewed},
			want: counts{inconsistent: 1, failed: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check(tt.give)
			got := counts{len(v.lost), len(v.duplicated), len(v.unexpected), len(v.incomplete), len(v.inconsistent), v.completed, v.failed, v.replayed}
			if got != tt.want {
				t.Errorf("counts %+v, want %+v\n%s", got, tt.want, v)
			}
			if v.valid() != (tt.want.lost+tt.want.duplicated+tt.want.unexpected+tt.want.incomplete+tt.want.inconsistent == 0) {
				t.Errorf("valid() = %t for %s", v.valid(), v)
			}
		})
	}
}
