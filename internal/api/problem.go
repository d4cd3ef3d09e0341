package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fulfil/fulfil/messages"
)

// Problem types (RFC 9457 "type" members). They are URNs: identifiers, not pages to fetch.
// The OpenAPI document lists them with their meaning.
const (
	TypeInvalidRequest        = "urn:fulfil:problem:invalid-request"
	TypeIdempotencyKeyMissing = "urn:fulfil:problem:idempotency-key-missing"
	TypeIdempotencyKeyReused  = "urn:fulfil:problem:idempotency-key-reused"
	TypeUnauthorized          = "urn:fulfil:problem:unauthorized"
	TypeNotFound              = "urn:fulfil:problem:not-found"
	TypeMethodNotAllowed      = "urn:fulfil:problem:method-not-allowed"
	TypeTooLarge              = "urn:fulfil:problem:request-too-large"
	TypeUnsupportedMedia      = "urn:fulfil:problem:unsupported-media-type"
	TypeUnavailable           = "urn:fulfil:problem:unavailable"
	TypeInternal              = "urn:fulfil:problem:internal"
)

// ProblemContentType is the media type of every error answer.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Instance is the request path the problem is about.
	Instance string `json:"instance,omitempty"`
	// Errors names every wrong input, one entry each (an extension member).
	Errors []FieldError `json:"errors,omitempty"`

	header http.Header // extra response headers (Allow, WWW-Authenticate, Retry-After)
}

// FieldError is one wrong input: a body field, a header or a query parameter.
type FieldError struct {
	// In says where the input is: body, header, query or path.
	In string `json:"in"`
	// Field is the body field's path as the contract names it ("services[1].id"), or the
	// header's or parameter's name; empty for a problem of the whole body.
	Field string `json:"field"`
	// Pointer is the JSON Pointer (as a URI fragment, "#/services/1/id") of a body field;
	// "#" for the whole body.
	Pointer string `json:"pointer,omitempty"`
	Detail  string `json:"detail"`
}

func newProblem(typ, title string, status int, detail string) *Problem {
	return &Problem{Type: typ, Title: title, Status: status, Detail: detail}
}

// with adds a response header to the problem's answer.
func (p *Problem) with(name, value string) *Problem {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Add(name, value)
	return p
}

// write sends p as the answer.
func (p *Problem) write(w http.ResponseWriter, r *http.Request) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.EscapedPath()
	}
	for k, vs := range p.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	b, err := json.Marshal(p)
	if err != nil { // cannot happen: only strings and ints
		b = []byte(`{"type":"` + TypeInternal + `","title":"Internal error","status":500,"detail":""}`)
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// validationProblem is the 400 answer for a body that is not a valid purchase request: one
// FieldError for every problem the messages package found, in its order.
func validationProblem(problems []messages.Problem, extra ...FieldError) *Problem {
	p := newProblem(TypeInvalidRequest, "The purchase request is not valid", http.StatusBadRequest, "")
	for _, mp := range problems {
		p.Errors = append(p.Errors, FieldError{In: "body", Field: mp.Field, Pointer: pointer(mp.Field), Detail: mp.Message})
	}
	p.Errors = append(p.Errors, extra...)
	p.Detail = summary(p.Errors)
	return p
}

// summary joins the errors the way the contract's invalid_request message does:
// "quantity: must be between 1 and 100000; plan: required".
func summary(errs []FieldError) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		if e.Field == "" {
			parts = append(parts, e.Detail)
		} else {
			parts = append(parts, e.Field+": "+e.Detail)
		}
	}
	return strings.Join(parts, "; ")
}

// pointer turns a contract field path ("services[1].id") into a JSON Pointer URI fragment
// ("#/services/1/id"); "" is the whole document, "#".
func pointer(field string) string {
	if field == "" {
		return "#"
	}
	var b strings.Builder
	b.WriteString("#")
	for _, part := range strings.Split(field, ".") {
		name, rest, _ := strings.Cut(part, "[")
		b.WriteString("/")
		b.WriteString(escapePointer(name))
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			b.WriteString("/")
			b.WriteString(idx)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return b.String()
}

// escapePointer escapes a member name for a JSON Pointer (RFC 6901) in a URI fragment.
func escapePointer(s string) string {
	s = strings.ReplaceAll(s, "~", "~0")
	return strings.ReplaceAll(s, "/", "~1")
}

func headerProblem(name, detail string) FieldError {
	return FieldError{In: "header", Field: name, Detail: detail}
}

func unavailable(detail string) *Problem {
	return newProblem(TypeUnavailable, "Temporarily unavailable", http.StatusServiceUnavailable, detail).with("Retry-After", "1")
}

func internalProblem() *Problem {
	return newProblem(TypeInternal, "Internal error", http.StatusInternalServerError, "the request could not be handled; it was logged")
}

func notFound(detail string) *Problem {
	return newProblem(TypeNotFound, "Not found", http.StatusNotFound, detail)
}

func methodNotAllowed(method string, allow ...string) *Problem {
	return newProblem(TypeMethodNotAllowed, "Method not allowed", http.StatusMethodNotAllowed,
		fmt.Sprintf("%s is not allowed here; allowed: %s", method, strings.Join(allow, ", "))).with("Allow", strings.Join(allow, ", "))
}

// Error makes a Problem an error, so a function can return the answer it calls for.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }
