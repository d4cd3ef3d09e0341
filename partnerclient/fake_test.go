package partnerclient

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/clocktest"
)

const (
	testClientID = "client-42"
	testSecret   = "s3cret-value-never-printed"
)

// fakeAPI is a minimal partner API for unit tests: a token endpoint that issues
// numbered tokens, and a business handler behind an access-token check.
type fakeAPI struct {
	srv *httptest.Server

	mu          sync.Mutex
	expiresIn   string
	tokenHead   string
	n           int
	access      map[string]bool
	refresh     map[string]bool
	logins      int
	refreshes   int
	tokenGate   chan struct{} // when set, token answers wait for it to close
	tokenSeen   chan struct{} // receives (non-blocking) when a token request arrives
	failLogin   bool
	failRefresh bool
	requests    []*recorded

	api http.HandlerFunc
}

type recorded struct {
	method, path, auth, ua, contentType string
	query                               url.Values
	body                                []byte
}

func newFakeAPI(t *testing.T, api http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		expiresIn: "1800",
		tokenHead: "Bearer ",
		access:    map[string]bool{},
		refresh:   map[string]bool{},
		tokenSeen: make(chan struct{}, 1),
		api:       api,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a client of f with test credentials and no rate limit.
func (f *fakeAPI) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithCredentials(testClientID, testSecret), WithRateLimit(0, 0)}
	c, err := New(f.srv.URL, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == PathToken {
		f.serveToken(w, r, body)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, &recorded{
		method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"),
		ua: r.Header.Get("User-Agent"), contentType: r.Header.Get("Content-Type"),
		query: r.URL.Query(), body: body,
	})
	head, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	ok := head == strings.TrimSpace(f.tokenHead) && f.access[tok]
	f.mu.Unlock()
	if !ok {
		writeEnvelope(w, http.StatusUnauthorized, CodeTokenInvalid, "access token "+tok+" is not valid", nil)
		return
	}
	if f.api == nil {
		writeEnvelope(w, http.StatusOK, CodeSuccess, "", true)
		return
	}
	f.api(w, r)
}

func (f *fakeAPI) serveToken(w http.ResponseWriter, r *http.Request, body []byte) {
	select {
	case f.tokenSeen <- struct{}{}:
	default:
	}
	f.mu.Lock()
	gate := f.tokenGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	defer f.mu.Unlock()
	switch form.Get("grant_type") {
	case "pp_credentials":
		f.logins++
		if f.failLogin || form.Get("client_id") != testClientID || form.Get("client_secret") != testSecret {
			writeEnvelope(w, http.StatusUnauthorized, CodeInvalidClient, "bad client "+form.Get("client_secret"), nil)
			return
		}
	case "refresh_token":
		f.refreshes++
		rt := form.Get("refresh_token")
		if f.failRefresh || !f.refresh[rt] {
			writeEnvelope(w, http.StatusUnauthorized, CodeTokenInvalid, "refresh token "+rt+" is not valid", nil)
			return
		}
		delete(f.refresh, rt)
	default:
		writeEnvelope(w, http.StatusBadRequest, CodeValidationFailed, "grant_type", nil)
		return
	}
	f.n++
	access, refresh := fmt.Sprintf("access-%d", f.n), fmt.Sprintf("refresh-%d", f.n)
	f.access[access], f.refresh[refresh] = true, true
	writeEnvelope(w, http.StatusOK, CodeSuccess, "", map[string]string{
		"token": access, "refreshToken": refresh, "tokenHead": f.tokenHead, "expiresIn": f.expiresIn,
	})
}

// expireAccess makes the server refuse every access token issued so far.
func (f *fakeAPI) expireAccess() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.access)
}

func (f *fakeAPI) counts() (logins, refreshes, business int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.refreshes, len(f.requests)
}

func (f *fakeAPI) last(t *testing.T) *recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("no business request recorded")
	}
	return f.requests[len(f.requests)-1]
}

func writeEnvelope(w http.ResponseWriter, status int, code, msg string, result any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "detailMessage": msg, "requestId": "req-1", "result": result, "status": status,
	})
}

// fakeClock is a manual clock.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }
