package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

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

// envVar describes one flag's environment variable.
type envVar struct {
	flag, env string
}

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

// envBindings lists every flag of config with its environment variable; the deploy manifests
// are checked against it.
var envBindings = []envVar{
	{"nats-url", "NATS_URL"},
	{"nats-creds", "NATS_CREDS"},
	{"nats-tls-ca", "FULFIL_NATS_TLS_CA"},
	{"nats-tls-cert", "FULFIL_NATS_TLS_CERT"},
	{"nats-tls-key", "FULFIL_NATS_TLS_KEY"},
	{"data-dir", "FULFIL_DATA_DIR"},
	{"nats-listen", "FULFIL_NATS_LISTEN"},
	{"partner-url", "FULFIL_PARTNER_URL"},
	{"partner-client-id", "FULFIL_PARTNER_CLIENT_ID"},
	{"partner-client-id-file", "FULFIL_PARTNER_CLIENT_ID_FILE"},
	{"partner-client-secret", "FULFIL_PARTNER_CLIENT_SECRET"},
	{"partner-client-secret-file", "FULFIL_PARTNER_CLIENT_SECRET_FILE"},
	{"partner-insecure", "FULFIL_PARTNER_INSECURE"},
	{"partner-sim", "FULFIL_PARTNER_SIM"},
	{"subject-prefix", "FULFIL_SUBJECT_PREFIX"},
	{"concurrency", "FULFIL_CONCURRENCY"},
	{"http-addr", "FULFIL_HTTP_ADDR"},
	{"pprof", "FULFIL_PPROF"},
	{"log-level", "FULFIL_LOG_LEVEL"},
	{"replicas", "FULFIL_REPLICAS"},
	{"ack-wait", "FULFIL_ACK_WAIT"},
	{"max-deliver", "FULFIL_MAX_DELIVER"},
	{"lease-ttl", "FULFIL_LEASE_TTL"},
	{"key-retention", "FULFIL_KEY_RETENTION"},
	{"events-max-age", "FULFIL_EVENTS_MAX_AGE"},
	{"duplicate-window", "FULFIL_DUPLICATE_WINDOW"},
	{"repair", "FULFIL_REPAIR"},
	{"sync-interval", "FULFIL_SYNC_INTERVAL"},
	{"partner-rate-limit", "FULFIL_PARTNER_RATE_LIMIT"},
	{"max-orders-per-hour", "FULFIL_MAX_ORDERS_PER_HOUR"},
	{"max-orders-per-day", "FULFIL_MAX_ORDERS_PER_DAY"},
	{"resend-after-unknown", "FULFIL_RESEND_AFTER_UNKNOWN"},
	{"audit-interval", "FULFIL_AUDIT_INTERVAL"},
	{"audit-window", "FULFIL_AUDIT_WINDOW"},
}

// envName is the environment variable of a flag: its binding, or for a command's own flags
// (bench, submit, ...) FULFIL_ and the flag's name in capitals, "-" as "_".
func envName(flagName string) string {
	for _, b := range envBindings {
		if b.flag == flagName {
			return b.env
		}
	}
	return "FULFIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func envString(flagName, def string) string {
	if v, ok := os.LookupEnv(envName(flagName)); ok {
		return v
	}
	return def
}

// envErrs collects unparsable environment values, reported with the flags' errors.
type envErrs []error

func (e *envErrs) int(flagName string, def int) int {
	v, ok := os.LookupEnv(envName(flagName))
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q: not an integer", envName(flagName), v))
		return def
	}
	return n
}

func (e *envErrs) duration(flagName string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(envName(flagName))
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q: not a duration (e.g. 30s, 720h)", envName(flagName), v))
		return def
	}
	return d
}

func (e *envErrs) float(flagName string, def float64) float64 {
	v, ok := os.LookupEnv(envName(flagName))
	if !ok || v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q: not a number", envName(flagName), v))
		return def
	}
	return f
}

func (e *envErrs) bool(flagName string, def bool) bool {
	v, ok := os.LookupEnv(envName(flagName))
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q: not a boolean", envName(flagName), v))
		return def
	}
	return b
}

// section selects the flag groups a command registers.
type section int

const (
	secNATS section = 1 << iota
	secPartner
	secWorker
	secLog
)

// newFlags returns a flag set for a command, with the selected groups of config flags, whose
// defaults come from the environment.
func newFlags(name string, c *config, sections section, stderr io.Writer) (*flag.FlagSet, *envErrs) {
	fs := flag.NewFlagSet("fulfil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ee := &envErrs{}
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, envString(name, def), usage+" ($"+envName(name)+")")
	}
	if sections&secNATS != 0 {
		str(&c.natsURL, "nats-url", "", "NATS server URL(s), comma separated; empty: embedded JetStream server (worker) or nats://"+defaultEmbeddedListen)
		str(&c.natsCreds, "nats-creds", "", "NATS credentials file (.creds)")
		str(&c.natsCA, "nats-tls-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
		str(&c.natsCert, "nats-tls-cert", "", "PEM client certificate for NATS (with --nats-tls-key)")
		str(&c.natsKey, "nats-tls-key", "", "PEM private key of the NATS client certificate")
		str(&c.dataDir, "data-dir", defaultDataDir, "storage of the embedded NATS server")
		str(&c.embeddedListen, "nats-listen", defaultEmbeddedListen, "listen address of the embedded NATS server")
		str(&c.prefix, "subject-prefix", defaultPrefix, "first token of every subject")
		natsAuthFlags(fs, &c.natsAuth, sections, ee)
	}
	if sections&secPartner != 0 {
		str(&c.partnerURL, "partner-url", defaultPartnerURL, "partner API base URL")
		str(&c.clientID, "partner-client-id", "", "partner API client ID")
		str(&c.clientIDFile, "partner-client-id-file", "", "file holding the partner API client ID")
		str(&c.clientSecret, "partner-client-secret", "", "partner API client secret (prefer the _FILE variant)")
		str(&c.clientSecretFile, "partner-client-secret-file", "", "file holding the partner API client secret")
		fs.BoolVar(&c.partnerInsecure, "partner-insecure", ee.bool("partner-insecure", false),
			"allow a plain http:// partner URL on a non-loopback host ($FULFIL_PARTNER_INSECURE)")
		fs.BoolVar(&c.partnerSim, "partner-sim", ee.bool("partner-sim", false),
			"serve the built-in partner simulator in-process and use it ($FULFIL_PARTNER_SIM)")
		fs.Float64Var(&c.partnerRate, "partner-rate-limit", ee.float("partner-rate-limit", 50),
			"partner API requests per second from this process, 0 for unlimited ($FULFIL_PARTNER_RATE_LIMIT)")
	}
	if sections&secWorker != 0 {
		fs.IntVar(&c.concurrency, "concurrency", ee.int("concurrency", defaultConcurrency), "sagas in flight per worker process ($FULFIL_CONCURRENCY)")
		str(&c.httpAddr, "http-addr", defaultHTTPAddr, "address of /metrics, /healthz, /readyz; empty disables them")
		fs.BoolVar(&c.pprof, "pprof", ee.bool("pprof", false), "also serve the Go runtime profiles, /debug/pprof/, on the http address ($FULFIL_PPROF)")
		fs.IntVar(&c.replicas, "replicas", ee.int("replicas", 0), "replicas of the streams and the bucket; 0: 3 on a cluster, 1 on a single server ($FULFIL_REPLICAS)")
		fs.DurationVar(&c.ackWait, "ack-wait", ee.duration("ack-wait", 60*time.Second), "consumer ack wait; a running saga signals progress every third of it ($FULFIL_ACK_WAIT)")
		fs.IntVar(&c.maxDeliver, "max-deliver", ee.int("max-deliver", 10), "deliveries of one request; the last always ends in a result event ($FULFIL_MAX_DELIVER)")
		fs.DurationVar(&c.leaseTTL, "lease-ttl", ee.duration("lease-ttl", 30*time.Second), "how long a crashed worker's key stays locked ($FULFIL_LEASE_TTL)")
		fs.DurationVar(&c.keyRetention, "key-retention", ee.duration("key-retention", 30*24*time.Hour), "how long an idempotency key is remembered after its last change ($FULFIL_KEY_RETENTION)")
		fs.DurationVar(&c.eventsMaxAge, "events-max-age", ee.duration("events-max-age", 30*24*time.Hour), "how long the events and dead-letter streams keep a message, read or not ($FULFIL_EVENTS_MAX_AGE)")
		fs.DurationVar(&c.dupWindow, "duplicate-window", ee.duration("duplicate-window", 2*time.Minute), "Nats-Msg-Id window of the streams ($FULFIL_DUPLICATE_WINDOW)")
		fs.BoolVar(&c.repair, "repair", ee.bool("repair", false), "overwrite existing streams, consumer and bucket whose settings break the guarantees ($FULFIL_REPAIR)")
		fs.DurationVar(&c.syncInterval, "sync-interval", ee.duration("sync-interval", 0),
			"embedded server: JetStream fsync interval; 0 = server default (2m), 'always' durability needs an external server ($FULFIL_SYNC_INTERVAL)")
		fs.IntVar(&c.maxOrdersPerHour, "max-orders-per-hour", ee.int("max-orders-per-hour", 0),
			"cap on create-order sends of the whole account per UTC hour, counted across all workers; over it a purchase waits for the next hour; 0 = no cap ($FULFIL_MAX_ORDERS_PER_HOUR)")
		fs.IntVar(&c.maxOrdersPerDay, "max-orders-per-day", ee.int("max-orders-per-day", 0),
			"cap on create-order sends of the whole account per UTC day, counted across all workers; 0 = no cap ($FULFIL_MAX_ORDERS_PER_DAY)")
		str(&c.resendAfterUnknown, "resend-after-unknown", "auto",
			"after a create order with an unknown outcome that the order list does not show: auto (send again once proven absent) or never (stop with needs_reconciliation)")
		fs.DurationVar(&c.auditInterval, "audit-interval", ee.duration("audit-interval", time.Hour),
			"how often one of the workers audits the partner's orders against the sagas; 0 disables ($FULFIL_AUDIT_INTERVAL)")
		fs.DurationVar(&c.auditWindow, "audit-window", ee.duration("audit-window", 72*time.Hour),
			"how far back each audit sweep looks ($FULFIL_AUDIT_WINDOW)")
	}
	if sections&secLog != 0 {
		str(&c.logLevel, "log-level", defaultLogLevel, "log level: debug, info, warn, error")
	}
	return fs, ee
}

// parse parses args and reports every configuration problem at once.
func parse(fs *flag.FlagSet, ee *envErrs, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(*ee) > 0 {
		return errors.Join(*ee...)
	}
	return nil
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

// lenientFlags makes fs record a value it cannot parse in ee, instead of stopping at the
// first one, so that every wrong setting is reported at once. The flag keeps its previous
// value (the environment's or the default).
func lenientFlags(fs *flag.FlagSet, ee *envErrs) {
	fs.VisitAll(func(f *flag.Flag) { f.Value = &lenientValue{Value: f.Value, name: f.Name, ee: ee} })
}

type lenientValue struct {
	flag.Value
	name string
	ee   *envErrs
}

// String is the wrapped value's text; flag.PrintDefaults also calls it on a zero lenientValue
// (to tell a default from a zero value), which wraps nothing.
func (v *lenientValue) String() string {
	if v == nil || v.Value == nil {
		return ""
	}
	return v.Value.String()
}

func (v *lenientValue) Set(s string) error {
	old := v.Value.String()
	if err := v.Value.Set(s); err != nil {
		_ = v.Value.Set(old)
		*v.ee = append(*v.ee, fmt.Errorf("%s %q: %s", setting(v.name), s, wantOf(v.Value)))
	}
	return nil
}

// IsBoolFlag keeps "--repair" (without a value) working.
func (v *lenientValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// wantOf says what a flag's value must look like.
func wantOf(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return "not a valid value"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "not a duration (e.g. 30s, 720h)"
	case int:
		return "not an integer"
	case float64:
		return "not a number"
	case bool:
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
