package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/api"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

// defaultAPIAddr is where the HTTP intake listens unless FULFIL_API_ADDR says otherwise.
const defaultAPIAddr = "127.0.0.1:8081"

// apiConfig is the HTTP intake's settings, shared by `fulfil worker` and `fulfil api`.
type apiConfig struct {
	addr     string
	keysFile string
	tlsCert  string
	tlsKey   string

	// Set by check:
	explicit bool // the address was chosen (flag or environment), not the default
	keys     *api.Keys
	cert     *tls.Certificate

	tracerProvider trace.TracerProvider // set once tracing started; nil: off
}

// flags registers the HTTP intake's flags.
func (a *apiConfig) flags(fs *pflag.FlagSet) {
	f := envFlags{fs}
	f.String(&a.addr, "api-addr", "FULFIL_API_ADDR", defaultAPIAddr, "address of the HTTP intake (POST /v1/purchases); empty disables it; a non-loopback address needs --api-keys-file")
	f.String(&a.keysFile, "api-keys-file", "FULFIL_API_KEYS_FILE", "", "file of API keys for the HTTP intake, one per line ('#' comments); clients send Authorization: Bearer KEY")
	f.String(&a.tlsCert, "api-tls-cert", "FULFIL_API_TLS_CERT", "", "PEM certificate (chain) for HTTPS on the intake (with --api-tls-key)")
	f.String(&a.tlsKey, "api-tls-key", "FULFIL_API_TLS_KEY", "", "PEM private key of --api-tls-cert")
}

// check reports every problem of the intake's settings, and loads the keys and the
// certificate. required says the command exists to serve the intake (`fulfil api`), so an
// empty address is a problem.
func (a *apiConfig) check(fs *pflag.FlagSet, required bool) []error {
	var errs []error
	add := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s "+format, append([]any{setting(flagName)}, args...)...))
	}
	a.explicit = a.explicit || fs.Changed("api-addr")
	if _, ok := os.LookupEnv(envName("api-addr")); ok {
		a.explicit = true
	}
	if a.addr == "" {
		if required {
			add("api-addr", "must not be empty: it is the address fulfil api serves")
		}
		return errs
	}
	badAddr := listenProblem(a.addr, false)
	if badAddr != "" {
		add("api-addr", "%q: %s (empty disables the HTTP intake)", a.addr, badAddr)
	}
	if a.keysFile != "" {
		keys, err := api.LoadKeys(a.keysFile)
		switch {
		case err != nil:
			add("api-keys-file", "%v", err)
		case keys.Len() == 0:
			add("api-keys-file", "%q holds no API key", a.keysFile)
		default:
			a.keys = keys
		}
	} else if badAddr == "" && !loopbackAddr(a.addr) {
		add("api-addr", "%q is not a loopback address: the HTTP intake buys licences and will not serve it without API keys; "+
			"set FULFIL_API_KEYS_FILE (--api-keys-file), or listen on 127.0.0.1", a.addr)
	}
	switch {
	case (a.tlsCert == "") != (a.tlsKey == ""):
		add("api-tls-cert", "and FULFIL_API_TLS_KEY (--api-tls-key): HTTPS needs both, or neither for plain HTTP")
	case a.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			add("api-tls-cert", "and FULFIL_API_TLS_KEY (--api-tls-key): %v", err)
		} else {
			a.cert = &cert
		}
	}
	return errs
}

// loopbackAddr reports whether a listen address is on a loopback interface only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && isLoopback(host)
}

// apiLimits bound what one client of the intake can hold. The write timeout leaves room for
// the longest ?wait=.
var apiLimits = httpLimits{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: api.DefaultMaxWait + 15*time.Second,
	Idle: 60 * time.Second, MaxHeaderBytes: 16 << 10}

// startAPI opens the intake bucket and serves the HTTP intake on a.addr until ctx ends or stop
// is called; stop waits for the server to shut down. An empty address serves nothing. With
// optional (the worker), an address left at its default that is already in use is logged and
// skipped, so several workers can run on one host; a chosen address must be free.
func startAPI(ctx context.Context, a *apiConfig, js jetstream.JetStream, prefix string, replicas int, keyRetention time.Duration,
	reg prometheus.Registerer, log *zap.Logger, optional bool) (stop func(), addr string, err error) {
	if a.addr == "" {
		return func() {}, "", nil
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	intake, err := api.OpenIntake(octx, js, api.IntakeConfig{TTL: keyRetention, Replicas: replicas})
	cancel()
	if err != nil {
		return nil, "", fmt.Errorf("http intake: %w", err)
	}
	h, err := api.New(api.Config{JS: js, Intake: intake, SubjectPrefix: prefix, Keys: a.keys, SagaID: worker.SagaID,
		Metrics: metrics.NewAPI(reg), Logger: log.Named("api"), TracerProvider: a.tracerProvider})
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		if optional && !a.explicit && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn(fmt.Sprintf("HTTP intake not started: its default address %s is in use (another worker on this host serves it?); "+
				"set FULFIL_API_ADDR to another address, or empty to disable it", a.addr))
			return func() {}, "", nil
		}
		return nil, "", fmt.Errorf("http intake listen %s: %w", a.addr, err)
	}
	addr = ln.Addr().String()
	scheme := "http"
	if a.cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*a.cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	// The server's own complaints (TLS handshakes of scanners, clients gone) are debug noise.
	errLog, _ := zap.NewStdLogAt(log.Named("api"), zap.DebugLevel)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: apiLimits.ReadHeader, ReadTimeout: apiLimits.Read,
		WriteTimeout: apiLimits.Write, IdleTimeout: apiLimits.Idle, MaxHeaderBytes: apiLimits.MaxHeaderBytes, ErrorLog: errLog}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http intake", zap.Error(err))
		}
	}()
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			h.Close() // long polls answer now
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			<-served
		})
	}
	go func() {
		<-ctx.Done()
		shutdown() // stop taking purchases as soon as the process is asked to stop
	}()
	log.Info("http intake", zap.String("url", scheme+"://"+addr+"/v1/purchases"), zap.Int("api_keys", a.keys.Len()))
	return shutdown, addr, nil
}

func newAPICmd(inv *invocation) *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "api",
		Short: "serve the HTTP intake (POST /v1/purchases, GET /v1/purchases/{key}) without a worker; needs NATS only",
		Long: `Serves the HTTP intake without a worker: POST /v1/purchases publishes a purchase request,
GET /v1/purchases/{key} answers its state. It needs only NATS, where a worker has created the
streams. A non-loopback --api-addr needs --api-keys-file.`,
		Example: `  fulfil api --nats-url nats://nats-1:4222 --api-addr 0.0.0.0:8081 --api-keys-file /run/secrets/api-keys
  fulfil api --api-tls-cert cert.pem --api-tls-key key.pem`,
		Annotations: map[string]string{annotationCollect: "true"},
		Args:        cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	c.natsFlags(fs, false)
	c.logFlag(fs, defaultLogLevel)
	c.api.flags(fs)
	c.httpFlag(fs)
	envFlags{fs}.Int(&c.replicas, "replicas", "FULFIL_REPLICAS", 0, "replicas of the intake bucket; 0: 3 on a cluster, 1 on a single server")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) int {
		return runAPI(cmd.Context(), &c, cmd.Flags(), args, inv.problems, cmd.ErrOrStderr())
	})
	return cmd
}

// runAPI serves the HTTP intake without a worker: it needs only NATS (and a worker somewhere
// to have created the requests stream).
func runAPI(ctx context.Context, c *config, fs *pflag.FlagSet, args []string, parseErrs []error, stderr io.Writer) int {
	problems := append([]error(nil), parseErrs...)
	if len(args) > 0 {
		problems = append(problems, fmt.Errorf("unexpected argument %q: fulfil api takes only flags", args[0]))
	}
	if _, err := newLogger(c.logLevel, io.Discard); err != nil {
		problems = append(problems, fmt.Errorf("%s %q: want debug, info, warn or error", setting("log-level"), c.logLevel))
	}
	if c.httpAddr != "" {
		if msg := listenProblem(c.httpAddr, false); msg != "" {
			problems = append(problems, fmt.Errorf("%s %q: %s (empty disables the endpoints)", setting("http-addr"), c.httpAddr, msg))
		}
	}
	if !validToken(c.prefix) {
		problems = append(problems, fmt.Errorf("%s %q: must be one NATS subject token of letters, digits, '-' or '_'", setting("subject-prefix"), c.prefix))
	}
	if c.replicas < 0 || c.replicas > 5 {
		problems = append(problems, fmt.Errorf("%s must be 0 (3 on a cluster, 1 on a single server) or 1 to 5, got %d", setting("replicas"), c.replicas))
	}
	problems = append(problems, flatten(c.checkNATS())...)
	problems = append(problems, c.api.check(fs, true)...)
	problems = append(problems, tracingProblems()...)
	if len(problems) > 0 {
		return settingsError(stderr, "api", problems)
	}
	log, _ := newLogger(c.logLevel, stderr)
	defer func() { _ = log.Sync() }()
	if err := serveAPI(ctx, c, log); err != nil {
		log.Error("api stopped with an error", zap.Error(err))
		_ = log.Sync()
		fmt.Fprintf(stderr, "fulfil api: %v\n", err)
		return natsExitCode(err)
	}
	return exitOK
}

// serveAPI runs the intake and the metrics and health endpoints until ctx ends.
func serveAPI(ctx context.Context, c *config, log *zap.Logger) error {
	tr, stopTracing, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	c.api.tracerProvider = tr.TracerProvider()
	env, err := connectNATS(c, false, log)
	if err != nil {
		return err
	}
	defer env.close()
	if c.replicas == 0 {
		c.replicas = defaultReplicas(env.nc.ConnectedClusterName())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stopAPI, _, err := startAPI(ctx, &c.api, env.js, c.prefix, c.replicas, keyRetention(ctx, env.js), reg, log, false)
	if err != nil {
		return err
	}
	defer stopAPI()
	srv, err := startHTTP(c.httpAddr, false, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), apiReadiness(env), log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stopAPI()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// keyRetention is the sagas bucket's TTL (the workers' FULFIL_KEY_RETENTION), or the default
// when no worker has created it yet.
func keyRetention(ctx context.Context, js jetstream.JetStream) time.Duration {
	kv, err := js.KeyValue(ctx, idempotency.DefaultBucket)
	if err != nil {
		return idempotency.DefaultTTL
	}
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() <= 0 {
		return idempotency.DefaultTTL
	}
	return st.TTL()
}

// apiReadiness reports whether NATS is connected and the requests stream and the intake
// bucket answer.
func apiReadiness(env *natsEnv) func(context.Context) error {
	return func(ctx context.Context) error {
		if !env.nc.IsConnected() {
			return errors.New("NATS not connected")
		}
		if _, err := env.js.Stream(ctx, messages.StreamRequests); err != nil {
			return fmt.Errorf("requests stream (is a worker set up?): %w", err)
		}
		if _, err := env.js.KeyValue(ctx, api.IntakeBucket); err != nil {
			return fmt.Errorf("intake bucket: %w", err)
		}
		return nil
	}
}

// printPurchaseJSON prints key's purchase as `GET /v1/purchases/KEY` answers it (for `fulfil
// status --json KEY`): the same code reads and renders it.
func printPurchaseJSON(ctx context.Context, js jetstream.JetStream, key string, stdout, stderr io.Writer) int {
	p, err := api.NewReader(js, worker.SagaID).Purchase(ctx, key)
	if errors.Is(err, api.ErrNotFound) {
		fmt.Fprintf(stderr, "fulfil status: no saga for key %q (never submitted, still invalid, or older than the retention)\n", key)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "fulfil status: %v\n", err)
		return exitFailed
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return exitOK
}
