package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// lockedBuffer is the shared test buffer, safe for a writer and a reader at once.
type lockedBuffer = testutil.Buffer

// A full run with faults and token expiry, logged at debug level: neither the client secret
// nor any token the partner issued may appear in the logs or the events.
func TestSecretsNeverReachLogsOrEvents(t *testing.T) {
	var opts []partnertest.Option
	for _, ep := range partnerclient.AllEndpoints {
		if ep != partnerclient.EndpointToken {
			opts = append(opts, partnertest.WithFaults(ep, partnertest.Faults{ErrorRate: 0.1, ResetRate: 0.05}))
		}
	}
	s := newStack(t, append(opts, partnertest.WithSeed(3), partnertest.WithTokenTTL(time.Second))...)
	logs := &lockedBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.DebugLevel))

	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	client, err := partnerclient.New(s.sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithLogger(log), partnerclient.WithRateLimit(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Logger = log
	cfg.Idempotency.LeaseTTL = time.Second
	w, err := worker.New(js, &workflow.Saga{Partner: client, Logger: log, Retry: fastRetry()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for i := 0; i < 6; i++ {
		if i == 3 {
			// Force the client through a refresh (or a fresh login) half-way.
			for j := 0; j < 3; j++ {
				s.waitResults(fmt.Sprintf("secret-%d", j), 1)
			}
			s.sim.ExpireTokens()
		}
		s.publish(fmt.Sprintf(`{"idempotencyKey":"secret-%d","plan":{"name":"Ultimate Plan"},"quantity":1}`, i), fmt.Sprint(i))
	}
	for i := 0; i < 6; i++ {
		s.waitResults(fmt.Sprintf("secret-%d", i), 1)
	}
	s.mu.Lock()
	var events strings.Builder
	for _, r := range s.events {
		fmt.Fprintf(&events, "%+v %v\n", r.ev, r.header)
	}
	s.mu.Unlock()

	secrets := append([]string{partnertest.DefaultClientSecret}, s.sim.IssuedTokens()...)
	if len(secrets) < 5 { // the secret and at least two token pairs
		t.Fatalf("only %d tokens issued; the run did not re-authenticate", len(secrets)-1)
	}
	if !strings.Contains(logs.String(), "partner request") {
		t.Fatal("no debug logs of partner requests were captured; the test would prove nothing")
	}
	for _, secret := range secrets {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret or token appears in the logs")
		}
		if strings.Contains(events.String(), secret) {
			t.Errorf("a secret or token appears in an event")
		}
	}
}
