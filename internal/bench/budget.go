package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/ratelimit"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// ErrNotShared means the worker processes never registered in the partner-budget bucket: the
// executable does not share FULFIL_PARTNER_RATE_LIMIT across processes.
var ErrNotShared = errors.New("bench: the worker processes do not share the partner budget")

// BudgetConfig configures RunBudget.
type BudgetConfig struct {
	// WorkerExe is the fulfil executable, run as `fulfil worker` (required).
	WorkerExe string
	// Budget is FULFIL_PARTNER_RATE_LIMIT, the account's partner calls per second (default 20).
	Budget float64
	// Workers lists the runs: each the number of `fulfil worker` processes (default 1, 2, 4).
	Workers []int
	// Purchases per run (default: about eight seconds of partner traffic at the budget).
	Purchases int
	// Concurrency is FULFIL_CONCURRENCY of each process (default 4: every process gets work).
	Concurrency int
	// PartnerLatency delays every answer of the simulator.
	PartnerLatency time.Duration
	// Timeout bounds each run after its last publish (default 2m).
	Timeout time.Duration
}

func (c BudgetConfig) withDefaults() BudgetConfig {
	if c.Budget == 0 {
		c.Budget = 20
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{1, 2, 4}
	}
	if c.Purchases == 0 {
		// A purchase costs about five partner calls.
		c.Purchases = max(10, int(math.Ceil(c.Budget*8/5)))
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}

// Validate reports every invalid setting (after defaults).
func (c BudgetConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.WorkerExe == "" {
		errs = append(errs, errors.New("bench: the budget runs need the fulfil executable (WorkerExe)"))
	}
	if !(c.Budget > 0) || math.IsInf(c.Budget, 0) {
		errs = append(errs, fmt.Errorf("bench: budget %v: want a positive number of calls per second", c.Budget))
	}
	for _, n := range c.Workers {
		if n < 1 || n > 64 {
			errs = append(errs, fmt.Errorf("bench: %d worker processes: want 1 to 64", n))
		}
	}
	if c.Purchases < 1 || c.Concurrency < 1 || c.Timeout < 0 {
		errs = append(errs, errors.New("bench: purchases and concurrency must be positive, the timeout not negative"))
	}
	return errors.Join(errs...)
}

// BudgetRow is one run of RunBudget: how closely the worker processes together kept to the
// account's budget, as the simulator counted the calls it received.
type BudgetRow struct {
	Workers   int
	Budget    float64
	Purchases int
	Completed int
	Failed    int
	// PerWorker is the purchases each process completed (fulfil_sagas_finished_total).
	PerWorker []int
	// Calls is every partner call of the run, token calls included.
	Calls int64
	// MaxPerWindow is the most calls in any one-second window; MaxPerSecond in a whole second.
	MaxPerWindow int
	MaxPerSecond int
	// Busy is the seconds with calls, from the first to the last.
	Busy time.Duration
}

// Adherence is MaxPerWindow over the budget: at most 1.1 by design.
func (r BudgetRow) Adherence() float64 { return float64(r.MaxPerWindow) / r.Budget }

// MeanRate is the calls per second over the busy seconds.
func (r BudgetRow) MeanRate() float64 {
	if r.Busy <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Busy.Seconds()
}

// RunBudget runs the purchases once per entry of cfg.Workers, each run on a new NATS server
// and simulator with that many `fulfil worker` processes sharing cfg.Budget, and reports for
// each the most calls the simulator saw in a second against the budget, and what each
// process completed.
func RunBudget(ctx context.Context, cfg BudgetConfig) ([]BudgetRow, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var rows []BudgetRow
	for _, n := range cfg.Workers {
		row, err := runBudget(ctx, cfg, n)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// runBudget is one run with n processes.
func runBudget(ctx context.Context, cfg BudgetConfig, n int) (BudgetRow, error) {
	row := BudgetRow{Workers: n, Budget: cfg.Budget, Purchases: cfg.Purchases}
	dir, err := os.MkdirTemp("", "fulfil-budget-*")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir, ServerName: "fulfil-budget"})
	if err != nil {
		return row, err
	}
	defer srv.Shutdown()
	sim := partnertest.NewServer(partnertest.WithSeed(1), partnertest.WithRequestLimit(0))
	defer sim.Close()
	for _, ep := range partnerclient.AllEndpoints {
		sim.SetFaults(ep, partnertest.Faults{Latency: cfg.PartnerLatency})
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("fulfil-budget-load"))
	if err != nil {
		return row, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return row, err
	}

	procs, err := startBudgetWorkers(ctx, cfg, n, srv.ClientURL(), sim.URL)
	defer stopWorkerProcs(procs)
	if err != nil {
		return row, err
	}
	if err := waitShared(ctx, js, n); err != nil {
		return row, err
	}

	subjects := messages.SubjectsFor("")
	var mu sync.Mutex
	seen := make(map[string]bool, cfg.Purchases)
	all := make(chan struct{})
	record := func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		key := m.Header.Get(messages.HeaderIdempotencyKey)
		if !strings.HasPrefix(key, "budget-") || seen[key] {
			return
		}
		seen[key] = true
		if m.Subject == subjects.Completed {
			row.Completed++
		} else {
			row.Failed++
		}
		if len(seen) == cfg.Purchases {
			close(all)
		}
	}
	for _, s := range []string{subjects.Completed, subjects.Failed} {
		sub, err := nc.Subscribe(s, record)
		if err != nil {
			return row, err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := nc.Flush(); err != nil {
		return row, err
	}
	sim.ResetRate() // the start-up token calls are not part of the run
	for i := range cfg.Purchases {
		key := fmt.Sprintf("budget-%d-%04d", n, i)
		body := fmt.Appendf(nil, `{"idempotencyKey":%q,"plan":{"name":"Enterprise Plan"},"quantity":1}`, key)
		m := nats.NewMsg(subjects.Requested)
		m.Data = body
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(messages.RequestMsgID(key, body))); err != nil {
			return row, fmt.Errorf("bench: publish %s: %w", key, err)
		}
	}
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	select {
	case <-all:
	case <-timer.C:
	case <-ctx.Done():
		return row, ctx.Err()
	}
	st := sim.Rate()
	row.Calls, row.MaxPerWindow, row.MaxPerSecond = st.Total, st.MaxPerWindow, st.MaxPerSecond
	if k := len(st.Seconds); k > 0 {
		row.Busy = st.Seconds[k-1].Second.Sub(st.Seconds[0].Second) + time.Second
	}
	for _, p := range procs {
		row.PerWorker = append(row.PerWorker, completedBy(ctx, p))
	}
	mu.Lock()
	defer mu.Unlock()
	if row.Completed+row.Failed < cfg.Purchases {
		return row, fmt.Errorf("%w: budget run with %d workers: %d of %d purchases had an outcome within %s",
			ErrIncomplete, n, row.Completed+row.Failed, cfg.Purchases, cfg.Timeout)
	}
	return row, nil
}

// startBudgetWorkers starts n `fulfil worker` processes sharing cfg.Budget, and waits until
// each is ready.
func startBudgetWorkers(ctx context.Context, cfg BudgetConfig, n int, natsURL, simURL string) ([]*workerProc, error) {
	var procs []*workerProc
	for range n {
		addr, err := freeAddr()
		if err != nil {
			return procs, err
		}
		cmd := exec.Command(cfg.WorkerExe, "worker")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "FULFIL_") && !strings.HasPrefix(kv, "NATS_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env,
			"FULFIL_TEST_AS_MAIN=1", // when WorkerExe is a test binary standing in for fulfil
			"NATS_URL="+natsURL,
			"FULFIL_PARTNER_URL="+simURL,
			"FULFIL_PARTNER_CLIENT_ID="+partnertest.DefaultClientID,
			"FULFIL_PARTNER_CLIENT_SECRET="+partnertest.DefaultClientSecret,
			"FULFIL_PARTNER_RATE_LIMIT="+strconv.FormatFloat(cfg.Budget, 'g', -1, 64),
			"FULFIL_CONCURRENCY="+strconv.Itoa(cfg.Concurrency),
			"FULFIL_HTTP_ADDR="+addr,
			"FULFIL_LOG_LEVEL=error",
		)
		p := &workerProc{cmd: cmd, http: addr, stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
		cmd.Stderr = p.stderr
		if err := cmd.Start(); err != nil {
			return procs, fmt.Errorf("bench: start worker process: %w", err)
		}
		p.pid = cmd.Process.Pid
		go func() { _ = cmd.Wait(); close(p.exited) }()
		procs = append(procs, p)
		if err := p.waitReady(ctx); err != nil {
			return procs, err
		}
	}
	return procs, nil
}

// waitShared waits until n heartbeats are in the partner-budget bucket, and a heartbeat more
// for every worker to have seen the others and settled on its share.
func waitShared(ctx context.Context, js jetstream.JetStream, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if kv, err := js.KeyValue(ctx, ratelimit.DefaultBucket); err == nil {
			if keys, err := kv.Keys(ctx); err == nil && len(keys) == n {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d heartbeats expected in %s", ErrNotShared, n, ratelimit.DefaultBucket)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(ratelimit.DefaultHeartbeat):
		return nil
	}
}

// completedBy reads the purchases a process completed from its /metrics (0 when it cannot).
func completedBy(ctx context.Context, p *workerProc) int {
	return sumCounter(p.metrics(ctx), "fulfil_sagas_finished_total", `outcome="completed"`)
}

// sumCounter adds the samples of name in a Prometheus text exposition whose labels contain
// label.
func sumCounter(text, name, label string) int {
	total := 0.0
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok || !strings.Contains(rest, label) {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		if f, err := strconv.ParseFloat(strings.TrimSpace(rest[i+1:]), 64); err == nil {
			total += f
		}
	}
	return int(total)
}

// WriteBudget writes the rows as a table: the most partner calls in any second against the
// budget, and the purchases each worker process completed.
func WriteBudget(w io.Writer, rows []BudgetRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\tbudget/s\tmax in 1 s\tof budget\tmean/s\tcalls\tcompleted\tper worker\t")
	for _, r := range rows {
		per := make([]string, len(r.PerWorker))
		for i, n := range r.PerWorker {
			per[i] = strconv.Itoa(n)
		}
		fmt.Fprintf(tw, "%d\t%g\t%d\t%.0f%%\t%.1f\t%d\t%d/%d\t%s\t\n", r.Workers, r.Budget, r.MaxPerWindow,
			100*r.Adherence(), r.MeanRate(), r.Calls, r.Completed, r.Purchases, strings.Join(per, " "))
	}
	return tw.Flush()
}
