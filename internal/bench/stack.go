package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// stack is what both phases share: the server, the simulator, the partner client and the load
// generator's connection.
type stack struct {
	cfg     Config
	dir     string
	srv     *natsembed.Server
	sim     *partnertest.Server
	client  *partnerclient.Client
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	nc      *nats.Conn // the load generator: publishes requests, follows outcomes
	js      jetstream.JetStream
}

// startStack starts the embedded server and the simulator and warms the partner client up.
func startStack(ctx context.Context, cfg Config) (st *stack, err error) {
	st = &stack{cfg: cfg}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	if st.dir, err = os.MkdirTemp("", "fulfil-bench-*"); err != nil {
		return nil, err
	}
	// The server's defaults, as `fulfil worker` runs it: acknowledged writes are in the store
	// files (page cache) and synced every two minutes.
	st.srv, err = natsembed.Start(natsembed.Options{DataDir: st.dir, ServerName: "fulfil-bench", Logger: cfg.Logger.Named("nats")})
	if err != nil {
		return nil, err
	}
	// No request log: a long run would keep every request in memory.
	st.sim = partnertest.NewServer(partnertest.WithSeed(1), partnertest.WithRequestLimit(0))
	for _, ep := range partnerclient.AllEndpoints {
		st.sim.SetFaults(ep, partnertest.Faults{Latency: cfg.PartnerLatency})
	}
	// As `fulfil worker` builds it, but without the client-side rate limit, which would
	// measure the limit instead of fulfil.
	st.reg = prometheus.NewRegistry()
	st.metrics = metrics.New(st.reg)
	opts := []partnerclient.Option{
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0),
		partnerclient.WithObserver(st.metrics.PartnerCall),
		partnerclient.WithTracerProvider(cfg.TracerProvider),
	}
	if n := cfg.PartnerConns; n > 0 {
		opts = append(opts, partnerclient.WithMaxInFlight(n), partnerclient.WithHTTPClient(&http.Client{Transport: &http.Transport{
			MaxConnsPerHost: n, MaxIdleConnsPerHost: n, MaxIdleConns: n, IdleConnTimeout: 90 * time.Second}}))
	}
	st.client, err = partnerclient.New(st.sim.URL, opts...)
	if err != nil {
		return nil, err
	}
	// The token is fetched once per client; fetch it before measuring.
	if err := st.client.Authenticate(ctx); err != nil {
		return nil, fmt.Errorf("bench: partner token: %w", err)
	}
	if st.nc, err = st.connect("load"); err != nil {
		return nil, err
	}
	st.js, err = jetstream.New(st.nc, jetstream.WithPublishAsyncMaxPending(max(cfg.Purchases, 256)))
	if err != nil {
		return nil, err
	}
	return st, nil
}

// connect opens a connection to the embedded server named after role.
func (st *stack) connect(role string) (*nats.Conn, error) {
	nc, err := nats.Connect(st.srv.ClientURL(), nats.Name("fulfil-bench-"+role))
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", role, err)
	}
	return nc, nil
}

// close releases everything startStack started; it is safe on a partly started stack.
func (st *stack) close() {
	if st.nc != nil {
		st.nc.Close()
	}
	if st.sim != nil {
		st.sim.Close()
	}
	if st.srv != nil {
		st.srv.Shutdown()
	}
	if st.dir != "" {
		_ = os.RemoveAll(st.dir)
	}
}
