package messages

import (
	"strings"
	"testing"
)

// Go's encoding/json turns invalid UTF-8 into U+FFFD while decoding, so a name with a broken
// byte would pass validation and reach the partner mangled. Every string field is checked on
// its raw bytes, and the problem names the field.
func TestDecodeRequestRejectsInvalidUTF8(t *testing.T) {
	const bad = "\xff\xfe" // never valid in UTF-8
	base := func(member string) string {
		return `{"idempotencyKey":"utf8-1","plan":{"name":"Ultimate Plan"},"quantity":1,` + member + `}`
	}
	tests := []struct {
		name      string
		give      string
		wantField string
	}{
		{"plan name", `{"idempotencyKey":"utf8-1","plan":{"name":"Ultimate` + bad + ` Plan"},"quantity":1}`, "plan.name"},
		{"service name", base(`"services":[{"name":"Disaster Recovery"},{"name":"Call` + bad + `"}]`), "services[1].name"},
		{"customer email", base(`"customerEmail":"it` + bad + `@customer.example"`), "customerEmail"},
		{"billing contact email", base(`"billingContact":{"email":"b` + bad + `@reseller.example"}`), "billingContact.email"},
		{"poNumber", base(`"poNumber":"PO-` + bad + `"`), "poNumber"},
		{"productNo", base(`"productNo":"3651` + bad + `"`), "productNo"},
		{"plan id as a string", `{"idempotencyKey":"utf8-1","plan":{"id":"12` + bad + `"},"quantity":1}`, "plan.id"},
		{"idempotency key", `{"idempotencyKey":"utf8-` + bad + `","plan":{"name":"Ultimate Plan"},"quantity":1}`, "idempotencyKey"},
		{"lone surrogate escape", `{"idempotencyKey":"utf8-1","plan":{"name":"Ultimate \ud800 Plan"},"quantity":1}`, "plan.name"},
		{"unknown member", base(`"note":"` + bad + `"`), ""},
		{"member name", base(`"n` + bad + `":1`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.give))
			if err == nil {
				err = r.Validate()
			}
			if err == nil {
				t.Fatalf("no error; decoded %+v", r)
			}
			fields := problemFields(t, err)
			found := false
			for _, f := range fields {
				found = found || f == tt.wantField
			}
			if !found || !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("error %q (fields %q), want a UTF-8 problem of %q", err, fields, tt.wantField)
			}
		})
	}
}

// U+FFFD sent as such (raw or escaped) is a character like any other.
func TestDecodeRequestKeepsAReplacementCharacterThatWasSent(t *testing.T) {
	for _, name := range []string{"Ultimate \uFFFD Plan", `Ultimate \ufffd Plan`, `Ultimate \uFFFD Plan`} {
		r, err := DecodeRequest([]byte(`{"idempotencyKey":"utf8-2","plan":{"name":"` + name + `"},"quantity":1}`))
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// A request built in Go (not decoded) is checked too.
func TestValidateRejectsInvalidUTF8(t *testing.T) {
	r := validRequest()
	r.Plan = &Ref{Name: "Ultimate\xff Plan"}
	r.Services = []ServiceRef{{Name: "Call\xc3"}}
	err := r.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	fields := problemFields(t, err)
	if len(fields) != 2 || fields[0] != "plan.name" || fields[1] != "services[0].name" || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("error %q, fields %q", err, fields)
	}
}
