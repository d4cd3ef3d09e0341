package traceparent_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/fulfil/fulfil/internal/traceparent"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseAndFormat(t *testing.T) {
	sc, ok := traceparent.Parse(tp)
	if !ok || !sc.IsRemote() || !sc.IsSampled() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("Parse(%q) = %v, %v", tp, sc, ok)
	}
	if got := traceparent.Format(sc); got != tp {
		t.Errorf("Format = %q, want %q", got, tp)
	}
	unsampled, _ := traceparent.Parse(strings.TrimSuffix(tp, "01") + "00")
	if got := traceparent.Format(unsampled); !strings.HasSuffix(got, "-00") {
		t.Errorf("unsampled Format = %q", got)
	}
	if got := traceparent.Format(trace.SpanContext{}); got != "" {
		t.Errorf("Format of an invalid context = %q", got)
	}
	// A later version may add fields after the flags; only the sampled flag is kept.
	if sc, ok := traceparent.Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-extra"); !ok || sc.TraceFlags() != trace.FlagsSampled {
		t.Errorf("a version 01 traceparent with an extra field: %v, %v", sc, ok)
	}
	for _, bad := range []string{
		"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
	} {
		if _, ok := traceparent.Parse(bad); ok || traceparent.Valid(bad) {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestContextWith(t *testing.T) {
	ctx := traceparent.ContextWith(context.Background(), tp)
	if got := traceparent.Format(trace.SpanContextFromContext(ctx)); got != tp {
		t.Errorf("the context carries %q, want %q", got, tp)
	}
	if ctx := traceparent.ContextWith(context.Background(), "00-bad"); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a malformed traceparent was carried")
	}
}

func TestChild(t *testing.T) {
	own, _ := trace.TraceIDFromHex("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name      string
		incoming  string
		id        trace.TraceID
		wantTrace string
		wantFlags string
	}{
		{name: "the request's trace, sampled as it says", incoming: tp, id: own, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantFlags: "01"},
		{name: "unsampled request", incoming: strings.TrimSuffix(tp, "01") + "00", id: own, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantFlags: "00"},
		{name: "none: our own trace, not sampled", id: own, wantTrace: own.String(), wantFlags: "00"},
		{name: "malformed: our own trace", incoming: "00-xyz", id: own, wantTrace: own.String(), wantFlags: "00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := traceparent.Child(tt.incoming, tt.id)
			sc, ok := traceparent.Parse(got)
			if !ok || sc.TraceID().String() != tt.wantTrace || !strings.HasSuffix(got, "-"+tt.wantFlags) {
				t.Fatalf("Child = %q, want trace %s, flags %s", got, tt.wantTrace, tt.wantFlags)
			}
			if len(tt.incoming) >= 52 && strings.Contains(got, tt.incoming[36:52]) {
				t.Errorf("Child = %q keeps the request's parent ID", got)
			}
			if again := traceparent.Child(tt.incoming, tt.id); again == got {
				t.Errorf("two children share the parent ID: %q", got)
			}
		})
	}
	if got := traceparent.Child("", trace.TraceID{}); got != "" {
		t.Errorf("Child without any trace = %q, want empty", got)
	}
}
