package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/messages"
)

// The document's request and event schemas are the contract's (messages/schema), moved to
// components: they cannot drift apart. The request's idempotencyKey is optional over HTTP (the
// header's key is used).
func TestOpenAPIMatchesTheMessageSchemas(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any
		}
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	load := func(name string) map[string]any {
		b, ok := messages.Schema(name)
		if !ok {
			t.Fatalf("no schema %s", name)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return refsToComponents(m).(map[string]any)
	}
	req := load(messages.SchemaRequest)
	defs := map[string]string{"id": "Id", "name": "Name", "email": "Email", "ref": "Ref", "serviceRef": "ServiceRef"}
	for def, comp := range defs {
		if !reflect.DeepEqual(req["$defs"].(map[string]any)[def], schemas[comp]) {
			t.Errorf("components/schemas/%s differs from the request schema's $defs/%s", comp, def)
		}
	}
	if !reflect.DeepEqual(req["properties"], schemas["PurchaseRequest"]["properties"]) {
		t.Error("PurchaseRequest's properties differ from the request schema's")
	}
	var wantRequired []any
	for _, r := range req["required"].([]any) {
		if r != "idempotencyKey" {
			wantRequired = append(wantRequired, r)
		}
	}
	if !reflect.DeepEqual(wantRequired, schemas["PurchaseRequest"]["required"]) {
		t.Errorf("PurchaseRequest requires %v, want %v", schemas["PurchaseRequest"]["required"], wantRequired)
	}
	for file, comp := range map[string]string{messages.SchemaCompleted: "PurchaseCompleted", messages.SchemaFailed: "PurchaseFailed"} {
		ev := load(file)
		for _, k := range []string{"type", "required", "properties"} {
			if !reflect.DeepEqual(ev[k], schemas[comp][k]) {
				t.Errorf("components/schemas/%s: %s differs from %s", comp, k, file)
			}
		}
	}
	// Every problem type the server can answer is documented.
	enum := lookupEnum(t, schemas["Problem"], "type")
	for _, typ := range []string{TypeInvalidRequest, TypeIdempotencyKeyMissing, TypeIdempotencyKeyReused, TypeUnauthorized, TypeNotFound,
		TypeMethodNotAllowed, TypeTooLarge, TypeUnsupportedMedia, TypeUnavailable, TypeInternal} {
		if !slices.Contains(enum, typ) {
			t.Errorf("problem type %s is not in the document", typ)
		}
	}
}

func lookupEnum(t *testing.T, schema map[string]any, prop string) []string {
	t.Helper()
	var out []string
	for _, v := range schema["properties"].(map[string]any)[prop].(map[string]any)["enum"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

// refsToComponents rewrites "#/$defs/x" references to the document's component names.
func refsToComponents(v any) any {
	names := map[string]string{"id": "Id", "name": "Name", "email": "Email", "ref": "Ref", "serviceRef": "ServiceRef"}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" && strings.HasPrefix(s, "#/$defs/") {
				out[k] = "#/components/schemas/" + names[strings.TrimPrefix(s, "#/$defs/")]
				continue
			}
			out[k] = refsToComponents(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = refsToComponents(x)
		}
		return out
	}
	return v
}
