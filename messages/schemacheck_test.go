package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// A minimal JSON Schema checker for the keywords the schemas in schema/ use. It is not a full
// draft 2020-12 implementation: TestSchemaKeywords fails when a schema uses a keyword that is
// not listed here, so nothing in a schema goes unchecked.

// schemaAnnotations are keywords that do not constrain a document.
var schemaAnnotations = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "format": true, "$defs": true}

// schemaAssertions are the keywords checkSchema applies.
var schemaAssertions = map[string]bool{
	"$ref": true, "type": true, "const": true, "enum": true, "required": true, "properties": true, "items": true,
	"oneOf": true, "pattern": true, "minLength": true, "maxLength": true, "minimum": true, "maximum": true,
}

// decodeJSON decodes data keeping numbers as json.Number, so integers are never floats.
func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// loadSchema returns the embedded schema name as a JSON object.
func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, ok := Schema(name)
	if !ok {
		t.Fatalf("Schema(%q) not found", name)
	}
	return decodeJSON(t, b).(map[string]any)
}

// resolve follows a local "$ref" ("#/$defs/NAME") of s against root.
func resolve(root, s map[string]any) map[string]any {
	ref, ok := s["$ref"].(string)
	if !ok {
		return s
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		panic("unsupported $ref " + ref)
	}
	return root["$defs"].(map[string]any)[name].(map[string]any)
}

var integerText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// checkSchema returns every violation of schema s (within root) by the document v at path.
func checkSchema(root, s map[string]any, v any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if _, ok := s["$ref"]; ok {
		errs = append(errs, checkSchema(root, resolve(root, s), v, path)...)
	}
	if typ, ok := s["type"]; ok {
		types, isList := typ.([]any)
		if !isList {
			types = []any{typ}
		}
		matched := false
		for _, t := range types {
			matched = matched || hasType(v, t.(string))
		}
		if !matched {
			fail("type: want %v, got %T", typ, v)
			return errs // the other keywords assume the type
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		fail("const: want %v, got %v", c, v)
	}
	if enum, ok := s["enum"].([]any); ok && !containsValue(enum, v) {
		fail("enum: %v is not one of %v", v, enum)
	}
	if str, ok := v.(string); ok {
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("pattern: %q does not match %s", str, p)
		}
		n := utf8.RuneCountInString(str)
		if lim, ok := s["minLength"].(json.Number); ok && int64(n) < mustInt(lim) {
			fail("minLength: %d < %s", n, lim)
		}
		if lim, ok := s["maxLength"].(json.Number); ok && int64(n) > mustInt(lim) {
			fail("maxLength: %d > %s", n, lim)
		}
	}
	if num, ok := v.(json.Number); ok {
		if lim, ok := s["minimum"].(json.Number); ok && rat(num).Cmp(rat(lim)) < 0 {
			fail("minimum: %s < %s", num, lim)
		}
		if lim, ok := s["maximum"].(json.Number); ok && rat(num).Cmp(rat(lim)) > 0 {
			fail("maximum: %s > %s", num, lim)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for _, name := range asStrings(s["required"]) {
			if _, ok := obj[name]; !ok {
				fail("required: %q missing", name)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for name, sub := range props {
			if pv, ok := obj[name]; ok {
				errs = append(errs, checkSchema(root, sub.(map[string]any), pv, path+"."+name)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, item := range arr {
				errs = append(errs, checkSchema(root, items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	if oneOf, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, sub := range oneOf {
			if len(checkSchema(root, sub.(map[string]any), v, path)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("oneOf: %d of %d subschemas match, want exactly 1", n, len(oneOf))
		}
	}
	return errs
}

func hasType(v any, typ string) bool {
	switch v := v.(type) {
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	case string:
		return typ == "string"
	case bool:
		return typ == "boolean"
	case nil:
		return typ == "null"
	case json.Number:
		return typ == "number" || typ == "integer" && integerText.MatchString(v.String())
	}
	return false
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if reflect.DeepEqual(x, v) {
			return true
		}
	}
	return false
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.(string)
	}
	return out
}

func mustInt(n json.Number) int64 {
	v, err := n.Int64()
	if err != nil {
		panic(err)
	}
	return v
}

func rat(n json.Number) *big.Rat {
	r, ok := new(big.Rat).SetString(n.String())
	if !ok {
		panic("bad number " + n.String())
	}
	return r
}

// jsonFields returns the JSON names of the fields of struct type typ (embedded structs
// flattened) and whether each has omitempty.
func jsonFields(typ reflect.Type) map[string]bool {
	fields := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Anonymous {
			for name, omit := range jsonFields(f.Type) {
				fields[name] = omit
			}
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			panic(typ.String() + "." + f.Name + " has no json name")
		}
		fields[name] = strings.Contains(opts, "omitempty")
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestSchemaChecker(t *testing.T) {
	root := decodeJSON(t, []byte(`{
		"type": "object",
		"required": ["n"],
		"properties": {
			"n": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
			"s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-zé]+$"},
			"e": {"enum": ["x", "y"]},
			"c": {"const": "k"},
			"a": {"type": "array", "items": {"$ref": "#/$defs/id"}},
			"o": {"type": "object", "oneOf": [{"required": ["p"]}, {"required": ["q"]}]}
		},
		"$defs": {"id": {"type": ["string", "integer"], "pattern": "^[0-9]+$"}}
	}`)).(map[string]any)
	tests := []struct {
		give string
		want int // violations
	}{
		{`{"n": 1}`, 0},
		{`{"n": 9223372036854775807, "s": "éé", "e": "y", "c": "k", "a": ["1", 2], "o": {"q": 1}}`, 0},
		{`{}`, 1},
		{`[]`, 1},
		{`{"n": 0}`, 1},
		{`{"n": 9223372036854775808}`, 1},
		{`{"n": 1.0}`, 1},
		{`{"n": "1"}`, 1},
		{`{"n": 1, "s": "a"}`, 1},
		{`{"n": 1, "s": "abcd"}`, 1},
		{`{"n": 1, "s": "AB"}`, 1},
		{`{"n": 1, "e": "z"}`, 1},
		{`{"n": 1, "c": "K"}`, 1},
		{`{"n": 1, "a": ["1", "x", 2.5, true]}`, 3},
		{`{"n": 1, "o": {}}`, 1},
		{`{"n": 1, "o": {"p": 1, "q": 2}}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			errs := checkSchema(root, root, decodeJSON(t, []byte(tt.give)), "$")
			if len(errs) != tt.want {
				t.Errorf("violations = %q, want %d", errs, tt.want)
			}
		})
	}
}
