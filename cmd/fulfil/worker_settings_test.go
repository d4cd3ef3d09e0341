package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWorkerReportsEverySettingProblemBeforeStarting runs `fulfil worker` as a process with many
// wrong settings at once, from flags and the environment: it lists every one of them in one
// plain-text message, one per line, exits 2, and starts nothing (no data dir, no NATS port).
func TestWorkerReportsEverySettingProblemBeforeStarting(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	natsAddr, httpAddr := freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := fulfilCmd(ctx, t, "worker", "--data-dir", dataDir, "--nats-listen", natsAddr, "--http-addr", httpAddr,
		"--ack-wait", "1ms", "--subject-prefix", "shop.eu", "--log-level", "loud", "--concurrency", "0",
		"--max-deliver", "1", "--duplicate-window", "soon", "--replicas", "7", "--resend-after-unknown", "sometimes",
		"--partner-url", "https://partner.example")
	cmd.Env = append(cmd.Env, "FULFIL_LEASE_TTL=forever", "FULFIL_KEY_RETENTION=1h", "FULFIL_PARTNER_RATE_LIMIT=-3", "FULFIL_EVENTS_MAX_AGE=10m")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d\nstderr:\n%s", err, exitUsage, stderr.String())
	}
	text := stderr.String()
	wants := []string{
		"FULFIL_ACK_WAIT (--ack-wait)",
		"FULFIL_SUBJECT_PREFIX (--subject-prefix)",
		"FULFIL_LOG_LEVEL (--log-level)",
		"FULFIL_CONCURRENCY (--concurrency)",
		"FULFIL_MAX_DELIVER (--max-deliver)",
		"FULFIL_DUPLICATE_WINDOW (--duplicate-window)",
		"FULFIL_REPLICAS (--replicas)",
		"FULFIL_RESEND_AFTER_UNKNOWN (--resend-after-unknown)",
		"FULFIL_LEASE_TTL",
		"FULFIL_KEY_RETENTION (--key-retention)",
		"FULFIL_EVENTS_MAX_AGE (--events-max-age)",
		"FULFIL_PARTNER_RATE_LIMIT (--partner-rate-limit)",
		"client ID is missing",
		"client secret is missing",
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for _, want := range wants {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines name %q, want 1", n, want)
		}
	}
	if len(lines) != len(wants)+1 { // a heading, then one line per problem
		t.Errorf("%d lines, want a heading and %d problems", len(lines), len(wants))
	}
	if strings.Contains(text, "{") || strings.Contains(text, `\n`) {
		t.Errorf("not plain text")
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", text)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data dir was created (%v): the embedded server started", err)
	}
	for _, addr := range []string{natsAddr, httpAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s is listening", addr)
		}
	}
}

// The same check in-process: a single wrong setting after valid credentials used to be found
// only once the embedded server had started.
func TestWorkerChecksSettingsBeforeTheServer(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	var stderr syncBuffer
	code := run(context.Background(), []string{"worker", "--partner-sim", "--data-dir", dataDir, "--nats-listen", freePort(t),
		"--http-addr", "127.0.0.1:http-port", "--nats-url", "", "--sync-interval", "-1s"}, &stderr, &stderr)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, stderr.String())
	}
	for _, want := range []string{"FULFIL_HTTP_ADDR (--http-addr)", "FULFIL_SYNC_INTERVAL (--sync-interval)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data dir was created: the embedded server started")
	}
}

// TestWorkerHelpLists checks that -h lists the settings and their environment variables, and
// nothing else (flag's defaults printer once panicked on every wrapped flag).
func TestWorkerHelpLists(t *testing.T) {
	var out syncBuffer
	if code := run(context.Background(), []string{"worker", "-h"}, &out, &out); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"$FULFIL_ACK_WAIT", "$FULFIL_EVENTS_MAX_AGE", "(default 1m0s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "panic") {
		t.Errorf("-h prints a panic:\n%s", out.String())
	}
}
