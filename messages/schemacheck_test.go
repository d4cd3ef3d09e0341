package messages

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schemas in schema/ are checked by a full draft 2020-12 validator
// (github.com/santhosh-tekuri/jsonschema/v6, as internal/api/apitest checks the OpenAPI
// document). The helpers below read the schemas as plain JSON for the structural tests.

// schemaIDPrefix is the $id of every schema but its file name.
const schemaIDPrefix = "https://github.com/fulfil/fulfil/messages/schema/"

// compileSchema compiles the embedded schema name; compiling checks it against the draft
// 2020-12 metaschema. Formats ("email") are annotations, as the draft says by default.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	b, ok := Schema(name)
	if !ok {
		t.Fatalf("Schema(%q) not found", name)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaIDPrefix+name, doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s, err := c.Compile(schemaIDPrefix + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// validateDoc returns why the JSON document data is not valid against the schema name, or nil.
// Numbers stay json.Number, so an integer is never rounded through a float.
func validateDoc(t *testing.T, name string, data []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return compileSchema(t, name).Validate(v)
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

// asStrings returns a JSON array of strings (nil or absent: none).
func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.(string)
	}
	return out
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
