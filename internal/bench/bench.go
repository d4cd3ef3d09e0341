package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// ErrIncomplete means a phase did not end with exactly one completed outcome and one order
// per purchase: purchases were lost, failed or bought twice.
var ErrIncomplete = errors.New("bench: purchases not completed exactly once")

// Config configures a Run. Zero fields take the defaults given beside them.
type Config struct {
	// PartnerLatency delays every answer of every simulated partner endpoint.
	PartnerLatency time.Duration
	// Workers is the number of worker pools, each a worker.Worker with its own NATS
	// connection (default 1).
	Workers int
	// Concurrency is the number of sagas in flight per worker (default 256).
	Concurrency int
	// Purchases is the number of purchases submitted per phase (default 1000).
	Purchases int
	// Rate is the offered load in purchases per second; 0 submits all of them at once.
	Rate float64
	// PartnerConns caps the partner client's connections, idle ones included (0: the client's
	// default transport, capped at partnerclient.MaxConnsPerHost).
	PartnerConns int
	// WorkerExe, when set, is the fulfil executable: the saga phase then runs Workers
	// `fulfil worker` processes against the stack's server and simulator, and measures their
	// CPU time, resident set and in-flight sagas (the consumer's unacknowledged requests)
	// instead of this process's. The NATS server, the simulator and the load generator stay in
	// this process. CPU and resident set are read from /proc (Linux).
	WorkerExe string
	// ClusterNodes, when 2 or more, runs the stack on a JetStream cluster of that many servers
	// in this process instead of one server (3: the production layout), with the streams and
	// the idempotency bucket replicated on three of them (Replicas 3, as `fulfil worker`
	// chooses on a cluster). Workers connect to every server, spread over them. The bare loop's
	// streams stay unreplicated.
	ClusterNodes int
	// ScaleOut lists worker counts for RunScaleOut, e.g. 1, 2, 4: each is a run of
	// Purchases×count purchases with that many workers (with WorkerExe: `fulfil worker`
	// processes), Concurrency each. Run ignores it.
	ScaleOut []int
	// GCPercent, when not 0, is the garbage collector's GOGC for the run: of this process
	// (debug.SetGCPercent, restored afterwards) and of the worker processes (their GOGC);
	// negative turns the collector off. 0 leaves the GOGC environment variable's (default
	// 100). On two cores the collector's marking and assists delay the sagas' many wake-ups:
	// 400 halved the scheduling latency's p99 at 75 % of capacity.
	GCPercent int
	// Warmup is the number of purchases run through each implementation, all at once, before
	// it is measured: the partner client's connections are open, heaps, goroutine stacks and
	// store files have grown. Default: Purchases/4, at most 500; negative: none.
	Warmup int
	// SkipBare skips the bare-loop reference (Result.Bare stays nil).
	SkipBare bool
	// Timeout bounds the wait for the outcomes of a phase after its last publish (default 2m).
	Timeout time.Duration
	// Logger receives the stack's warnings and errors (default: none).
	Logger *zap.Logger
	// TracerProvider, when set, traces the in-process sagas and partner calls as `fulfil worker`
	// does with tracing on (default: off, as without OTEL_* settings).
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 256
	}
	if c.Purchases == 0 {
		c.Purchases = 1000
	}
	if c.Warmup == 0 {
		c.Warmup = min(c.Purchases/4, 500)
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports every invalid setting of c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.PartnerLatency < 0 {
		errs = append(errs, fmt.Errorf("partner latency %s is negative", c.PartnerLatency))
	}
	if c.Workers < 1 || c.Concurrency < 1 || c.Purchases < 1 {
		errs = append(errs, fmt.Errorf("workers (%d), concurrency (%d) and purchases (%d) must be positive",
			c.Workers, c.Concurrency, c.Purchases))
	}
	if c.ClusterNodes < 0 || c.ClusterNodes > 7 {
		errs = append(errs, fmt.Errorf("cluster nodes %d: want 0 or 1 (one server) to 7", c.ClusterNodes))
	}
	for _, n := range c.ScaleOut {
		if n < 1 {
			errs = append(errs, fmt.Errorf("scale-out worker count %d: want 1 or more", n))
		}
	}
	if c.PartnerConns < 0 {
		errs = append(errs, fmt.Errorf("partner connections %d is negative", c.PartnerConns))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g is negative", c.Rate))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Result is what a Run measured.
type Result struct {
	// Config is the configuration of the run, defaults applied.
	Config Config
	// CriticalPath is PartnerLatency × CriticalRounds; Formula spells it out.
	CriticalPath time.Duration
	Formula      string
	// Saga is fulfil's measurement: worker.Worker with every guarantee.
	Saga Phase
	// Bare is the bare loop's measurement, nil with Config.SkipBare.
	Bare *Phase
}

// P50Ratio is the saga's median latency over the critical path (0 when the path is 0).
func (r Result) P50Ratio() float64 { return ratio(r.Saga.Latency.P50, r.CriticalPath) }

// P99Ratio is the saga's 99th percentile latency over the critical path (0 when the path is 0).
func (r Result) P99Ratio() float64 { return ratio(r.Saga.Latency.P99, r.CriticalPath) }

// ThroughputRatio is the saga's throughput over the bare loop's (0 without a bare loop).
func (r Result) ThroughputRatio() float64 {
	if r.Bare == nil || r.Bare.Throughput == 0 {
		return 0
	}
	return r.Saga.Throughput / r.Bare.Throughput
}

func ratio(d, of time.Duration) float64 {
	if of <= 0 {
		return 0
	}
	return float64(d) / float64(of)
}

// Phase is the measurement of one implementation under one load.
type Phase struct {
	// Name is "saga" or "bare".
	Name string
	// Purchases submitted; Completed and Failed count their first outcome event each;
	// Duplicates counts further outcome events of a key already answered.
	Purchases, Completed, Failed, Duplicates int
	// Orders is the number of orders the simulator placed for these purchases; OrdersOK
	// reports whether each purchase has exactly one.
	Orders   int
	OrdersOK bool
	// OfferedRate is the rate at which purchases were published (per second).
	OfferedRate float64
	// Elapsed runs from the first publish to the last outcome; Throughput is Completed per
	// second of it.
	Elapsed    time.Duration
	Throughput float64
	// Latency is the distribution of publish → completed event received.
	Latency Percentiles
	// PartnerCallsPerSaga counts simulator requests per completed purchase (token requests
	// included).
	PartnerCallsPerSaga float64
	// ClientMsgsPerSaga counts NATS messages sent and received by the workers' connections
	// (nats.Conn.Stats OutMsgs+InMsgs: pulls, deliveries, acks, KV reads and writes, publishes
	// and their acknowledgements), per completed purchase. It is measured on the client side.
	ClientMsgsPerSaga float64
	// StoredPerSaga counts messages stored by the server (stream last-sequence growth over all
	// streams: KV record writes, events and the request itself), per completed purchase.
	// StoredByStream breaks the total down by stream. Both are measured on the server side.
	StoredPerSaga  float64
	StoredByStream map[string]uint64
	// CPUSeconds is the user+system CPU time of the whole process during the phase (with
	// Config.WorkerExe: of the worker processes); CPUPer1000 scales it to 1,000 completed
	// purchases.
	CPUSeconds float64
	CPUPer1000 float64
	// TotalCPUSeconds is the CPU time of everything the phase ran: this process (servers,
	// simulator, load generator, in-process workers) and the worker processes.
	// TotalCPUPer1000 scales it to 1,000 completed purchases. CPUBusy is TotalCPUSeconds over
	// Elapsed × Cores: 1 when every core was busy all the time.
	TotalCPUSeconds, TotalCPUPer1000 float64
	CPUBusy                          float64
	// MachineBusy is how busy the machine's cores were during the phase, every process
	// counted (Linux /proc/stat; 0 elsewhere): above CPUBusy when something else shares them.
	MachineBusy float64
	// Cores is the number of CPUs the processes could use (runtime.NumCPU).
	Cores int
	// SchedLatency is how long goroutines of this process waited, runnable, for a core during
	// the phase (the runtime's /sched/latencies histogram, bucket upper bounds): a saga waits
	// so at each of its steps, so a p99 of a few milliseconds adds up along the saga. It is
	// this process's alone (with WorkerExe: the servers, simulator and load generator).
	SchedLatency Percentiles
	// BaseRSS is the resident set at the phase start (after a GC that returned free memory to
	// the system), PeakRSS the highest resident set during the phase (bytes; Linux VmHWM,
	// reset at the phase start). RSSPer1000 is their difference per 1,000 sagas in flight at
	// the peak (PeakInFlight): what holding sagas costs.
	BaseRSS, PeakRSS uint64
	RSSPer1000       float64
	// PeakInFlight is the most sagas in flight at once (the workers' in-flight gauge), as
	// sampled every 10ms, or every 100ms from worker processes.
	PeakInFlight int
	// MeanInFlight is the mean of those samples, from the first publish to the last outcome.
	MeanInFlight float64
}

// Run measures fulfil, and unless cfg.SkipBare the bare loop, under cfg. It returns the result
// and, when a phase lost, failed or doubled purchases, an error wrapping ErrIncomplete
// together with the partial result. Other errors (a stack that cannot start, ctx ending) come
// with an empty result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("bench config: %w", err)
	}
	if cfg.GCPercent != 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	}
	st, err := startStack(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer st.close()

	res := Result{Config: cfg, CriticalPath: CriticalPath(cfg.PartnerLatency), Formula: Formula(cfg.PartnerLatency)}
	var incomplete []error
	saga, err := st.runSaga(ctx)
	if err != nil && !errors.Is(err, ErrIncomplete) {
		return Result{}, err
	}
	res.Saga = saga
	if err != nil {
		incomplete = append(incomplete, err)
	}
	if !cfg.SkipBare {
		bare, err := st.runBare(ctx)
		if err != nil && !errors.Is(err, ErrIncomplete) {
			return Result{}, err
		}
		res.Bare = &bare
		if err != nil {
			incomplete = append(incomplete, err)
		}
	}
	return res, errors.Join(incomplete...)
}
