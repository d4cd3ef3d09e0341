// Package api is fulfil's HTTP intake: the way in for shops and CRMs that do not speak NATS.
//
//	POST /v1/purchases        a purchase request (JSON) with an Idempotency-Key header → 202
//	GET  /v1/purchases/{key}  the purchase's state; ?wait=30s waits for its outcome
//	GET  /v1/openapi.json     the OpenAPI 3.1 document of this API
//
// A POST is validated exactly as a worker validates a request message (package messages) and
// published to the requests stream with the contract's Nats-Msg-Id; workers do the rest. The
// Idempotency-Key header follows the IETF httpapi Idempotency-Key draft: a missing key is a
// 400, the key reused with a different purchase a 422, and the same purchase again gets the
// same answer (202 and the same Location) without a second order. "The same purchase" is the
// contract's fingerprint: the key's idempotency record decides once a worker has taken the
// key; before that, the intake bucket (FULFIL_INTAKE) remembers the first accepted purchase per
// key, so every API instance decides alike. A request that fails validation is not
// remembered: the key stays free, as for NATS.
//
// Errors are RFC 9457 problem details. API keys (Authorization: Bearer, or X-API-Key) are
// checked in constant time against their SHA-256 hashes.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/traceparent"
	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/messages"
)

// Limits of the API.
const (
	// MaxBody is the largest request body: the contract's request limit.
	MaxBody = messages.MaxRequestBytes
	// DefaultMaxWait is the longest ?wait= of a GET; longer ones are shortened to it.
	DefaultMaxWait = 60 * time.Second
	// publishTimeout bounds a publish to the requests stream.
	publishTimeout = 10 * time.Second
)

// Headers of the API.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on the answer to a repeated POST (the same key and purchase).
	HeaderReplayed = "Idempotent-Replayed"
)

// Routes, as the metrics label them.
const (
	RoutePurchases = "/v1/purchases"
	RoutePurchase  = "/v1/purchases/{key}"
	RouteOpenAPI   = "/v1/openapi.json"
	RouteOther     = "other"
)

// Config configures a Server.
type Config struct {
	// JS publishes requests and reads the buckets.
	JS jetstream.JetStream
	// Intake is the intake bucket (OpenIntake).
	Intake *Intake
	// SubjectPrefix is the first token of the subjects (default "fulfil").
	SubjectPrefix string
	// Keys are the API keys; none: no authentication (only for a loopback address).
	Keys *Keys
	// SagaID derives a key's saga ID (worker.SagaID).
	SagaID func(key string) string
	// MaxWait caps a GET's ?wait= (default 60s). The server's write timeout must exceed it.
	MaxWait time.Duration
	// Metrics counts requests by route and status; nil counts nothing.
	Metrics *metrics.API
	// Logger (default: none).
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TracerProvider, when set, makes each request a server span continuing its traceparent
	// header, whose traceparent the published request carries; nil records none.
	TracerProvider trace.TracerProvider
}

// TracerName is the instrumentation scope of the intake's spans.
const TracerName = "github.com/fulfil/fulfil/internal/api"

// Server is the HTTP intake's handler.
type Server struct {
	cfg      Config
	subjects messages.Subjects
	reader   *Reader
	log      *zap.Logger
	stop     chan struct{} // closed by Close: long polls answer at once
	tracer   trace.Tracer  // nil: no spans
}

// New returns the intake's handler.
func New(cfg Config) (*Server, error) {
	if cfg.JS == nil || cfg.Intake == nil || cfg.SagaID == nil {
		return nil, errors.New("api: JS, Intake and SagaID are required")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := NewReader(cfg.JS, cfg.SagaID)
	r.intake = cfg.Intake
	s := &Server{cfg: cfg, subjects: messages.SubjectsFor(cfg.SubjectPrefix), reader: r, log: cfg.Logger, stop: make(chan struct{})}
	if cfg.TracerProvider != nil {
		s.tracer = cfg.TracerProvider.Tracer(TracerName)
	}
	return s, nil
}

// Close ends every long poll (each answers with the state it has); call it before shutting the
// HTTP server down.
func (s *Server) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP routes a request. Paths are matched on their escaped form and never cleaned, so
// any key, "/" or ".." included, has its own URL.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r, span := tracing.StartHTTPServerSpan(s.tracer, r)
	sw := &statusWriter{ResponseWriter: w}
	route := s.route(sw, r)
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	tracing.EndHTTPServerSpan(span, r, route, code)
	s.cfg.Metrics.Request(route, r.Method, code, time.Since(start))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) string {
	path := r.URL.EscapedPath()
	switch {
	case path == RouteOpenAPI:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(r.Method, http.MethodGet, http.MethodHead).write(w, r)
			return RouteOpenAPI
		}
		serveOpenAPI(w, r)
		return RouteOpenAPI
	case path == RoutePurchases:
		if !s.authorized(w, r) {
			return RoutePurchases
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(r.Method, http.MethodPost).write(w, r)
			return RoutePurchases
		}
		s.post(w, r)
		return RoutePurchases
	case strings.HasPrefix(path, RoutePurchases+"/"):
		if !s.authorized(w, r) {
			return RoutePurchase
		}
		escaped := strings.TrimPrefix(path, RoutePurchases+"/")
		key, err := urlUnescape(escaped)
		if err != nil || strings.Contains(escaped, "/") || idempotency.ValidateKey(key) != nil {
			notFound("no purchase here: the path must be /v1/purchases/ and an idempotency key (1 to 128 printable ASCII characters, path-escaped)").write(w, r)
			return RoutePurchase
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(r.Method, http.MethodGet, http.MethodHead).write(w, r)
			return RoutePurchase
		}
		s.get(w, r, key)
		return RoutePurchase
	}
	if !s.authorized(w, r) {
		return RouteOther
	}
	notFound("no such resource; see /v1/openapi.json").write(w, r)
	return RouteOther
}

// authorized answers 401 and returns false when the request lacks a valid API key.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if _, p := s.authenticate(r); p != nil {
		p.write(w, r)
		return false
	}
	return true
}

// post accepts a purchase request.
func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	if p := checkContentType(r); p != nil {
		p.write(w, r)
		return
	}
	key, p := idempotencyKey(r)
	if p != nil {
		p.write(w, r)
		return
	}
	if r.ContentLength > MaxBody {
		tooLarge(r.ContentLength).write(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge(-1).write(w, r)
			return
		}
		newProblem(TypeInvalidRequest, "The request body could not be read", http.StatusBadRequest, err.Error()).write(w, r)
		return
	}
	body, req, p := decode(body, key)
	if p != nil {
		p.write(w, r)
		return
	}
	s.accept(w, r, key, body, req)
}

// accept decides on a valid request: a different purchase under a known key is a 422; the same
// purchase again gets the same answer; a new one is remembered and published.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, key string, body []byte, req messages.PurchaseRequest) {
	ctx := r.Context()
	fingerprint := req.Fingerprint()
	rec, recorded, err := s.reader.record(ctx, key)
	if err != nil {
		s.failed(w, r, "read the key's record", err)
		return
	}
	if recorded {
		if rec.Fingerprint != fingerprint {
			reused(key).write(w, r)
			return
		}
		s.answer(w, r, key, true) // a worker has it: nothing to publish
		return
	}
	msgID := messages.RequestMsgID(key, body)
	ent, rev, created, err := s.cfg.Intake.claim(ctx, IntakeEntry{Key: key, Fingerprint: fingerprint, MsgID: msgID, AcceptedAt: s.cfg.Now().UTC()})
	if err != nil {
		s.failed(w, r, "remember the key", err)
		return
	}
	if ent.Fingerprint != fingerprint {
		reused(key).write(w, r)
		return
	}
	if !created && ent.Seq != 0 && s.inStream(ctx, ent.Seq) {
		s.answer(w, r, key, true) // published before, still waiting for a worker
		return
	}
	// New, or accepted before but not (or no longer) in the stream: publish. A repeat of an
	// exact body has the same Nats-Msg-Id, which the stream deduplicates.
	seq, err := s.publish(ctx, r, msgID, body)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			p.write(w, r)
			return
		}
		s.failed(w, r, "publish the request", err)
		return
	}
	if err := s.cfg.Intake.setSeq(ctx, ent, rev, seq); err != nil {
		s.log.Debug("intake: sequence not recorded", zap.String("idempotency_key", key), zap.Error(err))
	}
	s.log.Info("purchase accepted", zap.String("idempotency_key", key), zap.Uint64("request_seq", seq), zap.Bool("repeated", !created))
	s.answer(w, r, key, !created)
}

// inStream reports whether the requests stream still holds the message at seq (false also
// when the stream cannot say).
func (s *Server) inStream(ctx context.Context, seq uint64) bool {
	st, err := s.cfg.JS.Stream(ctx, messages.StreamRequests)
	if err != nil {
		return !errors.Is(err, jetstream.ErrStreamNotFound)
	}
	_, err = st.GetMsg(ctx, seq)
	return !errors.Is(err, jetstream.ErrMsgNotFound)
}

// publish sends the request to the requests stream with the contract's Nats-Msg-Id and the
// caller's traceparent (the request's span's, when tracing is on), and returns its stream
// sequence.
func (s *Server) publish(ctx context.Context, r *http.Request, msgID string, body []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	m := nats.NewMsg(s.subjects.Requested)
	m.Data = body
	tp := r.Header.Get("traceparent")
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		tp = tracing.TraceParent(sc)
	}
	if traceparent.Valid(tp) {
		m.Header.Set(messages.HeaderTraceParent, tp)
	}
	ack, err := s.cfg.JS.PublishMsg(ctx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(messages.StreamRequests))
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return 0, unavailable("the requests stream " + messages.StreamRequests + " does not answer: no fulfil worker has set it up yet, or NATS is unavailable; try again")
	}
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// answer sends the 202 for key: the purchase's current state, at its Location.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, key string, repeated bool) {
	p, err := s.reader.Purchase(r.Context(), key)
	if err != nil {
		// Just accepted: the state can only be "accepted".
		p = fromIntake(IntakeEntry{Key: key, AcceptedAt: s.cfg.Now().UTC()}, s.cfg.SagaID(key))
	}
	w.Header().Set("Location", p.Links.Self)
	if repeated {
		w.Header().Set(HeaderReplayed, "true")
	}
	writeJSON(w, http.StatusAccepted, p)
}

// get answers a purchase's state, waiting for its outcome with ?wait=.
func (s *Server) get(w http.ResponseWriter, r *http.Request, key string) {
	wait, p := s.waitParam(r)
	if p != nil {
		p.write(w, r)
		return
	}
	ctx := r.Context()
	var pur Purchase
	var err error
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		go func() {
			select {
			case <-s.stop: // shutting down: answer with the state there is
				cancel()
			case <-wctx.Done():
			}
		}()
		pur, err = s.reader.Wait(wctx, key)
	} else {
		pur, err = s.reader.Purchase(ctx, key)
	}
	if errors.Is(err, ErrNotFound) {
		notFound(fmt.Sprintf("no purchase under the key %q: never accepted, failed validation (the key stays free), or older than the key retention", key)).write(w, r)
		return
	}
	if err != nil {
		s.failed(w, r, "read the purchase", err)
		return
	}
	writeJSON(w, http.StatusOK, pur)
}

// waitParam parses ?wait=: a Go duration ("30s") or whole seconds ("30"), at most MaxWait
// (longer waits are shortened).
func (s *Server) waitParam(r *http.Request) (time.Duration, *Problem) {
	q := r.URL.Query()
	v, ok := q["wait"]
	if !ok {
		return 0, nil
	}
	raw := ""
	if len(v) > 0 {
		raw = v[len(v)-1]
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		n, nerr := strconv.Atoi(raw)
		if nerr != nil {
			return 0, badParam("wait", fmt.Sprintf("%q is not a duration (30s, 1m) or a number of seconds", raw))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, badParam("wait", "must not be negative")
	}
	return min(d, s.cfg.MaxWait), nil
}

func badParam(name, detail string) *Problem {
	p := newProblem(TypeInvalidRequest, "Invalid query parameter", http.StatusBadRequest, name+": "+detail)
	p.Errors = []FieldError{{In: "query", Field: name, Detail: detail}}
	return p
}

// failed answers a server-side failure: 503 while NATS cannot be reached, else 500.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Warn("http intake: could not "+what, zap.String("path", r.URL.EscapedPath()), zap.Error(err))
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) {
		unavailable("NATS JetStream did not answer in time; try again").write(w, r)
		return
	}
	if r.Context().Err() != nil {
		return // the client has gone
	}
	unavailable("could not "+what+"; try again").write(w, r)
}

// checkContentType answers 415 unless the body is JSON (application/json, UTF-8).
func checkContentType(r *http.Request) *Problem {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	detail := "the body must be JSON: send Content-Type: application/json"
	if ct != "" {
		detail = fmt.Sprintf("Content-Type %q: the body must be JSON in UTF-8 (application/json)", ct)
	}
	return newProblem(TypeUnsupportedMedia, "Unsupported media type", http.StatusUnsupportedMediaType, detail).
		with("Accept-Post", "application/json")
}

// idempotencyKey reads the Idempotency-Key header: a structured-field string ("key", as the
// draft specifies) or the bare key. It must be a valid idempotency key of the contract.
func idempotencyKey(r *http.Request) (string, *Problem) {
	vs := r.Header.Values(HeaderIdempotencyKey)
	if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
		p := newProblem(TypeIdempotencyKeyMissing, "Idempotency-Key is missing", http.StatusBadRequest,
			"send an Idempotency-Key header naming this purchase (for example your order number); the same key and body may be sent again safely")
		p.Errors = []FieldError{headerProblem(HeaderIdempotencyKey, "required")}
		return "", p
	}
	bad := func(detail string) (string, *Problem) {
		p := newProblem(TypeInvalidRequest, "Invalid Idempotency-Key", http.StatusBadRequest, HeaderIdempotencyKey+": "+detail)
		p.Errors = []FieldError{headerProblem(HeaderIdempotencyKey, detail)}
		return "", p
	}
	if len(vs) > 1 {
		return bad("must be sent once")
	}
	key, ok := sfString(strings.TrimSpace(vs[0]))
	if !ok {
		return bad("a quoted key must be a valid structured-field string")
	}
	if err := idempotency.ValidateKey(key); err != nil || key[0] == ' ' || key[len(key)-1] == ' ' {
		return bad(fmt.Sprintf("must be 1 to %d printable ASCII characters, not beginning or ending with a space", messages.MaxKeyLength))
	}
	return key, nil
}

// sfString decodes an RFC 8941 string ("...", with \" and \\ escapes); a value that is not
// quoted is taken as it is.
func sfString(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, true
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"':
			if i != len(v)-1 {
				return "", false // more after the string
			}
			return b.String(), true
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// decode validates body as a purchase request for key, as a worker would. A body without
// idempotencyKey gets the header's key (added as the last member, every other byte kept as
// sent); a body whose idempotencyKey differs from the header's is a 400. Where a worker stops
// at the fields of the wrong JSON type, the answer also names what the contract's rules find
// wrong with the other fields, so that every wrong field is named at once.
func decode(body []byte, key string) ([]byte, messages.PurchaseRequest, *Problem) {
	req, err := messages.DecodeRequest(body)
	if err == nil && req.IdempotencyKey == "" {
		body = withKey(body, key)
		if len(body) > MaxBody {
			return nil, req, tooLarge(int64(len(body)))
		}
		req, err = messages.DecodeRequest(body)
	}
	var problems []messages.Problem
	var ve *messages.ValidationError
	switch {
	case errors.As(err, &ve):
		problems = ve.Problems
		if !slices.ContainsFunc(problems, func(p messages.Problem) bool { return p.Field == "" }) {
			// The JSON is an object: check the fields that did decode too.
			partial := req
			if partial.IdempotencyKey == "" {
				partial.IdempotencyKey = key
			}
			if errors.As(partial.Validate(), &ve) {
				for _, p := range ve.Problems {
					if !covered(problems, p.Field) {
						problems = append(problems, p)
					}
				}
			}
		}
	case err != nil:
		problems = []messages.Problem{{Message: err.Error()}}
	default:
		if errors.As(req.Validate(), &ve) {
			problems = ve.Problems
		}
	}
	var extra []FieldError
	if req.IdempotencyKey != "" && req.IdempotencyKey != key {
		extra = append(extra, FieldError{In: "body", Field: "idempotencyKey", Pointer: "#/idempotencyKey",
			Detail: "must be the Idempotency-Key header's key (or absent)"})
	}
	if len(problems) > 0 || len(extra) > 0 {
		return nil, req, validationProblem(problems, extra...)
	}
	return body, req, nil
}

// covered reports whether a problem with field, a field around it or a field inside it is
// already listed.
func covered(problems []messages.Problem, field string) bool {
	within := func(inner, outer string) bool {
		return strings.HasPrefix(inner, outer+".") || strings.HasPrefix(inner, outer+"[")
	}
	return slices.ContainsFunc(problems, func(p messages.Problem) bool {
		return p.Field == field || within(field, p.Field) || within(p.Field, field)
	})
}

// withKey adds "idempotencyKey": key as the last member of the JSON object body (so it wins
// over an earlier "idempotencyKey": null), keeping every other byte as sent.
func withKey(body []byte, key string) []byte {
	end := len(body) - 1
	for end >= 0 && body[end] != '}' {
		end-- // whitespace: body is one valid JSON object
	}
	k, _ := json.Marshal(key)
	member := append([]byte(`"idempotencyKey":`), k...)
	before := bytes.TrimRight(body[:end], " \t\r\n")
	if !bytes.HasSuffix(before, []byte("{")) {
		member = append([]byte(","), member...) // after the other members
	}
	out := make([]byte, 0, len(body)+len(member))
	out = append(out, body[:end]...)
	out = append(out, member...)
	return append(out, body[end:]...)
}

// urlUnescape decodes a path segment.
func urlUnescape(s string) (string, error) { return url.PathUnescape(s) }

func tooLarge(size int64) *Problem {
	detail := fmt.Sprintf("a purchase request is at most %d bytes", MaxBody)
	if size > 0 {
		detail = fmt.Sprintf("the request is %d bytes; a purchase request is at most %d bytes", size, MaxBody)
	}
	return newProblem(TypeTooLarge, "Request too large", http.StatusRequestEntityTooLarge, detail)
}

func reused(key string) *Problem {
	p := newProblem(TypeIdempotencyKeyReused, "Idempotency-Key reused for a different purchase", http.StatusUnprocessableEntity,
		fmt.Sprintf("the key %q was already used for a different purchase; that purchase is unaffected. Give a new purchase its own key", key))
	p.Errors = []FieldError{headerProblem(HeaderIdempotencyKey, "already used for a different purchase")}
	return p
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		internalProblem().write(w, nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
