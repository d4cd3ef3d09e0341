package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// submitEnv is a worker logged in as the shipped worker role, on a NATS server with the
// shipped roles, buying through the simulator.
type submitEnv struct {
	nats *shippedNATS
}

func startSubmitEnv(t *testing.T) *submitEnv {
	t.Helper()
	s := startShippedNATS(t)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"worker", "--http-addr", httpAddr, "--api-addr", "", "--log-level", "warn",
			"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID,
			"--partner-client-secret", partnertest.DefaultClientSecret}, s.login("worker")...)
		done <- run(ctx, args, io.Discard, &werr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("worker exit %d:\n%s", code, werr.String())
		}
	})
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)
	return &submitEnv{nats: s}
}

// submit runs `fulfil submit` as user.
func (e *submitEnv) submit(user string, args ...string) (int, string, string) {
	var out, errb syncBuffer
	full := append(append([]string{"submit"}, e.nats.login(user)...), append([]string{"--timeout", "60s"}, args...)...)
	code := run(context.Background(), full, &out, &errb)
	return code, out.String(), errb.String()
}

// fulfil submit as the shipped producer role, which may not read the sagas bucket: the
// server refuses the key lookup, and the lookup ends at that refusal instead of waiting for
// the JetStream API timeout (5 s a submit). Roles that may read the bucket still get the record.
func TestSubmitKeyLookupEndsAtTheRefusal(t *testing.T) {
	e := startSubmitEnv(t)
	const key = "lookup-1"
	if code, out, errb := e.submit("producer", "--key", key, "--plan", "Ultimate Plan", "--quantity", "5"); code != exitOK ||
		!strings.Contains(out, "completed: order ZC") {
		t.Fatalf("submit as producer: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}

	// The lookup itself: it ends because the server refused it, not at a deadline.
	_, pjs := e.nats.connect(t, "producer")
	_, err := lookupKeyErr(context.Background(), pjs, key)
	if !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("lookup as producer ended with %v, want the server's permission violation", err)
	}
	_, ojs := e.nats.connect(t, "operator")
	rec, err := lookupKeyErr(context.Background(), ojs, key)
	if err != nil || rec.Fingerprint == "" || !rec.Finished() {
		t.Errorf("lookup as operator: %+v, %v; want the finished record", rec, err)
	}
	if _, err := lookupKeyErr(context.Background(), ojs, "never-submitted"); err == nil || errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("lookup of an unknown key as operator: %v, want not found", err)
	}

	// An exact re-send as producer is dropped by the stream and answered with the first
	// outcome, read from the events since the record cannot be.
	code, out, errb := e.submit("producer", "--key", key, "--plan", "Ultimate Plan", "--quantity", "5")
	if code != exitOK || !strings.Contains(out, "completed: order ZC") || !strings.Contains(errb, "duplicate of a recent publish") {
		t.Errorf("re-send as producer: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	// Another purchase under the key: the operator is warned before publishing, the
	// producer cannot be; both get the conflict.
	code, out, errb = e.submit("operator", "--key", key, "--plan", "Ultimate Plan", "--quantity", "6")
	if code != exitFailed || !strings.Contains(out, "conflict") || !strings.Contains(errb, "already used for a different purchase") {
		t.Errorf("reuse as operator: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	code, out, errb = e.submit("producer", "--key", key, "--plan", "Ultimate Plan", "--quantity", "7")
	if code != exitFailed || !strings.Contains(out, "conflict") || strings.Contains(errb, "already used") {
		t.Errorf("reuse as producer: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
}

// followNewEvents delivers the events stored after it returned, and none stored before,
// however close in time: it starts at a stream sequence, not at a time.
func TestFollowNewEventsStartsAtTheStreamEnd(t *testing.T) {
	e := startSubmitEnv(t)
	_, wjs := e.nats.connect(t, "worker")
	_, pjs := e.nats.connect(t, "producer")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subject := messages.SubjectsFor("").Completed
	publish := func(key string) {
		t.Helper()
		b, err := json.Marshal(&messages.Completed{EventHeader: messages.EventHeader{Type: messages.TypeCompleted,
			IdempotencyKey: key, Time: time.Now().UTC()}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wjs.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
	publish("before-1")
	publish("before-2")
	events, err := followNewEvents(ctx, pjs, "")
	if err != nil {
		t.Fatal(err)
	}
	publish("after-1")
	publish("after-2")
	var got []string
	testutil.Eventually(t, 30*time.Second, func() bool {
		for {
			select {
			case ev := <-events:
				got = append(got, ev.Key())
			default:
				return len(got) >= 2
			}
		}
	}, "two events")
	if strings.Join(got, " ") != "after-1 after-2" {
		t.Errorf("events %q, want only those published after following began", got)
	}
}
