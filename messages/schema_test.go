package messages

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSchemaNames(t *testing.T) {
	want := []string{SchemaCompleted, SchemaFailed, SchemaProgress, SchemaRequest}
	sort.Strings(want)
	if got := SchemaNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("SchemaNames = %q, want %q", got, want)
	}
	for _, name := range []string{"", "nope.json", "../schema.go", "schema/" + SchemaRequest} {
		if _, ok := Schema(name); ok {
			t.Errorf("Schema(%q) found", name)
		}
	}
}

// TestSchemaIDs checks each schema's draft and $id, and that it compiles (which checks it
// against the draft 2020-12 metaschema).
func TestSchemaIDs(t *testing.T) {
	for _, name := range SchemaNames() {
		t.Run(name, func(t *testing.T) {
			s := loadSchema(t, name)
			if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v", s["$schema"])
			}
			if s["$id"] != schemaIDPrefix+name {
				t.Errorf("$id = %v", s["$id"])
			}
			compileSchema(t, name)
		})
	}
}

// TestSchemaMatchesTypes checks that each schema has exactly the JSON fields of its Go type,
// the contract's required fields, and that Go always writes the required fields.
func TestSchemaMatchesTypes(t *testing.T) {
	header := []string{"type", "idempotencyKey", "sagaId", "time"}
	tests := []struct {
		schema       string
		ref          string // "" for the top level, else a property whose schema is checked
		give         any
		wantRequired []string
	}{
		{SchemaRequest, "", PurchaseRequest{}, []string{"idempotencyKey", "plan", "quantity"}},
		{SchemaRequest, "plan", Ref{}, nil},
		{SchemaRequest, "billingContact", ContactRef{}, nil},
		{SchemaCompleted, "", Completed{}, append(header, "productId", "productNo", "orderNo", "orderStatus",
			"transactionNo", "instanceId", "autoRenewal", "activationCode", "replayed")},
		{SchemaFailed, "", Failed{}, append(header, "step", "reason", "message", "partnerCode", "partnerRequestId", "orderNo")},
		{SchemaProgress, "", Progress{}, append(header, "step", "status")},
	}
	for _, tt := range tests {
		t.Run(tt.schema+"/"+tt.ref, func(t *testing.T) {
			root := loadSchema(t, tt.schema)
			s := root
			if tt.ref != "" {
				s = resolve(root, root["properties"].(map[string]any)[tt.ref].(map[string]any))
			}
			fields := jsonFields(reflect.TypeOf(tt.give))
			props := s["properties"].(map[string]any)
			if got, want := sortedKeys(props), sortedKeys(fields); !reflect.DeepEqual(got, want) {
				t.Errorf("schema properties %q, Go fields %q", got, want)
			}
			required := asStrings(s["required"])
			sort.Strings(required)
			want := slices.Clone(tt.wantRequired)
			sort.Strings(want)
			if !slices.Equal(required, want) {
				t.Errorf("required = %q, want %q", required, want)
			}
		})
	}
	for _, ev := range []any{Completed{}, Failed{}, Progress{}} {
		for name, omit := range jsonFields(reflect.TypeOf(ev)) {
			if omit && slices.Contains(header, name) {
				t.Errorf("%T.%s is omitempty but required", ev, name)
			}
		}
	}
	services := loadSchema(t, SchemaRequest)["$defs"].(map[string]any)["serviceRef"].(map[string]any)
	if got, want := sortedKeys(services["properties"].(map[string]any)), sortedKeys(jsonFields(reflect.TypeOf(ServiceRef{}))); !reflect.DeepEqual(got, want) {
		t.Errorf("serviceRef properties %q, Go fields %q", got, want)
	}
}

func TestSchemaEnums(t *testing.T) {
	reasons := make([]string, len(Reasons))
	for i, r := range Reasons {
		reasons[i] = string(r)
	}
	tests := []struct {
		schema   string
		property string
		keyword  string
		want     []string
	}{
		{SchemaFailed, "reason", "enum", reasons},
		{SchemaFailed, "step", "enum", append(slices.Clone(Steps), StepValidate)},
		{SchemaProgress, "step", "enum", Steps},
		{SchemaProgress, "status", "enum", Statuses},
		{SchemaCompleted, "type", "const", []string{TypeCompleted}},
		{SchemaFailed, "type", "const", []string{TypeFailed}},
		{SchemaProgress, "type", "const", []string{TypeProgress}},
	}
	for _, tt := range tests {
		t.Run(tt.schema+"/"+tt.property, func(t *testing.T) {
			v := loadSchema(t, tt.schema)["properties"].(map[string]any)[tt.property].(map[string]any)[tt.keyword]
			got, ok := v.([]any)
			if !ok {
				got = []any{v}
			}
			if !reflect.DeepEqual(asStrings(got), tt.want) {
				t.Errorf("%s = %v, want %q", tt.keyword, got, tt.want)
			}
		})
	}
	if len(Reasons) != 6 || len(Steps) != 6 || len(Statuses) != 3 {
		t.Errorf("the contract has 6 reasons, 6 steps and 3 statuses; got %d, %d, %d", len(Reasons), len(Steps), len(Statuses))
	}
}

// TestSchemaSharedDefinitions checks that every schema spells the idempotency key alike.
func TestSchemaSharedDefinitions(t *testing.T) {
	want := loadSchema(t, SchemaRequest)["properties"].(map[string]any)["idempotencyKey"].(map[string]any)
	for _, name := range []string{SchemaCompleted, SchemaFailed, SchemaProgress} {
		got := loadSchema(t, name)["properties"].(map[string]any)["idempotencyKey"].(map[string]any)
		delete(got, "description")
		w := map[string]any{}
		for k, v := range want {
			if k != "description" {
				w[k] = v
			}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: idempotencyKey = %v, want %v", name, got, w)
		}
	}
}

// requestDoc returns the contract's example request with change applied.
func requestDoc(t *testing.T, change func(m map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/request.json")
	if err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, data).(map[string]any)
	change(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaRequestDocuments checks request documents against the schema and against
// DecodeRequest + Validate, which must agree.
func TestSchemaRequestDocuments(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		name   string
		give   func(m map[string]any)
		wantOK bool
	}{
		{"contract example", func(m map[string]any) {}, true},
		{"minimal", func(m map[string]any) {
			for _, k := range []string{"productId", "productNo", "customerEmail", "services", "years", "billingContact", "poNumber", "autoRenew"} {
				delete(m, k)
			}
		}, true},
		{"IDs as numbers and strings", func(m map[string]any) {
			m["productId"] = "12"
			m["plan"] = map[string]any{"id": num("3049041101760282624")}
			m["services"] = []any{map[string]any{"id": "3129372068699893760", "quantity": num("2")}}
			m["billingContact"] = map[string]any{"id": "1234567890123456789"}
		}, true},
		{"unknown field", func(m map[string]any) { m["note"] = "gift" }, true},
		{"years 0", func(m map[string]any) { m["years"] = num("0") }, true},
		{"no key", func(m map[string]any) { delete(m, "idempotencyKey") }, false},
		{"key with surrounding space", func(m map[string]any) { m["idempotencyKey"] = "k " }, false},
		{"key too long", func(m map[string]any) { m["idempotencyKey"] = strings.Repeat("k", MaxKeyLength+1) }, false},
		{"no plan", func(m map[string]any) { delete(m, "plan") }, false},
		{"plan with id and name", func(m map[string]any) { m["plan"] = map[string]any{"id": "1", "name": "P"} }, false},
		{"plan empty", func(m map[string]any) { m["plan"] = map[string]any{} }, false},
		{"plan id fraction", func(m map[string]any) { m["plan"] = map[string]any{"id": num("1.5")} }, false},
		{"plan id letters", func(m map[string]any) { m["plan"] = map[string]any{"id": "x1"} }, false},
		{"plan id zero", func(m map[string]any) { m["plan"] = map[string]any{"id": num("0")} }, false},
		{"productId fraction", func(m map[string]any) { m["productId"] = num("12.5") }, false},
		{"productNo bad", func(m map[string]any) { m["productNo"] = "36 51" }, false},
		{"customerEmail bad", func(m map[string]any) { m["customerEmail"] = "it-at-customer" }, false},
		{"no quantity", func(m map[string]any) { delete(m, "quantity") }, false},
		{"quantity 0", func(m map[string]any) { m["quantity"] = num("0") }, false},
		{"quantity too big", func(m map[string]any) { m["quantity"] = num(strconv.Itoa(MaxQuantity + 1)) }, false},
		{"quantity as string", func(m map[string]any) { m["quantity"] = "100" }, false},
		{"years over max", func(m map[string]any) { m["years"] = num(strconv.Itoa(MaxYears + 1)) }, false},
		{"service without id or name", func(m map[string]any) { m["services"] = []any{map[string]any{"quantity": num("1")}} }, false},
		{"service quantity negative", func(m map[string]any) {
			m["services"] = []any{map[string]any{"name": "Hot Standby", "quantity": num("-1")}}
		}, false},
		{"billingContact with id and email", func(m map[string]any) {
			m["billingContact"] = map[string]any{"id": "1", "email": "b@r.example"}
		}, false},
		{"billingContact email bad", func(m map[string]any) { m["billingContact"] = map[string]any{"email": "b@r"} }, false},
		{"poNumber too long", func(m map[string]any) { m["poNumber"] = strings.Repeat("P", MaxPONumberLength+1) }, false},
		{"poNumber non-ASCII", func(m map[string]any) { m["poNumber"] = "PO-ä" }, false},
		{"autoRenew string", func(m map[string]any) { m["autoRenew"] = "true" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := requestDoc(t, tt.give)
			err := validateDoc(t, SchemaRequest, doc)
			if got := err == nil; got != tt.wantOK {
				t.Errorf("schema valid = %v, want %v (%v)\n%s", got, tt.wantOK, err, doc)
			}
			r, err := DecodeRequest(doc)
			if err == nil {
				err = r.Validate()
			}
			if got := err == nil; got != tt.wantOK {
				t.Errorf("DecodeRequest+Validate valid = %v, want %v (%v)\n%s", got, tt.wantOK, err, doc)
			}
		})
	}
}

func TestSchemaEventDocuments(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		give   string
		wantOK bool
	}{
		{"completed example", SchemaCompleted, "testdata/completed.json", true},
		{"failed example", SchemaFailed, "testdata/failed.json", true},
		{"progress example", SchemaProgress, "testdata/progress.json", true},
		{"completed as failed", SchemaFailed, "testdata/completed.json", false},
		{"failed as progress", SchemaProgress, "testdata/failed.json", false},
		{"progress as completed", SchemaCompleted, "testdata/progress.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			err = validateDoc(t, tt.schema, data)
			if got := err == nil; got != tt.wantOK {
				t.Errorf("valid = %v, want %v (%v)", got, tt.wantOK, err)
			}
		})
	}
}

// TestSchemaAcceptsWhatGoWrites marshals events and a normalized request as the worker does
// and checks them against their schemas; it also rejects broken variants.
func TestSchemaAcceptsWhatGoWrites(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 3, 456000000, time.UTC)
	saga := "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11"
	req, err := DecodeRequest(requestDoc(t, func(m map[string]any) {}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		schema string
		give   any
		wantOK bool
	}{
		{"normalized request", SchemaRequest, req.Normalize(), true},
		{"completed", SchemaCompleted, Completed{EventHeader: NewHeader(TypeCompleted, "k", saga, at), ProductID: 12, OrderNo: "ZC1"}, true},
		{"failed", SchemaFailed, Failed{EventHeader: NewHeader(TypeFailed, "k", saga, at), Step: StepValidate, Reason: ReasonConflict}, true},
		{"progress", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "k", saga, at), Step: StepCreateOrder, Status: StatusDone}, true},
		{"progress retrying", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "k", saga, at), Step: StepCreateOrder, Status: StatusRetrying, Attempt: 3}, true},
		{"wrong type", SchemaFailed, Failed{EventHeader: NewHeader(TypeCompleted, "k", saga, at), Step: StepValidate, Reason: ReasonConflict}, false},
		{"unknown reason", SchemaFailed, Failed{EventHeader: NewHeader(TypeFailed, "k", saga, at), Step: StepValidate, Reason: "oops"}, false},
		{"no step", SchemaFailed, Failed{EventHeader: NewHeader(TypeFailed, "k", saga, at), Reason: ReasonConflict}, false},
		{"bad saga id", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "k", "saga-1", at), Step: StepCreateOrder, Status: StatusDone}, false},
		{"no key", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "", saga, at), Step: StepCreateOrder, Status: StatusDone}, false},
		{"unknown status", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "k", saga, at), Step: StepCreateOrder, Status: "started"}, false},
		{"validate is not a progress step", SchemaProgress, Progress{EventHeader: NewHeader(TypeProgress, "k", saga, at), Step: StepValidate, Status: StatusDone}, false},
		{"no order number", SchemaCompleted, Completed{EventHeader: NewHeader(TypeCompleted, "k", saga, at), ProductID: 12}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			err = validateDoc(t, tt.schema, data)
			if got := err == nil; got != tt.wantOK {
				t.Errorf("valid = %v, want %v (%v)\n%s", got, tt.wantOK, err, data)
			}
		})
	}
}
