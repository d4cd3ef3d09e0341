// Package tracing sets up OpenTelemetry tracing from the standard OTEL_* environment variables,
// and holds fulfil's helpers for W3C trace context.
//
// Tracing is off unless the environment asks for it: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, or OTEL_TRACES_EXPORTER=otlp (or console);
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns it off. Off, Start returns a
// Tracing whose TracerProvider is nil: fulfil's packages then start no spans at all and cost
// nothing per saga.
package tracing

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// DefaultServiceName is service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES
// names the service.
const DefaultServiceName = "fulfil"

// The environment variables fulfil reads itself; the SDK and the exporters read the others
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*,
// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, ...).
const (
	EnvSDKDisabled          = "OTEL_SDK_DISABLED"
	EnvTracesExporter       = "OTEL_TRACES_EXPORTER"
	EnvEndpoint             = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint       = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol             = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol       = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesSampler        = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	EnvResourceAttributes   = "OTEL_RESOURCE_ATTRIBUTES"
	EnvServiceName          = "OTEL_SERVICE_NAME"
	ProtocolHTTPProtobuf    = "http/protobuf"
	ProtocolGRPC            = "grpc"
	ExporterOTLP            = "otlp"
	ExporterConsole         = "console"
	ExporterNone            = "none"
	defaultProtocol         = ProtocolHTTPProtobuf
	errorLogInterval        = time.Minute
	defaultShutdownDeadline = 5 * time.Second
)

// Settings is what the environment asks of tracing.
type Settings struct {
	// Exporters are the span exporters: ExporterOTLP and/or ExporterConsole. None: tracing is off.
	Exporters []string
	// Protocol is the OTLP protocol (ProtocolHTTPProtobuf or ProtocolGRPC) when Exporters has
	// ExporterOTLP.
	Protocol string
}

// Enabled reports whether spans are recorded and exported.
func (s Settings) Enabled() bool { return len(s.Exporters) > 0 }

// has reports whether exporter is one of s.Exporters.
func (s Settings) has(exporter string) bool {
	for _, e := range s.Exporters {
		if e == exporter {
			return true
		}
	}
	return false
}

// FromEnv reads the settings from the process environment. It returns every problem at once,
// each naming its variable: an unsupported exporter or protocol, a malformed endpoint, sampler
// or resource attribute list. Values that matter only when tracing is on are checked only then.
func FromEnv() (Settings, []error) {
	var s Settings
	var problems []error
	add := func(name, format string, a ...any) {
		problems = append(problems, fmt.Errorf("%s "+format, append([]any{name}, a...)...))
	}
	if v := env(EnvSDKDisabled); v != "" {
		switch {
		case strings.EqualFold(v, "true"):
			return s, nil
		case strings.EqualFold(v, "false"):
		default:
			add(EnvSDKDisabled, "%q: want true or false", v)
		}
	}
	if v := env(EnvTracesExporter); v != "" {
		for _, e := range strings.Split(v, ",") {
			switch e = strings.ToLower(strings.TrimSpace(e)); e {
			case ExporterOTLP, ExporterConsole:
				if !s.has(e) {
					s.Exporters = append(s.Exporters, e)
				}
			case ExporterNone:
				if strings.Contains(v, ",") {
					add(EnvTracesExporter, "%q: none cannot be combined with other exporters", v)
				}
			default:
				add(EnvTracesExporter, "%q: %q is not supported; want otlp, console or none", v, e)
			}
		}
	} else if env(EnvEndpoint) != "" || env(EnvTracesEndpoint) != "" {
		s.Exporters = []string{ExporterOTLP}
	}
	if len(problems) > 0 {
		return Settings{}, problems
	}
	if s.has(ExporterOTLP) {
		s.Protocol, problems = otlpSettings(problems)
	}
	if s.Enabled() {
		problems = append(problems, samplerProblems()...)
		if _, err := resource.New(context.Background(), resource.WithFromEnv()); err != nil {
			add(EnvResourceAttributes, "%q: %v; want key1=value1,key2=value2 (values percent-encoded)", env(EnvResourceAttributes), err)
		}
	}
	if len(problems) > 0 {
		return Settings{}, problems
	}
	return s, nil
}

// otlpSettings checks the OTLP protocol and endpoints and returns the protocol.
func otlpSettings(problems []error) (string, []error) {
	name, protocol := EnvTracesProtocol, env(EnvTracesProtocol)
	if protocol == "" {
		name, protocol = EnvProtocol, env(EnvProtocol)
	}
	switch protocol {
	case "":
		protocol = defaultProtocol
	case ProtocolHTTPProtobuf, ProtocolGRPC:
	default:
		problems = append(problems, fmt.Errorf("%s %q: not supported; want http/protobuf (port 4318) or grpc (port 4317)", name, protocol))
	}
	for _, name := range []string{EnvEndpoint, EnvTracesEndpoint} {
		v := env(name)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Errorf("%s %q: want an http:// or https:// URL, e.g. http://otel-collector:4318", name, v))
		}
	}
	return protocol, problems
}

// samplerProblems checks OTEL_TRACES_SAMPLER and its argument as the SDK will read them: the
// SDK itself only logs a bad value and samples everything.
func samplerProblems() []error {
	name := strings.ToLower(env(EnvTracesSampler))
	arg := env(EnvTracesSamplerArg)
	switch name {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		if arg == "" {
			return nil
		}
		if f, err := strconv.ParseFloat(arg, 64); err != nil || f < 0 || f > 1 {
			return []error{fmt.Errorf("%s %q: want a ratio from 0 to 1 for %s", EnvTracesSamplerArg, arg, name)}
		}
		return nil
	}
	return []error{fmt.Errorf("%s %q: not supported; want parentbased_always_on (the default), parentbased_traceidratio, parentbased_always_off, always_on, always_off or traceidratio", EnvTracesSampler, env(EnvTracesSampler))}
}

func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// Options are what Start needs besides the environment.
type Options struct {
	// Stdout receives the console exporter's spans (default os.Stdout).
	Stdout io.Writer
	// Logger receives the SDK's errors (an unreachable collector), at most one a minute.
	Logger *zap.Logger
	// ServiceVersion is service.version (optional).
	ServiceVersion string
}

// Tracing is the process's tracing: a tracer provider and its exporters, or nothing when off.
type Tracing struct {
	settings Settings
	provider *sdktrace.TracerProvider // nil: off
}

// Start builds the tracer provider that s asks for, exporting in batches, and makes it and the
// W3C trace-context propagator the process's global ones. With tracing off it returns a
// Tracing whose TracerProvider is nil and changes nothing. Call Shutdown before the process
// ends to flush the spans still buffered.
func Start(ctx context.Context, s Settings, o Options) (*Tracing, error) {
	t := &Tracing{settings: s}
	if !s.Enabled() {
		return t, nil
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", DefaultServiceName)}
	if o.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", o.ServiceVersion))
	}
	// Later detectors win: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override the defaults.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	var exporters []sdktrace.SpanExporter
	for _, name := range s.Exporters {
		exp, err := newExporter(ctx, name, s.Protocol, o)
		if err != nil {
			for _, e := range exporters {
				_ = e.Shutdown(ctx)
			}
			return nil, err
		}
		exporters = append(exporters, exp)
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	t.provider = NewTracerProvider(opts...)
	otel.SetErrorHandler(&errorLog{log: o.Logger})
	otel.SetTracerProvider(t.provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return t, nil
}

func newExporter(ctx context.Context, name, protocol string, o Options) (sdktrace.SpanExporter, error) {
	switch {
	case name == ExporterConsole:
		w := o.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case protocol == ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if env(EnvEndpoint) == "" && env(EnvTracesEndpoint) == "" {
			// The specification's default; the exporter's own would use TLS.
			opts = append(opts, otlptracegrpc.WithEndpointURL("http://localhost:4317"))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC trace exporter: %w", err)
		}
		return exp, nil
	default:
		var opts []otlptracehttp.Option
		if env(EnvEndpoint) == "" && env(EnvTracesEndpoint) == "" {
			// The specification's default; the exporter's own would use TLS.
			opts = append(opts, otlptracehttp.WithEndpointURL("http://localhost:4318/v1/traces"))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP trace exporter: %w", err)
		}
		return exp, nil
	}
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// Settings returns the settings Start was given.
func (t *Tracing) Settings() Settings { return t.settings }

// TracerProvider returns the tracer provider, nil when tracing is off: pass it on as it is
// (workflow.Saga.TracerProvider, partnerclient.WithTracerProvider), so that off costs nothing.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.provider
}

// Shutdown flushes the buffered spans and stops the exporters, within ctx (5 s when ctx has
// no deadline). It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultShutdownDeadline)
		defer cancel()
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// NewTracerProvider returns an SDK tracer provider with fulfil's ID generator (see
// WithTraceID) and opts. The SDK reads OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG and
// OTEL_SPAN_*_LIMIT itself. Tests build theirs with it and an in-memory exporter.
func NewTracerProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(idGenerator{})}, opts...)...)
}

// errorLog logs the SDK's errors, at most one per errorLogInterval: an unreachable collector
// fails every batch, and one line a minute says so well enough.
type errorLog struct {
	log *zap.Logger

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (e *errorLog) Handle(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	now := time.Now()
	if !e.last.IsZero() && now.Sub(e.last) < errorLogInterval {
		e.suppressed++
		e.mu.Unlock()
		return
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	e.mu.Unlock()
	e.log.Warn("tracing error (spans may not be exported)", zap.Error(err), zap.Int("errors_not_logged", n))
}
