package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// startWithEnv is startProcess with settings in the environment, as a deployment gives them.
func startWithEnv(t *testing.T, name string, env []string, args ...string) (*syncBuffer, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := fulfilCmd(ctx, t, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return out, done
}

// getJSON decodes the JSON answer of a GET; it reports false when the answer is not a 200.
func getJSON(url string, v any) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// sagasCompleted reads fulfil_sagas_finished_total{outcome="completed"} from a worker's /metrics.
func sagasCompleted(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", httpAddr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n := 0
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "fulfil_sagas_finished_total{") && strings.Contains(line, `outcome="completed"`) {
			f, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndexByte(line, ' ')+1:]), 64)
			if err == nil {
				n += int(f)
			}
		}
	}
	return n
}

// TestPartnerBudgetAcrossWorkerProcesses drives the binaries only, set up by environment
// variables: `fulfil partnersim`, a `fulfil worker` with the embedded NATS server and a second
// one connected to it, both with FULFIL_PARTNER_RATE_LIMIT=30, and enough purchases for
// several seconds of partner traffic. The simulator, counting what it receives, never sees
// more than 110% of the budget in any one-second window, although each worker alone would be
// allowed the whole budget; and both workers complete purchases.
func TestPartnerBudgetAcrossWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const (
		budget    = 30
		purchases = 40
	)
	simAddr, natsAddr := freePort(t), freePort(t)
	simOut, simDone := startWithEnv(t, "partnersim", nil, "partnersim", "--addr", simAddr)
	waitFor(t, "partnersim", simDone, simOut, func() bool { return strings.Contains(simOut.String(), "listening on") })
	rateURL := "http://" + simAddr + partnertest.RatePath
	if !getJSON(rateURL, new(partnertest.RateStats)) {
		t.Fatalf("`fulfil partnersim` does not serve %s (partnertest.Sim.Handler)", partnertest.RatePath)
	}

	common := []string{
		"FULFIL_PARTNER_URL=http://" + simAddr,
		"FULFIL_PARTNER_CLIENT_ID=" + partnertest.DefaultClientID,
		"FULFIL_PARTNER_CLIENT_SECRET=" + partnertest.DefaultClientSecret,
		"FULFIL_PARTNER_RATE_LIMIT=" + strconv.Itoa(budget),
		// A few purchases at a time each, so that both workers take some.
		"FULFIL_CONCURRENCY=4",
		"FULFIL_LOG_LEVEL=info",
	}
	var workers []string
	var outs []*syncBuffer
	for i, own := range [][]string{
		{"FULFIL_NATS_LISTEN=" + natsAddr, "FULFIL_DATA_DIR=" + t.TempDir()},
		{"NATS_URL=nats://" + natsAddr},
	} {
		httpAddr := freePort(t)
		name := fmt.Sprintf("worker %d", i+1)
		out, done := startWithEnv(t, name, append(append([]string{"FULFIL_HTTP_ADDR=" + httpAddr}, common...), own...), "worker")
		waitFor(t, name, done, out, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		workers, outs = append(workers, httpAddr), append(outs, out)
	}
	if !strings.Contains(outs[0].String(), "partner budget share") {
		t.Fatalf("`fulfil worker` does not share the partner budget: no \"partner budget share\" line in its log\n%s", outs[0].String())
	}
	// Both count two workers before the load starts.
	waitFor(t, "workers", nil, nil, func() bool {
		for _, out := range outs {
			if !strings.Contains(out.String(), `"workers":2`) {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range purchases {
		wg.Go(func() {
			cmd := fulfilCmd(ctx, t, "submit", "--timeout", "150s",
				"--key", fmt.Sprintf("budget-bb-%02d", i), "--plan", "Ultimate Plan", "--quantity", "1")
			cmd.Env = append(cmd.Env, "NATS_URL=nats://"+natsAddr)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "completed: order ZC") {
				t.Errorf("purchase %d: %v: %s", i, err, strings.TrimSpace(out.String()))
			}
		})
	}
	wg.Wait()

	var st partnertest.RateStats
	if !getJSON(rateURL, &st) {
		t.Fatalf("GET %s failed", rateURL)
	}
	busy := 0
	for _, s := range st.Seconds {
		if s.Calls >= budget/2 {
			busy++
		}
	}
	t.Logf("partner calls: %d in all, at most %d in a whole second and %d in any one-second window (budget %d/s); per second: %v",
		st.Total, st.MaxPerSecond, st.MaxPerWindow, budget, st.Seconds)
	if limit := budget * 11 / 10; st.MaxPerWindow > limit {
		t.Errorf("the simulator saw %d calls in one second; the account's budget is %d/s (110%%: %d)", st.MaxPerWindow, budget, limit)
	}
	if busy < 3 {
		t.Errorf("only %d seconds of partner traffic at half the budget or more: the budget was never binding", busy)
	}
	total := 0
	for i, addr := range workers {
		n := sagasCompleted(t, addr)
		total += n
		if n == 0 {
			t.Errorf("worker %d completed no purchase", i+1)
		}
	}
	if total != purchases {
		t.Errorf("the workers completed %d purchases, want %d", total, purchases)
	}
}
