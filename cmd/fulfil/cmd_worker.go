package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/audit"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/ratelimit"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

func newWorkerCmd(inv *invocation) *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "run a worker until SIGINT/SIGTERM, then drain in-flight sagas",
		Long: `Runs a worker: it takes purchase requests from NATS JetStream and runs each as a saga against the
partner API, publishing result events. With NATS_URL empty it starts an embedded JetStream
server on --nats-listen, storing in --data-dir, that the other commands on this host find.
It also serves the HTTP intake (--api-addr), webhook delivery (--webhook-url) and
/metrics, /healthz, /readyz (--http-addr).

Every setting is checked before anything starts, and every problem is reported at once (exit 2).`,
		Example: `  fulfil worker --partner-sim                        # embedded NATS, built-in partner simulator
  NATS_URL=nats://nats-1:4222 FULFIL_PARTNER_CLIENT_ID_FILE=/run/secrets/id \
    FULFIL_PARTNER_CLIENT_SECRET_FILE=/run/secrets/secret fulfil worker
  fulfil worker --partner-sim --max-orders-per-hour 20 --resend-after-unknown never`,
		Annotations: map[string]string{annotationCollect: "true"},
		Args:        cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	c.natsFlags(fs, true)
	c.partnerFlags(fs)
	c.workerFlags(fs)
	c.logFlag(fs, defaultLogLevel)
	c.api.flags(fs)
	c.webhook.flags(fs)
	lenientFlags(fs, &inv.problems)
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) int {
		return runWorker(cmd.Context(), &c, cmd, args, inv.problems, cmd.ErrOrStderr())
	})
	return cmd
}

func runWorker(ctx context.Context, c *config, cmd *cobra.Command, args []string, parseErrs []error, stderr io.Writer) int {
	// Every setting is checked before anything starts, and every problem reported at once.
	problems := append(c.checkWorker(args, parseErrs), c.api.check(cmd.Flags(), false)...)
	problems = append(problems, tracingProblems()...)
	if problems = append(problems, c.webhook.check(c.eventsMaxAge)...); len(problems) > 0 {
		return settingsError(stderr, "worker", problems)
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	defer func() { _ = log.Sync() }()
	if err := serveWorker(ctx, c, log); err != nil {
		log.Error("worker stopped with an error", zap.Error(err))
		_ = log.Sync()
		// Also as a plain line: the reason a worker would not start (a taken data dir or port)
		// must read well on a terminal too.
		fmt.Fprintf(stderr, "fulfil worker: %v\n", err)
		return natsExitCode(err)
	}
	return exitOK
}

// usageError reports a usage or configuration error and returns its exit code.
func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "fulfil: %v\n", err)
	return exitUsage
}

// partner builds the partner client: against the configured portal, or the in-process
// simulator with --partner-sim. stop releases the simulator.
func partner(c *config, log *zap.Logger, m *metrics.Metrics, opts ...partnerclient.Option) (client *partnerclient.Client, stop func(), err error) {
	stop = func() {}
	url, id, secret := c.partnerURL, c.clientID, c.clientSecret
	if c.partnerSim {
		sim := partnertest.NewServer()
		stop = sim.Close
		url, id, secret = sim.URL, partnertest.DefaultClientID, partnertest.DefaultClientSecret
		log.Info("using the built-in partner simulator", zap.String("url", url))
	}
	client, err = partnerclient.New(url, append([]partnerclient.Option{
		partnerclient.WithCredentials(id, secret),
		partnerclient.WithAllowInsecure(c.partnerInsecure),
		partnerclient.WithLogger(log.Named("partner")),
		partnerclient.WithObserver(m.PartnerCall),
		partnerclient.WithRateLimit(c.partnerRate, rateBurst(c.partnerRate)),
	}, opts...)...)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return client, stop, nil
}

// serveWorker runs a worker and its HTTP endpoints until ctx ends.
func serveWorker(ctx context.Context, c *config, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	// Started first, so that its deferred flush runs last, once every span has ended.
	tr, stopTracing, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	c.api.tracerProvider, c.webhook.tracerProvider = tr.TracerProvider(), tr.TracerProvider()
	// The partner budget is the account's, shared with the other workers once NATS is up
	// (ratelimit.Start below); until then this worker sends at most one call a second.
	limiter := ratelimit.StartLimiter(c.partnerRate)
	client, stopSim, err := partner(c, log, m, partnerclient.WithTracerProvider(tr.TracerProvider()), partnerclient.WithLimiter(limiter))
	if err != nil {
		return err
	}
	defer stopSim()
	// The first token is asked for while NATS starts; the answer is only logged, so a partner
	// that does not answer holds nothing back.
	checked := checkPartner(ctx, c, client, log)
	defer checked()
	env, err := connectNATS(c, true, log)
	if err != nil {
		return err
	}
	defer env.close()

	resend, err := workflow.ParseResendPolicy(c.resendAfterUnknown)
	if err != nil {
		return err
	}
	saga := &workflow.Saga{Partner: client, Logger: log.Named("saga"), Resend: resend,
		Hooks: workflow.Hooks{StepDone: m.StepDone, Reconciled: m.Reconciled}, TracerProvider: tr.TracerProvider()}
	if c.replicas == 0 {
		c.replicas = defaultReplicas(env.nc.ConnectedClusterName())
		log.Info("stream and bucket replicas", zap.Int("replicas", c.replicas), zap.String("cluster", env.nc.ConnectedClusterName()))
	}
	w, err := worker.New(env.js, saga, workerConfig(c, log, m))
	if err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = w.Setup(setupCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("set up streams, consumer and bucket: %w", err)
	}
	budget, err := ratelimit.Start(ctx, env.js, limiter, ratelimit.Config{Budget: c.partnerRate, Prefix: c.prefix,
		Replicas: c.replicas, Worker: w.Config().WorkerID, Logger: log.Named("ratelimit")})
	if err != nil {
		return fmt.Errorf("partner budget: %w", err)
	}
	defer budget.Stop()
	stopAPI, _, err := startAPI(ctx, &c.api, env.js, c.prefix, c.replicas, c.keyRetention, reg, log, true)
	if err != nil {
		return err
	}
	defer stopAPI()
	stopWebhooks, err := startWebhooks(ctx, c, env.js, reg, log)
	if err != nil {
		return err
	}
	defer stopWebhooks()
	srv, err := startHTTP(c.httpAddr, c.pprof, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), readiness(env, client, w), log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if c.auditInterval > 0 {
		sweeper := &audit.Sweeper{Control: w.Control(), Store: w.Store(), Partner: client, Interval: c.auditInterval,
			Window: c.auditWindow, Owner: w.Config().WorkerID, Logger: log.Named("audit"), Metrics: m}
		sctx, stopSweeper := context.WithCancel(ctx)
		swept := make(chan struct{})
		go func() { defer close(swept); sweeper.Run(sctx) }()
		defer func() { stopSweeper(); <-swept }()
	}
	log.Info("create-order guard", zap.Int("max_orders_per_hour", c.maxOrdersPerHour), zap.Int("max_orders_per_day", c.maxOrdersPerDay),
		zap.String("resend_after_unknown", string(resend)), zap.Duration("audit_interval", c.auditInterval))
	return w.Run(ctx)
}

// partnerCheckTimeout bounds the start-up's partner check.
const partnerCheckTimeout = 10 * time.Second

// checkPartner asks for the first partner token in the background and logs a warning, naming
// what to check, when it cannot be had: otherwise a worker that cannot reach the partner looks
// healthy in its logs, and only /readyz says why. Purchases wait and retry meanwhile. stop
// ends the check and waits for it.
func checkPartner(ctx context.Context, c *config, client *partnerclient.Client, log *zap.Logger) (stop func()) {
	ctx, cancel := context.WithTimeout(ctx, partnerCheckTimeout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := client.Authenticate(ctx)
		switch {
		case err == nil:
			log.Info("partner API reachable: token obtained")
		case errors.Is(ctx.Err(), context.Canceled):
			// the worker is stopping
		case errors.Is(err, partnerclient.ErrUnauthorized):
			log.Warn(fmt.Sprintf("partner API refused the credentials: %s; purchases will wait and retry; check FULFIL_PARTNER_CLIENT_ID and FULFIL_PARTNER_CLIENT_SECRET (or their _FILE variants)",
				scrub(err.Error(), c.clientSecret)), zap.String("partner_url", redactUserInfo(c.partnerURL)))
		default:
			log.Warn(fmt.Sprintf("partner API not reachable: %s; purchases will wait and retry; check FULFIL_PARTNER_URL and the partner credentials",
				scrub(err.Error(), c.clientSecret)), zap.String("partner_url", redactUserInfo(c.partnerURL)))
		}
	}()
	return func() { cancel(); <-done }
}

// scrub removes secret from s: partner errors are not meant to carry it, and a start-up
// warning must not be the first to.
func scrub(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// readiness reports whether NATS is connected, the embedded server's store (if any) has no
// write error, the requests stream exists, the idempotency store takes writes and the partner
// token can be obtained. Each failure names its cause in /readyz's 503 answer.
func readiness(env *natsEnv, client *partnerclient.Client, w *worker.Worker) func(context.Context) error {
	return func(ctx context.Context) error {
		if !env.nc.IsConnected() {
			return errors.New("NATS not connected")
		}
		if env.srv != nil {
			if err := env.srv.Health(); err != nil {
				return fmt.Errorf("embedded NATS store: %w", err)
			}
		}
		if _, err := env.js.Stream(ctx, "FULFIL_REQUESTS"); err != nil {
			return fmt.Errorf("requests stream: %w", err)
		}
		if err := w.CheckStore(ctx); err != nil {
			return fmt.Errorf("idempotency store cannot write: %w", err)
		}
		if err := client.Authenticate(ctx); err != nil {
			return fmt.Errorf("partner token: %w", err)
		}
		return nil
	}
}

// httpLimits bound what one client of the metrics and health endpoints can hold: Prometheus
// and kubelet probes keep connections alive, and without an idle timeout every one of them
// (or of anyone who can reach the address) stays open for ever.
type httpLimits struct {
	ReadHeader     time.Duration // to read a request's headers
	Read           time.Duration // to read a whole request
	Write          time.Duration // from the end of the request's headers to the end of the answer
	Idle           time.Duration // a kept-alive connection waiting for its next request
	MaxHeaderBytes int
}

// defaultHTTPLimits are the endpoints' limits. With the runtime profiles the write timeout
// leaves room for a CPU profile or trace of up to a minute (/debug/pprof/profile takes 30 s by
// default, and net/http/pprof refuses a profile that would not end before the write timeout).
func defaultHTTPLimits(withPprof bool) httpLimits {
	l := httpLimits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second,
		Idle: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	if withPprof {
		l.Write = 90 * time.Second
	}
	return l
}

// startHTTP serves /metrics, /healthz and /readyz, and with withPprof /debug/pprof/; an empty
// addr disables it.
func startHTTP(addr string, withPprof bool, metricsHandler http.Handler, ready func(context.Context) error, log *zap.Logger) (*http.Server, error) {
	return startHTTPWith(addr, defaultHTTPLimits(withPprof), withPprof, metricsHandler, ready, log)
}

// startHTTPWith is startHTTP with the given limits. The returned server's Addr is the address
// it listens on (the port chosen for ":0").
func startHTTPWith(addr string, limits httpLimits, withPprof bool, metricsHandler http.Handler, ready func(context.Context) error, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if withPprof {
		registerPprof(mux)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: limits.ReadHeader, ReadTimeout: limits.Read,
		WriteTimeout: limits.Write, IdleTimeout: limits.Idle, MaxHeaderBytes: limits.MaxHeaderBytes}
	if addr == "" {
		return srv, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	srv.Addr = ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("http endpoints", zap.String("addr", ln.Addr().String()))
	return srv, nil
}

// workerConfig maps the command's configuration onto worker.Config.
func workerConfig(c *config, log *zap.Logger, m *metrics.Metrics) worker.Config {
	return worker.Config{
		SubjectPrefix:   c.prefix,
		Concurrency:     c.concurrency,
		AckWait:         c.ackWait,
		MaxDeliver:      c.maxDeliver,
		DuplicateWindow: c.dupWindow,
		EventsMaxAge:    c.eventsMaxAge,
		Replicas:        c.replicas,
		Repair:          c.repair,
		Idempotency:     idempotency.Config{TTL: c.keyRetention, LeaseTTL: c.leaseTTL, Replicas: c.replicas},
		Control:         worker.ControlConfig{MaxOrdersPerHour: c.maxOrdersPerHour, MaxOrdersPerDay: c.maxOrdersPerDay},
		Logger:          log,
		Metrics:         m,
	}
}

// rateBurst is the burst allowed with a rate limit of rps.
func rateBurst(rps float64) int {
	if rps <= 0 {
		return 0
	}
	return max(1, int(2*rps))
}

// defaultReplicas is 3 when the connected server belongs to a cluster, else 1.
func defaultReplicas(cluster string) int {
	if cluster != "" {
		return 3
	}
	return 1
}
