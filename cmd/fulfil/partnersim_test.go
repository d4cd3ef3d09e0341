package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// parsePartnerSim reads the flags and environment of fulfil partnersim.
func parsePartnerSim(args []string, _ io.Writer) (partnerSimOptions, error) {
	var p partnerSimFlags
	fs := pflag.NewFlagSet("partnersim", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p.register(fs)
	if err := fs.Parse(args); err != nil {
		return partnerSimOptions{}, err
	}
	if errs := applyEnv(fs); len(errs) > 0 {
		return partnerSimOptions{}, errors.Join(errs...)
	}
	return p.options()
}

// runPartnerSim runs `fulfil partnersim args`.
func runPartnerSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, append([]string{"partnersim"}, args...), stdout, stderr)
}

func TestPartnerSimHostileFlags(t *testing.T) {
	o, err := parsePartnerSim([]string{
		"--order-error-envelope-rate", "0.25", "--order-no-orderno-rate", "0.5",
		"--undocumented-status-rate", "1", "--undocumented-status", "processing", "--undocumented-status-for", "2s",
		"--redirect-to", "http://127.0.0.1:9/", "--redirect-for", "5s", "--redirect-status", "302",
		"--empty-billing-contacts", "--auto-renewal-as-bool", "--order-list-oldest-first",
		"--order-list-shift", "2", "--order-list-without-po-number", "--enable-when-on", "refused",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := partnertest.Hostile{
		OrderErrorEnvelopeRate: 0.25, OrderNoOrderNoRate: 0.5,
		UndocumentedStatusRate: 1, UndocumentedStatus: "processing", UndocumentedStatusFor: 2 * time.Second,
		RedirectTo: "http://127.0.0.1:9/", RedirectFor: 5 * time.Second, RedirectStatus: http.StatusFound,
		EmptyBillingContacts: true, AutoRenewalAsBool: true, OrderListOldestFirst: true,
		OrderListShift: 2, OrderListWithoutPONumber: true, EnableWhenOn: partnertest.EnableWhenOnRefused,
	}
	if o.hostile != want {
		t.Fatalf("hostile = %+v\nwant %+v", o.hostile, want)
	}
	if got := partnertest.New(o.opts...).Hostile(); got != want {
		t.Fatalf("the simulator got %+v", got)
	}
	if len(describeHostile(want)) != 10 {
		t.Errorf("describeHostile = %q", describeHostile(want))
	}
}

func TestPartnerSimHostileDefaults(t *testing.T) {
	o, err := parsePartnerSim(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := partnertest.Hostile{UndocumentedStatus: partnertest.DefaultUndocumentedStatus,
		UndocumentedStatusFor: 30 * time.Second, RedirectStatus: http.StatusTemporaryRedirect}
	if o.hostile != want {
		t.Fatalf("hostile = %+v, want %+v", o.hostile, want)
	}
	if d := describeHostile(o.hostile); len(d) != 0 {
		t.Fatalf("documented behaviour described as %q", d)
	}
}

func TestPartnerSimHostileEnv(t *testing.T) {
	t.Setenv("FULFIL_REDIRECT_TO", "http://127.0.0.1:9")
	t.Setenv("FULFIL_REDIRECT_FOR", "3s")
	t.Setenv("FULFIL_ORDER_LIST_SHIFT", "4")
	t.Setenv("FULFIL_AUTO_RENEWAL_AS_BOOL", "true")
	t.Setenv("FULFIL_ORDER_ERROR_ENVELOPE_RATE", "0.1")
	t.Setenv("FULFIL_UNDOCUMENTED_STATUS", "held")
	t.Setenv("FULFIL_ENABLE_WHEN_ON", "false")
	o, err := parsePartnerSim([]string{"--order-list-shift", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := o.hostile
	if h.RedirectTo != "http://127.0.0.1:9" || h.RedirectFor != 3*time.Second || !h.AutoRenewalAsBool ||
		h.OrderErrorEnvelopeRate != 0.1 || h.UndocumentedStatus != "held" || h.EnableWhenOn != partnertest.EnableWhenOnFalse {
		t.Fatalf("hostile = %+v", h)
	}
	if h.OrderListShift != 1 {
		t.Fatalf("the flag (1) did not win over the environment (4): %d", h.OrderListShift)
	}

	t.Setenv("FULFIL_REDIRECT_FOR", "soon")
	var stderr strings.Builder
	if code := runPartnerSim(context.Background(), nil, io.Discard, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "FULFIL_REDIRECT_FOR") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestPartnerSimFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--order-error-envelope-rate", "1.5"}, "between 0 and 1"},
		{[]string{"--undocumented-status-rate", "-0.1"}, "between 0 and 1"},
		{[]string{"--error-rate", "2"}, "between 0 and 1"},
		{[]string{"--redirect-to", "127.0.0.1:9"}, "--redirect-to"},
		{[]string{"--redirect-to", "ftp://x"}, "--redirect-to"},
		{[]string{"--redirect-status", "200"}, "--redirect-status"},
		{[]string{"--order-list-shift", "-1"}, "--order-list-shift"},
		{[]string{"--redirect-for", "-1s"}, "negative"},
		{[]string{"--undocumented-status", " "}, "--undocumented-status"},
		{[]string{"--enable-when-on", "true"}, "--enable-when-on"},
		{[]string{"--enable-when-on", "FALSE"}, "--enable-when-on"},
		{[]string{"--no-such-flag"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr strings.Builder
			if code := runPartnerSim(context.Background(), tt.args, io.Discard, &stderr); code != exitUsage ||
				!strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, stderr.String(), tt.want)
			}
		})
	}
}

func TestPartnerSimHelpListsHostileFlags(t *testing.T) {
	var stdout strings.Builder
	if code := runPartnerSim(context.Background(), []string{"--help"}, &stdout, io.Discard); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"order-error-envelope-rate", "order-no-orderno-rate", "undocumented-status-rate",
		"undocumented-status", "undocumented-status-for", "redirect-to", "redirect-for", "redirect-status",
		"empty-billing-contacts", "auto-renewal-as-bool", "order-list-oldest-first", "order-list-shift",
		"order-list-without-po-number", "enable-when-on"} {
		if !regexp.MustCompile(`\n\s+--` + regexp.QuoteMeta(f) + `[ \n\[]`).MatchString(stdout.String()) {
			t.Errorf("--help lacks --%s", f)
		}
		if envName(f) == "" || !strings.Contains(stdout.String(), "$"+envName(f)+")") {
			t.Errorf("--help lacks $%s", envName(f))
		}
	}
}

// TestPartnerSimRedirects serves the simulator with --redirect-to and checks that the token
// request is redirected to the same path on the other listener.
func TestPartnerSimRedirects(t *testing.T) {
	trap := partnertest.NewTrap()
	t.Cleanup(trap.Close)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runPartnerSim(ctx, []string{"--addr", "127.0.0.1:0", "--redirect-to", trap.URL, "--redirect-for", "1h"},
			pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d", code)
		}
	})
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %v", sc.Err())
	}
	base, ok := strings.CutPrefix(sc.Text(), "partner simulator listening on ")
	if !ok {
		t.Fatalf("first line %q", sc.Text())
	}
	var hostileLine bool
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "hostile: every request is redirected (307) to "+trap.URL) {
			hostileLine = true
			break
		}
	}
	if !hostileLine {
		t.Fatal("no hostile line about the redirect")
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	hc := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/auth/openapi/v1/oauth/token",
		strings.NewReader("grant_type=pp_credentials"))
	req.Header.Set("User-Agent", "test")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect ||
		resp.Header.Get("Location") != trap.URL+"/auth/openapi/v1/oauth/token" {
		t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// servePartnerSimForTest runs `fulfil partnersim --addr 127.0.0.1:0 args` until the test ends
// and returns its base URL and the first nHostile "hostile: " lines it printed.
func servePartnerSimForTest(t *testing.T, nHostile int, args ...string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runPartnerSim(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if code := <-done; code != exitOK {
			t.Errorf("partnersim exit %d", code)
		}
	})
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "credentials: ") {
		lines = append(lines, sc.Text())
	}
	var base string
	for _, l := range lines {
		if u, ok := strings.CutPrefix(l, "partner simulator listening on "); ok {
			base = u
		}
	}
	if base == "" {
		t.Fatalf("no listening line: %q (%v)", lines, sc.Err())
	}
	// The hostile lines follow the credentials line.
	var hostile []string
	for len(hostile) < nHostile && sc.Scan() {
		hostile = append(hostile, sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return base, hostile
}

// renewalProxy forwards to the simulator and keeps, in order, the enable-auto-renewal answers
// and the number of auto-renewal status reads after each of them.
type renewalProxy struct {
	target string
	mu     sync.Mutex
	log    []string // "enable <body>" and "status"
}

func (p *renewalProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case strings.HasSuffix(r.URL.Path, partnerclient.PathEnableAutoRenewal):
		p.add("enable " + string(body))
	case strings.HasSuffix(r.URL.Path, partnerclient.PathAutoRenewStatus):
		p.add("status")
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func (p *renewalProxy) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, s)
}

// since returns the entries logged after the first n, and the new length.
func (p *renewalProxy) since(n int) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log[n:]), len(p.log)
}

// A partnersim started with --enable-when-on false or refused (or FULFIL_ENABLE_WHEN_ON)
// answers an enable of an auto-renewal that is already on that way, and purchases with
// auto-renewal still complete: the worker reads the status after the answer that is not
// true. A licence whose renewal is off is enabled as documented, without a status read.
func TestPartnerSimEnableWhenOn(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       string
		wantReply string // in the enable answer when auto-renewal is already on
		wantLine  string // the hostile line partnersim prints
	}{
		{name: "false", args: []string{"--enable-when-on", "false"}, wantReply: `"result":false`,
			wantLine: "hostile: enabling auto-renewal that is already on answers false"},
		{name: "refused", args: []string{"--enable-when-on=refused"}, wantReply: `"code":"` + partnertest.CodeAlreadyEnabled + `"`,
			wantLine: "hostile: enabling auto-renewal that is already on is refused"},
		{name: "refused from the environment", env: "refused", wantReply: `"code":"` + partnertest.CodeAlreadyEnabled + `"`,
			wantLine: "hostile: enabling auto-renewal that is already on is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("FULFIL_ENABLE_WHEN_ON", tt.env)
			}
			args := append([]string{"--client-secret", "sim-secret"}, tt.args...)
			base, hostile := servePartnerSimForTest(t, 1, args...)
			if len(hostile) != 1 || !strings.HasPrefix(hostile[0], tt.wantLine) {
				t.Errorf("hostile lines %q, want %q", hostile, tt.wantLine)
			}
			proxy := &renewalProxy{target: base}
			srv := httptest.NewServer(proxy)
			t.Cleanup(srv.Close)

			natsAddr, httpAddr := freePort(t), freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			var werr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"worker", "--nats-listen", natsAddr, "--data-dir", t.TempDir(), "--http-addr", httpAddr,
					"--log-level", "warn", "--partner-url", srv.URL, "--partner-client-id", partnertest.DefaultClientID,
					"--partner-client-secret", "sim-secret"}, io.Discard, &werr)
			}()
			t.Cleanup(func() {
				cancel()
				if code := <-done; code != exitOK {
					t.Errorf("worker exit %d:\n%s", code, werr.String())
				}
			})
			waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)

			submit := func(args ...string) string {
				t.Helper()
				var out, errb syncBuffer
				full := append([]string{"submit", "--nats-listen", natsAddr, "--timeout", "60s", "--auto-renew"}, args...)
				if code := run(context.Background(), full, &out, &errb); code != exitOK ||
					!strings.Contains(out.String(), "completed: order ZC") || !strings.Contains(out.String(), "auto-renewal true") {
					t.Fatalf("submit %q: exit %d, stdout %q, stderr:\n%s\nworker:\n%s", args, code, out.String(), errb.String(), werr.String())
				}
				return out.String()
			}

			// A new licence: auto-renewal is off, so the enable is answered as documented.
			submit("--key", "renew-new-"+tt.name, "--plan", "Ultimate Plan", "--quantity", "5")
			log, n := proxy.since(0)
			if len(log) != 1 || !strings.HasPrefix(log[0], "enable ") || !strings.Contains(log[0], `"result":true`) {
				t.Errorf("new licence: renewal calls %q, want one enable answered true and no status read", log)
			}

			// A licence whose auto-renewal is on: the hostile answer, then one status read.
			submit("--key", "renew-on-"+tt.name, "--product-no", partnertest.ExistingUltimateSN, "--plan", "Ultimate Plan", "--quantity", "50")
			log, _ = proxy.since(n)
			if len(log) != 2 || !strings.HasPrefix(log[0], "enable ") || !strings.Contains(log[0], tt.wantReply) || log[1] != "status" {
				t.Errorf("renewal already on: renewal calls %q, want an enable answered with %s, then one status read", log, tt.wantReply)
			}
		})
	}
}
