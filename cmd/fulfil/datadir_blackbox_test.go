package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSecondWorkerOnDataDirRefuses runs two `fulfil worker` processes with their own ports on
// one FULFIL_DATA_DIR: the second must exit 1 within seconds and name the first, and once the
// first is killed (SIGKILL: the lock goes with the process) a new worker starts on the dir.
func TestSecondWorkerOnDataDirRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	args := func(natsAddr, httpAddr string) []string {
		return []string{"worker", "--partner-sim", "--log-level", "warn", "--nats-listen", natsAddr, "--http-addr", httpAddr}
	}
	first, firstHTTP := startLockedWorker(t, dir, args)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := fulfilCmd(ctx, t, args(freePort(t), freePort(t))...)
	second.Env = append(second.Env, "FULFIL_DATA_DIR="+dir)
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	start := time.Now()
	err := second.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailed {
		t.Fatalf("second worker: %v, want exit %d\n%s", err, exitFailed, out.String())
	}
	if took > 10*time.Second {
		t.Errorf("second worker took %s to refuse", took)
	}
	want := fmt.Sprintf("data dir %s is in use by fulfil worker pid %d", dir, first.Process.Pid)
	for _, w := range []string{"\nfulfil worker: embedded NATS server: " + want, want, "(started ", "stop it or use another data dir (FULFIL_DATA_DIR)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("second worker's output lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "worker started") {
		t.Errorf("the second worker started:\n%s", out.String())
	}
	if resp, err := http.Get("http://" + firstHTTP + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the first worker is not ready after the second was refused: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A killed holder leaves the lock file behind but not the lock.
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	startLockedWorker(t, dir, args)
}

// startLockedWorker starts a worker on dataDir with fresh ports and waits until /healthz answers.
func startLockedWorker(t *testing.T, dataDir string, args func(natsAddr, httpAddr string) []string) (*exec.Cmd, string) {
	t.Helper()
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := fulfilCmd(ctx, t, args(freePort(t), httpAddr)...)
	cmd.Env = append(cmd.Env, "FULFIL_DATA_DIR="+dataDir)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("worker pid %d did not stop", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("worker pid %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	waitFor(t, "worker", done, out, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd, httpAddr
}
