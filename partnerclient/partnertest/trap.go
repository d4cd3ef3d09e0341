package partnertest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"
)

// CodeMisdirected is the envelope code a Trap answers with.
const CodeMisdirected = "misdirected_request"

// redacted replaces secret values kept by a Trap.
const redacted = "[redacted]"

// Trap is a listener that no request should reach: the target of Hostile.RedirectTo in tests.
// It records every request it receives, without the value of any credential, and answers HTTP
// 421 with an error envelope (code "misdirected_request"), so that a client following the
// redirect gets no success either.
type Trap struct {
	// URL is the base URL of the trap, e.g. "http://127.0.0.1:40124".
	URL string

	srv  *httptest.Server
	mu   sync.Mutex
	reqs []TrapRequest
}

// TrapRequest is one request received by a Trap. Credentials are not kept: only whether the
// request carried them.
type TrapRequest struct {
	Method      string
	Path        string
	RawQuery    string
	ContentType string
	// HasAuthorization reports an Authorization header, whatever its value.
	HasAuthorization bool
	// HasClientSecret reports a client_secret form field or query parameter; HasRefreshToken
	// a refresh_token one.
	HasClientSecret bool
	HasRefreshToken bool
	// Body is the request body; a form body that holds client_secret or refresh_token is kept
	// URL-encoded with their values replaced by "[redacted]".
	Body []byte
	Time time.Time
}

// NewTrap starts a Trap on a loopback port. Call Close when done.
func NewTrap() *Trap {
	t := &Trap{}
	t.srv = httptest.NewServer(http.HandlerFunc(t.serve))
	t.URL = t.srv.URL
	return t
}

// Close shuts the trap down.
func (t *Trap) Close() {
	t.srv.CloseClientConnections()
	t.srv.Close()
}

func (t *Trap) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	ct := r.Header.Get(fieldContentType)
	rec := TrapRequest{
		Method:           r.Method,
		Path:             r.URL.Path,
		ContentType:      ct,
		HasAuthorization: len(r.Header.Values("Authorization")) > 0,
		Body:             body,
		Time:             time.Now(),
	}
	q := r.URL.Query()
	form := parseForm(ct, body)
	has := func(k string) bool { return q.Has(k) || (form != nil && form.Has(k)) }
	rec.HasClientSecret, rec.HasRefreshToken = has("client_secret"), has("refresh_token")
	rec.RawQuery = r.URL.RawQuery
	if redactSecrets(q) {
		rec.RawQuery = q.Encode()
	}
	if form != nil && redactSecrets(form) {
		rec.Body = []byte(form.Encode())
	}
	t.mu.Lock()
	t.reqs = append(t.reqs, rec)
	t.mu.Unlock()
	write(w, reply{status: http.StatusMisdirectedRequest, code: CodeMisdirected,
		detail: "this listener is not the partner API; the request was redirected here"})
}

// redactSecrets replaces the values of client_secret and refresh_token in v; it reports
// whether there were any.
func redactSecrets(v url.Values) bool {
	found := false
	for _, k := range []string{"client_secret", "refresh_token"} {
		if v.Has(k) {
			v.Set(k, redacted)
			found = true
		}
	}
	return found
}

// Requests returns the requests the trap received, oldest first.
func (t *Trap) Requests() []TrapRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.reqs)
	for i := range out {
		out[i].Body = slices.Clone(out[i].Body)
	}
	return out
}

// SawAuthorization reports whether any request carried an Authorization header.
func (t *Trap) SawAuthorization() bool {
	return slices.ContainsFunc(t.Requests(), func(r TrapRequest) bool { return r.HasAuthorization })
}

// SawClientSecret reports whether any request carried a client_secret.
func (t *Trap) SawClientSecret() bool {
	return slices.ContainsFunc(t.Requests(), func(r TrapRequest) bool { return r.HasClientSecret })
}

// SawCredentials reports whether any request carried an Authorization header, a client_secret
// or a refresh_token.
func (t *Trap) SawCredentials() bool {
	return slices.ContainsFunc(t.Requests(), func(r TrapRequest) bool {
		return r.HasAuthorization || r.HasClientSecret || r.HasRefreshToken
	})
}
