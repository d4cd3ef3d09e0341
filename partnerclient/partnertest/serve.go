package partnertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// Envelope codes answered by the simulator: success and parameter_validation_failed are
// documented, the others are the codes fulfil assumes.
const (
	CodeSuccess            = "success"
	CodeValidationFailed   = "parameter_validation_failed"
	CodeNotFound           = "resource_not_found"
	CodeTokenInvalid       = "token_invalid"
	CodeInvalidClient      = "invalid_client"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeRequestTooLarge    = "request_too_large"
	CodeServiceUnavailable = "service_unavailable"
	CodeTooManyRequests    = "too_many_requests"
	CodeBadGateway         = "bad_gateway"
)

const (
	maxBodyBytes         = 1 << 20
	requestIDBytes       = 16
	contentTypeJSON      = "application/json"
	contentTypeForm      = "application/x-www-form-urlencoded"
	contentTypeMultipart = "multipart/form-data"
	fieldUserAgent       = "User-Agent"
	fieldContentType     = "Content-Type"
)

// Validation tags named in the result of parameter_validation_failed.
const (
	tagRequired = "required"
	tagOneOf    = "oneof"
	tagNumber   = "number"
	tagMin      = "min"
	tagMax      = "max"
	tagExists   = "exists"
	tagEqual    = "eqfield"
	tagUnique   = "unique"
	tagJSON     = "json"
)

// reply is the answer to one request, decided before it is written.
type reply struct {
	status     int
	envStatus  int // the envelope's status when it differs from the HTTP status
	code       string
	detail     string
	result     any
	retryAfter string
	allow      string
	reset      bool
}

func success(result any) reply {
	return reply{status: http.StatusOK, code: CodeSuccess, result: result}
}

// invalid is a 400 parameter_validation_failed naming field and its validation tag.
func invalid(field, tag, format string, args ...any) reply {
	return reply{
		status: http.StatusBadRequest,
		code:   CodeValidationFailed,
		detail: fmt.Sprintf(format, args...),
		result: map[string]string{field: tag},
	}
}

func notFound(format string, args ...any) reply {
	return reply{status: http.StatusNotFound, code: CodeNotFound, detail: fmt.Sprintf(format, args...)}
}

func tokenInvalid(detail string) reply {
	return reply{status: http.StatusUnauthorized, code: CodeTokenInvalid, detail: detail}
}

// faultReply is the answer of a fault that replaces the real handler or loses its reply.
func (s *Sim) faultReply(ep partnerclient.Endpoint, kind FaultKind) reply {
	switch kind {
	case Fault429:
		return reply{status: http.StatusTooManyRequests, code: CodeTooManyRequests,
			detail: "too many requests, slow down", retryAfter: s.retryAfter(ep)}
	case FaultReset, FaultCommitThenReset:
		return reply{reset: true}
	case FaultCommitThen502:
		return reply{status: http.StatusBadGateway, code: CodeBadGateway, detail: "upstream did not answer"}
	default:
		return reply{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
			detail: "service temporarily unavailable"}
	}
}

// handlerFunc answers one authenticated request; body is the whole request body.
type handlerFunc func(s *Sim, r *http.Request, body []byte) reply

type route struct {
	ep      partnerclient.Endpoint
	method  string
	handler handlerFunc
}

var routes = map[string]route{
	pathToken:             {partnerclient.EndpointToken, http.MethodPost, (*Sim).handleToken},
	pathProductList:       {partnerclient.EndpointProductList, http.MethodGet, (*Sim).handleProductList},
	pathProductDetails:    {partnerclient.EndpointProductDetails, http.MethodGet, (*Sim).handleProductDetails},
	pathPurchaseInfo:      {partnerclient.EndpointPurchaseInfo, http.MethodGet, (*Sim).handlePurchaseInfo},
	pathBillingContacts:   {partnerclient.EndpointBillingContacts, http.MethodGet, (*Sim).handleBillingContacts},
	pathSubordinateUsers:  {partnerclient.EndpointSubordinateUsers, http.MethodGet, (*Sim).handleSubordinateUsers},
	pathCreateOrder:       {partnerclient.EndpointCreateOrder, http.MethodPost, (*Sim).handleCreateOrder},
	pathOrderList:         {partnerclient.EndpointOrderList, http.MethodGet, (*Sim).handleOrderList},
	pathAutoRenewStatus:   {partnerclient.EndpointAutoRenewStatus, http.MethodGet, (*Sim).handleAutoRenewStatus},
	pathEnableAutoRenewal: {partnerclient.EndpointEnableAutoRenewal, http.MethodPost, (*Sim).handleEnableAutoRenewal},
	pathActivationCode:    {partnerclient.EndpointActivationCode, http.MethodGet, (*Sim).handleActivationCode},
}

var orderDetailsRoute = route{partnerclient.EndpointOrderDetails, http.MethodGet, (*Sim).handleOrderDetails}

func findRoute(path string) (route, bool) {
	if rt, ok := routes[path]; ok {
		return rt, true
	}
	if id, ok := strings.CutPrefix(path, pathOrderDetailsPrefix); ok && !strings.Contains(id, "/") {
		return orderDetailsRoute, true
	}
	return route{}, false
}

// A Sim is the handler of Server, and of any server a test or `fulfil partnersim` builds.
var _ http.Handler = (*Sim)(nil)

// ServeHTTP answers one call to the simulated API. It records the request, checks route,
// method, User-Agent and access token, applies the endpoint's faults, runs the endpoint, waits
// for the endpoint's latency and writes the envelope (or closes the connection for a reset
// fault, which needs a server whose ResponseWriter is an http.Hijacker or that recovers
// http.ErrAbortHandler).
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.countArrival() // for Rate
	rec := Recorded{
		Method:      r.Method,
		Path:        r.URL.Path,
		RawQuery:    r.URL.RawQuery,
		UserAgent:   r.UserAgent(),
		TraceParent: r.Header.Get("traceparent"),
		Time:        s.clock(),
	}
	rt, found := findRoute(r.URL.Path)
	rec.Endpoint = rt.ep
	if loc, status, ok := s.redirect(r); ok {
		rec.Status = status
		s.record(rec) // Body not read: nothing is carried out, and no secret is kept
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
		return
	}
	body, tooLarge := readBody(r)
	rec.Body = body
	if rt.ep == partnerclient.EndpointToken {
		rec.Body = redactTokenForm(r.Header.Get(fieldContentType), body)
	}

	rep := s.answer(r, rt, found, body, tooLarge)
	rec.Status = rep.status
	s.record(rec)

	if found {
		if !sleep(r.Context(), s.latency(rt.ep)) {
			return
		}
	}
	write(w, rep)
}

// answer decides the reply of one request, running the endpoint (and so changing state) when
// the checks and faults let it.
func (s *Sim) answer(r *http.Request, rt route, found bool, body []byte, tooLarge bool) reply {
	switch {
	case !found:
		return notFound("no such endpoint: %s", r.URL.Path)
	case r.Method != rt.method:
		return reply{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, allow: rt.method,
			detail: fmt.Sprintf("method %s not allowed, use %s", r.Method, rt.method)}
	case r.UserAgent() == "":
		return invalid(fieldUserAgent, tagRequired, "header User-Agent is required")
	case tooLarge:
		return reply{status: http.StatusRequestEntityTooLarge, code: CodeRequestTooLarge,
			detail: fmt.Sprintf("request body exceeds %d bytes", maxBodyBytes)}
	}
	if rt.ep != partnerclient.EndpointToken {
		if rep, ok := s.authorize(r); !ok {
			return rep
		}
	}
	switch kind := s.pickFault(rt.ep); kind {
	case faultNone:
		return rt.handler(s, r, body)
	case FaultCommitThenReset, FaultCommitThen502:
		_ = rt.handler(s, r, body) // the call is carried out; its reply is lost
		return s.faultReply(rt.ep, kind)
	default:
		return s.faultReply(rt.ep, kind)
	}
}

// readBody reads the whole request body, up to maxBodyBytes; tooLarge reports a longer body.
func readBody(r *http.Request) (body []byte, tooLarge bool) {
	if r.Body == nil {
		return nil, false
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if len(b) > maxBodyBytes {
		return b[:maxBodyBytes], true
	}
	if len(b) == 0 {
		return nil, false
	}
	return b, false
}

// sleep waits d or until ctx ends; it reports whether the whole delay passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// write sends rep as an envelope, or closes the connection for a reset.
func write(w http.ResponseWriter, rep reply) {
	if rep.reset {
		resetConn(w)
		return
	}
	env := envelope{
		Code:          rep.code,
		DetailMessage: rep.detail,
		RequestID:     newRequestID(),
		Result:        rep.result,
		Status:        cmp.Or(rep.envStatus, rep.status),
	}
	b, err := json.Marshal(env)
	if err != nil {
		env = envelope{Code: "internal_error", DetailMessage: "cannot encode result", RequestID: env.RequestID,
			Status: http.StatusInternalServerError}
		b, _ = json.Marshal(env)
	}
	h := w.Header()
	h.Set(fieldContentType, contentTypeJSON+";charset=UTF-8")
	if rep.retryAfter != "" {
		h.Set("Retry-After", rep.retryAfter)
	}
	if rep.allow != "" {
		h.Set("Allow", rep.allow)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

// resetConn closes the client connection without a response.
func resetConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func newRequestID() string {
	var b [requestIDBytes]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// redactTokenForm keeps only the non-secret fields of a token request body.
func redactTokenForm(contentType string, body []byte) []byte {
	form := parseForm(contentType, body)
	if form == nil {
		return nil
	}
	kept := url.Values{}
	for _, k := range []string{"grant_type", "client_id"} {
		if v, ok := form[k]; ok {
			kept[k] = v
		}
	}
	return []byte(kept.Encode())
}

// parseForm decodes a form-encoded or multipart body; nil means another content type or a
// malformed body.
func parseForm(contentType string, body []byte) url.Values {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil
	}
	switch mt {
	case contentTypeForm:
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil
		}
		return v
	case contentTypeMultipart:
		req := &http.Request{
			Method: http.MethodPost,
			Header: http.Header{fieldContentType: {contentType}},
			Body:   io.NopCloser(bytes.NewReader(body)),
		}
		if params["boundary"] == "" || req.ParseMultipartForm(maxBodyBytes) != nil {
			return nil
		}
		return req.MultipartForm.Value
	}
	return nil
}

// isJSON reports whether the Content-Type header names JSON.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get(fieldContentType))
	return err == nil && mt == contentTypeJSON
}

// queryInt reads an integer query parameter; a missing optional one gives def.
func queryInt(q url.Values, name string, required bool, def int64) (int64, reply, bool) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		if required {
			return 0, invalid(name, tagRequired, "query parameter %s is required", name), false
		}
		return def, reply{}, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, invalid(name, tagNumber, "query parameter %s must be an integer", name), false
	}
	return n, reply{}, true
}

// queryString reads a required string query parameter.
func queryString(q url.Values, name string) (string, reply, bool) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return "", invalid(name, tagRequired, "query parameter %s is required", name), false
	}
	return v, reply{}, true
}

// paging reads pageNo and pageSize (defaults 1 and 25, each at least 1).
func paging(q url.Values) (pageNo, pageSize int, rep reply, ok bool) {
	no, rep, ok := queryInt(q, "pageNo", false, 1)
	if !ok {
		return 0, 0, rep, false
	}
	if no < 1 {
		return 0, 0, invalid("pageNo", tagMin, "pageNo must be at least 1"), false
	}
	size, rep, ok := queryInt(q, "pageSize", false, 25)
	if !ok {
		return 0, 0, rep, false
	}
	if size < 1 {
		return 0, 0, invalid("pageSize", tagMin, "pageSize must be at least 1"), false
	}
	return int(no), int(size), reply{}, true
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
