package worker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/worker"
)

func traceID(tp string) string {
	p := strings.Split(tp, "-")
	if len(p) != 4 {
		return ""
	}
	return p[1]
}

func TestTraceParentIsCarriedToPartnerAndEvents(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		key       string
		header    string
		wantTrace string
		wantFlags string
	}{
		{name: "from the request", key: "trace-1", header: incoming, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantFlags: "01"},
		{name: "none: the saga ID, not sampled", key: "trace-2", wantTrace: strings.ReplaceAll(worker.SagaID("trace-2"), "-", ""), wantFlags: "00"},
	}
	s := newStack(t)
	s.startWorker(worker.Config{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := nats.NewMsg(messages.SubjectsFor("").Requested)
			m.Data = []byte(`{"idempotencyKey":"` + tt.key + `","plan":{"name":"Ultimate Plan"},"quantity":1}`)
			if tt.header != "" {
				m.Header.Set("traceparent", tt.header)
			}
			if _, err := s.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(tt.key)); err != nil {
				t.Fatal(err)
			}
			r := s.waitResults(tt.key, 1)[0]
			got := r.header.Get("traceparent")
			if traceID(got) != tt.wantTrace || got == tt.header {
				t.Errorf("event traceparent %q, want trace %s with a new parent ID", got, tt.wantTrace)
			}
			if !strings.HasSuffix(got, "-"+tt.wantFlags) {
				t.Errorf("event traceparent %q, want flags %s", got, tt.wantFlags)
			}
			completed(t, r)
			for _, req := range s.sim.Requests(partnerclient.EndpointCreateOrder) {
				if traceID(req.TraceParent) == tt.wantTrace {
					return
				}
			}
			t.Errorf("no create_order request carried trace %s", tt.wantTrace)
		})
	}
}
