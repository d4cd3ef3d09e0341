package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// ScaleRow is one worker count of a scale-out run.
type ScaleRow struct {
	// Workers is the number of workers (processes with Config.WorkerExe).
	Workers int
	// Result is the median run by throughput; Runs are all runs, in the order they ran.
	Result Result
	Runs   []Result
	// Speedup is the row's throughput over the first row's, per worker of the first row: 2
	// workers completing twice what 1 completed is 2.0.
	Speedup float64
	// Limit names what bounded the row's throughput (see Limit).
	Limit string
}

// RunScaleOut measures fulfil's throughput with each worker count of cfg.ScaleOut, side by
// side: for each count a fresh stack (cfg.ClusterNodes servers), count workers with
// cfg.Concurrency sagas each, and cfg.Purchases×count purchases submitted at once, repeat
// times (the row is the median run by throughput). The bare loop is not run. It returns the
// rows measured and, when a run lost, failed or doubled purchases, an error wrapping
// ErrIncomplete; other errors end it early.
func RunScaleOut(ctx context.Context, cfg Config, repeat int) ([]ScaleRow, error) {
	if len(cfg.ScaleOut) == 0 {
		return nil, errors.New("bench: scale-out: no worker counts")
	}
	repeat = max(repeat, 1)
	per := cfg.withDefaults().Purchases
	var rows []ScaleRow
	var incomplete []error
	for _, n := range cfg.ScaleOut {
		c := cfg
		c.Workers, c.Purchases, c.SkipBare, c.Rate = n, per*n, true, 0
		if c.Warmup == 0 {
			c.Warmup = min(c.Purchases/4, 500)
		}
		row := ScaleRow{Workers: n}
		for range repeat {
			res, err := Run(ctx, c)
			if err != nil && !errors.Is(err, ErrIncomplete) {
				return rows, fmt.Errorf("bench: scale-out, %d workers: %w", n, err)
			}
			if err != nil {
				incomplete = append(incomplete, fmt.Errorf("%d workers: %w", n, err))
			}
			row.Runs = append(row.Runs, res)
		}
		sorted := slices.Clone(row.Runs)
		slices.SortStableFunc(sorted, func(x, y Result) int { return cmp.Compare(x.Saga.Throughput, y.Saga.Throughput) })
		row.Result = sorted[(len(sorted)-1)/2]
		row.Limit = Limit(row.Result)
		rows = append(rows, row)
	}
	if base := rows[0]; base.Result.Saga.Throughput > 0 {
		for i := range rows {
			rows[i].Speedup = rows[i].Result.Saga.Throughput / base.Result.Saga.Throughput * float64(base.Workers)
		}
	}
	return rows, errors.Join(incomplete...)
}

// cpuBound is the share of all cores above which a run counts as CPU-bound.
const cpuBound = 0.85

// SagaTime is the mean time a saga held its slot, by Little's law: the mean of the sagas in
// flight over the throughput. In an open-loop run (all purchases at once) it is the service
// time of one saga, where the latency from publish includes the wait for a slot.
func (p Phase) SagaTime() time.Duration {
	if p.Throughput <= 0 {
		return 0
	}
	return time.Duration(p.MeanInFlight / p.Throughput * float64(time.Second))
}

// Limit names what bounded the throughput of an open-loop run (all purchases at once):
//
//   - "CPU": the processes of the stack used at least 85 % of all cores (sum of process CPU
//     ≈ cores × wall), or the machine's cores were that busy (something else sharing them);
//   - "partner": the workers had more sagas in flight than their partner clients have call
//     slots for two calls each (partnerclient.MaxConnsPerHost, or Config.PartnerConns), so
//     sagas waited for a slot;
//   - "concurrency": every saga slot was busy and a saga held its slot (SagaTime) no more
//     than 1.25 × the critical path: throughput ≈ workers × concurrency ÷ critical path, and
//     more slots (workers) complete more;
//   - "NATS": none of these — the cores have room, and a saga holds its slot longer than the
//     partner makes it wait (or the slots are not full): the servers' round trips
//     (replication, stores, deliveries) are the rest.
func Limit(r Result) string {
	s, cfg := r.Saga, r.Config
	slots := cfg.Workers * cfg.Concurrency
	partnerCap := cfg.PartnerConns
	if partnerCap == 0 {
		partnerCap = partnerclient.MaxConnsPerHost
	}
	busy := fmt.Sprintf("%.0f%% of %d cores", 100*s.CPUBusy, s.Cores)
	if s.MachineBusy-s.CPUBusy >= 0.05 {
		busy += fmt.Sprintf(", machine %.0f%%", 100*s.MachineBusy)
	}
	full := float64(s.PeakInFlight) >= 0.9*float64(slots)
	switch {
	case s.CPUBusy >= cpuBound || s.MachineBusy >= cpuBound:
		return "CPU (" + busy + ")"
	case s.PeakInFlight == 0:
		return "unknown (too short to sample the sagas in flight; " + busy + ")"
	// A saga has at most two partner calls in flight (the lookups, renewal beside activation):
	// only more sagas than half the client's slots can wait for one.
	case 2*cfg.Concurrency > partnerCap && s.PeakInFlight*2 > cfg.Workers*partnerCap:
		return fmt.Sprintf("partner (%d connections per worker; %s)", partnerCap, busy)
	case r.CriticalPath > 0 && full && s.SagaTime() <= r.CriticalPath*5/4:
		return fmt.Sprintf("concurrency (%d slots, %s per saga; %s)", slots, ms(s.SagaTime()), busy)
	default:
		return fmt.Sprintf("NATS (%s per saga; %s)", ms(s.SagaTime()), busy)
	}
}

// scaleFormat lays out WriteScaleOut's table.
const scaleFormat = "%7s %7s %5s %9s %7s %7s %9s %9s %9s %9s %8s %8s %s\n"

// WriteScaleOut writes rows as a table: one row per worker count, with its throughput,
// speed-up, latency, CPU per purchase (of the workers, and of everything), how busy the cores
// were and what limited it; then the spread of the runs behind each row.
func WriteScaleOut(w io.Writer, rows []ScaleRow) error {
	if len(rows) == 0 {
		return nil
	}
	c := rows[0].Result.Config
	where := "1 server"
	if c.ClusterNodes > 1 {
		where = fmt.Sprintf("a %d-server cluster (replicas 3)", c.ClusterNodes)
	}
	kind := "worker pools in this process"
	if c.WorkerExe != "" {
		kind = "`fulfil worker` processes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Scale-out: %s on %s, %d concurrency each, partner latency %s, %d purchases per worker at once.\n",
		kind, where, c.Concurrency, latencyName(c.PartnerLatency), rows[0].Result.Saga.Purchases/max(rows[0].Workers, 1))
	fmt.Fprintf(&b, scaleFormat, "latency", "workers", "conc", "in flight", "done/s", "speedup", "saga time", "p50", "p99", "cpu-s/1k", "all/1k", "cpu busy", "limit")
	for _, r := range rows {
		s := r.Result.Saga
		fmt.Fprintf(&b, scaleFormat, latencyName(c.PartnerLatency), fmt.Sprint(r.Workers), fmt.Sprint(c.Concurrency), fmt.Sprint(s.PeakInFlight),
			fmt.Sprintf("%.0f", s.Throughput), fmt.Sprintf("%.2f", r.Speedup), sagaTimeCol(s), ms(s.Latency.P50), ms(s.Latency.P99),
			fmt.Sprintf("%.2f", s.CPUPer1000), fmt.Sprintf("%.2f", s.TotalCPUPer1000), busyCol(s), r.Limit)
	}
	if len(rows[0].Runs) > 1 {
		fmt.Fprintf(&b, "Spread of the %d runs behind each row (the median run by done/s is the row):\n", len(rows[0].Runs))
		for _, r := range rows {
			var tp, busy []string
			for _, run := range r.Runs {
				tp = append(tp, fmt.Sprintf("%.0f", run.Saga.Throughput))
				busy = append(busy, busyCol(run.Saga))
			}
			fmt.Fprintf(&b, "  %d workers: done/s %s; cpu busy %s\n", r.Workers, strings.Join(tp, " "), strings.Join(busy, " "))
		}
	}
	fmt.Fprintf(&b, "speedup: done/s over the first row's, × its workers. saga time: in flight ÷ done/s, the time a saga holds its slot (critical path %s);\n",
		ms(rows[0].Result.CriticalPath))
	b.WriteString("p50, p99: from publish, the wait for a slot included (every purchase is submitted at once). cpu-s/1k: the workers' CPU per 1,000 purchases (with processes: theirs alone);\n")
	b.WriteString("all/1k: every process of the stack (servers, simulator, load generator, workers). cpu busy: their CPU ÷ (wall × cores); a/b: b is the whole machine's.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// sagaTimeCol is SagaTime in milliseconds, "-" when no sagas in flight were sampled.
func sagaTimeCol(s Phase) string {
	if s.MeanInFlight == 0 {
		return "-"
	}
	return ms(s.SagaTime())
}

// busyCol is CPUBusy in percent, with the machine's when others used a share of it.
func busyCol(s Phase) string {
	if s.MachineBusy-s.CPUBusy >= 0.05 {
		return fmt.Sprintf("%.0f%%/%.0f%%", 100*s.CPUBusy, 100*s.MachineBusy)
	}
	return fmt.Sprintf("%.0f%%", 100*s.CPUBusy)
}

// ms formats d in milliseconds.
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
