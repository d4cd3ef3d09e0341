package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary stand in for the fulfil executable: `fulfil bench
// --worker-processes` starts os.Executable() as `fulfil worker`.
func TestMain(m *testing.M) {
	if os.Getenv("FULFIL_TEST_AS_MAIN") == "1" {
		main()
	}
	goleak.VerifyTestMain(m)
}

// runBench runs `fulfil bench args`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, append([]string{"bench"}, args...), stdout, stderr)
}

func TestBenchWorkerProcesses(t *testing.T) {
	t.Setenv("FULFIL_TEST_AS_MAIN", "1")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runBench(ctx, []string{"--worker-processes", "--latency", "5ms", "--purchases", "40", "--concurrency", "16",
		"--rates", "", "--timeout", "1m", "--repeat", "2", "--out", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("bench exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{"1 `fulfil worker` process(es) × 16 concurrency", "the worker processes alone", "Every purchase completed with exactly one order."} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The row: the worker's CPU, resident set and NATS messages were measured.
	var row, spread []string
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || f[0] != "5ms":
		case row == nil:
			row = f
		default:
			spread = f
		}
	}
	// Two runs, each with the bare loop: "5ms open: done/s a b; bare/s c d; saga/bare e f".
	if len(spread) != 11 || spread[2] != "done/s" || spread[8] != "saga/bare" {
		t.Errorf("spread = %q, want the two runs' throughputs and ratios", spread)
	}
	if len(row) != 20 { // "open all at once" is three fields
		t.Fatalf("row = %q, want 20 fields", row)
	}
	// 18 per saga in process; the pulls of an idle worker add a little.
	if msgs, err := strconv.ParseFloat(row[14], 64); err != nil || msgs < 15 || msgs > 30 {
		t.Errorf("nats msgs = %q, want about 18 (the worker's connection, counted by the server)", row[14])
	}
	if cpu, err := strconv.ParseFloat(row[16], 64); err != nil || cpu <= 0 {
		t.Errorf("cpu-s/1k = %q, want a positive number", row[16])
	}
	if rss, err := strconv.Atoi(row[17]); err != nil || rss < 5 {
		t.Errorf("rss MiB = %q, want the worker's resident set", row[17])
	}
	// The worker's gauge, scraped every 100 ms: a phase shorter than a scrape may show 0.
	if inFlight, err := strconv.Atoi(row[18]); err != nil || inFlight < 0 || inFlight > 16 {
		t.Errorf("in flight = %q, want 0..16 (the worker's gauge)", row[18])
	}
	if row[19] != "-" {
		t.Errorf("MiB/1k fl = %q, want - below 1,000 in flight", row[19])
	}
	if _, err := os.Stat(filepath.Join(out, "latency-5ms.svg")); err != nil {
		t.Errorf("plot: %v", err)
	}
}

func TestBenchReadsItsEnvironment(t *testing.T) {
	t.Setenv("FULFIL_PURCHASES", "many")
	t.Setenv("FULFIL_LATENCY", "soon")
	var stdout, stderr bytes.Buffer
	if code := runBench(context.Background(), nil, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), `FULFIL_PURCHASES="many"`) {
		t.Errorf("stderr = %q, want the bad FULFIL_PURCHASES named", stderr.String())
	}
	if envName("point-duration") != "FULFIL_POINT_DURATION" || envName("concurrency") != "FULFIL_CONCURRENCY" {
		t.Errorf("envName: %q, %q", envName("point-duration"), envName("concurrency"))
	}
}
