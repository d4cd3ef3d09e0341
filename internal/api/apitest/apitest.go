// Package apitest checks real answers of the HTTP intake against its committed OpenAPI
// document (api.OpenAPI), for tests: the status must be documented for the operation, the
// content type too, the documented required headers present, and the body valid against the
// documented schema (JSON Schema 2020-12, formats asserted). Objects are checked closed:
// a field the document does not declare fails, so the document cannot fall behind the code.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fulfil/fulfil/internal/api"
)

const docURL = "file:///fulfil/openapi.json"

// Checker validates answers; it is safe for concurrent use.
type Checker struct {
	doc      map[string]any
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
	seen    map[string]bool // "METHOD template status"
}

// New parses the document. It fails the test if the document is not JSON or its schemas do
// not compile.
func New(t testing.TB) *Checker {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	strict, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	closeObjects(strict)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, strict); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	ch := &Checker{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name := range schemas {
		if _, err := ch.schema("#/components/schemas/" + name); err != nil {
			t.Fatalf("openapi.json: schema %s: %v", name, err)
		}
	}
	return ch
}

// closeObjects sets additionalProperties false on every schema that declares properties and
// says nothing of others.
func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok && len(props) > 0 {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, x := range v {
			closeObjects(x)
		}
	case []any:
		for _, x := range v {
			closeObjects(x)
		}
	}
}

// schema compiles the document's schema at a fragment ("#/components/schemas/Purchase").
func (c *Checker) schema(fragment string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.schemas[fragment]; ok {
		return s, nil
	}
	s, err := c.compiler.Compile(docURL + fragment)
	if err != nil {
		return nil, err
	}
	c.schemas[fragment] = s
	return s, nil
}

// Validate checks a JSON document against the named component schema ("Purchase").
func (c *Checker) Validate(name string, body []byte) error {
	s, err := c.schema("#/components/schemas/" + name)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(inst)
}

// Template returns the document's path template that a request path matches, or "".
func Template(escapedPath string) string {
	switch {
	case escapedPath == api.RoutePurchases, escapedPath == api.RouteOpenAPI:
		return escapedPath
	case strings.HasPrefix(escapedPath, api.RoutePurchases+"/") && !strings.Contains(strings.TrimPrefix(escapedPath, api.RoutePurchases+"/"), "/"):
		return api.RoutePurchase
	}
	return ""
}

// Check validates one answer to a request (resp.Request) whose body has been read into body.
// Answers the document cannot list per operation (405 for a method no operation has, 404 for a
// path it does not have) must be problem details.
func (c *Checker) Check(t testing.TB, resp *http.Response, body []byte) {
	t.Helper()
	if err := c.check(resp, body); err != nil {
		t.Errorf("%s %s → %d: does not match openapi.json: %v\nbody: %s", resp.Request.Method, resp.Request.URL.RequestURI(), resp.StatusCode, err, body)
	}
}

func (c *Checker) check(resp *http.Response, body []byte) error {
	method := strings.ToLower(resp.Request.Method)
	if method == "head" {
		method = "get"
	}
	tmpl := Template(resp.Request.URL.EscapedPath())
	status := strconv.Itoa(resp.StatusCode)
	paths := c.doc["paths"].(map[string]any)
	op, _ := lookup(paths, tmpl, method).(map[string]any)
	if op == nil {
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("no operation %s %q in the document, and the answer is not 401, 404 or 405", method, tmpl)
		}
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
			return fmt.Errorf("405 without Allow")
		}
		return c.body(resp, body, ProblemContentType, "#/components/schemas/Problem")
	}
	c.mu.Lock()
	c.seen[strings.ToUpper(method)+" "+tmpl+" "+status] = true
	c.mu.Unlock()
	r, _ := lookup(op, "responses", status).(map[string]any)
	if r == nil {
		return fmt.Errorf("status %s is not documented for %s %s", status, method, tmpl)
	}
	headers, _ := r["headers"].(map[string]any)
	for name, h := range headers {
		if req, _ := h.(map[string]any)["required"].(bool); req && resp.Header.Get(name) == "" {
			return fmt.Errorf("required header %s is missing", name)
		}
	}
	content, _ := r["content"].(map[string]any)
	if len(content) != 1 {
		return fmt.Errorf("the document gives %d content types for %s %s %s; the checker needs one", len(content), method, tmpl, status)
	}
	for ct, media := range content {
		sch := media.(map[string]any)["schema"].(map[string]any)
		frag := "#" + pointer("paths", tmpl, method, "responses", status, "content", ct, "schema")
		if ref, ok := sch["$ref"].(string); ok {
			frag = ref
		}
		return c.body(resp, body, ct, frag)
	}
	return nil
}

// ProblemContentType is the media type of problem details.
const ProblemContentType = api.ProblemContentType

func (c *Checker) body(resp *http.Response, body []byte, wantType, fragment string) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != wantType {
		return fmt.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), wantType)
	}
	if resp.Request.Method == http.MethodHead {
		return nil
	}
	s, err := c.schema(fragment)
	if err != nil {
		return fmt.Errorf("compile %s: %w", fragment, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return err
	}
	if mt == ProblemContentType {
		var p struct{ Status int }
		if json.Unmarshal(body, &p) != nil || p.Status != resp.StatusCode {
			return fmt.Errorf("problem status %d differs from the HTTP status", p.Status)
		}
	}
	return nil
}

// Unseen lists the documented responses ("POST /v1/purchases 422") no checked answer had,
// except those with a status in skip.
func (c *Checker) Unseen(skip ...int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for tmpl, item := range c.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				n, _ := strconv.Atoi(status)
				key := strings.ToUpper(method) + " " + tmpl + " " + status
				if !c.seen[key] && !slices.Contains(skip, n) {
					out = append(out, key)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Operations lists the document's operations as "METHOD template".
func (c *Checker) Operations() []string {
	var out []string
	for tmpl, item := range c.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			out = append(out, strings.ToUpper(method)+" "+tmpl)
		}
	}
	sort.Strings(out)
	return out
}

func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// pointer is a JSON Pointer of tokens, escaped for a URI fragment.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, tok := range tokens {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
		b.WriteString("/")
		b.WriteString(url.PathEscape(tok))
	}
	return b.String()
}
