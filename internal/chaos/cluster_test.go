//go:build chaos

package chaos

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterName names the test cluster.
const clusterName = "chaos"

// jsAccount is the account every client uses when the servers configure none.
const jsAccount = "$G"

// cluster is a 3-node JetStream cluster in this process, on loopback. Its routes run through
// proxies (one per ordered pair of servers) so that a server can be cut off from the others
// while it keeps serving its clients: a real partition, not a crash.
type cluster struct {
	t     *testing.T
	nodes []*node
	// proxies[i][j] carries the routes that server i solicits to server j.
	proxies [][]*tcpProxy
}

// node is one server of the cluster. Its ports and store directory survive a restart.
type node struct {
	name        string
	dir         string
	clientPort  int
	clusterPort int
	routes      []string

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// clusterAddr is where n's route listener is (or will be again after a restart).
func (n *node) clusterAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", n.clusterPort)
}

func (n *node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// newCluster starts servers n1..n3 and waits until the JetStream meta group has a leader and
// every server is current. The cluster shuts down when the test ends.
func newCluster(t *testing.T, size int) *cluster {
	t.Helper()
	c := &cluster{t: t, proxies: make([][]*tcpProxy, size)}
	for i := range size {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir()})
	}
	for i := range size {
		c.proxies[i] = make([]*tcpProxy, size)
		for j := range size {
			if i == j {
				continue
			}
			target := c.nodes[j]
			p, err := newTCPProxy(target.clusterAddr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.close)
			c.proxies[i][j] = p
			c.nodes[i].routes = append(c.nodes[i].routes, "nats-route://"+p.addr())
		}
	}
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
	})
	c.waitReady(30 * time.Second)
	return c
}

// start starts n on its ports (random ones the first time) and store directory.
func (c *cluster) start(n *node) error {
	n.mu.Lock()
	port, cport := n.clientPort, n.clusterPort
	n.mu.Unlock()
	if port == 0 {
		port, cport = server.RANDOM_PORT, server.RANDOM_PORT
	}
	routes := server.RoutesFromStr(strings.Join(n.routes, ","))
	opts := &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   n.dir,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name: clusterName,
			Host: "127.0.0.1",
			Port: cport,
			// Gossip would make the servers dial each other directly, around the proxies.
			// An advertised address where nothing listens keeps every route on a proxy.
			Advertise: "127.0.0.1:1",
		},
		Routes:                 routes,
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("server %s: %w", n.name, err)
	}
	log := &fatalLogger{}
	srv.SetLoggerV2(log, false, false, false)
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		if err := log.fatal(); err != nil || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return fmt.Errorf("server %s not ready: %v", n.name, err)
		}
	}
	n.mu.Lock()
	n.srv = srv
	if n.clientPort == 0 {
		n.clientPort = srv.Addr().(*net.TCPAddr).Port
		n.clusterPort = srv.ClusterAddr().Port
	}
	n.mu.Unlock()
	return nil
}

// stop shuts n down (a crash as far as its clients and peers can tell) and waits for it.
func (c *cluster) stop(n *node) {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// restart starts a stopped server again, on the same ports and store.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	if err := c.start(n); err != nil {
		c.t.Fatal(err)
	}
}

// urls returns the client URLs of all servers, starting with server first (so that
// connections spread over the servers while still failing over to all of them).
func (c *cluster) urls(first int) string {
	var out []string
	for k := range c.nodes {
		n := c.nodes[(first+k)%len(c.nodes)]
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort))
	}
	return strings.Join(out, ",")
}

// partition cuts server i off from the others (its clients stay connected to it) until heal.
func (c *cluster) partition(i int) { c.setCut(i, true) }

// heal reconnects server i to the others.
func (c *cluster) heal(i int) { c.setCut(i, false) }

func (c *cluster) setCut(i int, cut bool) {
	for j := range c.nodes {
		if j != i {
			c.proxies[i][j].setCut(cut)
			c.proxies[j][i].setCut(cut)
		}
	}
}

// streamLeader returns the index of the server leading stream, or -1 if none does.
func (c *cluster) streamLeader(stream string) int {
	for i, n := range c.nodes {
		if s := n.server(); s != nil && s.JetStreamIsStreamLeader(jsAccount, stream) {
			return i
		}
	}
	return -1
}

// waitReady waits until every server runs, the meta group has a leader, and every server is
// current with it.
func (c *cluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not ready after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) ready() error {
	leaders := 0
	for _, n := range c.nodes {
		s := n.server()
		if s == nil {
			return fmt.Errorf("%s is stopped", n.name)
		}
		if s.NumRoutes() < len(c.nodes)-1 {
			return fmt.Errorf("%s has %d routes", n.name, s.NumRoutes())
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s is not current", n.name)
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

// fatalLogger drops the server's log lines but keeps its fatal error, which the server reports
// instead of returning it from Start (a port taken between stop and restart).
type fatalLogger struct {
	mu  sync.Mutex
	err error
}

func (l *fatalLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *fatalLogger) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = fmt.Errorf(format, v...)
	}
}
func (l *fatalLogger) Noticef(string, ...any) {}
func (l *fatalLogger) Warnf(string, ...any)   {}
func (l *fatalLogger) Errorf(string, ...any)  {}
func (l *fatalLogger) Debugf(string, ...any)  {}
func (l *fatalLogger) Tracef(string, ...any)  {}

// tcpProxy forwards TCP connections to a target address. Cut, it closes every connection
// it carries and refuses new ones; paused, it stops forwarding bytes (both ways) until resumed,
// like a network that holds packets, or a peer that was sent SIGSTOP.
type tcpProxy struct {
	ln     net.Listener
	target func() string

	mu     sync.Mutex
	cut    bool
	paused chan struct{} // closed while bytes flow
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newTCPProxy(target func() string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	flowing := make(chan struct{})
	close(flowing)
	p := &tcpProxy{ln: ln, target: target, paused: flowing, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target(), time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies src to dst until either ends, holding data while the proxy is paused.
func (p *tcpProxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	defer p.forget(src, dst)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			flowing := p.paused
			p.mu.Unlock()
			<-flowing
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *tcpProxy) forget(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// setCut cuts (closing every connection) or restores the link.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// pause stops forwarding until resume.
func (p *tcpProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = make(chan struct{})
}

// resume forwards what was held and everything after it.
func (p *tcpProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.paused:
	default:
		close(p.paused)
	}
}

func (p *tcpProxy) close() {
	_ = p.ln.Close()
	p.resume()
	p.setCut(true)
	p.wg.Wait()
}
