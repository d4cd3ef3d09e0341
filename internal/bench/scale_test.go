package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestRunScaleOutCluster runs the scale-out rows on a 3-server cluster: every count completes
// every purchase exactly once, on streams replicated three times, and the table has a row per
// count naming its limit.
func TestRunScaleOutCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{PartnerLatency: 5 * time.Millisecond, Concurrency: 4, Purchases: 12, ClusterNodes: 3,
		ScaleOut: []int{1, 2}, Logger: zaptest.NewLogger(t)}
	rows, err := RunScaleOut(ctx, cfg, 1)
	if err != nil {
		t.Fatalf("RunScaleOut: %v", err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for i, r := range rows {
		if r.Workers != cfg.ScaleOut[i] || r.Result.Config.Workers != r.Workers {
			t.Errorf("row %d: %d workers (config %d), want %d", i, r.Workers, r.Result.Config.Workers, cfg.ScaleOut[i])
		}
		checkPhase(t, r.Result.Saga, cfg.Purchases*r.Workers, r.Result.CriticalPath)
		s := r.Result.Saga
		if s.TotalCPUSeconds < s.CPUSeconds || s.CPUBusy <= 0 || s.Cores < 1 {
			t.Errorf("row %d: total CPU %.2fs (workers %.2fs), busy %.2f of %d cores: want total >= workers, busy > 0",
				i, s.TotalCPUSeconds, s.CPUSeconds, s.CPUBusy, s.Cores)
		}
		// The request, the result and the idempotency record's writes, each stored once per
		// purchase whatever the replicas: the server counts stream sequences, not copies.
		if s.StoredByStream["KV_FULFIL_SAGAS"] == 0 {
			t.Errorf("row %d: nothing stored in the idempotency bucket: %v", i, s.StoredByStream)
		}
		if r.Limit == "" {
			t.Errorf("row %d: no limit named", i)
		}
	}
	if rows[0].Speedup != 1 {
		t.Errorf("first row's speedup = %v, want 1", rows[0].Speedup)
	}
	var buf bytes.Buffer
	if err := WriteScaleOut(&buf, rows); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"a 3-server cluster (replicas 3)", "workers", "limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	lines := 0
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "5ms" {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("table has %d rows, want 2:\n%s", lines, out)
	}
}

// TestClusterReplicates checks that the stack's streams live on three servers of the cluster.
func TestClusterReplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := startStack(ctx, Config{ClusterNodes: 3, Concurrency: 2, Purchases: 2, Warmup: -1, Logger: zaptest.NewLogger(t)}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if _, err := st.runSaga(ctx); err != nil {
		t.Fatalf("runSaga: %v", err)
	}
	l := st.js.ListStreams(ctx)
	n := 0
	for info := range l.Info() {
		n++
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v; want 3, a leader and 2 replicas", info.Config.Name, info.Config.Replicas, info.Cluster)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 4 { // requests, events, dead letters, the idempotency bucket (and the control bucket)
		t.Errorf("%d streams, want 4 or more", n)
	}
}

func TestLimit(t *testing.T) {
	cp := 200 * time.Millisecond
	// 64 slots; a throughput of 64 ÷ sagaTime.
	base := func(busy float64, inFlight int, sagaTime time.Duration) Result {
		return Result{Config: Config{Workers: 2, Concurrency: 32}, CriticalPath: cp,
			Saga: Phase{CPUBusy: busy, Cores: 2, PeakInFlight: inFlight, MeanInFlight: float64(inFlight), Throughput: float64(inFlight) / sagaTime.Seconds()}}
	}
	tests := []struct {
		name string
		give Result
		want string // prefix
	}{
		{name: "cores busy", give: base(0.93, 64, 400*time.Millisecond), want: "CPU"},
		{name: "every slot busy at the critical path", give: base(0.5, 64, 210*time.Millisecond), want: "concurrency"},
		{name: "slots busy but slow", give: base(0.5, 64, 600*time.Millisecond), want: "NATS"},
		{name: "partner connections", give: Result{Config: Config{Workers: 1, Concurrency: 600, PartnerConns: 512}, CriticalPath: cp,
			Saga: Phase{CPUBusy: 0.5, Cores: 2, PeakInFlight: 600, MeanInFlight: 600, Throughput: 2000}}, want: "partner"},
		{name: "machine busy", give: Result{Config: Config{Workers: 2, Concurrency: 32}, CriticalPath: cp,
			Saga: Phase{CPUBusy: 0.6, MachineBusy: 0.97, Cores: 2, PeakInFlight: 64, MeanInFlight: 64, Throughput: 200}}, want: "CPU (60% of 2 cores, machine 97%)"},
		{name: "partner slots enough for two calls each", give: Result{Config: Config{Workers: 1, Concurrency: 256}, CriticalPath: cp,
			Saga: Phase{CPUBusy: 0.5, Cores: 2, PeakInFlight: 256, MeanInFlight: 256, Throughput: 256 / 0.21}}, want: "concurrency"},
		{name: "too short to sample", give: Result{Config: Config{Workers: 1, Concurrency: 8}, CriticalPath: cp,
			Saga: Phase{CPUBusy: 0.5, Cores: 2, Throughput: 400}}, want: "unknown"},
		{name: "slots not full", give: base(0.5, 40, 210*time.Millisecond), want: "NATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.give.Saga.SagaTime(), time.Duration(tt.give.Saga.MeanInFlight/tt.give.Saga.Throughput*float64(time.Second)); got != want {
				t.Errorf("SagaTime = %s, want %s", got, want)
			}
			if got := Limit(tt.give); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Limit = %q, want %s…", got, tt.want)
			}
		})
	}
}

func TestWriteScaleSVG(t *testing.T) {
	row := func(n int, tp float64, limit string) ScaleRow {
		return ScaleRow{Workers: n, Speedup: tp / 100, Limit: limit, Result: Result{Saga: Phase{Throughput: tp}}}
	}
	var buf bytes.Buffer
	if err := WriteScaleSVG(&buf, "scale <out>", []ScaleRow{row(1, 100, "concurrency (32 slots)"), row(2, 190, "concurrency"), row(4, 330, "CPU (90% of 2 cores)")}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, out)
	}
	for _, want := range []string{`class="ideal"`, "linear: 100/s per worker", "330/s ×3.30 CPU<", "scale &lt;out&gt;", `class="done"`} {
		if !strings.Contains(out, want) {
			t.Errorf("SVG lacks %q:\n%s", want, out)
		}
	}
}

func TestSchedLatency(t *testing.T) {
	before := schedHist{counts: []uint64{1, 0, 5, 0}, buckets: []float64{0, 1e-6, 1e-5, 1e-3, 1e308}}
	after := schedHist{counts: []uint64{1, 50, 54, 1}, buckets: before.buckets}
	// Between the snapshots: 50 waits of 1–10µs, 49 of 10µs–1ms, 1 of 1ms or more; each
	// percentile is its bucket's upper bound (the unbounded last one: its lower bound).
	got := schedLatency(before, after)
	want := Percentiles{P50: 10 * time.Microsecond, P90: time.Millisecond, P99: time.Millisecond, Max: time.Millisecond}
	if got != want {
		t.Errorf("schedLatency = %+v, want %+v", got, want)
	}
	if got := schedLatency(before, before); got != (Percentiles{}) {
		t.Errorf("no waits: %+v, want zero", got)
	}
	if h := readSched(); len(h.counts) == 0 || len(h.buckets) != len(h.counts)+1 {
		t.Errorf("readSched: %d counts, %d buckets; want the runtime's histogram", len(h.counts), len(h.buckets))
	}
}

// TestRunGCPercent checks that a run with its own GOGC leaves the process's as it found it.
func TestRunGCPercent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)
	if _, err := Run(ctx, Config{Concurrency: 2, Purchases: 2, Warmup: -1, SkipBare: true, GCPercent: 400, Logger: zaptest.NewLogger(t)}); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(before); got != 150 {
		t.Errorf("GOGC after the run = %d, want 150 as before it", got)
	}
}
