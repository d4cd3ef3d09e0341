package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		give     Config
		wantBare bool
	}{
		{name: "open loop with bare loop", give: Config{PartnerLatency: 5 * time.Millisecond, Workers: 2, Concurrency: 8, Purchases: 50}, wantBare: true},
		{name: "offered rate", give: Config{PartnerLatency: 5 * time.Millisecond, Concurrency: 8, Purchases: 30, Rate: 200, SkipBare: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tt.give.Logger = zaptest.NewLogger(t)
			res, err := Run(ctx, tt.give)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.CriticalPath != 15*time.Millisecond {
				t.Errorf("critical path = %s, want 15ms", res.CriticalPath)
			}
			checkPhase(t, res.Saga, tt.give.Purchases, res.CriticalPath)
			if res.Saga.PeakInFlight < 1 || res.Saga.PeakInFlight > tt.give.Concurrency*max(tt.give.Workers, 1) {
				t.Errorf("peak in flight = %d, want 1..%d", res.Saga.PeakInFlight, tt.give.Concurrency*max(tt.give.Workers, 1))
			}
			if res.P50Ratio() < 1 || res.P99Ratio() < res.P50Ratio() {
				t.Errorf("latency ratios p50 %.3f, p99 %.3f: want 1 <= p50 <= p99", res.P50Ratio(), res.P99Ratio())
			}
			if got := res.Bare != nil; got != tt.wantBare {
				t.Fatalf("bare loop measured = %v, want %v", got, tt.wantBare)
			}
			if tt.wantBare {
				checkPhase(t, *res.Bare, tt.give.Purchases, res.CriticalPath)
				if res.ThroughputRatio() <= 0 {
					t.Errorf("throughput ratio = %v, want > 0", res.ThroughputRatio())
				}
			}
			if tt.give.Rate > 0 && (res.Saga.OfferedRate < tt.give.Rate/2 || res.Saga.OfferedRate > tt.give.Rate*2) {
				t.Errorf("offered rate = %.0f/s, want about %.0f/s", res.Saga.OfferedRate, tt.give.Rate)
			}
		})
	}
}

// checkPhase asserts that a phase completed every purchase once and measured sane values.
func checkPhase(t *testing.T, p Phase, purchases int, critical time.Duration) {
	t.Helper()
	if p.Purchases != purchases || p.Completed != purchases || p.Failed != 0 || p.Duplicates != 0 {
		t.Errorf("%s: %d purchases, %d completed, %d failed, %d duplicates; want %d completed only",
			p.Name, p.Purchases, p.Completed, p.Failed, p.Duplicates, purchases)
	}
	if p.Orders != purchases || !p.OrdersOK {
		t.Errorf("%s: %d orders (exactly one each: %v), want %d", p.Name, p.Orders, p.OrdersOK, purchases)
	}
	l := p.Latency
	if !(critical <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: latency %+v: want critical path %s <= p50 <= p90 <= p99 <= max", p.Name, l, critical)
	}
	// PeakInFlight is sampled every 10 ms: a phase shorter than that may show none; TestRun,
	// whose sagas take 15 ms each, asks for at least one.
	if p.PartnerCallsPerSaga != CallsPerSaga {
		t.Errorf("%s: %.2f partner calls per saga, want %d", p.Name, p.PartnerCallsPerSaga, CallsPerSaga)
	}
	if p.Throughput <= 0 || p.Elapsed <= 0 || p.ClientMsgsPerSaga <= 0 || p.StoredPerSaga < 2 || p.CPUPer1000 <= 0 || p.PeakRSS == 0 || p.PeakInFlight < 0 {
		t.Errorf("%s: measurements not all positive: %+v", p.Name, p)
	}
}

// TestRunCriticalPath checks the critical path against one purchase alone: its partner calls
// come in CriticalRounds rounds, and not one more. Every partner request is held at the client's
// transport until the test lets it through, so a round is what the saga has in flight while
// nothing answers, and no clock decides it.
func TestRunCriticalPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := startStack(ctx, Config{Concurrency: 1, Purchases: 1, Warmup: -1, Logger: zaptest.NewLogger(t)}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	g := &gate{next: http.DefaultTransport, held: make(chan heldRequest, 16)}
	st.client, err = partnerclient.New(st.sim.URL,
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithRateLimit(0, 0), partnerclient.WithHTTPClient(&http.Client{Transport: g}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.client.Authenticate(ctx); err != nil { // the token call is not held
		t.Fatal(err)
	}
	type result struct {
		p   Phase
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := st.runSaga(ctx)
		done <- result{p, err}
	}()
	// The rounds of critical.go, as the saga sends them.
	want := [][]string{
		{partnerclient.PathPurchaseInfo, partnerclient.PathBillingContacts},     // lookups
		{partnerclient.PathCreateOrder},                                         // create order
		{partnerclient.PathEnableAutoRenewal, partnerclient.PathActivationCode}, // renewal beside activation
	}
	if len(want) != CriticalRounds() {
		t.Fatalf("the test knows %d rounds, CriticalRounds says %d", len(want), CriticalRounds())
	}
	for i, round := range want {
		var got []heldRequest
		for len(got) < len(round) {
			select {
			case h := <-g.held:
				got = append(got, h)
			case r := <-done:
				t.Fatalf("round %d: the run ended (%v) with %v held, want %v", i+1, r.err, paths(got), round)
			case <-ctx.Done():
				t.Fatalf("round %d: %v held, want %v", i+1, paths(got), round)
			}
		}
		if gotPaths := paths(got); !slices.Equal(gotPaths, slices.Sorted(slices.Values(round))) {
			t.Fatalf("round %d: %v held, want %v", i+1, gotPaths, round)
		}
		for _, h := range got {
			close(h.release)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("runSaga: %v", r.err)
	}
	checkPhase(t, r.p, 1, 0)
	select {
	case h := <-g.held:
		t.Fatalf("a request after the last round: %s", h.path)
	default:
	}
}

// gate is an http.RoundTripper that holds every request but the token's until the test closes
// its release channel.
type gate struct {
	next http.RoundTripper
	held chan heldRequest
}

type heldRequest struct {
	path    string
	release chan struct{}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != partnerclient.PathToken {
		h := heldRequest{path: r.URL.Path, release: make(chan struct{})}
		g.held <- h
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.RoundTrip(r)
}

// paths returns the sorted paths of held requests.
func paths(hs []heldRequest) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.path)
	}
	slices.Sort(out)
	return out
}

// TestRunIncomplete checks that a phase whose purchases fail is a failed run.
func TestRunIncomplete(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := startStack(ctx, Config{Concurrency: 4, Purchases: 5, Warmup: -1, Timeout: 30 * time.Second, Logger: zaptest.NewLogger(t)}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	st.sim.SetOrderRefusal("INSUFFICIENT_BALANCE", "insufficient balance")
	p, err := st.runSaga(ctx)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("runSaga error = %v, want ErrIncomplete", err)
	}
	if p.Failed != 5 || p.Completed != 0 || p.Orders != 0 || p.OrdersOK {
		t.Errorf("phase = %d failed, %d completed, %d orders (ok %v); want 5 failed, nothing else", p.Failed, p.Completed, p.Orders, p.OrdersOK)
	}
}

// TestWarmUpIncomplete checks that refused warm-up purchases end the phase with ErrIncomplete
// before anything is measured.
func TestWarmUpIncomplete(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := startStack(ctx, Config{Concurrency: 4, Purchases: 8, Timeout: 30 * time.Second, Logger: zaptest.NewLogger(t)}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	st.sim.SetOrderRefusal("INSUFFICIENT_BALANCE", "insufficient balance")
	_, err = st.runSaga(ctx)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "warm-up: 0 of 2 completed") {
		t.Fatalf("runSaga error = %v, want ErrIncomplete for the warm-up", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string // a substring of the error, "" for none
	}{
		{name: "defaults", give: Config{}},
		{name: "negative latency", give: Config{PartnerLatency: -time.Millisecond}, want: "latency"},
		{name: "negative workers", give: Config{Workers: -1}, want: "workers"},
		{name: "negative rate", give: Config{Rate: -1}, want: "rate"},
		{name: "negative timeout", give: Config{Timeout: -time.Second}, want: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name string
		give []time.Duration
		want Percentiles
	}{
		{name: "empty", give: nil, want: Percentiles{}},
		{name: "one", give: ms(7), want: Percentiles{P50: 7 * time.Millisecond, P90: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{name: "hundred, unsorted", give: ms(hundred...), want: Percentiles{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentiles(tt.give); got != tt.want {
				t.Errorf("percentiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLoads(t *testing.T) {
	tests := []struct {
		give    string
		want    []Load
		wantErr bool
	}{
		{give: "", want: nil},
		{give: "200, 50%", want: []Load{{Rate: 200}, {Fraction: 0.5}}},
		{give: "12.5%", want: []Load{{Fraction: 0.125}}},
		{give: "0", wantErr: true},
		{give: "-5", wantErr: true},
		{give: "fast", wantErr: true},
		{give: "NaN", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseLoads(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseLoads(%q) error = %v, want error %v", tt.give, err, tt.wantErr)
			}
			if !tt.wantErr && !equalLoads(got, tt.want) {
				t.Errorf("ParseLoads(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func equalLoads(a, b []Load) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadRateFor(t *testing.T) {
	tests := []struct {
		give Load
		want float64
	}{
		{give: Load{Rate: 300}, want: 300},
		{give: Load{Fraction: 0.25}, want: 250},
	}
	for _, tt := range tests {
		if got := tt.give.RateFor(1000); got != tt.want {
			t.Errorf("%v.RateFor(1000) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestCurveWriteSVG(t *testing.T) {
	c := Curve{
		Title:        "latency <50ms>",
		CriticalPath: 200 * time.Millisecond,
		Capacity:     900,
		BareCapacity: 1100,
		Points: []CurvePoint{
			{Offered: 600, P50: 210 * time.Millisecond, P99: 260 * time.Millisecond},
			{Offered: 300, P50: 204 * time.Millisecond, P99: 220 * time.Millisecond},
		},
	}
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	// The document is well-formed XML with one polyline per percentile, points in load order.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	polylines := map[string]string{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			var class, points string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "points":
					points = a.Value
				}
			}
			polylines[class] = points
		}
	}
	if len(polylines) != 2 || polylines["p50"] == "" || polylines["p99"] == "" {
		t.Fatalf("polylines = %v, want p50 and p99", polylines)
	}
	for _, want := range []string{"critical path 200ms", "fulfil capacity 900/s", "bare loop 1100/s", "latency &lt;50ms&gt;"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	xs := strings.Fields(polylines["p50"])
	if len(xs) != 2 || x(t, xs[0]) >= x(t, xs[1]) {
		t.Errorf("p50 points %q: want 2, in increasing load", polylines["p50"])
	}
}

// x returns the x of an SVG point "x,y".
func x(t *testing.T, point string) float64 {
	t.Helper()
	v, _, _ := strings.Cut(point, ",")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("point %q: %v", point, err)
	}
	return f
}

func benchmarkSaga(b *testing.B, latency time.Duration) {
	benchmarkSagaWith(b, Config{PartnerLatency: latency})
}

// benchmarkSagaWith measures b.N purchases submitted at once to cfg's stack.
func benchmarkSagaWith(b *testing.B, cfg Config) {
	cfg.Purchases, cfg.SkipBare = b.N, true
	res, err := Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := res.Saga
	// Per saga, from the first publish to the last outcome: the stack's start is not counted.
	b.ReportMetric(float64(s.Elapsed.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(s.Throughput, "sagas/s")
	b.ReportMetric(float64(s.Latency.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(s.Latency.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(s.ClientMsgsPerSaga, "nats-msgs/saga")
	b.ReportMetric(s.CPUPer1000, "cpu-s/1k")
}

// BenchmarkSaga0ms submits b.N purchases at once against a partner that answers at once.
func BenchmarkSaga0ms(b *testing.B) { benchmarkSaga(b, 0) }

// BenchmarkSaga50ms submits b.N purchases at once against a partner that answers in 50ms.
func BenchmarkSaga50ms(b *testing.B) { benchmarkSaga(b, 50*time.Millisecond) }

// TestWarmUp checks that a phase first runs its warm-up purchases, each completed with one
// order, and measures only the purchases after them.
func TestWarmUp(t *testing.T) {
	for _, tt := range []struct {
		warmup, wantWarm int
	}{{warmup: 7, wantWarm: 7}, {warmup: -1, wantWarm: 0}, {warmup: 0, wantWarm: 3}} {
		t.Run(strconv.Itoa(tt.warmup), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cfg := Config{Concurrency: 8, Purchases: 12, Warmup: tt.warmup, Logger: zaptest.NewLogger(t)}.withDefaults()
			st, err := startStack(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			p, err := st.runSaga(ctx)
			if err != nil {
				t.Fatalf("runSaga: %v", err)
			}
			checkPhase(t, p, cfg.Purchases, 0)
			warmKeys, _ := purchases("warm", sagaTarget(), 10)
			warm, _ := st.checkLedger(warmKeys)
			if warm != tt.wantWarm {
				t.Errorf("warm-up orders = %d, want %d", warm, tt.wantWarm)
			}
		})
	}
}
