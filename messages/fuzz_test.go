package messages

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzDecodeRequest checks that decoding never panics, that every failure is a
// *ValidationError, and that a valid request survives a JSON round trip with its fingerprint.
func FuzzDecodeRequest(f *testing.F) {
	example, err := os.ReadFile("testdata/request.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		`{"idempotencyKey": "k", "plan": {"id": 3049041101760282624}, "quantity": 1}`,
		`{"idempotencyKey": "k", "plan": {"id": "007"}, "quantity": "1"}`,
		`{"idempotencyKey": "k", "plan": {"name": " Ultimate Plan "}, "quantity": 1, "services": [{"id": 1}, {"name": "A", "quantity": 2}]}`,
		`{"idempotencyKey": "k", "idempotencyKey": "j", "plan": {"name": "P"}, "quantity": 1, "years": 0, "autoRenew": false}`,
		`{"idempotencyKey": "k", "plan": {"name": "P"}, "quantity": 1, "billingContact": {"email": " B@X.EXAMPLE "}}`,
		`{"idempotencyKey": "k", "plan": null, "quantity": 1.5}`,
		`[1, 2]`,
		`{"a": {"b": [}`,
		`{} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		key := PeekKey(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("DecodeRequest error %v (%T) is not a non-empty *ValidationError", err, err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			return
		}
		if key != req.IdempotencyKey {
			t.Errorf("PeekKey = %q, want the decoded key %q", key, req.IdempotencyKey)
		}
		norm := req.Normalize()
		if again := norm.Normalize(); !reflect.DeepEqual(again, norm) {
			t.Errorf("Normalize is not idempotent:\n%+v\n%+v", again, norm)
		}
		if norm.Fingerprint() != req.Fingerprint() {
			t.Errorf("normalizing changed the fingerprint")
		}
		for _, r := range []PurchaseRequest{req, norm} {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := DecodeRequest(b)
			if err != nil {
				t.Fatalf("DecodeRequest(%s): %v", b, err)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("re-decoded request %s is invalid: %v", b, err)
			}
			if got.Fingerprint() != req.Fingerprint() {
				t.Errorf("fingerprint changed in a round trip through %s", b)
			}
		}
	})
}
