// Package traceparent is the W3C trace context of a purchase as fulfil carries it: the
// traceparent header, read into and written from an OpenTelemetry span context, and a
// context.Context that carries it to the partner calls when no span of fulfil's does (tracing
// off). It depends on the OpenTelemetry trace API only, not on the SDK, so the partner client
// can use it.
package traceparent

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"
)

// Format returns the traceparent header of sc (version 00, only the sampled flag), or "" when sc
// is not valid.
func Format(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	b[53] = '0'
	b[54] = '0'
	if sc.IsSampled() {
		b[54] = '1'
	}
	return string(b[:])
}

// Parse reads a traceparent header into a remote span context. It reports false for a
// malformed value: a version other than 00 must still have the 00 layout at its start (later
// versions only add fields); version ff, all-zero IDs and upper-case hex are refused. Of the
// flags only sampled is kept.
func Parse(tp string) (trace.SpanContext, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || (len(tp) > 55 && (tp[55] != '-' || tp[:2] == "00")) {
		return trace.SpanContext{}, false
	}
	if !lowerHex(tp[:2]) || tp[:2] == "ff" || !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:55]) {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	if _, err := hex.Decode(cfg.TraceID[:], []byte(tp[3:35])); err != nil {
		return trace.SpanContext{}, false
	}
	if _, err := hex.Decode(cfg.SpanID[:], []byte(tp[36:52])); err != nil {
		return trace.SpanContext{}, false
	}
	var flags [1]byte
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil {
		return trace.SpanContext{}, false
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// Valid reports whether tp is a traceparent header Parse accepts.
func Valid(tp string) bool {
	_, ok := Parse(tp)
	return ok
}

// ContextWith returns a copy of ctx carrying tp as the remote span context that its partner
// calls continue (they send Format(trace.SpanContextFromContext(ctx))), and that a span started
// in it is a child of. A span context already in ctx wins, and a malformed tp is ignored: ctx is
// returned as it is.
func ContextWith(ctx context.Context, tp string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	sc, ok := Parse(tp)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Child returns the traceparent of work done for a request whose traceparent is incoming: the
// same trace with a new parent (span) ID and the request's sampled flag. Without a valid
// incoming one it starts trace id, not sampled; "" when id is not valid either.
func Child(incoming string, id trace.TraceID) string {
	cfg := trace.SpanContextConfig{TraceID: id}
	if sc, ok := Parse(incoming); ok {
		cfg.TraceID, cfg.TraceFlags = sc.TraceID(), sc.TraceFlags()
	}
	for !cfg.SpanID.IsValid() {
		_, _ = rand.Read(cfg.SpanID[:])
	}
	return Format(trace.NewSpanContext(cfg))
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
