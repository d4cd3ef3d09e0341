package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// Defaults of the public configuration (CONTRACT.md).
const (
	defaultDataDir     = "./fulfil-data"
	defaultPartnerURL  = "https://openapi.partner.yeastar.com"
	defaultPrefix      = "fulfil"
	defaultConcurrency = 64
	defaultHTTPAddr    = "127.0.0.1:8080"
	defaultLogLevel    = "info"
	// defaultEmbeddedListen is where the embedded NATS server listens when NATS_URL is empty,
	// so that `fulfil submit` and `fulfil status` in another terminal find it.
	defaultEmbeddedListen = "127.0.0.1:4222"
)

// config is what every command reads from flags and the environment (flags win).
type config struct {
	natsURL          string
	natsCreds        string
	dataDir          string
	embeddedListen   string
	partnerURL       string
	clientID         string
	clientIDFile     string
	clientSecret     string
	clientSecretFile string
	partnerInsecure  bool
	partnerSim       bool
	prefix           string
	concurrency      int
	httpAddr         string
	pprof            bool
	logLevel         string

	replicas     int
	ackWait      time.Duration
	maxDeliver   int
	leaseTTL     time.Duration
	keyRetention time.Duration
	eventsMaxAge time.Duration
	dupWindow    time.Duration
	repair       bool
	syncInterval time.Duration
	partnerRate  float64

	natsCA   string
	natsCert string
	natsKey  string

	maxOrdersPerHour   int
	maxOrdersPerDay    int
	resendAfterUnknown string
	auditInterval      time.Duration
	auditWindow        time.Duration

	api apiConfig // the HTTP intake (cmd_api.go)

	webhook webhookConfig // webhook delivery (cmd_webhooks.go)

	natsAuth natsAuth // NATS login, and the embedded server's authentication (natsconn.go)
}

// envAnnotation is the pflag annotation that names a flag's environment variable.
const envAnnotation = "fulfil_env"

// envFlags defines flags that also read an environment variable. The variable is declared
// once, where the flag is defined, as a pflag annotation (and named in the flag's help);
// applyEnv sets every flag the command line left alone from its variable. Flags win.
type envFlags struct{ fs *pflag.FlagSet }

func (f envFlags) bind(name, env string) {
	fl := f.fs.Lookup(name)
	fl.Usage += " ($" + env + ")"
	_ = f.fs.SetAnnotation(name, envAnnotation, []string{env})
}

func (f envFlags) String(p *string, name, env, def, usage string) {
	f.fs.StringVar(p, name, def, usage)
	f.bind(name, env)
}

func (f envFlags) Int(p *int, name, env string, def int, usage string) {
	f.fs.IntVar(p, name, def, usage)
	f.bind(name, env)
}

func (f envFlags) Int64(p *int64, name, env string, def int64, usage string) {
	f.fs.Int64Var(p, name, def, usage)
	f.bind(name, env)
}

func (f envFlags) Float64(p *float64, name, env string, def float64, usage string) {
	f.fs.Float64Var(p, name, def, usage)
	f.bind(name, env)
}

func (f envFlags) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, usage)
	f.bind(name, env)
}

func (f envFlags) Bool(p *bool, name, env string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, usage)
	f.bind(name, env)
}

// flagEnv is the environment variable of a flag, or "" if it has none.
func flagEnv(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// applyEnv sets every flag of fs that the command line did not set and whose environment
// variable is set, and returns the values that do not parse, e.g. FULFIL_CONCURRENCY="many":
// not an integer. An empty variable sets a string flag to "" (NATS_URL= keeps the embedded
// server, FULFIL_HTTP_ADDR= disables the endpoints) and leaves any other flag at its default.
func applyEnv(fs *pflag.FlagSet) []error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		env := flagEnv(f)
		if env == "" || f.Changed {
			return
		}
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		val := f.Value
		if l, ok := val.(*lenientValue); ok {
			val = l.Value // an environment value is reported as one, below
		}
		if v == "" && val.Type() != "string" {
			return
		}
		if err := val.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %s", env, v, wantOf(val)))
		}
	})
	return errs
}

// envNames maps each flag name of the command tree to its environment variable. A flag name
// has the same variable on every command (cli_test.go checks it).
var (
	envNamesOnce sync.Once
	envNames     map[string]string
)

// envName is the environment variable of the flag called flagName, as the command tree
// declares it.
func envName(flagName string) string {
	envNamesOnce.Do(func() {
		envNames = map[string]string{}
		walkFlags(newRoot(&invocation{}), func(_ *cobra.Command, f *pflag.Flag) {
			if env := flagEnv(f); env != "" {
				envNames[f.Name] = env
			}
		})
	})
	return envNames[flagName]
}

// walkFlags calls fn for every flag of every command of the tree under cmd.
func walkFlags(cmd *cobra.Command, fn func(*cobra.Command, *pflag.Flag)) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) { fn(cmd, f) })
	for _, sub := range cmd.Commands() {
		walkFlags(sub, fn)
	}
}

// natsFlags registers the NATS client settings: every command that dials NATS has them. With
// embedded (the worker), --nats-url empty starts the embedded server on --nats-listen, and the
// embedded server's own settings are registered too.
func (c *config) natsFlags(fs *pflag.FlagSet, embedded bool) {
	f := envFlags{fs}
	if embedded {
		f.String(&c.natsURL, "nats-url", "NATS_URL", "", "NATS server URL(s), comma separated; empty: start an embedded JetStream server on --nats-listen, storing in --data-dir")
		f.String(&c.embeddedListen, "nats-listen", "FULFIL_NATS_LISTEN", defaultEmbeddedListen, "embedded server: listen address, when --nats-url is empty")
		f.String(&c.dataDir, "data-dir", "FULFIL_DATA_DIR", defaultDataDir, "embedded server: where it stores its streams")
		f.Duration(&c.syncInterval, "sync-interval", "FULFIL_SYNC_INTERVAL", 0,
			"embedded server: JetStream fsync interval; 0 = server default (2m), 'always' durability needs an external server")
	} else {
		f.String(&c.natsURL, "nats-url", "NATS_URL", "", "NATS server URL(s), comma separated; empty (the default): dial nats://127.0.0.1:4222, or nats://ADDR when --nats-listen (FULFIL_NATS_LISTEN) says ADDR: where a worker started without NATS_URL runs its embedded server")
		f.String(&c.embeddedListen, "nats-listen", "FULFIL_NATS_LISTEN", defaultEmbeddedListen, "where the embedded NATS server of a worker listens; dialed as nats://ADDR when --nats-url is empty")
	}
	f.String(&c.natsCreds, "nats-creds", "NATS_CREDS", "", "NATS credentials file (.creds)")
	f.String(&c.natsCA, "nats-tls-ca", "FULFIL_NATS_TLS_CA", "", "PEM file of the CA that signed the NATS servers' certificates")
	f.String(&c.natsCert, "nats-tls-cert", "FULFIL_NATS_TLS_CERT", "", "PEM client certificate for NATS (with --nats-tls-key)")
	f.String(&c.natsKey, "nats-tls-key", "FULFIL_NATS_TLS_KEY", "", "PEM private key of the NATS client certificate")
	f.String(&c.prefix, "subject-prefix", "FULFIL_SUBJECT_PREFIX", defaultPrefix, "first token of every subject")
	c.natsAuth.flags(fs, embedded)
}

// partnerFlags registers the partner API settings (worker, audit, partner check).
func (c *config) partnerFlags(fs *pflag.FlagSet) {
	f := envFlags{fs}
	f.String(&c.partnerURL, "partner-url", "FULFIL_PARTNER_URL", defaultPartnerURL, "partner API base URL")
	f.String(&c.clientID, "partner-client-id", "FULFIL_PARTNER_CLIENT_ID", "", "partner API client ID")
	f.String(&c.clientIDFile, "partner-client-id-file", "FULFIL_PARTNER_CLIENT_ID_FILE", "", "file holding the partner API client ID")
	f.String(&c.clientSecret, "partner-client-secret", "FULFIL_PARTNER_CLIENT_SECRET", "", "partner API client secret (prefer the _FILE variant)")
	f.String(&c.clientSecretFile, "partner-client-secret-file", "FULFIL_PARTNER_CLIENT_SECRET_FILE", "", "file holding the partner API client secret")
	f.Bool(&c.partnerInsecure, "partner-insecure", "FULFIL_PARTNER_INSECURE", false, "allow a plain http:// partner URL on a non-loopback host")
	f.Bool(&c.partnerSim, "partner-sim", "FULFIL_PARTNER_SIM", false, "serve the built-in partner simulator in-process and use it")
	f.Float64(&c.partnerRate, "partner-rate-limit", "FULFIL_PARTNER_RATE_LIMIT", 50, "partner API requests per second for the whole account, shared by every worker of the subject prefix; 0 for unlimited")
}

// workerFlags registers the worker's own settings.
func (c *config) workerFlags(fs *pflag.FlagSet) {
	f := envFlags{fs}
	f.Int(&c.concurrency, "concurrency", "FULFIL_CONCURRENCY", defaultConcurrency, "sagas in flight per worker process")
	c.httpFlag(fs)
	f.Bool(&c.pprof, "pprof", "FULFIL_PPROF", false, "also serve the Go runtime profiles, /debug/pprof/, on the http address")
	f.Int(&c.replicas, "replicas", "FULFIL_REPLICAS", 0, "replicas of the streams and the bucket; 0: 3 on a cluster, 1 on a single server")
	f.Duration(&c.ackWait, "ack-wait", "FULFIL_ACK_WAIT", 60*time.Second, "consumer ack wait; a running saga signals progress every third of it")
	f.Int(&c.maxDeliver, "max-deliver", "FULFIL_MAX_DELIVER", 10, "deliveries of one request; the last always ends in a result event")
	f.Duration(&c.leaseTTL, "lease-ttl", "FULFIL_LEASE_TTL", 30*time.Second, "how long a crashed worker's key stays locked")
	f.Duration(&c.keyRetention, "key-retention", "FULFIL_KEY_RETENTION", 30*24*time.Hour, "how long an idempotency key is remembered after its last change")
	f.Duration(&c.eventsMaxAge, "events-max-age", "FULFIL_EVENTS_MAX_AGE", 30*24*time.Hour, "how long the events and dead-letter streams keep a message, read or not")
	f.Duration(&c.dupWindow, "duplicate-window", "FULFIL_DUPLICATE_WINDOW", 2*time.Minute, "Nats-Msg-Id window of the streams")
	f.Bool(&c.repair, "repair", "FULFIL_REPAIR", false, "overwrite existing streams, consumer and bucket whose settings break the guarantees")
	f.Int(&c.maxOrdersPerHour, "max-orders-per-hour", "FULFIL_MAX_ORDERS_PER_HOUR", 0,
		"cap on create-order sends of the whole account per UTC hour, counted across all workers; over it a purchase waits for the next hour; 0 = no cap")
	f.Int(&c.maxOrdersPerDay, "max-orders-per-day", "FULFIL_MAX_ORDERS_PER_DAY", 0,
		"cap on create-order sends of the whole account per UTC day, counted across all workers; 0 = no cap")
	f.String(&c.resendAfterUnknown, "resend-after-unknown", "FULFIL_RESEND_AFTER_UNKNOWN", "auto",
		"after a create order with an unknown outcome that the order list does not show: auto (send again once proven absent) or never (stop with needs_reconciliation)")
	f.Duration(&c.auditInterval, "audit-interval", "FULFIL_AUDIT_INTERVAL", time.Hour,
		"how often one of the workers audits the partner's orders against the sagas; 0 disables")
	f.Duration(&c.auditWindow, "audit-window", "FULFIL_AUDIT_WINDOW", 72*time.Hour, "how far back each audit sweep looks")
}

// httpFlag registers the address of the metrics and health endpoints (worker, api).
func (c *config) httpFlag(fs *pflag.FlagSet) {
	envFlags{fs}.String(&c.httpAddr, "http-addr", "FULFIL_HTTP_ADDR", defaultHTTPAddr, "address of /metrics, /healthz, /readyz; empty disables them")
}

// logFlag registers --log-level with its default.
func (c *config) logFlag(fs *pflag.FlagSet, def string) {
	envFlags{fs}.String(&c.logLevel, "log-level", "FULFIL_LOG_LEVEL", def, "log level: debug, info, warn, error")
}

// checkGuards reports every problem of the settings of the pause, spend caps, resend policy
// and audit.
func (c *config) checkGuards() error {
	var errs []error
	if c.maxOrdersPerHour < 0 {
		errs = append(errs, fmt.Errorf("FULFIL_MAX_ORDERS_PER_HOUR (--max-orders-per-hour) must be 0 (no cap) or positive, got %d", c.maxOrdersPerHour))
	}
	if c.maxOrdersPerDay < 0 {
		errs = append(errs, fmt.Errorf("FULFIL_MAX_ORDERS_PER_DAY (--max-orders-per-day) must be 0 (no cap) or positive, got %d", c.maxOrdersPerDay))
	}
	if _, err := workflow.ParseResendPolicy(c.resendAfterUnknown); err != nil {
		errs = append(errs, fmt.Errorf("FULFIL_RESEND_AFTER_UNKNOWN (--resend-after-unknown): %w", err))
	}
	if c.auditInterval < 0 || (c.auditInterval > 0 && c.auditInterval < time.Second) {
		errs = append(errs, fmt.Errorf("FULFIL_AUDIT_INTERVAL (--audit-interval) must be 0 (off) or at least 1s, got %s", c.auditInterval))
	}
	if c.auditWindow <= 0 {
		errs = append(errs, fmt.Errorf("FULFIL_AUDIT_WINDOW (--audit-window) must be positive, got %s", c.auditWindow))
	}
	return errors.Join(errs...)
}

// checkNATS reports every problem of the NATS settings.
func (c *config) checkNATS() error {
	var errs []error
	if (c.natsCert == "") != (c.natsKey == "") {
		errs = append(errs, errors.New("NATS TLS: a client certificate needs both FULFIL_NATS_TLS_CERT and FULFIL_NATS_TLS_KEY"))
	}
	for _, f := range []struct{ name, path string }{{"NATS_CREDS", c.natsCreds}, {"FULFIL_NATS_TLS_CA", c.natsCA}, {"FULFIL_NATS_TLS_CERT", c.natsCert}, {"FULFIL_NATS_TLS_KEY", c.natsKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	errs = append(errs, c.natsAuth.check(c.natsCreds)...)
	return errors.Join(errs...)
}

// resolveSecrets reads the _FILE variants and checks the partner settings.
func (c *config) resolvePartner() error {
	var errs []error
	read := func(p *string, file, what string) {
		if file == "" {
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s file: %w", what, err))
			return
		}
		*p = strings.TrimSpace(string(b))
	}
	read(&c.clientID, c.clientIDFile, "partner client ID")
	read(&c.clientSecret, c.clientSecretFile, "partner client secret")
	if c.partnerSim {
		return errors.Join(errs...)
	}
	u, err := url.Parse(c.partnerURL)
	switch {
	case err != nil || u.Host == "":
		errs = append(errs, fmt.Errorf("partner URL %q is not an absolute URL", c.partnerURL))
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !c.partnerInsecure:
		errs = append(errs, fmt.Errorf("partner URL %q is plain http on a non-loopback host; use https or set FULFIL_PARTNER_INSECURE=true", c.partnerURL))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("partner URL %q: scheme must be https (or http on loopback)", c.partnerURL))
	}
	if c.clientID == "" {
		errs = append(errs, errors.New("partner client ID is missing: set FULFIL_PARTNER_CLIENT_ID (or _FILE), or use --partner-sim"))
	}
	if c.clientSecret == "" {
		errs = append(errs, errors.New("partner client secret is missing: set FULFIL_PARTNER_CLIENT_SECRET (or _FILE), or use --partner-sim"))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newLogger returns a JSON logger on stderr at level.
func newLogger(level string, stderr io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(stderr), lvl)
	return zap.New(core), nil
}

// setting names a setting the way the problems list it: "FULFIL_ACK_WAIT (--ack-wait)".
func setting(flagName string) string { return envName(flagName) + " (--" + flagName + ")" }

// lenientFlags makes fs record a value it cannot parse in problems, instead of stopping at the
// first one, so that every wrong setting is reported at once. The flag keeps its previous
// value (the default; the environment is applied after parsing).
func lenientFlags(fs *pflag.FlagSet, problems *[]error) {
	fs.VisitAll(func(f *pflag.Flag) { f.Value = &lenientValue{Value: f.Value, name: f.Name, problems: problems} })
}

type lenientValue struct {
	pflag.Value
	name     string
	problems *[]error
}

func (v *lenientValue) Set(s string) error {
	old := v.Value.String()
	if err := v.Value.Set(s); err != nil {
		_ = v.Value.Set(old)
		*v.problems = append(*v.problems, fmt.Errorf("%s %q: %s", setting(v.name), s, wantOf(v.Value)))
	}
	return nil
}

// IsBoolFlag keeps the help of a Boolean flag without a value.
func (v *lenientValue) IsBoolFlag() bool { return v.Value.Type() == "bool" }

// wantOf says what a flag's value must look like.
func wantOf(v pflag.Value) string {
	switch v.Type() {
	case "duration":
		return "not a duration (e.g. 30s, 720h)"
	case "int", "int64":
		return "not an integer"
	case "float64":
		return "not a number"
	case "bool":
		return "not a boolean (true or false)"
	}
	return "not a valid value"
}

// maxConcurrency is the highest --concurrency: worker.Config.MaxAckPending's default, which
// bounds the unacknowledged requests of all workers.
const maxConcurrency = 16384

// checkWorker reports every problem of the worker's settings, before anything is started:
// the values the flags and the environment could not parse (parseErrs), extra arguments, and
// every rule of the worker, its idempotency store and its guard, the NATS and partner settings,
// the listen addresses, the log level and the subject prefix. It reads the partner's _FILE
// settings (resolvePartner).
func (c *config) checkWorker(args []string, parseErrs []error) []error {
	errs := append([]error(nil), parseErrs...)
	add := func(flagName, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s "+format, append([]any{setting(flagName)}, a...)...))
	}
	if len(args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q: fulfil worker takes only flags", args[0]))
	}
	if _, err := zapcore.ParseLevel(c.logLevel); err != nil {
		add("log-level", "%q: want debug, info, warn or error", c.logLevel)
	}
	if c.httpAddr != "" {
		if msg := listenProblem(c.httpAddr, false); msg != "" {
			add("http-addr", "%q: %s (empty disables the endpoints)", c.httpAddr, msg)
		}
	}
	if strings.TrimSpace(c.natsURL) == "" {
		if msg := listenProblem(c.embeddedListen, true); msg != "" {
			add("nats-listen", "%q: %s", c.embeddedListen, msg)
		}
		if c.dataDir == "" {
			add("data-dir", "must not be empty: the embedded NATS server stores its data there")
		} else if fi, err := os.Stat(c.dataDir); err == nil && !fi.IsDir() {
			add("data-dir", "%q is not a directory", c.dataDir)
		}
	} else {
		for _, u := range strings.Split(c.natsURL, ",") {
			if msg := natsURLProblem(u); msg != "" {
				add("nats-url", "%q: %s", redactUserInfo(strings.TrimSpace(u)), msg)
			}
		}
	}
	errs = append(errs, flatten(c.checkNATS())...)
	errs = append(errs, c.checkEmbedded()...)
	if !validToken(c.prefix) {
		add("subject-prefix", "%q: must be one NATS subject token of letters, digits, '-' or '_'", c.prefix)
	}
	if c.concurrency < 1 || c.concurrency > maxConcurrency {
		add("concurrency", "must be 1 to %d, got %d", maxConcurrency, c.concurrency)
	}
	if c.ackWait < time.Second {
		add("ack-wait", "must be at least 1s, got %s", c.ackWait)
	}
	if c.maxDeliver < 2 || c.maxDeliver > worker.MaxMaxDeliver {
		add("max-deliver", "must be 2 to %d (unlimited redelivery is not allowed), got %d", worker.MaxMaxDeliver, c.maxDeliver)
	}
	if c.leaseTTL < 500*time.Millisecond {
		add("lease-ttl", "must be at least 500ms, got %s", c.leaseTTL)
	}
	if c.eventsMaxAge < worker.MinEventsMaxAge || c.eventsMaxAge < c.dupWindow {
		add("events-max-age", "must be at least %s and at least the duplicate window, got %s", worker.MinEventsMaxAge, c.eventsMaxAge)
	}
	if c.keyRetention < worker.MinKeyRetention {
		add("key-retention", "must be at least %s (a purchase could be bought again once its key is forgotten), got %s", worker.MinKeyRetention, c.keyRetention)
	}
	if c.dupWindow < worker.MinDuplicateWindow {
		add("duplicate-window", "must be at least %s, got %s", worker.MinDuplicateWindow, c.dupWindow)
	}
	if c.replicas < 0 || c.replicas > 5 {
		add("replicas", "must be 0 (3 on a cluster, 1 on a single server) or 1 to 5, got %d", c.replicas)
	}
	if c.syncInterval < 0 {
		add("sync-interval", "must be 0 (the server's default) or positive, got %s", c.syncInterval)
	}
	if c.partnerRate < 0 || math.IsNaN(c.partnerRate) || math.IsInf(c.partnerRate, 0) {
		add("partner-rate-limit", "must be 0 (unlimited) or a positive number of requests per second, got %v", c.partnerRate)
	}
	errs = append(errs, flatten(c.checkGuards())...)
	errs = append(errs, flatten(c.resolvePartner())...)
	if len(errs) == 0 {
		// The packages' own rules, in case they grow one the checks above do not know yet.
		wc := workerConfig(c, zap.NewNop(), nil)
		errs = append(errs, flatten(wc.Check())...)
		errs = append(errs, flatten(wc.Idempotency.Validate())...)
		errs = append(errs, flatten(control.GuardConfig{MaxPerHour: c.maxOrdersPerHour, MaxPerDay: c.maxOrdersPerDay}.Validate())...)
	}
	return errs
}

// listenProblem says what is wrong with a listen address, or "". The embedded NATS server
// needs a numeric port; the HTTP server also takes a service name ("http").
func listenProblem(addr string, numericPort bool) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "not a host:port address"
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return "the port must be 0 to 65535"
		}
		return ""
	}
	if numericPort {
		return "the port must be a number"
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "unknown port " + strconv.Quote(port)
	}
	return ""
}

// natsURLProblem says what is wrong with one NATS server URL, or "". Like the NATS client, it
// takes host:port without a scheme as nats://host:port.
func natsURLProblem(u string) string {
	u = strings.TrimSpace(u)
	if u == "" {
		return "an empty URL in the list"
	}
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	p, err := url.Parse(u)
	if err != nil {
		return "not a URL"
	}
	switch p.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "the scheme must be nats, tls, ws or wss"
	}
	if p.Hostname() == "" {
		return "no host"
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "the port must be 1 to 65535"
		}
	}
	return ""
}

// validToken reports whether s is one NATS subject token of letters, digits, '-' or '_'.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// flatten splits joined errors (errors.Join) into one error per problem.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// settingsError reports the problems of a command's settings on stderr, one per line, and
// returns the usage exit code.
func settingsError(stderr io.Writer, command string, problems []error) int {
	noun := "problems"
	if len(problems) == 1 {
		noun = "problem"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fulfil %s: %d %s with the settings; nothing was started:\n", command, len(problems), noun)
	for _, p := range problems {
		b.WriteString("  ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "; "))
		b.WriteString("\n")
	}
	_, _ = io.WriteString(stderr, b.String())
	return exitUsage
}
