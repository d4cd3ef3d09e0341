package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/devsecrets"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/internal/webhook"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// shippedNATS is a NATS server running deploy/nats/nats.conf, with its auth.conf, as shipped:
// only the listen addresses, the store and the certificates' directory are the test's own
// (and it runs alone, without the cluster's routes).
type shippedNATS struct {
	url       string
	passwords map[string]string // user → password file
	log       *violationLog
}

// violationLog keeps the permission violations the server logs.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) add(format string, v ...any) {
	if s := fmt.Sprintf(format, v...); strings.Contains(s, "Violation") {
		l.mu.Lock()
		l.lines = append(l.lines, s)
		l.mu.Unlock()
	}
}

// take returns and forgets the violations logged so far.
func (l *violationLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func (l *violationLog) Noticef(string, ...any)    {}
func (l *violationLog) Warnf(f string, v ...any)  { l.add(f, v...) }
func (l *violationLog) Fatalf(f string, v ...any) { l.add(f, v...) }
func (l *violationLog) Errorf(f string, v ...any) { l.add(f, v...) }
func (l *violationLog) Debugf(f string, v ...any) { l.add(f, v...) }
func (l *violationLog) Tracef(string, ...any)     {}

func (l *violationLog) peek() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// matchSubject matches a violation of subject (the server quotes it).
func matchSubject(subject string) func(s string) bool {
	return func(s string) bool { return strings.Contains(s, fmt.Sprintf("%q", subject)) }
}

// wait waits until a violation of subject is logged, then forgets every violation so far.
func (l *violationLog) wait(t *testing.T, subject string) {
	t.Helper()
	if !testutil.Poll(5*time.Second, func() bool { return slices.ContainsFunc(l.peek(), matchSubject(subject)) }) {
		t.Errorf("no permission violation logged for %s", subject)
		return
	}
	l.take()
}

// startShippedNATS starts nats-server with the shipped configuration, the users' passwords in
// its environment as compose and Kubernetes give them.
func startShippedNATS(t *testing.T) *shippedNATS {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if _, err := devsecrets.Generate(certs, devsecrets.Options{}); err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	for _, u := range devsecrets.Users {
		b, err := os.ReadFile(filepath.Join(certs, devsecrets.PasswordFile(u)))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(devsecrets.PasswordEnv(u), strings.TrimSpace(string(b)))
		passwords[u] = filepath.Join(certs, devsecrets.PasswordFile(u))
	}
	for _, f := range []string{"nats.conf", "auth.conf"} {
		b, err := os.ReadFile(filepath.Join(deployDir, "nats", f))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/etc/nats/certs/", certs+"/")
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.StoreDir = filepath.Join(dir, "store")
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	vl := &violationLog{}
	ns.SetLoggerV2(vl, true, false, false)
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return &shippedNATS{url: ns.ClientURL(), passwords: passwords, log: vl}
}

// login returns the CLI flags that log in as user.
func (s *shippedNATS) login(user string) []string {
	args := []string{"--nats-url", s.url, "--nats-user", user, "--nats-password-file", s.passwords[user]}
	if user != "producer" {
		args = append(args, "--nats-inbox-prefix", "_INBOX_"+user)
	}
	return args
}

// connect connects as user with the inbox prefix the CLI would use.
func (s *shippedNATS) connect(t *testing.T, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	pw, err := os.ReadFile(s.passwords[user])
	if err != nil {
		t.Fatal(err)
	}
	opts := []nats.Option{nats.UserInfo(user, strings.TrimSpace(string(pw))), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}
	if user != "producer" {
		opts = append(opts, nats.CustomInboxPrefix("_INBOX_"+user))
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// The shipped NATS configuration refuses anonymous clients and wrong passwords.
func TestShippedNATSRefusesAnonymous(t *testing.T) {
	s := startShippedNATS(t)
	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo("worker", "guess")},
		"unknown user":   {nats.UserInfo("admin", "admin")},
	} {
		nc, err := nats.Connect(s.url, append(opts, nats.MaxReconnects(0))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
}

// Each shipped role does its job and nothing else: a real worker buys through the partner
// simulator as worker; fulfil submit, as producer, publishes and reads the outcome; the
// operator's commands run as operator; and no role can do what it must not.
func TestShippedNATSRoles(t *testing.T) {
	s := startShippedNATS(t)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	partnerFlags := []string{"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret}
	httpAddr := freePort(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"worker", "--http-addr", httpAddr, "--api-addr", "127.0.0.1:0", "--log-level", "warn", "--audit-interval", "1s"}, s.login("worker")...)
		done <- run(ctx, append(args, partnerFlags...), io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)

	cli := func(user string, args ...string) (int, string) {
		t.Helper()
		var out, errb syncBuffer
		if args[0] == "audit" {
			args = append(args, partnerFlags...)
		}
		n := 1
		if args[0] == "dlq" {
			n = 2 // dlq list|replay, then the flags
		}
		full := append(append(slices.Clone(args[:n]), s.login(user)...), args[n:]...)
		code := run(context.Background(), full, &out, &errb)
		return code, out.String() + errb.String()
	}

	// Producer: publish and read the outcome.
	if code, out := cli("producer", "submit", "--key", "role-1", "--plan", "Ultimate Plan", "--quantity", "5", "--timeout", "60s"); code != exitOK || !strings.Contains(out, "completed") {
		t.Fatalf("submit as producer: exit %d:\n%s\nworker:\n%s", code, out, werr.String())
	}
	// Intake: fulfil api takes a purchase over HTTP and answers its outcome.
	apiAddr := freePort(t)
	var aerr syncBuffer
	apiDone := make(chan int, 1)
	actx, stopAPI := context.WithCancel(ctx)
	go func() {
		apiDone <- run(actx, append([]string{"api", "--api-addr", apiAddr, "--http-addr", "", "--log-level", "warn"}, s.login("intake")...), io.Discard, &aerr)
	}()
	if code, body := intakePurchase(t, "http://"+apiAddr, "role-web-1", apiDone); code != http.StatusOK || !strings.Contains(body, `"completed"`) {
		t.Errorf("purchase through fulfil api as intake: %d %s\n%s", code, body, aerr.String())
	}
	stopAPI()
	if code := <-apiDone; code != exitOK {
		t.Errorf("fulfil api exit %d:\n%s", code, aerr.String())
	}

	// Operator: every command an operator runs.
	for _, args := range [][]string{
		{"status"},
		{"status", "role-1"},
		{"status", "--json", "role-web-1"},
		{"events", "--follow=false"},
		{"dlq", "list"},
		{"pause", "--reason", "role test", "--by", "tester"},
		{"resume", "--by", "tester"},
		{"audit"},
	} {
		if code, out := cli("operator", args...); code != exitOK {
			t.Errorf("fulfil %s as operator: exit %d:\n%s", strings.Join(args, " "), code, out)
		}
	}
	if code, out := cli("producer", "submit", "--key", "role-2", "--plan", "Ultimate Plan", "--quantity", "5", "--timeout", "60s"); code != exitOK {
		t.Fatalf("submit after resume: exit %d:\n%s", code, out)
	}
	// fulfil submit looks the key up first to answer a conflict at once; a producer may not
	// read the sagas, and submit does without.
	if v := slices.DeleteFunc(s.log.take(), func(l string) bool {
		return strings.Contains(l, `user:producer" - Publish Violation - Subject "$JS.API.STREAM.INFO.KV_FULFIL_SAGAS"`)
	}); len(v) > 0 {
		t.Errorf("permission violations while every role did its job:\n%s", strings.Join(v, "\n"))
	}

	// What each role must not do.
	deny := func(user string, what string, try func(nc *nats.Conn, js jetstream.JetStream) error, subject string) {
		t.Helper()
		nc, js := s.connect(t, user)
		if err := try(nc, js); err == nil {
			t.Errorf("%s could %s", user, what)
		}
		s.log.wait(t, subject)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	publish := func(subject string) func(*nats.Conn, jetstream.JetStream) error {
		return func(nc *nats.Conn, js jetstream.JetStream) error {
			c, cancel := short()
			defer cancel()
			_, err := js.Publish(c, subject, []byte(`{}`))
			return err
		}
	}
	request := func(subject string) func(*nats.Conn, jetstream.JetStream) error {
		return func(nc *nats.Conn, js jetstream.JetStream) error {
			_, err := nc.Request(subject, nil, 500*time.Millisecond)
			return err
		}
	}
	subscribe := func(subject string) func(*nats.Conn, jetstream.JetStream) error {
		return func(nc *nats.Conn, js jetstream.JetStream) error {
			got := make(chan *nats.Msg, 1)
			sub, err := nc.ChanSubscribe(subject, got)
			if err != nil {
				return err
			}
			defer sub.Unsubscribe()
			if err := nc.Flush(); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			return nc.LastError()
		}
	}
	for _, d := range []struct {
		user, what string
		try        func(*nats.Conn, jetstream.JetStream) error
		subject    string
	}{
		{"producer", "read the sagas bucket", func(nc *nats.Conn, js jetstream.JetStream) error {
			c, cancel := short()
			defer cancel()
			_, err := js.KeyValue(c, "FULFIL_SAGAS")
			return err
		}, "$JS.API.STREAM.INFO.KV_FULFIL_SAGAS"},
		{"producer", "get a saga directly", request("$JS.API.DIRECT.GET.KV_FULFIL_SAGAS.$KV.FULFIL_SAGAS.cm9sZS0x"), "$JS.API.DIRECT.GET.KV_FULFIL_SAGAS.$KV.FULFIL_SAGAS.cm9sZS0x"},
		{"producer", "write the sagas bucket", publish("$KV.FULFIL_SAGAS.cm9sZS0x"), "$KV.FULFIL_SAGAS.cm9sZS0x"},
		{"producer", "subscribe to the sagas bucket", subscribe("$KV.FULFIL_SAGAS.>"), "$KV.FULFIL_SAGAS.>"},
		{"producer", "publish an event", publish("fulfil.purchase.completed"), "fulfil.purchase.completed"},
		{"producer", "delete a stream", request("$JS.API.STREAM.DELETE.FULFIL_REQUESTS"), "$JS.API.STREAM.DELETE.FULFIL_REQUESTS"},
		{"producer", "purge a stream", request("$JS.API.STREAM.PURGE.FULFIL_EVENTS"), "$JS.API.STREAM.PURGE.FULFIL_EVENTS"},
		{"producer", "delete a consumer", request("$JS.API.CONSUMER.DELETE.FULFIL_REQUESTS.fulfil-worker"), "$JS.API.CONSUMER.DELETE.FULFIL_REQUESTS.fulfil-worker"},
		{"producer", "pull requests", request("$JS.API.CONSUMER.MSG.NEXT.FULFIL_REQUESTS.fulfil-worker"), "$JS.API.CONSUMER.MSG.NEXT.FULFIL_REQUESTS.fulfil-worker"},
		{"producer", "pause the account", publish("$KV.FULFIL_CONTROL.pause"), "$KV.FULFIL_CONTROL.pause"},
		{"producer", "read the worker's replies", subscribe("_INBOX_worker.>"), "_INBOX_worker.>"},
		{"worker", "delete another stream", request("$JS.API.STREAM.DELETE.SHOP_ORDERS"), "$JS.API.STREAM.DELETE.SHOP_ORDERS"},
		{"worker", "purge another stream", request("$JS.API.STREAM.PURGE.SHOP_ORDERS"), "$JS.API.STREAM.PURGE.SHOP_ORDERS"},
		{"worker", "create another stream", request("$JS.API.STREAM.CREATE.SHOP_ORDERS"), "$JS.API.STREAM.CREATE.SHOP_ORDERS"},
		{"worker", "delete its requests stream", request("$JS.API.STREAM.DELETE.FULFIL_REQUESTS"), "$JS.API.STREAM.DELETE.FULFIL_REQUESTS"},
		{"worker", "purge the events", request("$JS.API.STREAM.PURGE.FULFIL_EVENTS"), "$JS.API.STREAM.PURGE.FULFIL_EVENTS"},
		{"worker", "delete the sagas bucket", request("$JS.API.STREAM.DELETE.KV_FULFIL_SAGAS"), "$JS.API.STREAM.DELETE.KV_FULFIL_SAGAS"},
		{"worker", "read another stream", request("$JS.API.STREAM.MSG.GET.SHOP_ORDERS"), "$JS.API.STREAM.MSG.GET.SHOP_ORDERS"},
		{"worker", "publish elsewhere", publish("shop.orders.new"), "shop.orders.new"},
		{"operator", "write a saga", publish("$KV.FULFIL_SAGAS.cm9sZS0x"), "$KV.FULFIL_SAGAS.cm9sZS0x"},
		{"operator", "reset the spend counters", publish("$KV.FULFIL_CONTROL.spend.2026-01-01"), "$KV.FULFIL_CONTROL.spend.2026-01-01"},
		{"operator", "delete a stream", request("$JS.API.STREAM.DELETE.FULFIL_DLQ"), "$JS.API.STREAM.DELETE.FULFIL_DLQ"},
		{"operator", "publish an event", publish("fulfil.purchase.failed"), "fulfil.purchase.failed"},
		{"operator", "pull requests", request("$JS.API.CONSUMER.MSG.NEXT.FULFIL_REQUESTS.fulfil-worker"), "$JS.API.CONSUMER.MSG.NEXT.FULFIL_REQUESTS.fulfil-worker"},
		{"intake", "write a saga", publish("$KV.FULFIL_SAGAS.cm9sZS0x"), "$KV.FULFIL_SAGAS.cm9sZS0x"},
		{"intake", "publish an event", publish("fulfil.purchase.completed"), "fulfil.purchase.completed"},
		{"intake", "delete a stream", request("$JS.API.STREAM.DELETE.FULFIL_REQUESTS"), "$JS.API.STREAM.DELETE.FULFIL_REQUESTS"},
	} {
		deny(d.user, d.what, d.try, d.subject)
	}
	// The streams are all still there.
	_, js := s.connect(t, "worker")
	for _, name := range []string{messages.StreamRequests, messages.StreamEvents, messages.StreamDeadLetter} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("worker exit %d:\n%s", code, werr.String())
	}
	if regexp.MustCompile(`(?i)permission`).MatchString(werr.String()) {
		t.Errorf("the worker logged a permission problem:\n%s", werr.String())
	}
}

// intakePurchase posts a purchase to the HTTP intake at base and waits for its outcome; it
// returns the status code and body of the answer.
func intakePurchase(t *testing.T, base, key string, done <-chan int) (int, string) {
	t.Helper()
	const body = `{"plan":{"name":"Ultimate Plan"},"quantity":5,"years":1}`
	var (
		resp *http.Response
		err  error
	)
	testutil.Eventually(t, 20*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/purchases", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			return true
		}
		select {
		case code := <-done:
			t.Fatalf("fulfil api ended with exit %d", code)
		default:
		}
		return false
	}, "the intake at %s to answer", base)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, string(b)
	}
	resp, err = http.Get(base + resp.Header.Get("Location") + "?wait=30s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The compose nodes' routes are mutual TLS with the certificates of deploy/gensecrets: two
// nodes with the shipped nats.conf (cluster address and routes as compose gives them on the
// command line) form a cluster, and a node whose certificate another CA signed is refused.
func TestShippedNATSRoutesAreMutualTLS(t *testing.T) {
	setNATSPasswords(t)
	node := func(name, certs string, routes string) *server.Server {
		t.Helper()
		dir := t.TempDir()
		for _, f := range []string{"nats.conf", "auth.conf"} {
			b, err := os.ReadFile(filepath.Join(deployDir, "nats", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.ReplaceAll(string(b), "/etc/nats/certs/", certs+"/")), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
		if err != nil {
			t.Fatal(err)
		}
		opts.ServerName, opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs = name, "127.0.0.1", server.RANDOM_PORT, 0, true
		opts.JetStream = false // routes only
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", server.RANDOM_PORT
		if routes != "" {
			opts.Routes = server.RoutesFromStr(routes)
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s did not start", name)
		}
		return ns
	}
	certs, other := filepath.Join(t.TempDir(), "certs"), filepath.Join(t.TempDir(), "other")
	for _, dir := range []string{certs, other} {
		if _, err := devsecrets.Generate(dir, devsecrets.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	n1 := node("nats-1", certs, "")
	routeURL := fmt.Sprintf("nats://localhost:%d", n1.ClusterAddr().Port)
	n2 := node("nats-2", certs, routeURL)
	testutil.Eventually(t, 10*time.Second, func() bool { return n1.NumRoutes() > 0 && n2.NumRoutes() > 0 },
		"the two nodes to form a cluster over TLS")
	stranger := node("nats-x", other, routeURL)
	time.Sleep(time.Second)
	// n1's route count may still grow as its route pool to n2 forms; what must not exist is a
	// route between n1 and the stranger.
	rz, err := n1.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rz.Routes {
		if r.RemoteID == stranger.ID() {
			t.Errorf("a node with another CA's certificate joined: n1 has a route to it")
		}
	}
	if stranger.NumRoutes() != 0 {
		t.Errorf("a node with another CA's certificate joined (%d routes)", stranger.NumRoutes())
	}
}

// Every NATS login setting refuses a bad value before anything starts, naming the setting.
func TestNATSLoginSettingsAreChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw, empty, seed := write("pw", "secret\n"), write("empty", "\n"), write("seed", "not a seed")
	auth := write("auth.conf", `authorization { users = [ { user: worker, password: secret } ] }`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"password without user", []string{"--nats-password-file", pw}, "FULFIL_NATS_PASSWORD_FILE (--nats-password-file) needs FULFIL_NATS_USER"},
		{"user without password", []string{"--nats-user", "worker"}, "FULFIL_NATS_USER (--nats-user) needs FULFIL_NATS_PASSWORD_FILE"},
		{"empty password", []string{"--nats-user", "worker", "--nats-password-file", empty}, "is empty"},
		{"missing password file", []string{"--nats-user", "worker", "--nats-password-file", filepath.Join(dir, "nope")}, "no such file"},
		{"bad nkey", []string{"--nats-nkey-file", seed}, "FULFIL_NATS_NKEY_FILE (--nats-nkey-file)"},
		{"two logins", []string{"--nats-user", "worker", "--nats-password-file", pw, "--nats-nkey-file", seed}, "use one of"},
		{"inbox wildcard", []string{"--nats-inbox-prefix", "_INBOX.>"}, "FULFIL_NATS_INBOX_PREFIX (--nats-inbox-prefix) \"_INBOX.>\""},
		{"auth file with NATS_URL", []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-auth-file", auth}, "applies to the embedded NATS server only"},
		{"auth file without login", []string{"--nats-auth-file", auth}, "set FULFIL_NATS_USER and FULFIL_NATS_PASSWORD_FILE"},
		{"auth file without the user", []string{"--nats-auth-file", auth, "--nats-user", "admin", "--nats-password-file", pw}, `has no user "admin" (it has worker)`},
		{"auth file unreadable", []string{"--nats-auth-file", filepath.Join(dir, "nope.conf"), "--nats-user", "worker", "--nats-password-file", pw}, "FULFIL_NATS_AUTH_FILE (--nats-auth-file): auth file"},
		{"insecure not a bool", []string{"--nats-insecure=maybe"}, "FULFIL_NATS_INSECURE (--nats-insecure)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb syncBuffer
			args := append([]string{"worker", "--partner-sim", "--http-addr", "", "--data-dir", t.TempDir()}, tt.args...)
			if code := run(context.Background(), args, io.Discard, &errb); code != exitUsage || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, exitUsage, errb.String(), tt.want)
			}
		})
	}
	// The commands that only connect check the login too.
	var errb syncBuffer
	if code := run(context.Background(), []string{"status", "--nats-user", "operator"}, io.Discard, &errb); code == exitOK || !strings.Contains(errb.String(), "needs FULFIL_NATS_PASSWORD_FILE") {
		t.Errorf("status with a user and no password: exit %d: %s", code, errb.String())
	}
}

// as runs a fulfil command logged in to s as user; the first words arguments name the command
// (2 for "webhooks list"), the login flags follow them.
func (s *shippedNATS) as(user string, words int, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	full := append(append(slices.Clone(args[:words]), s.login(user)...), args[words:]...)
	code = run(context.Background(), full, &out, &errb)
	return code, out.String(), errb.String()
}

// Webhooks under the shipped roles: a real worker, logged in as worker, delivers a purchase's
// outcome signed to one endpoint and dead-letters it for another that is down; the operator
// sees both endpoints (webhooks status), lists the dead letter and replays it, and it arrives
// with the same webhook-id. No permission is missing on the way (the server logs none, the
// worker complains of none), and the roles that have no business there are refused: the
// producer and the intake cannot read the webhook dead letters nor forge or replay them, the
// operator cannot write them, no role but the worker can unpin or remove an endpoint's consumer.
func TestShippedNATSWebhooks(t *testing.T) {
	s := startShippedNATS(t)
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	up, down := newHookReceiver(t), newHookReceiver(t)
	up.up.Store(true)
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upURL, downURL := up.srv.URL+"/hooks/fulfil", down.srv.URL+"/hooks/fulfil"
	eps, err := webhook.ParseEndpoints(upURL+","+downURL, false)
	if err != nil || len(eps) != 2 {
		t.Fatalf("endpoints %v: %v", eps, err)
	}
	upHost, downHost := eps[0].Host, eps[1].Host

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpAddr := freePort(t)
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"worker", "--http-addr", httpAddr, "--api-addr", "", "--log-level", "warn",
			"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret,
			"--webhook-url", upURL + "," + downURL, "--webhook-secret-file", secretFile, "--webhook-retry-period", "3s"}, s.login("worker")...)
		done <- run(ctx, args, io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)

	if code, out, errs := s.as("producer", 1, "submit", "--key", "hook-role-1", "--plan", "Ultimate Plan", "--quantity", "5", "--timeout", "60s"); code != exitOK {
		t.Fatalf("submit as producer: exit %d:\n%s%s\nworker:\n%s", code, out, errs, werr.String())
	}

	// The endpoint that is up gets the completed event, signed (newHookReceiver verifies every
	// request against hookSecret), once.
	var webhookID string
	testutil.Eventually(t, 30*time.Second, func() bool {
		ok, bodies, _ := up.delivered()
		for id := range ok {
			var ev struct{ Type, IdempotencyKey string }
			if json.Unmarshal(bodies[id], &ev) == nil && ev.Type == messages.TypeCompleted && ev.IdempotencyKey == "hook-role-1" {
				webhookID = id
				return true
			}
		}
		return false
	}, "the completed event at the endpoint that is up")

	// The other endpoint's copy runs out of its retry period and is dead-lettered; the operator
	// lists it.
	type deadLetter struct {
		Seq            uint64 `json:"seq"`
		WebhookID      string `json:"webhookId"`
		Endpoint       string `json:"endpoint"`
		IdempotencyKey string `json:"idempotencyKey"`
		Type           string `json:"type"`
		LastResult     string `json:"lastResult"`
	}
	list := func() []deadLetter {
		t.Helper()
		code, out, errs := s.as("operator", 2, "webhooks", "list", "-o", "json")
		if code != exitOK {
			t.Fatalf("webhooks list as operator: exit %d: %s", code, errs)
		}
		var dls []deadLetter
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var d deadLetter
			if err := dec.Decode(&d); err != nil {
				t.Fatal(err)
			}
			dls = append(dls, d)
		}
		return dls
	}
	var dead deadLetter
	testutil.Eventually(t, 60*time.Second, func() bool {
		for _, d := range list() {
			if d.Type == messages.TypeCompleted {
				dead = d
				return true
			}
		}
		return false
	}, "the completed event in the webhook dead letters")
	if dead.WebhookID != webhookID || dead.Endpoint != downHost || dead.IdempotencyKey != "hook-role-1" || dead.LastResult != "http 503" {
		t.Errorf("dead letter %+v, want webhook-id %s of endpoint %s, http 503", dead, webhookID, downHost)
	}
	if code, out, errs := s.as("operator", 2, "webhooks", "list"); code != exitOK || !strings.Contains(out, webhookID) {
		t.Errorf("webhooks list as operator: exit %d:\n%s%s", code, out, errs)
	}

	// webhooks status as operator: both endpoints, by host (never the URL's path), each held by
	// the worker, the dead letter counted.
	code, out, errs := s.as("operator", 2, "webhooks", "status", "-o", "json")
	if code != exitOK {
		t.Fatalf("webhooks status as operator: exit %d: %s", code, errs)
	}
	status := map[string]map[string]any{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var st map[string]any
		if err := dec.Decode(&st); err != nil {
			t.Fatal(err)
		}
		status[fmt.Sprint(st["endpoint"])] = st
	}
	if len(status) != 2 || status[upHost] == nil || status[downHost] == nil || strings.Contains(out, "/hooks/fulfil") {
		t.Errorf("webhooks status -o json, want %s and %s by host:\n%s", upHost, downHost, out)
	}
	for host, st := range status {
		if st["pinned"] != true {
			t.Errorf("webhooks status: no worker holds %s: %v", host, st)
		}
	}
	if dl := status[downHost]["deadLetters"]; dl != float64(1) {
		t.Errorf("webhooks status: %v dead letters for %s, want 1", dl, downHost)
	}
	if code, out, errs := s.as("operator", 2, "webhooks", "status"); code != exitOK || !strings.Contains(out, upHost) || !strings.Contains(out, downHost) {
		t.Errorf("webhooks status as operator: exit %d:\n%s%s", code, out, errs)
	}

	// The operator replays it to the endpoint, now up: it arrives with the same webhook-id, and
	// is no dead letter any more.
	down.up.Store(true)
	if code, out, errs := s.as("operator", 2, "webhooks", "replay", "--all", "--endpoint", downHost); code != exitOK || strings.Contains(errs, "no worker") {
		t.Fatalf("webhooks replay as operator: exit %d:\n%s%s\nworker:\n%s", code, out, errs, werr.String())
	}
	testutil.Eventually(t, 30*time.Second, func() bool { ok, _, _ := down.delivered(); return ok[webhookID] > 0 }, "the replayed delivery")
	testutil.Eventually(t, 30*time.Second, func() bool { return len(list()) == 0 }, "no dead letter left after the replay")

	// (fulfil submit's look-up of the key, which a producer may not make, as in TestShippedNATSRoles.)
	if v := slices.DeleteFunc(s.log.take(), func(l string) bool {
		return strings.Contains(l, `user:producer" - Publish Violation - Subject "$JS.API.STREAM.INFO.KV_FULFIL_SAGAS"`)
	}); len(v) > 0 {
		t.Errorf("permission violations while the worker delivered and the operator inspected and replayed:\n%s", strings.Join(v, "\n"))
	}

	// What the other roles must not do with webhooks.
	for _, user := range []string{"producer", "intake"} {
		if code, out, errs := s.as(user, 2, "webhooks", "list"); code == exitOK {
			t.Errorf("webhooks list as %s: exit 0:\n%s%s", user, out, errs)
		}
		s.log.wait(t, "$JS.API.STREAM.INFO.FULFIL_WEBHOOK_DLQ")
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	request := func(subject string) func(*nats.Conn, jetstream.JetStream) error {
		return func(nc *nats.Conn, js jetstream.JetStream) error {
			_, err := nc.Request(subject, []byte(`{}`), 500*time.Millisecond)
			return err
		}
	}
	publish := func(subject string) func(*nats.Conn, jetstream.JetStream) error {
		return func(nc *nats.Conn, js jetstream.JetStream) error {
			c, cancel := short()
			defer cancel()
			_, err := js.Publish(c, subject, []byte(`{}`))
			return err
		}
	}
	upConsumer, downID := eps[0].ConsumerName(), eps[1].ID
	for _, d := range []struct {
		user, what string
		try        func(*nats.Conn, jetstream.JetStream) error
		subject    string
	}{
		{"producer", "read a webhook dead letter", request("$JS.API.STREAM.MSG.GET.FULFIL_WEBHOOK_DLQ"), "$JS.API.STREAM.MSG.GET.FULFIL_WEBHOOK_DLQ"},
		{"producer", "read the webhook dead letters through a consumer", request("$JS.API.CONSUMER.CREATE.FULFIL_WEBHOOK_DLQ.peek"), "$JS.API.CONSUMER.CREATE.FULFIL_WEBHOOK_DLQ.peek"},
		{"producer", "forge a webhook dead letter", publish("fulfil.webhook.dead." + downID), "fulfil.webhook.dead." + downID},
		{"producer", "replay a webhook dead letter", publish("fulfil.webhook.replay." + downID), "fulfil.webhook.replay." + downID},
		{"producer", "list the webhook endpoints", request("$JS.API.CONSUMER.LIST.FULFIL_EVENTS"), "$JS.API.CONSUMER.LIST.FULFIL_EVENTS"},
		{"producer", "unpin an endpoint from its worker", request("$JS.API.CONSUMER.UNPIN.FULFIL_EVENTS." + upConsumer), "$JS.API.CONSUMER.UNPIN.FULFIL_EVENTS." + upConsumer},
		{"producer", "remove an endpoint", request("$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer), "$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer},
		{"intake", "read a webhook dead letter", request("$JS.API.STREAM.MSG.GET.FULFIL_WEBHOOK_DLQ"), "$JS.API.STREAM.MSG.GET.FULFIL_WEBHOOK_DLQ"},
		{"intake", "replay a webhook dead letter", publish("fulfil.webhook.replay." + downID), "fulfil.webhook.replay." + downID},
		{"operator", "forge a webhook dead letter", publish("fulfil.webhook.dead." + downID), "fulfil.webhook.dead." + downID},
		{"operator", "purge the webhook dead letters", request("$JS.API.STREAM.PURGE.FULFIL_WEBHOOK_DLQ"), "$JS.API.STREAM.PURGE.FULFIL_WEBHOOK_DLQ"},
		{"operator", "remove an endpoint", request("$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer), "$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer},
		{"operator", "unpin an endpoint from its worker", request("$JS.API.CONSUMER.UNPIN.FULFIL_EVENTS." + upConsumer), "$JS.API.CONSUMER.UNPIN.FULFIL_EVENTS." + upConsumer},
		{"worker", "delete the webhook dead-letter stream", request("$JS.API.STREAM.DELETE.FULFIL_WEBHOOK_DLQ"), "$JS.API.STREAM.DELETE.FULFIL_WEBHOOK_DLQ"},
		{"worker", "purge the webhook dead letters", request("$JS.API.STREAM.PURGE.FULFIL_WEBHOOK_DLQ"), "$JS.API.STREAM.PURGE.FULFIL_WEBHOOK_DLQ"},
		{"worker", "remove an endpoint", request("$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer), "$JS.API.CONSUMER.DELETE.FULFIL_EVENTS." + upConsumer},
	} {
		nc, js := s.connect(t, d.user)
		if err := d.try(nc, js); err == nil {
			t.Errorf("%s could %s", d.user, d.what)
		}
		s.log.wait(t, d.subject)
	}

	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("worker exit %d:\n%s", code, werr.String())
	}
	if regexp.MustCompile(`(?i)permission`).MatchString(werr.String()) {
		t.Errorf("the worker logged a permission problem:\n%s", werr.String())
	}
	if ok, _, _ := up.delivered(); ok[webhookID] != 1 {
		t.Errorf("the endpoint that was up got the completed event %d times, want 1", ok[webhookID])
	}
}
