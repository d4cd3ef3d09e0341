package partnercheck

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/fulfil/fulfil/partnerclient"
)

// maxRecorded bounds a recorded body; the client reads no more of one (8 MiB).
const maxRecorded = 8 << 20

// Recorder is an http.RoundTripper that passes each request to the next transport and
// keeps every answer's status and body, as the client reads them, for Check. It also keeps
// the client secret and the tokens it sees go by, to redact them. It is safe for
// concurrent use: token requests may run on another goroutine.
type Recorder struct {
	next http.RoundTripper

	mu      sync.Mutex
	answers []answer
	secret  map[string]bool
}

// answer is one recorded response.
type answer struct {
	path   string
	status int
	body   []byte
}

// NewRecorder returns a Recorder sending requests through next, or through
// http.DefaultTransport when next is nil.
func NewRecorder(next http.RoundTripper) *Recorder {
	if next == nil {
		next = http.DefaultTransport
	}
	return &Recorder{next: next, secret: make(map[string]bool)}
}

// Option returns the partnerclient option that makes a client send through r:
// partnerclient.WithHTTPClient with an HTTP client whose Transport is r (the client still
// refuses every redirect).
func (r *Recorder) Option() partnerclient.Option {
	return partnerclient.WithHTTPClient(&http.Client{Transport: r})
}

// RoundTrip implements http.RoundTripper. A redirect's body is not kept: the client does
// not read it.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.noteRequest(req)
	resp, err := r.next.RoundTrip(req)
	if err != nil || resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxRecorded))
	rest := io.Reader(resp.Body)
	if rerr != nil {
		rest = errReader{rerr} // the client sees the failure where it happened
	} else {
		r.record(req.URL.Path, resp.StatusCode, body)
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), resp.Body}
	return resp, nil
}

// noteRequest keeps the secrets a request carries: the access token of its Authorization
// header and the client secret and refresh token of a token form.
func (r *Recorder) noteRequest(req *http.Request) {
	var found []string
	if _, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok {
		found = append(found, tok)
	}
	if req.GetBody != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
			_ = rc.Close()
			if form, err := url.ParseQuery(string(b)); err == nil {
				found = append(found, form.Get("client_secret"), form.Get("refresh_token"))
			}
		}
	}
	r.addSecrets(found...)
}

func (r *Recorder) record(path string, status int, body []byte) {
	if strings.HasSuffix(path, partnerclient.PathToken) {
		var env struct {
			Result map[string]any `json:"result"`
		}
		if json.Unmarshal(body, &env) == nil {
			for _, k := range tokenKeys {
				if s, ok := env.Result[k].(string); ok {
					r.addSecrets(s)
				}
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, answer{path: path, status: status, body: body})
}

func (r *Recorder) addSecrets(s ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range s {
		if v != "" {
			r.secret[v] = true
		}
	}
}

// secrets returns the client secret and the tokens seen so far.
func (r *Recorder) secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := make([]string, 0, len(r.secret))
	for v := range r.secret {
		s = append(s, v)
	}
	return s
}

// len returns the number of answers recorded.
func (r *Recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answers)
}

// last returns the status and body of the last answer of ep recorded after the first
// mark, or 0 and nil.
func (r *Recorder) last(mark int, ep partnerclient.Endpoint) (int, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.answers) - 1; i >= mark; i-- {
		if a := r.answers[i]; endpointOf(a.path) == ep {
			return a.status, a.body
		}
	}
	return 0, nil
}

// endpointPaths are the request paths of the endpoints (a suffix of the URL's path, which may
// start with the base URL's).
var endpointPaths = map[partnerclient.Endpoint]string{
	partnerclient.EndpointToken:             partnerclient.PathToken,
	partnerclient.EndpointProductList:       partnerclient.PathProductList,
	partnerclient.EndpointProductDetails:    partnerclient.PathProductDetails,
	partnerclient.EndpointPurchaseInfo:      partnerclient.PathPurchaseInfo,
	partnerclient.EndpointBillingContacts:   partnerclient.PathBillingContacts,
	partnerclient.EndpointSubordinateUsers:  partnerclient.PathSubordinateUsers,
	partnerclient.EndpointCreateOrder:       partnerclient.PathCreateOrder,
	partnerclient.EndpointOrderList:         partnerclient.PathOrderList,
	partnerclient.EndpointAutoRenewStatus:   partnerclient.PathAutoRenewStatus,
	partnerclient.EndpointEnableAutoRenewal: partnerclient.PathEnableAutoRenewal,
	partnerclient.EndpointActivationCode:    partnerclient.PathActivationCode,
}

// endpointOf returns the endpoint a request path belongs to, or "".
func endpointOf(path string) partnerclient.Endpoint {
	for ep, p := range endpointPaths {
		if strings.HasSuffix(path, p) {
			return ep
		}
	}
	if strings.Contains(path, partnerclient.PathOrderDetailsPrefix) {
		return partnerclient.EndpointOrderDetails
	}
	return ""
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
