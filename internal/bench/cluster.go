package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/natsembed"
)

// clusterName names the bench's embedded cluster.
const clusterName = "fulfil-bench"

// cluster is a JetStream cluster of Config.ClusterNodes servers in this process, on loopback,
// each with its own store directory: the streams and the idempotency bucket are replicated
// on three of them, as on a production cluster (the workers choose 3 replicas on a cluster).
type cluster struct {
	nodes []*server.Server
}

// startCluster starts n servers under dir, each routed to all the others, and waits until
// the JetStream meta group has a leader and every server is current.
func startCluster(dir string, n int, log *zap.Logger) (c *cluster, err error) {
	c = &cluster{}
	defer func() {
		if err != nil {
			c.shutdown()
		}
	}()
	// The route ports must be known before the first server starts: each one lists all routes.
	ports := make([]string, n)
	for i := range ports {
		if ports[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://"+p)
	}
	for i := range n {
		_, port, _ := strings.Cut(ports[i], ":")
		var cport int
		if _, err := fmt.Sscan(port, &cport); err != nil {
			return nil, fmt.Errorf("bench: route port %q: %w", port, err)
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("fulfil-bench-n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: clusterName,
				Host: "127.0.0.1",
				Port: cport,
			},
			Routes:                 server.RoutesFromStr(strings.Join(routes, ",")),
			DisableJetStreamBanner: true,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("bench: cluster server %d: %w", i+1, err)
		}
		ns.SetLoggerV2(&serverLog{log: log.Named(opts.ServerName)}, false, false, false)
		ns.Start()
		c.nodes = append(c.nodes, ns)
		if !ns.ReadyForConnections(10 * time.Second) {
			return nil, fmt.Errorf("bench: cluster server %d not ready", i+1)
		}
	}
	return c, c.waitReady(30 * time.Second)
}

// waitReady waits until every server has its routes and is current with the meta leader.
func (c *cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: cluster not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) ready() error {
	leaders := 0
	for _, s := range c.nodes {
		if s.NumRoutes() < len(c.nodes)-1 {
			return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s is not current", s.Name())
		}
		if s.JetStreamIsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		return fmt.Errorf("%d meta leaders", leaders)
	}
	return nil
}

// clientURLs lists every server's client URL, starting with server first, so that
// connections spread over the servers.
func (c *cluster) clientURLs(first int) string {
	var out []string
	for k := range c.nodes {
		out = append(out, c.nodes[(first+k)%len(c.nodes)].ClientURL())
	}
	return strings.Join(out, ",")
}

// clientMsgs is natsembed.Server.ClientMsgs over every server of the cluster.
func (c *cluster) clientMsgs(name string) (uint64, error) {
	var total uint64
	for _, s := range c.nodes {
		n, err := natsembed.ClientMsgs(s, name)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// shutdown stops every server and waits for them.
func (c *cluster) shutdown() {
	for _, s := range c.nodes {
		s.Shutdown()
	}
	for _, s := range c.nodes {
		s.WaitForShutdown()
	}
}

// serverLog passes a cluster server's warnings and errors to zap.
type serverLog struct{ log *zap.Logger }

func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}
func (l *serverLog) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "connect to route") || strings.Contains(msg, " - rid:") {
		// The servers start one after the other, so the first ones' routes to the later ones
		// fail until those listen, and stop one after the other, so routes break: what a run
		// suffers from a route shows in its results.
		l.log.Debug(msg)
		return
	}
	l.log.Error(msg)
}
func (l *serverLog) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
}
