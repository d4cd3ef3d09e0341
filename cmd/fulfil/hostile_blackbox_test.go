package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// fulfilCmd runs this test binary as the fulfil executable (see TestMain) with args, its
// environment being the test's without any FULFIL_ or NATS_ setting.
func fulfilCmd(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FULFIL_") && !strings.HasPrefix(kv, "NATS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FULFIL_TEST_AS_MAIN=1")
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// startProcess starts a long-running fulfil command; it is interrupted when the test ends.
func startProcess(t *testing.T, name string, args ...string) (*syncBuffer, <-chan error) {
	t.Helper()
	return startWithEnv(t, name, nil, args...)
}

// TestHostilePartnerBlackBox drives the binary only: `fulfil partnersim` with its hostile
// knobs, a `fulfil worker` against it, and `fulfil submit` for every purchase, as a user would
// from three terminals. Every purchase must complete with its single order, and no request may
// reach the listener the partner redirects to.
func TestHostilePartnerBlackBox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const purchases = 16
	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	simAddr, natsAddr, httpAddr := freePort(t), freePort(t), freePort(t)
	simOut, simDone := startProcess(t, "partnersim", "partnersim", "--addr", simAddr, "--seed", "7",
		"--commit-then-fail", "0.15", "--order-error-envelope-rate", "0.2", "--order-no-orderno-rate", "0.15",
		"--undocumented-status-rate", "0.15", "--undocumented-status-for", "1s",
		"--order-list-shift", "1", "--order-list-without-po-number",
		"--redirect-to", trap.URL, "--redirect-for", "3s")
	waitFor(t, "partnersim", simDone, simOut, func() bool { return strings.Contains(simOut.String(), "listening on") })
	for _, knob := range []string{"error envelope", "without orderNo", "redirected", "no poNumber"} {
		if !strings.Contains(simOut.String(), knob) {
			t.Fatalf("the simulator does not say it is hostile (%q):\n%s", knob, simOut.String())
		}
	}

	_, workerDone := startProcess(t, "worker", "worker", "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--http-addr", httpAddr, "--log-level", "warn",
		"--partner-url", "http://"+simAddr, "--partner-client-id", partnertest.DefaultClientID,
		"--partner-client-secret", partnertest.DefaultClientSecret)
	waitFor(t, "worker", workerDone, nil, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]string, purchases)
	for i := range purchases {
		wg.Go(func() {
			cmd := fulfilCmd(ctx, t, "submit", "--nats-listen", natsAddr, "--timeout", "150s",
				"--key", fmt.Sprintf("hostile-bb-%02d", i), "--plan", "Ultimate Plan", "--quantity", fmt.Sprint(1+i))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			results[i] = fmt.Sprintf("exit %v: %s", err, strings.TrimSpace(out.String()))
			if err != nil || !strings.Contains(out.String(), "completed: order ZC") {
				t.Errorf("purchase %d: %s", i, results[i])
			}
		})
	}
	wg.Wait()
	if reqs := trap.Requests(); len(reqs) > 0 {
		t.Errorf("%d requests reached the listener the partner redirected to; the first: %s %s (authorization %v, client secret %v)",
			len(reqs), reqs[0].Method, reqs[0].Path, reqs[0].HasAuthorization, reqs[0].HasClientSecret)
	}
}

// waitFor polls ready for up to 30 seconds, failing the test if the process ends first.
func waitFor(t *testing.T, name string, done <-chan error, out *syncBuffer, ready func() bool) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-done:
			msg := ""
			if out != nil {
				msg = out.String()
			}
			t.Fatalf("%s exited: %v\n%s", name, err, msg)
		default:
		}
		return ready()
	}, "%s to be ready", name)
}

// TestSpendCapAcrossWorkerProcesses runs two `fulfil worker` processes on one NATS server with
// an account-wide cap of two orders per hour: of five purchases, exactly two are ordered, and the
// others wait before create order (they are not failed).
func TestSpendCapAcrossWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	hour := time.Now().UTC().Truncate(time.Hour)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	natsAddr := freePort(t)
	common := []string{"--log-level", "warn", "--max-orders-per-hour", "2", "--partner-url", sim.URL,
		"--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret}
	for i, extra := range [][]string{{"--nats-listen", natsAddr, "--data-dir", t.TempDir()}, {"--nats-url", "nats://" + natsAddr}} {
		httpAddr := freePort(t)
		_, done := startProcess(t, fmt.Sprintf("worker %d", i+1), append(append([]string{"worker", "--http-addr", httpAddr}, common...), extra...)...)
		waitFor(t, fmt.Sprintf("worker %d", i+1), done, nil, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	const purchases = 5
	var wg sync.WaitGroup
	codes := make([]int, purchases)
	for i := range purchases {
		wg.Go(func() {
			cmd := fulfilCmd(context.Background(), t, "submit", "--nats-listen", natsAddr, "--timeout", "8s",
				"--key", fmt.Sprintf("capped-%d", i), "--plan", "Ultimate Plan", "--quantity", "3")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			codes[i] = cmd.ProcessState.ExitCode()
			if codes[i] != exitOK && !strings.Contains(out.String(), "spend cap") {
				t.Errorf("purchase %d: exit %d without a word of the spend cap:\n%s", i, codes[i], out.String())
			}
		})
	}
	wg.Wait()
	if time.Now().UTC().Truncate(time.Hour) != hour {
		t.Skip("the run crossed an hour boundary, where the hourly cap starts again")
	}
	completed, waited := 0, 0
	for _, c := range codes {
		switch c {
		case exitOK:
			completed++
		case exitTimeout:
			waited++
		}
	}
	if n := len(sim.Orders()); n != 2 || completed != 2 || waited != purchases-2 {
		t.Errorf("%d orders placed, %d purchases completed, %d still waiting; want 2, 2 and %d (exit codes %v)", n, completed, waited, purchases-2, codes)
	}
	var out bytes.Buffer
	cmd := fulfilCmd(context.Background(), t, "status", "--nats-listen", natsAddr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "2 this UTC hour") {
		t.Errorf("status: %v\n%s", err, out.String())
	}
}
