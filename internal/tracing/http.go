package tracing

import (
	"net"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceParent is the W3C trace-context header.
const HeaderTraceParent = "traceparent"

// StartHTTPServerSpan starts the server span of an incoming request, continuing its traceparent
// header, and returns r with the span in its context (so that what r's handler publishes can
// carry the span's traceparent, see TraceParent). With a nil tracer it returns r itself and a
// nil span, at no cost. End the span with EndHTTPServerSpan.
func StartHTTPServerSpan(tracer trace.Tracer, r *http.Request) (*http.Request, trace.Span) {
	if tracer == nil {
		return r, nil
	}
	ctx := r.Context()
	if sc, ok := SpanContextFromTraceParent(r.Header.Get(HeaderTraceParent)); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.EscapedPath()),
		attribute.String("url.scheme", scheme),
		attribute.String("network.protocol.version", strconv.Itoa(r.ProtoMajor)+"."+strconv.Itoa(r.ProtoMinor)),
	}
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, attribute.String("server.address", r.Host))
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, attribute.String("client.address", host))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return r.WithContext(ctx), span
}

// EndHTTPServerSpan names a span from StartHTTPServerSpan after the request's method and route
// ("POST /v1/purchases"; the method alone without a route), records the status code (a 5xx
// marks the span as failed) and ends it. A nil span is left alone.
func EndHTTPServerSpan(span trace.Span, r *http.Request, route string, status int) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		if route != "" {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// StartHTTPClientSpan starts a client span named name for req: child of the span in req's
// context when there is one, else of the W3C traceparent parent (e.g. the one an event carries),
// else a root. It sets req's traceparent header to the span's, so that the receiver continues
// the trace below it. With a nil tracer it changes nothing and returns nil. End the span with
// EndHTTPClientSpan.
func StartHTTPClientSpan(tracer trace.Tracer, req *http.Request, name, parent string) trace.Span {
	if tracer == nil {
		return nil
	}
	ctx := req.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if sc, ok := SpanContextFromTraceParent(parent); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	u := *req.URL
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", "" // may carry credentials
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", req.Method),
		attribute.String("url.full", u.String()),
		attribute.String("server.address", u.Hostname()),
		attribute.Int("server.port", port(&u)),
	}
	_, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	if tp := TraceParent(span.SpanContext()); tp != "" {
		req.Header.Set(HeaderTraceParent, tp)
	}
	return span
}

// EndHTTPClientSpan records a client request's answer (status 0: none) or error on span and ends
// it: an error or a status of 400 or more marks it as failed. A nil span is left alone.
func EndHTTPClientSpan(span trace.Span, status int, err error) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		if status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		switch {
		case err != nil:
			span.SetAttributes(attribute.String("error.type", "transport"))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case status >= 400:
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

func port(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}
