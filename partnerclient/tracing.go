package partnerclient

import (
	"context"
	"errors"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/traceparent"
)

// TracerName is the instrumentation scope of the client's spans.
const TracerName = "github.com/fulfil/fulfil/partnerclient"

// Span attributes of a partner call besides the HTTP ones (http.request.method,
// http.response.status_code, url.full, server.address, server.port, error.type).
const (
	AttrEndpoint  = attribute.Key("fulfil.partner.endpoint")   // the Endpoint, e.g. create_order
	AttrRequestID = attribute.Key("fulfil.partner.request_id") // the envelope's requestId
	AttrCode      = attribute.Key("fulfil.partner.code")       // the envelope's code when not SUCCESS
)

// SpanName returns the name of ep's client spans: "partner " and the endpoint.
func SpanName(ep Endpoint) string { return "partner " + string(ep) }

// WithTracerProvider makes every HTTP request a client span of tp's tracer (named SpanName,
// child of the span in the call's context), whose trace context is the request's traceparent
// header. A nil tp (the default) records no spans and costs nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		c.tracer = nil
		if tp != nil {
			c.tracer = tp.Tracer(TracerName)
		}
		return nil
	}
}

// startSpan starts the client span of one request to u.
func (c *Client) startSpan(ctx context.Context, r request, u *url.URL) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.method),
		attribute.String("url.full", u.String()),
		attribute.String("server.address", u.Hostname()),
		AttrEndpoint.String(string(r.ep)),
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	} else if u.Scheme == "https" {
		attrs = append(attrs, attribute.Int("server.port", 443))
	} else {
		attrs = append(attrs, attribute.Int("server.port", 80))
	}
	return c.tracer.Start(ctx, SpanName(r.ep), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records a request's answer and error on its span and ends it. A span whose request
// failed (no answer, an HTTP error, or an envelope code other than SUCCESS) has status Error.
func endSpan(span trace.Span, status int, env envelope, err error) {
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 4)
		if status != 0 {
			attrs = append(attrs, attribute.Int("http.response.status_code", status))
		}
		if env.RequestID != "" {
			attrs = append(attrs, AttrRequestID.String(string(env.RequestID)))
		}
		var pe *Error
		if errors.As(err, &pe) && pe.Code != "" {
			attrs = append(attrs, AttrCode.String(pe.Code)) // redacted by send
		}
		if err != nil {
			attrs = append(attrs, attribute.String("error.type", errorType(status, pe, err)))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.SetAttributes(attrs...)
	}
	span.End()
}

// errorType is the span's error.type: the HTTP status code, the envelope code, or the kind of
// failure.
func errorType(status int, pe *Error, err error) string {
	switch {
	case pe != nil && pe.Code != "" && pe.Code != CodeSuccess:
		return pe.Code
	case status >= 400:
		return strconv.Itoa(status)
	case errors.Is(err, ErrRedirect):
		return "redirect"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case status == 0:
		return "transport"
	default:
		return "invalid_response"
	}
}

// outgoingTraceParent is the traceparent header of a request: the span context in ctx (the
// call's client span, the caller's span, or a remote span context such as
// traceparent.ContextWith puts there), or "" when it has none.
func outgoingTraceParent(ctx context.Context) string {
	return traceparent.Format(trace.SpanContextFromContext(ctx))
}
