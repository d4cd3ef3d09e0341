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
	srv     *natsembed.Server // nil on a cluster
	cl      *cluster          // Config.ClusterNodes > 1
	sim     *partnertest.Server
	client  *partnerclient.Client
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	nc      *nats.Conn // the load generator: publishes requests, follows outcomes
	js      jetstream.JetStream
	conns   int // connections opened, to spread them over a cluster's servers
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
	if cfg.ClusterNodes > 1 {
		st.cl, err = startCluster(st.dir, cfg.ClusterNodes, cfg.Logger.Named("nats"))
	} else {
		st.srv, err = natsembed.Start(natsembed.Options{DataDir: st.dir, ServerName: "fulfil-bench", Logger: cfg.Logger.Named("nats")})
	}
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

// clientURL is where the workers connect: the embedded server, or every server of the
// cluster, starting with the i-th (so that the workers' connections spread over them).
func (st *stack) clientURL(i int) string {
	if st.cl != nil {
		return st.cl.clientURLs(i)
	}
	return st.srv.ClientURL()
}

// clientMsgs counts, on the server side, the messages of the client connections named name.
func (st *stack) clientMsgs(name string) (uint64, error) {
	if st.cl != nil {
		return st.cl.clientMsgs(name)
	}
	return st.srv.ClientMsgs(name)
}

// replicas is the replicas of the streams and the bucket: 3 on a cluster, as `fulfil worker`
// chooses there, else 1.
func (st *stack) replicas() int {
	if st.cl != nil {
		return min(3, len(st.cl.nodes))
	}
	return 1
}

// connect opens a connection to the embedded server named after role.
func (st *stack) connect(role string) (*nats.Conn, error) {
	st.conns++
	nc, err := nats.Connect(st.clientURL(st.conns), nats.Name("fulfil-bench-"+role))
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
	if st.cl != nil {
		st.cl.shutdown()
	}
	if st.dir != "" {
		_ = os.RemoveAll(st.dir)
	}
}
