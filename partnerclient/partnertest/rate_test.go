package partnertest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulfil/fulfil/partnerclient"
)

// TestMeterCountsWholeSecondsAndWindows feeds arrivals at known instants.
func TestMeterCountsWholeSecondsAndWindows(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var m meter
	for _, s := range []float64{0.1, 0.6, 0.9, 1.05, 1.2, 1.3, 2.3, 4.0} {
		at := base.Add(time.Duration(s * float64(time.Second)))
		m.add(func() time.Time { return at })
	}
	st := m.stats()
	// Windows (t-1s, t]: at 1.3 it holds 0.6 0.9 1.05 1.2 1.3; at 2.3 only 2.3 (1.3 is a
	// whole second before).
	if st.Total != 8 || st.MaxPerSecond != 3 || st.MaxPerWindow != 5 {
		t.Errorf("total %d, max per second %d, max per window %d; want 8, 3, 5", st.Total, st.MaxPerSecond, st.MaxPerWindow)
	}
	want := []SecondCount{{base, 3}, {base.Add(time.Second), 3}, {base.Add(2 * time.Second), 1}, {base.Add(4 * time.Second), 1}}
	if len(st.Seconds) != len(want) {
		t.Fatalf("seconds %v, want %v", st.Seconds, want)
	}
	for i := range want {
		if !st.Seconds[i].Second.Equal(want[i].Second) || st.Seconds[i].Calls != want[i].Calls {
			t.Errorf("second %d: %v, want %v", i, st.Seconds[i], want[i])
		}
	}
	m.reset()
	if st := m.stats(); st.Total != 0 || st.MaxPerWindow != 0 || len(st.Seconds) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

// TestMeterKeepsTenMinutes: Seconds holds the last rateSeconds seconds.
func TestMeterKeepsTenMinutes(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var m meter
	for i := range rateSeconds + 5 {
		at := base.Add(time.Duration(i) * time.Second)
		m.add(func() time.Time { return at })
	}
	st := m.stats()
	if len(st.Seconds) != rateSeconds || !st.Seconds[0].Second.Equal(base.Add(5*time.Second)) || st.Total != rateSeconds+5 {
		t.Errorf("%d seconds from %v, total %d", len(st.Seconds), st.Seconds[0].Second, st.Total)
	}
}

// TestRateOverHTTP: every request reaching the simulator is counted, and Handler serves and
// resets the counts at RatePath (which is not counted itself).
func TestRateOverHTTP(t *testing.T) {
	sim := New()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	for _, path := range []string{pathToken, pathProductList, "/no/such/path"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get := func() RateStats {
		t.Helper()
		resp, err := http.Get(srv.URL + RatePath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st RateStats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", RatePath, resp.StatusCode, err)
		}
		return st
	}
	if st := get(); st.Total != 3 || st.MaxPerWindow < 1 || len(st.Seconds) == 0 {
		t.Errorf("stats %+v, want 3 requests", st)
	}
	if st := sim.Rate(); st.Total != 3 {
		t.Errorf("Rate().Total %d, want 3", st.Total)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+RatePath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE %s: %d", RatePath, resp.StatusCode)
	}
	if st := get(); st.Total != 0 || st.MaxPerWindow != 0 {
		t.Errorf("after DELETE: %+v", st)
	}
	resp, err = http.Post(srv.URL+RatePath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", RatePath, resp.StatusCode)
	}
}

// TestRateSeesTheClientLimit: a client held to 10 calls per second by a limiter it was given
// (partnerclient.WithLimiter) never shows more than that, plus its burst, in any window of the
// simulator's; without it, the same calls arrive all at once.
func TestRateSeesTheClientLimit(t *testing.T) {
	const calls = 15
	run := func(opts ...partnerclient.Option) RateStats {
		t.Helper()
		srv := NewServer()
		defer srv.Close()
		c, err := partnerclient.New(srv.URL, append([]partnerclient.Option{
			partnerclient.WithCredentials(DefaultClientID, DefaultClientSecret)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				if _, err := c.BillingContacts(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return srv.Rate()
	}
	limited := run(partnerclient.WithLimiter(rate.NewLimiter(10, 1)))
	// 16 requests (the token call counts); 10 a second plus the burst of 1, and one more for the
	// jitter between the limiter and the simulator.
	if limited.Total != calls+1 || limited.MaxPerWindow > 12 {
		t.Errorf("limited to 10/s: %d requests, at most %d in a second; want %d, at most 12", limited.Total, limited.MaxPerWindow, calls+1)
	}
	if free := run(partnerclient.WithRateLimit(0, 0)); free.MaxPerWindow <= 12 {
		t.Errorf("unlimited: at most %d requests in a second; the limited case shows nothing", free.MaxPerWindow)
	}
}
