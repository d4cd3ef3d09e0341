package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/internal/bench"
)

// benchOptions are the flags of `fulfil bench`.
type benchOptions struct {
	latencies     []time.Duration
	purchases     int
	workers       int
	concurrency   int
	partnerConns  int
	loads         []bench.Load
	pointDuration time.Duration
	timeout       time.Duration
	out           string
	pprof         string
	processes     bool
	repeat        int
	gogc          int
	// The scale-out rows.
	scaleOut         []int
	scaleConcurrency int
	scalePurchases   int
	scaleLatency     time.Duration
	cluster          int
	// The partner-budget rows.
	budget        float64
	budgetWorkers []int
}

func newBenchCmd() *cobra.Command {
	var c config
	var o benchOptions
	var latencies, loads, scaleOut, budgetWorkers string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "measure throughput and latency against the critical path and a bare loop; writes SVG plots",
		Long: `Measures fulfil on an embedded JetStream server against the partner simulator: per partner latency,
an open-loop run (capacity, with a bare publish-and-ack loop for comparison), then load points
of the latency curve. Writes an SVG plot per latency to --out. Exit 1 if a purchase was lost,
failed or bought twice.`,
		Example: `  fulfil bench
  fulfil bench --latency 50ms --purchases 10000 --concurrency 10000 --rates "" --out docs/bench
  fulfil bench --worker-processes --workers 2 --pprof-addr 127.0.0.1:6060`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	f := envFlags{fs}
	c.logFlag(fs, "error")
	f.String(&latencies, "latency", "FULFIL_LATENCY", "0,50ms", "partner latencies to measure, comma separated; empty: none (only the scale-out and budget rows)")
	f.Int(&o.purchases, "purchases", "FULFIL_PURCHASES", 2000, "purchases of the open-loop run (capacity) per latency")
	f.Int(&o.workers, "workers", "FULFIL_WORKERS", 1, "worker pools, each with its own NATS connection")
	f.Int(&o.concurrency, "concurrency", "FULFIL_CONCURRENCY", 256, "sagas in flight per worker")
	f.Int(&o.partnerConns, "partner-conns", "FULFIL_PARTNER_CONNS", 0,
		"cap the partner client's connections; 0: the default transport (partnerclient.MaxConnsPerHost)")
	f.String(&loads, "rates", "FULFIL_RATES", "25%,50%,75%,90%,100%",
		"offered loads of the latency curve: purchases/s, or a percentage of the measured capacity; empty: none")
	f.Duration(&o.pointDuration, "point-duration", "FULFIL_POINT_DURATION", 3*time.Second, "how long each load point publishes")
	f.Duration(&o.timeout, "timeout", "FULFIL_TIMEOUT", 2*time.Minute, "wait for the outcomes of one run after its last publish")
	f.Int(&o.repeat, "repeat", "FULFIL_REPEAT", 3,
		"run every measurement this many times, fresh each time, and report the median run; the spread is listed under the table")
	f.String(&o.out, "out", "FULFIL_OUT", "./bench-out", "directory of the SVG plots")
	f.Bool(&o.processes, "worker-processes", "FULFIL_WORKER_PROCESSES", false,
		"run the workers as 'fulfil worker' processes and measure their CPU, resident set and in-flight sagas alone")
	f.String(&scaleOut, "scale-out", "FULFIL_SCALE_OUT", "1,2,4",
		"worker process counts of the scale-out rows, comma separated: each a fresh stack with that many 'fulfil worker' processes; empty: no scale-out rows")
	f.Int(&o.scaleConcurrency, "scale-concurrency", "FULFIL_SCALE_CONCURRENCY", 32,
		"sagas in flight per worker process in the scale-out rows (fixed, so that the rows show what more processes add)")
	f.Int(&o.scalePurchases, "scale-purchases", "FULFIL_SCALE_PURCHASES", 300, "purchases per worker process of each scale-out row, submitted at once")
	f.Duration(&o.scaleLatency, "scale-latency", "FULFIL_SCALE_LATENCY", 50*time.Millisecond, "partner latency of the scale-out rows")
	f.Int(&o.cluster, "cluster", "FULFIL_CLUSTER", 3,
		"JetStream servers of the scale-out rows' stack, in this process: 3 is a cluster with the streams and the bucket replicated three times; 1 one server")
	f.Float64(&o.budget, "budget", "FULFIL_BUDGET", 40,
		"partner budget (FULFIL_PARTNER_RATE_LIMIT) of the budget rows, calls per second for all the worker processes together; 0: no budget rows")
	f.String(&budgetWorkers, "budget-workers", "FULFIL_BUDGET_WORKERS", "1,2,4",
		"worker process counts of the budget rows, comma separated: each a fresh stack where the simulator counts the calls it receives per second")
	f.Int(&o.gogc, "gogc", "FULFIL_GOGC", 0,
		"the garbage collector's GOGC for every run, of this process and of the worker processes; 0: the GOGC environment variable's (default 100)")
	f.String(&o.pprof, "pprof-addr", "FULFIL_PPROF_ADDR", "", "serve the Go runtime profiles (/debug/pprof/) of this process on this address during the run, e.g. 127.0.0.1:6060; empty: off")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return benchmark(cmd.Context(), &c, o, latencies, loads, scaleOut, budgetWorkers, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

func benchmark(ctx context.Context, c *config, o benchOptions, latencies, loads, scaleOut, budgetWorkers string, stdout, stderr io.Writer) int {
	var err error
	if o.pprof != "" {
		stop, err := servePprof(o.pprof)
		if err != nil {
			fmt.Fprintf(stderr, "fulfil bench: pprof: %v\n", err)
			return exitFailed
		}
		defer stop()
	}
	if o.repeat < 1 {
		return usageError(stderr, fmt.Errorf("repeat %d: want 1 or more", o.repeat))
	}
	if o.latencies, err = parseLatencies(latencies); err != nil {
		return usageError(stderr, err)
	}
	if o.loads, err = bench.ParseLoads(loads); err != nil {
		return usageError(stderr, err)
	}
	if o.scaleOut, err = parseCounts(scaleOut); err != nil {
		return usageError(stderr, err)
	}
	if o.budgetWorkers, err = parseCounts(budgetWorkers); err != nil {
		return usageError(stderr, err)
	}
	if o.budget < 0 {
		return usageError(stderr, fmt.Errorf("--budget %v: want 0 (no budget rows) or more", o.budget))
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	if err := os.MkdirAll(o.out, 0o750); err != nil {
		fmt.Fprintf(stderr, "fulfil bench: %v\n", err)
		return exitFailed
	}
	b := &benchRun{opts: o, stdout: stdout, base: bench.Config{Workers: o.workers, Concurrency: o.concurrency, PartnerConns: o.partnerConns,
		Timeout: o.timeout, Logger: log, GCPercent: o.gogc}}
	if o.processes {
		if b.base.WorkerExe, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "fulfil bench: %v\n", err)
			return exitFailed
		}
	}
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(stderr, "fulfil bench: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// parseCounts parses a comma-separated list of positive integers; empty is none.
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("worker count %q: want a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseLatencies(s string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
			continue
		case "0":
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("latency %q: want a duration such as 0 or 50ms", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// benchRun runs the open-loop run and the load points of every latency and reports them.
type benchRun struct {
	opts   benchOptions
	base   bench.Config
	stdout io.Writer
	spread []string // one line per row measured more than once
}

// rowFormat lays out the table of runs.
const rowFormat = "%7s %6s %11s %7s %9s %9s %9s %6s %6s %7s %9s %5s %9s %6s %8s %7s %9s %9s\n"

func (b *benchRun) run(ctx context.Context) error {
	o := b.opts
	kind := "worker(s)"
	if o.processes {
		kind = "`fulfil worker` process(es)"
	}
	fmt.Fprintf(b.stdout, "fulfil bench: embedded JetStream, partner simulator, %d %s × %d concurrency; new-license purchases; client rate limit off.\n",
		o.workers, kind, o.concurrency)
	fmt.Fprintf(b.stdout, "Per latency: an open-loop run of %d purchases (fulfil, then the bare loop), then load points of %s each;\n", o.purchases, o.pointDuration)
	fmt.Fprintf(b.stdout, "each run %d time(s) on a fresh stack, warmed up first; a row is the median run.\n\n", o.repeat)
	fmt.Fprintf(b.stdout, rowFormat, "latency", "load", "offered/s", "done/s", "p50", "p90", "p99", "p50/cp", "p99/cp",
		"bare/s", "saga/bare", "calls", "nats msgs", "stored", "cpu-s/1k", "rss MiB", "in flight", "MiB/1k fl")
	var failed []error
	var formulas, plots []string
	for _, lat := range o.latencies {
		curve, formula, err := b.latency(ctx, lat)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed = append(failed, err)
		}
		formulas = append(formulas, formula)
		path := filepath.Join(o.out, "latency-"+fileSafe(lat)+".svg")
		if err := writePlot(path, curve); err != nil {
			return err
		}
		plots = append(plots, path)
	}
	fmt.Fprintln(b.stdout)
	if len(b.spread) > 0 {
		fmt.Fprintf(b.stdout, "Spread of the %d runs behind each row (the median run is the row):\n", o.repeat)
		for _, l := range b.spread {
			fmt.Fprintln(b.stdout, l)
		}
		fmt.Fprintln(b.stdout)
	}
	for _, f := range formulas {
		fmt.Fprintln(b.stdout, f)
	}
	fmt.Fprintln(b.stdout, "\ncalls, nats msgs, stored: per purchase. cp: critical path. rss: peak resident set during the run.")
	fmt.Fprintln(b.stdout, "MiB/1k fl: growth of the resident set from the start of the run to its peak, per 1,000 sagas in flight at the peak (runs with 1,000 or more).")
	fmt.Fprintln(b.stdout, "nats msgs: client side, the workers' connections (pulls, deliveries, acks, KV reads and writes, publishes, their acks).")
	fmt.Fprintln(b.stdout, "stored: server side, messages stored in all streams (KV record writes, events, the request).")
	if o.processes {
		fmt.Fprintln(b.stdout, "cpu, rss and in flight of fulfil: the worker processes alone (the bare loop: this process); their nats msgs are counted by the server.")
	} else {
		fmt.Fprintln(b.stdout, "cpu and rss: the whole process (server, simulator, workers and load generator).")
	}
	if len(o.scaleOut) > 0 {
		path, err := b.scaleOut(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, bench.ErrIncomplete) {
			return err
		}
		if err != nil {
			failed = append(failed, err)
		}
		plots = append(plots, path)
	}
	if o.budget > 0 && len(o.budgetWorkers) > 0 {
		if err := b.budgetRows(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed = append(failed, err)
		}
	}
	fmt.Fprintf(b.stdout, "Plots: %s\n", strings.Join(plots, ", "))
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	fmt.Fprintln(b.stdout, "Every purchase completed with exactly one order.")
	return nil
}

// scaleOut measures and prints the scale-out rows and plots them; it returns the plot's path.
func (b *benchRun) scaleOut(ctx context.Context) (string, error) {
	o := b.opts
	cfg := b.base
	cfg.PartnerLatency, cfg.Concurrency, cfg.Purchases = o.scaleLatency, o.scaleConcurrency, o.scalePurchases
	cfg.ClusterNodes, cfg.ScaleOut = o.cluster, o.scaleOut
	if cfg.WorkerExe == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		cfg.WorkerExe = exe
	}
	rows, err := bench.RunScaleOut(ctx, cfg, o.repeat)
	fmt.Fprintln(b.stdout)
	if werr := bench.WriteScaleOut(b.stdout, rows); werr != nil {
		return "", werr
	}
	fmt.Fprintln(b.stdout)
	path := filepath.Join(o.out, "scale-out.svg")
	f, ferr := os.Create(path)
	if ferr != nil {
		return "", ferr
	}
	title := fmt.Sprintf("fulfil: purchases/s against worker processes, %d concurrency each, partner latency %s", o.scaleConcurrency, latencyName(o.scaleLatency))
	if werr := bench.WriteScaleSVG(f, title, rows); werr != nil {
		f.Close()
		return "", werr
	}
	if cerr := f.Close(); cerr != nil {
		return "", cerr
	}
	return path, err
}

// budgetRows measures and prints the partner-budget rows: worker processes sharing one budget,
// the calls the simulator received in any one second against it.
func (b *benchRun) budgetRows(ctx context.Context) error {
	exe := b.base.WorkerExe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	rows, err := bench.RunBudget(ctx, bench.BudgetConfig{WorkerExe: exe, Budget: b.opts.budget, Workers: b.opts.budgetWorkers,
		PartnerLatency: b.opts.scaleLatency, Timeout: b.base.Timeout})
	fmt.Fprintln(b.stdout)
	if werr := bench.WriteBudget(b.stdout, rows); werr != nil {
		return werr
	}
	fmt.Fprintln(b.stdout)
	return err
}

// latency measures one partner latency: capacity (open loop, with the bare loop), then the
// load points.
func (b *benchRun) latency(ctx context.Context, lat time.Duration) (bench.Curve, string, error) {
	o := b.opts
	curve := bench.Curve{Title: fmt.Sprintf("fulfil: latency vs offered load, partner latency %s", latencyName(lat)), CriticalPath: bench.CriticalPath(lat)}
	cfg := b.base
	cfg.PartnerLatency, cfg.Purchases = lat, o.purchases
	var errs []error
	res, err := b.median(ctx, cfg, lat, "open")
	if err != nil && !errors.Is(err, bench.ErrIncomplete) {
		return curve, bench.Formula(lat), err
	}
	if err != nil {
		errs = append(errs, err)
	}
	curve.Capacity = res.Saga.Throughput
	if res.Bare != nil {
		curve.BareCapacity = res.Bare.Throughput
	}
	for _, l := range o.loads {
		rate := l.RateFor(curve.Capacity)
		if rate <= 0 {
			continue
		}
		cfg.Rate, cfg.SkipBare = rate, true
		cfg.Purchases = max(100, int(rate*o.pointDuration.Seconds()))
		res, err := b.median(ctx, cfg, lat, l.String())
		if err != nil && !errors.Is(err, bench.ErrIncomplete) {
			return curve, bench.Formula(lat), err
		}
		if err != nil {
			errs = append(errs, err)
		}
		curve.Points = append(curve.Points, bench.CurvePoint{Offered: res.Saga.OfferedRate, P50: res.Saga.Latency.P50, P99: res.Saga.Latency.P99})
	}
	return curve, bench.Formula(lat), errors.Join(errs...)
}

// median runs cfg opts.repeat times, each on a fresh stack, prints the median run as the
// row of load and notes the spread. The median is by throughput for an open-loop run (all
// purchases at once), by p99 latency for a load point. Runs that lost, failed or doubled
// purchases are reported in the error and still counted.
func (b *benchRun) median(ctx context.Context, cfg bench.Config, lat time.Duration, load string) (bench.Result, error) {
	var runs []bench.Result
	var errs []error
	for range b.opts.repeat {
		res, err := bench.Run(ctx, cfg)
		if err != nil && !errors.Is(err, bench.ErrIncomplete) {
			return res, err
		}
		if err != nil {
			errs = append(errs, err)
		}
		runs = append(runs, res)
	}
	open := cfg.Rate == 0
	key := func(r bench.Result) float64 {
		if open {
			return r.Saga.Throughput
		}
		return float64(r.Saga.Latency.P99)
	}
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(x, y bench.Result) int { return cmp.Compare(key(x), key(y)) })
	med := sorted[(len(sorted)-1)/2]
	b.row(lat, load, med)
	if len(runs) > 1 {
		b.spread = append(b.spread, spreadLine(lat, load, open, runs))
	}
	return med, errors.Join(errs...)
}

// spreadLine lists the runs behind one row, in the order they ran.
func spreadLine(lat time.Duration, load string, open bool, runs []bench.Result) string {
	col := func(f func(bench.Result) string) string {
		vs := make([]string, len(runs))
		for i, r := range runs {
			vs[i] = f(r)
		}
		return strings.Join(vs, " ")
	}
	head := fmt.Sprintf("  %s %s:", latencyName(lat), load)
	if open {
		line := head + " done/s " + col(func(r bench.Result) string { return fmt.Sprintf("%.0f", r.Saga.Throughput) })
		if runs[0].Bare != nil {
			line += "; bare/s " + col(func(r bench.Result) string { return fmt.Sprintf("%.0f", r.Bare.Throughput) }) +
				"; saga/bare " + col(func(r bench.Result) string { return fmt.Sprintf("%.2f", r.ThroughputRatio()) })
		}
		return line
	}
	return head + " p50 " + col(func(r bench.Result) string { return ms(r.Saga.Latency.P50) }) +
		"; p99 " + col(func(r bench.Result) string { return ms(r.Saga.Latency.P99) })
}

// row prints one run.
func (b *benchRun) row(lat time.Duration, load string, r bench.Result) {
	s := r.Saga
	offered, bare, ratio := "all at once", "-", "-"
	f1 := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", v)
	}
	if r.Config.Rate > 0 {
		offered = fmt.Sprintf("%.0f", s.OfferedRate)
	}
	if r.Bare != nil {
		bare = fmt.Sprintf("%.0f", r.Bare.Throughput)
		ratio = fmt.Sprintf("%.2f", r.ThroughputRatio())
	}
	cp := func(v float64) string {
		if r.CriticalPath <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", v)
	}
	// Below 1,000 sagas in flight the growth per 1,000 is mostly noise.
	perThousand := "-"
	if s.PeakInFlight >= 1000 {
		perThousand = f1(s.RSSPer1000 / (1 << 20))
	}
	fmt.Fprintf(b.stdout, rowFormat, latencyName(lat), load, offered, fmt.Sprintf("%.0f", s.Throughput),
		ms(s.Latency.P50), ms(s.Latency.P90), ms(s.Latency.P99), cp(r.P50Ratio()), cp(r.P99Ratio()), bare, ratio,
		f1(s.PartnerCallsPerSaga), f1(s.ClientMsgsPerSaga), f1(s.StoredPerSaga), fmt.Sprintf("%.2f", s.CPUPer1000),
		fmt.Sprintf("%.0f", float64(s.PeakRSS)/(1<<20)), fmt.Sprint(s.PeakInFlight), perThousand)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// latencyName is d for people: "0ms" rather than "0s".
func latencyName(d time.Duration) string {
	if d == 0 {
		return "0ms"
	}
	return d.String()
}

// fileSafe is latencyName without dots, for file names.
func fileSafe(d time.Duration) string { return strings.ReplaceAll(latencyName(d), ".", "_") }

func writePlot(path string, c bench.Curve) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
