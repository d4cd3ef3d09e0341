package partnerclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// redirectTarget is a server that counts every request it receives: a redirect that was
// followed shows up here.
func redirectTarget(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeEnvelope(w, http.StatusOK, CodeSuccess, "", map[string]string{"token": "stolen", "expiresIn": "1800"})
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var redirectStatuses = []int{
	http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect,
}

// checkRedirectError checks that err refuses a redirect to target without a secret in it.
func checkRedirectError(t *testing.T, err error, ep Endpoint, status int, target string, want Outcome, secrets ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrRedirect) {
		t.Fatalf("err = %v, want an *Error wrapping ErrRedirect", err)
	}
	if e.Endpoint != ep || e.StatusCode != status || !e.Sent {
		t.Errorf("endpoint %s status %d sent %v; want %s %d true", e.Endpoint, e.StatusCode, e.Sent, ep, status)
	}
	msg := err.Error()
	wantMsg := fmt.Sprintf("partner %s: %d: redirect to %s", ep, status, target)
	if !strings.HasPrefix(msg, wantMsg) || !strings.Contains(msg, "refused: fulfil only talks to the configured partner origin") {
		t.Errorf("message %q, want it to start with %q", msg, wantMsg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("message %q contains the secret %q", msg, s)
		}
	}
	if o, reason := Classify(err); o != want {
		t.Errorf("Classify = %v (%s), want %v", o, reason, want)
	}
}

// A redirect from the token endpoint is never followed: the form with the client secret
// does not reach the target, whatever the status, also with the caller's own HTTP client.
func TestTokenRedirectNotFollowed(t *testing.T) {
	for _, status := range redirectStatuses {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d own client %v", status, own), func(t *testing.T) {
				target, hits := redirectTarget(t)
				var origin atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					origin.Add(1)
					http.Redirect(w, r, target.URL+PathToken, status)
				}))
				t.Cleanup(srv.Close)
				opts := []Option{WithCredentials(testClientID, testSecret), WithRateLimit(0, 0)}
				var hc *http.Client
				if own {
					hc = &http.Client{} // follows redirects by default
					opts = append(opts, WithHTTPClient(hc))
				}
				c, err := New(srv.URL, opts...)
				if err != nil {
					t.Fatal(err)
				}
				err = c.Authenticate(context.Background())
				checkRedirectError(t, err, EndpointToken, status, target.URL+PathToken, OutcomeRetryable, testSecret)

				// A business call stops at the token redirect too.
				_, err = c.CreateOrder(context.Background(), OrderRequest{ProductID: 12})
				checkRedirectError(t, err, EndpointToken, status, target.URL+PathToken, OutcomeRetryable, testSecret)

				if n := hits.Load(); n != 0 {
					t.Errorf("the redirect target received %d requests", n)
				}
				if n := origin.Load(); n != 2 {
					t.Errorf("the origin received %d requests, want 2", n)
				}
				if own && hc.CheckRedirect != nil {
					t.Error("the caller's HTTP client was changed")
				}
			})
		}
	}
}

// A redirect from a business endpoint is never followed: the access token does not reach
// the target (another port of the same host, where net/http would keep Authorization).
// A redirected create order is unknown, a redirected read retryable.
func TestBusinessRedirectNotFollowed(t *testing.T) {
	for _, status := range redirectStatuses {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d own client %v", status, own), func(t *testing.T) {
				target, hits := redirectTarget(t)
				f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target.URL+r.URL.Path, status)
				})
				var opts []Option
				if own {
					opts = append(opts, WithHTTPClient(&http.Client{}))
				}
				c := f.client(t, opts...)

				_, err := c.CreateOrder(context.Background(), OrderRequest{ProductID: 12})
				checkRedirectError(t, err, EndpointCreateOrder, status, target.URL+PathCreateOrder, OutcomeUnknown, testSecret, "access-1")

				_, err = c.BillingContacts(context.Background())
				checkRedirectError(t, err, EndpointBillingContacts, status, target.URL+PathBillingContacts, OutcomeRetryable, testSecret, "access-1")

				if n := hits.Load(); n != 0 {
					t.Errorf("the redirect target received %d requests", n)
				}
				if _, _, n := f.counts(); n != 2 {
					t.Errorf("the origin received %d business requests, want 2", n)
				}
			})
		}
	}
}

// The target named in the error carries no user info, query or token, even when the
// server puts them in the Location.
func TestRedirectTargetRedacted(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     string
	}{
		{"user info and query", "http://admin:hunter2@evil.example:9/steal?secret=" + testSecret + "#frag", "http://evil.example:9/steal?…"},
		{"token in the path", "/echo/access-1", "/echo/REDACTED"},
		{"no location", "", "(no Location)"},
		{"long", "http://evil.example/" + strings.Repeat("a", 300), "http://evil.example/" + strings.Repeat("a", maxLocation-len("http://evil.example/")) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.location != "" {
					w.Header().Set("Location", tt.location)
				}
				w.WriteHeader(http.StatusFound)
			})
			_, err := f.client(t).OrderDetails(context.Background(), "ZC1")
			if !errors.Is(err, ErrRedirect) {
				t.Fatalf("err = %v, want ErrRedirect", err)
			}
			want := strings.ReplaceAll(tt.want, "REDACTED", "[redacted]")
			if strings.HasPrefix(tt.want, "/") {
				want = f.srv.URL + want
			}
			if !strings.Contains(err.Error(), "redirect to "+want+" refused") {
				t.Errorf("message %q lacks target %q", err.Error(), want)
			}
			for _, s := range []string{testSecret, "hunter2", "admin", "access-1", "frag"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("message %q contains %q", err.Error(), s)
				}
			}
		})
	}
}
