package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// startWorkerProcess starts `fulfil worker` with an embedded NATS server and the partner
// simulator (the one at partnerURL, or its own), and returns the NATS address once the worker
// is ready.
func startWorkerProcess(t *testing.T, partnerURL string) string {
	t.Helper()
	natsAddr, httpAddr := freePort(t), freePort(t)
	partner := []string{"--partner-sim"}
	if partnerURL != "" {
		partner = []string{"--partner-url", partnerURL, "--partner-client-id", partnertest.DefaultClientID,
			"--partner-client-secret", partnertest.DefaultClientSecret}
	}
	_, done := startProcess(t, "worker", append([]string{"worker", "--data-dir", t.TempDir(),
		"--nats-listen", natsAddr, "--http-addr", httpAddr, "--log-level", "warn"}, partner...)...)
	waitFor(t, "worker", done, nil, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return natsAddr
}

// cli runs one short fulfil command as a process against the NATS server at natsAddr and
// returns its exit code, stdout and stderr.
func cli(t *testing.T, natsAddr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := 1 // the command, then its flags
	if args[0] == "dlq" {
		n = 2
	}
	cmd := fulfilCmd(ctx, t, append(append(args[:n:n], "--nats-url", "nats://"+natsAddr), args[n:]...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

var orderNoRE = regexp.MustCompile(`order (ZC[0-9]+)`)

// TestReusedKeyIsAConflictWithinTheDuplicateWindow reuses a key for another purchase right after
// the first one, well within the requests stream's duplicate window: the stream must not drop
// the second request as a duplicate (which made submit report the first purchase's success),
// the worker must answer it with conflict, and submit must exit 1. An exact re-send is still
// deduplicated and answered with the original outcome.
func TestReusedKeyIsAConflictWithinTheDuplicateWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	nats := startWorkerProcess(t, "")
	const key = "shop-eu-order-100231"
	submit := func(extra ...string) (int, string, string) {
		return cli(t, nats, append([]string{"submit", "--timeout", "60s", "--key", key, "--plan", "Ultimate Plan"}, extra...)...)
	}

	code, out, errb := submit("--quantity", "2")
	m := orderNoRE.FindStringSubmatch(out)
	if code != exitOK || !strings.Contains(out, "completed: order ZC") || m == nil {
		t.Fatalf("first purchase: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	order := m[1]

	// The exact same request again: dropped by the stream, answered with the first outcome.
	code, out, errb = submit("--quantity", "2")
	if code != exitOK || !strings.Contains(out, "completed: order "+order) || !strings.Contains(errb, "duplicate of a recent publish") {
		t.Errorf("exact re-send: exit %d, stdout %q (want the original order %s), stderr:\n%s", code, out, order, errb)
	}

	// Another purchase under the same key, seconds later.
	code, out, errb = submit("--quantity", "1")
	if code != exitFailed || !strings.Contains(out, "conflict") || strings.Contains(out, order) {
		t.Errorf("reused key, other quantity: exit %d, stdout %q, want exit 1 with conflict and not order %s; stderr:\n%s", code, out, order, errb)
	}
	if strings.Contains(errb, "duplicate of a recent publish") {
		t.Errorf("the conflicting request was dropped by the stream:\n%s", errb)
	}
	if !strings.Contains(errb, "already used for a different purchase") {
		t.Errorf("submit did not warn before publishing a conflicting reuse:\n%s", errb)
	}

	// And that conflicting request sent once more: deduplicated, still a conflict.
	code, out, errb = submit("--quantity", "1")
	if code != exitFailed || !strings.Contains(out, "conflict") || strings.Contains(out, order) {
		t.Errorf("conflicting request re-sent: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}

	// A Nats-Msg-Id chosen by the producer and reused for another body (as the bare key was,
	// under the old rule) makes the stream drop the second request unseen; submit must still
	// answer conflict, not the first request's outcome.
	code, out, errb = submit("--msg-id", "legacy-id", "--quantity", "7")
	if code != exitFailed || !strings.Contains(out, "conflict") {
		t.Errorf("--msg-id, first publish: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	code, out, errb = submit("--msg-id", "legacy-id", "--quantity", "8")
	if code != exitFailed || !strings.Contains(out, "conflict") || strings.Contains(out, "completed") {
		t.Errorf("--msg-id reused for another body: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}

	code, out, errb = cli(t, nats, "events", "--follow=false", "--key", key)
	if code != exitOK {
		t.Fatalf("events: exit %d: %s", code, errb)
	}
	if n := strings.Count(out, "failed     conflict"); n != 2 {
		t.Errorf("events show %d conflict events, want 2 (quantity 1, quantity 7):\n%s", n, out)
	}
	if n := strings.Count(out, "completed  order "+order); n != 1 {
		t.Errorf("events show %d completed events, want the original only:\n%s", n, out)
	}
}

// TestDeadLetterReplayOutcomesArePublished replays a failed key three times within the events
// stream's duplicate window: each run's outcome must reach the events stream.
func TestDeadLetterReplayOutcomesArePublished(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	nats := startWorkerProcess(t, "")
	const key = "shop-eu-order-100232"
	code, out, errb := cli(t, nats, "submit", "--timeout", "60s", "--key", key, "--plan", "Gold Plan", "--quantity", "5")
	if code != exitFailed || !strings.Contains(out, "invalid_request") {
		t.Fatalf("submit: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	failedEvents := func() int {
		_, out, _ := cli(t, nats, "events", "--follow=false", "--type", "failed", "--key", key)
		return strings.Count(out, "failed     invalid_request")
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		testutil.Eventually(t, 45*time.Second, cond, "%s", what)
	}
	for i := 1; i <= 3; i++ {
		waitUntil("the dead letter", func() bool {
			_, out, _ := cli(t, nats, "dlq", "list", "--key", key)
			return strings.Contains(out, "1 dead letter(s)")
		})
		if code, out, errb := cli(t, nats, "dlq", "replay", key); code != exitOK {
			t.Fatalf("replay %d: exit %d, stdout %q, stderr:\n%s", i, code, out, errb)
		}
		waitUntil("the outcome of replay "+string(rune('0'+i)), func() bool { return failedEvents() >= 1+i })
	}
	_, out, _ = cli(t, nats, "events", "--follow=false", "--type", "failed", "--key", key)
	if n := strings.Count(out, "failed     invalid_request at resolve_plan"); n != 4 || strings.Contains(out, "(replayed)") {
		t.Errorf("want 4 original failed events (the first run and three replays):\n%s", out)
	}
}

// TestResendWhileTheFirstRuns re-sends a request, byte for byte, while the first one is still
// running: the stream drops it, and submit answers with the outcome of the message it repeats.
// A different purchase under the same key at that moment is a conflict.
func TestResendWhileTheFirstRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	for _, ep := range partnerclient.AllEndpoints {
		sim.SetFaults(ep, partnertest.Faults{Latency: 300 * time.Millisecond})
	}
	nats := startWorkerProcess(t, sim.URL)
	const key = "shop-eu-order-100233"
	args := []string{"submit", "--key", key, "--plan", "Ultimate Plan", "--quantity", "3"}
	if code, out, errb := cli(t, nats, append(args, "--timeout", "0")...); code != exitOK {
		t.Fatalf("publish only: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	code, out, errb := cli(t, nats, append(args, "--timeout", "60s")...)
	if code != exitOK || !strings.Contains(out, "completed: order ZC") || strings.Contains(out, "replayed") ||
		!strings.Contains(errb, "stream sequence 1, duplicate of a recent publish") {
		t.Errorf("re-send while running: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	code, out, errb = cli(t, nats, "submit", "--timeout", "60s", "--key", key, "--plan", "Ultimate Plan", "--quantity", "4")
	if code != exitFailed || !strings.Contains(out, "conflict") {
		t.Errorf("other purchase: exit %d, stdout %q, stderr:\n%s", code, out, errb)
	}
	if n := len(sim.Orders()); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}
