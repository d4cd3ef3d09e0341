package apitest

import (
	"strings"
	"testing"
)

// The checker must fail what the document does not allow, or a passing test proves nothing.
func TestCheckerRefusesWhatTheDocumentDoesNotAllow(t *testing.T) {
	c := New(t)
	steps := `"steps":[{"name":"resolve_product","status":"pending"},{"name":"resolve_plan","status":"pending"},{"name":"resolve_billing","status":"pending"},` +
		`{"name":"create_order","status":"pending"},{"name":"enable_renewal","status":"pending"},{"name":"fetch_activation","status":"pending"}]`
	valid := `{"idempotencyKey":"k","sagaId":"0daf98ab-9d0f-5851-97a9-6033f2915837","status":"accepted","deliveries":0,` + steps + `,"links":{"self":"/v1/purchases/k"}}`
	if err := c.Validate("Purchase", []byte(valid)); err != nil {
		t.Fatalf("a valid purchase fails: %v", err)
	}
	for name, bad := range map[string]string{
		"undeclared field": strings.Replace(valid, `"deliveries":0`, `"deliveries":0,"lease":"w1"`, 1),
		"unknown status":   strings.Replace(valid, `"accepted"`, `"queued"`, 1),
		"bad time":         strings.Replace(valid, `"deliveries":0`, `"deliveries":0,"createdAt":"yesterday"`, 1),
		"no links":         strings.Replace(valid, `,"links":{"self":"/v1/purchases/k"}`, ``, 1),
		"five steps":       strings.Replace(valid, `{"name":"resolve_product","status":"pending"},`, ``, 1),
		"bad outcome":      strings.Replace(valid, `"deliveries":0`, `"deliveries":0,"outcome":{"type":"purchase.completed"}`, 1),
	} {
		if err := c.Validate("Purchase", []byte(bad)); err == nil {
			t.Errorf("%s: passes", name)
		}
	}
	if err := c.Validate("Problem", []byte(`{"type":"urn:fulfil:problem:not-found","title":"Not found","detail":"x"}`)); err == nil {
		t.Error("a problem without status passes")
	}
}
