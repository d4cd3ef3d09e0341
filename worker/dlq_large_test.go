package worker_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

// A keyed invalid request of nearly the server's maximum payload cannot be copied whole into
// the dead-letter stream (the copy adds headers). It still ends after one delivery with its
// failed event, and its dead letter keeps the headers and the start of the body, saying that
// it was truncated and how large the request was.
func TestNearMaxPayloadInvalidRequestIsDeadLetteredAfterOneDelivery(t *testing.T) {
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	max := int(s.js.Conn().MaxPayload())
	const key = "dl-huge"
	head := `{"idempotencyKey":"` + key + `","plan":{"name":"Ultimate Plan"},"quantity":1,"poNumber":"`
	// Nats-Msg-Id and the header framing take less than 100 bytes.
	body := head + strings.Repeat("x", max-100-len(head)-2) + `"}`
	seq := s.publish(body, key)

	f := failed(t, s.waitResults(key, 1)[0])
	if f.Reason != messages.ReasonInvalidRequest || !strings.Contains(f.Message, "the limit is") {
		t.Fatalf("failed = %+v, want invalid_request for the size", f)
	}
	var dls []worker.DeadLetter
	testutil.Eventually(t, 15*time.Second, func() bool { dls = deadLetters(t, s, key); return len(dls) > 0 }, "a dead letter of %s", key)
	if len(dls) != 1 {
		t.Fatalf("dead letters of %s: %d, want 1", key, len(dls))
	}
	dl := dls[0]
	if dl.Reason != string(messages.ReasonInvalidRequest) || dl.Deliveries != 1 || dl.RequestSeq != seq {
		t.Errorf("dead letter: reason %q, deliveries %d, request seq %d; want invalid_request, 1, %d", dl.Reason, dl.Deliveries, dl.RequestSeq, seq)
	}
	if !dl.Truncated || dl.OriginalSize != len(body) {
		t.Errorf("dead letter: truncated %v, original size %d; want true, %d", dl.Truncated, dl.OriginalSize, len(body))
	}
	if got := dl.Header.Get(worker.HeaderDLQOriginalSize); got != strconv.Itoa(len(body)) {
		t.Errorf("%s = %q, want %d", worker.HeaderDLQOriginalSize, got, len(body))
	}
	if len(dl.Data) == 0 || len(dl.Data) >= len(body) || !bytes.HasPrefix([]byte(body), dl.Data) {
		t.Errorf("dead-letter body: %d bytes, want a prefix of the %d-byte request", len(dl.Data), len(body))
	}

	// Ended, not redelivered: the requests stream is empty and no second delivery happened.
	s.settle()
	stream, err := s.js.Stream(context.Background(), messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("requests stream holds %d messages, want 0", info.State.Msgs)
	}
	if n := len(s.results(key)); n != 1 {
		t.Errorf("%d result events, want 1", n)
	}
	// A truncated dead letter cannot be replayed: its body is not the request.
	if _, err := worker.ReplayDeadLetter(context.Background(), s.js, "", dl); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("replay of a truncated dead letter: %v, want a refusal", err)
	}
}
