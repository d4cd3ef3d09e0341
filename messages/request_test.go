package messages

import (
	"reflect"
	"regexp"
	"testing"
)

func TestNormalize(t *testing.T) {
	yes, no := true, false
	give := PurchaseRequest{
		IdempotencyKey: "order-1",
		ProductNo:      " 3651E1292455 ",
		CustomerEmail:  " IT@Customer.Example ",
		Plan:           &Ref{ID: "007"},
		Services:       []ServiceRef{{Name: " Hot Standby "}, {ID: "0042", Quantity: 2}, {Name: "Disaster Recovery"}},
		Quantity:       5,
		BillingContact: &ContactRef{Email: "Billing@Reseller.EXAMPLE"},
		PONumber:       " PO-1 ",
	}
	want := PurchaseRequest{
		IdempotencyKey: "order-1",
		ProductID:      12,
		ProductNo:      "3651E1292455",
		CustomerEmail:  "it@customer.example",
		Plan:           &Ref{ID: "7"},
		Services:       []ServiceRef{{Name: "Hot Standby"}, {ID: "42", Quantity: 2}, {Name: "Disaster Recovery"}},
		Quantity:       5,
		Years:          1,
		BillingContact: &ContactRef{Email: "billing@reseller.example"},
		PONumber:       "PO-1",
		AutoRenew:      &yes,
	}
	got := give.Normalize()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Normalize =\n%+v\nwant\n%+v", got, want)
	}
	if again := got.Normalize(); !reflect.DeepEqual(again, got) {
		t.Errorf("Normalize is not idempotent:\n%+v\n%+v", again, got)
	}

	// The result shares no memory with the input.
	got.Plan.ID = "8"
	got.Services[0].Name = "changed"
	got.BillingContact.Email = "changed"
	*got.AutoRenew = false
	if give.Plan.ID != "007" || give.Services[0].Name != " Hot Standby " ||
		give.BillingContact.Email != "Billing@Reseller.EXAMPLE" || give.AutoRenew != nil {
		t.Errorf("Normalize aliased its input: %+v", give)
	}

	kept := PurchaseRequest{ProductID: 13, Years: 3, AutoRenew: &no, Services: []ServiceRef{}}.Normalize()
	if kept.ProductID != 13 || kept.Years != 3 || kept.AutoRenewEnabled() || kept.Services != nil {
		t.Errorf("Normalize changed explicit values or kept an empty list: %+v", kept)
	}
}

func TestAutoRenewEnabled(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name string
		give *bool
		want bool
	}{
		{"absent", nil, true},
		{"true", &yes, true},
		{"false", &no, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (PurchaseRequest{AutoRenew: tt.give}).AutoRenewEnabled(); got != tt.want {
				t.Errorf("AutoRenewEnabled = %v, want %v", got, tt.want)
			}
		})
	}
}

// fingerprintOf decodes a request body and returns its fingerprint.
func fingerprintOf(t *testing.T, body string) string {
	t.Helper()
	r, err := DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeRequest(%s): %v", body, err)
	}
	return r.Fingerprint()
}

const baseBody = `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
	"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`

func TestFingerprintSame(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"identical", baseBody},
		{"key order and whitespace", `{"quantity":10,"billingContact":{"id":"42"},"services":[{"name":"Disaster Recovery"},{"id":7}],"plan":{"name":"Ultimate Plan"},"idempotencyKey":"order-1"}`},
		{"IDs as strings and numbers", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": "7"}], "billingContact": {"id": 42}}`},
		{"leading zeros in IDs", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": "007"}], "billingContact": {"id": "0042"}}`},
		{"defaults sent explicitly", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"},
			"productId": 12, "years": 1, "autoRenew": true, "poNumber": "", "customerEmail": ""}`},
		{"productId as a string", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}, "productId": "12"}`},
		{"unknown fields", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan", "x": 1}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}, "note": "hi"}`},
		{"case and spaces of names", `{"idempotencyKey": "order-1", "plan": {"name": " ultimate plan "}, "quantity": 10,
			"services": [{"name": "DISASTER RECOVERY"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"nulls", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}, "years": null, "autoRenew": null}`},
	}
	want := fingerprintOf(t, baseBody)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("fingerprint %q is not hex SHA-256", want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fingerprintOf(t, tt.give); got != want {
				t.Errorf("fingerprint = %s, want %s", got, want)
			}
		})
	}
}

func TestFingerprintDifferent(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"key", `{"idempotencyKey": "order-2", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"plan", `{"idempotencyKey": "order-1", "plan": {"name": "Enterprise Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"plan by id", `{"idempotencyKey": "order-1", "plan": {"id": 1}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"quantity", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 11,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"years", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "years": 2,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"productId", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "productId": 13,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"productNo", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "productNo": "A1",
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"customerEmail", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "customerEmail": "a@b.example",
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"autoRenew false", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "autoRenew": false,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"poNumber", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10, "poNumber": "PO-1",
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "42"}}`},
		{"services order", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"id": 7}, {"name": "Disaster Recovery"}], "billingContact": {"id": "42"}}`},
		{"service quantity", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7, "quantity": 2}], "billingContact": {"id": "42"}}`},
		{"service missing", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}], "billingContact": {"id": "42"}}`},
		{"billing contact", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}], "billingContact": {"id": "43"}}`},
		{"no billing contact", `{"idempotencyKey": "order-1", "plan": {"name": "Ultimate Plan"}, "quantity": 10,
			"services": [{"name": "Disaster Recovery"}, {"id": 7}]}`},
	}
	base := fingerprintOf(t, baseBody)
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fingerprintOf(t, tt.give)
			if other, dup := seen[got]; dup {
				t.Errorf("fingerprint %s equals that of %s", got, other)
			}
			seen[got] = tt.name
		})
	}
}

func TestFingerprintDoesNotChangeRequest(t *testing.T) {
	r := PurchaseRequest{IdempotencyKey: "k", Plan: &Ref{Name: "Ultimate Plan"}, Services: []ServiceRef{{Name: "Hot Standby"}}, Quantity: 1}
	r.Fingerprint()
	if r.Plan.Name != "Ultimate Plan" || r.Services[0].Name != "Hot Standby" || r.Years != 0 || r.AutoRenew != nil {
		t.Errorf("Fingerprint changed its receiver: %+v", r)
	}
}
