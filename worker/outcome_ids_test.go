package worker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

// Every run of a key publishes its own outcome: a failed key replayed from the dead-letter
// stream three times within the events stream's duplicate window gets three more failed events,
// each under the Nats-Msg-Id of the request message that produced it.
func TestEveryDeadLetterReplayPublishesItsOutcome(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	const key = "replayed-thrice"
	body := `{"idempotencyKey":"` + key + `","plan":{"name":"Gold Plan"},"quantity":3}`
	s.publish(body, messages.RequestMsgID(key, []byte(body)))
	s.waitResults(key, 1)
	for i := 1; i <= 3; i++ {
		var dls []worker.DeadLetter
		testutil.Eventually(t, 10*time.Second, func() bool { dls = deadLetters(t, s, key); return len(dls) > 0 }, "replay %d: a dead letter", i)
		if len(dls) != 1 {
			t.Fatalf("replay %d: %d dead letters, want 1", i, len(dls))
		}
		if _, err := worker.ReplayDeadLetter(context.Background(), s.js, "", dls[0]); err != nil {
			t.Fatal(err)
		}
		s.waitResults(key, 1+i)
	}
	s.settle()
	res := s.results(key)
	if len(res) != 4 {
		t.Fatalf("%d result events, want 4", len(res))
	}
	ids, seqs := map[string]bool{}, map[string]bool{}
	for _, r := range res {
		f := failed(t, r)
		if f.Replayed || f.Reason != messages.ReasonInvalidRequest {
			t.Errorf("outcome %+v, want an original invalid_request", f)
		}
		id, seq := r.header.Get(messages.HeaderMsgID), r.header.Get(messages.HeaderRequestSeq)
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			t.Fatalf("%s = %q", messages.HeaderRequestSeq, seq)
		}
		if want := worker.OutcomeMsgID(key, messages.TypeFailed, n); id != want {
			t.Errorf("Nats-Msg-Id %s, want %s (request %d)", id, want, n)
		}
		ids[id], seqs[seq] = true, true
	}
	if len(ids) != 4 || len(seqs) != 4 {
		t.Errorf("%d distinct Nats-Msg-Ids and %d request sequences among 4 outcomes", len(ids), len(seqs))
	}
}
