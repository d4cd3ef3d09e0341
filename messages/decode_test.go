package messages

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// problemFields returns the fields named by err, which must be a *ValidationError.
func problemFields(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("error %v does not match ErrInvalidRequest", err)
	}
	fields := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		fields[i] = p.Field
	}
	return fields
}

func TestDecodeRequestExample(t *testing.T) {
	data, err := os.ReadFile("testdata/request.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(data)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	yes := true
	want := PurchaseRequest{
		IdempotencyKey: "shop-eu-order-100231",
		ProductID:      12,
		ProductNo:      "3651E1292455",
		CustomerEmail:  "it@customer.example",
		Plan:           &Ref{Name: "Ultimate Plan"},
		Services:       []ServiceRef{{Name: "Disaster Recovery"}},
		Quantity:       100,
		Years:          2,
		BillingContact: &ContactRef{Email: "billing@reseller.example"},
		PONumber:       "PO-77812",
		AutoRenew:      &yes,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeRequest =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantFields []string
		wantMsg    string
	}{
		{"empty", ``, []string{""}, "message is empty"},
		{"blank", "  \n", []string{""}, "message is empty"},
		{"invalid JSON", `{"idempotencyKey": "k",}`, []string{""}, "not valid JSON at byte"},
		{"truncated", `{"idempotencyKey": "k"`, []string{""}, "not valid JSON"},
		{"array", `[{"idempotencyKey": "k"}]`, []string{""}, "must be a JSON object, not an array"},
		{"string", `"k"`, []string{""}, "must be a JSON object, not a string"},
		{"null", `null`, []string{""}, "must be a JSON object, not null"},
		{"number", `12`, []string{""}, "must be a JSON object, not a number"},
		{"trailing object", `{"quantity": 1} {}`, []string{""}, "unexpected data after the JSON object"},
		{"trailing garbage", `{"quantity": 1} x`, []string{""}, "unexpected data after the JSON object"},
		{"too large", `{"poNumber": "` + strings.Repeat("x", MaxRequestBytes) + `"}`, []string{""}, "the limit is " + strconv.Itoa(MaxRequestBytes)},
		{"key not a string", `{"idempotencyKey": 12}`, []string{"idempotencyKey"}, "idempotencyKey: must be a string"},
		{"quantity float", `{"quantity": 1.5}`, []string{"quantity"}, "quantity: must be an integer"},
		{"quantity string", `{"quantity": "100"}`, []string{"quantity"}, "quantity: must be an integer"},
		{"quantity overflow", `{"quantity": 1e30}`, []string{"quantity"}, "quantity: must be an integer"},
		{"productId float", `{"productId": 12.0}`, []string{"productId"}, "productId: must be an integer"},
		{"productId word", `{"productId": "twelve"}`, []string{"productId"}, "productId: must be an integer"},
		{"plan not object", `{"plan": "Ultimate Plan"}`, []string{"plan"}, "plan: must be an object"},
		{"plan id float", `{"plan": {"id": 1.5}}`, []string{"plan.id"}, "plan.id: must be an ID"},
		{"plan id object", `{"plan": {"id": {}}}`, []string{"plan.id"}, "plan.id: must be an ID"},
		{"services not array", `{"services": {"name": "x"}}`, []string{"services"}, "services: must be an array"},
		{"service null", `{"services": [{"name": "x"}, null]}`, []string{"services[1]"}, "services[1]: must be an object"},
		{"service quantity", `{"services": [{"name": "x", "quantity": "2"}]}`, []string{"services[0].quantity"}, "must be an integer"},
		{"autoRenew string", `{"autoRenew": "yes"}`, []string{"autoRenew"}, "autoRenew: must be true or false"},
		{"billing email number", `{"billingContact": {"email": 1}}`, []string{"billingContact.email"}, "must be a string"},
		{
			"every bad field",
			`{"idempotencyKey": 1, "quantity": "x", "years": 1.5, "plan": [], "poNumber": false}`,
			[]string{"idempotencyKey", "plan", "quantity", "years", "poNumber"},
			"invalid purchase request: idempotencyKey: must be a string; plan: must be an object; quantity: must be an integer; years: must be an integer; poNumber: must be a string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.give))
			if err == nil {
				t.Fatal("DecodeRequest succeeded")
			}
			if got := problemFields(t, err); !reflect.DeepEqual(got, tt.wantFields) {
				t.Errorf("fields = %q, want %q", got, tt.wantFields)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeRequestLenient(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		give string
		want PurchaseRequest
	}{
		{"unknown fields ignored", `{"idempotencyKey": "k", "colour": "blue", "plan": {"name": "P", "tier": 3}}`,
			PurchaseRequest{IdempotencyKey: "k", Plan: &Ref{Name: "P"}}},
		{"field names are case-sensitive", `{"IdempotencyKey": "k", "QUANTITY": 5}`, PurchaseRequest{}},
		{"last duplicate wins", `{"quantity": 1, "quantity": 7}`, PurchaseRequest{Quantity: 7}},
		{"null is absent", `{"plan": null, "services": null, "billingContact": null, "autoRenew": null, "productId": null, "quantity": null}`,
			PurchaseRequest{}},
		{"IDs as numbers and strings", `{"productId": "12", "plan": {"id": 3049041101760282624}, "billingContact": {"id": "42"}}`,
			PurchaseRequest{ProductID: 12, Plan: &Ref{ID: "3049041101760282624"}, BillingContact: &ContactRef{ID: "42"}}},
		{"services", `{"services": [{"id": 7, "quantity": 2}, {"name": "Hot Standby"}]}`,
			PurchaseRequest{Services: []ServiceRef{{ID: "7", Quantity: 2}, {Name: "Hot Standby"}}}},
		{"empty services", `{"services": []}`, PurchaseRequest{Services: []ServiceRef{}}},
		{"autoRenew", `{"autoRenew": true}`, PurchaseRequest{AutoRenew: &yes}},
		{"surrounding whitespace", " \n\t{\"quantity\": 3}\n ", PurchaseRequest{Quantity: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.give))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeRequest = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIDUnmarshal(t *testing.T) {
	tests := []struct {
		give    string
		want    ID
		wantErr bool
	}{
		{give: `"123"`, want: "123"},
		{give: `123`, want: "123"},
		{give: `3049041101760282624`, want: "3049041101760282624"},
		{give: `"3049041101760282624"`, want: "3049041101760282624"},
		{give: `18446744073709551615`, want: "18446744073709551615"}, // decodes; Validate rejects it
		{give: `" 42 "`, want: "42"},
		{give: `null`, want: ""},
		{give: `""`, want: ""},
		{give: `1.5`, wantErr: true},
		{give: `1.0`, wantErr: true},
		{give: `1e3`, wantErr: true},
		{give: `3049041101760282624.0`, wantErr: true},
		{give: `99999999999999999999`, wantErr: true},
		{give: `true`, wantErr: true},
		{give: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var got ID
			err := json.Unmarshal([]byte(tt.give), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInt64Unmarshal(t *testing.T) {
	tests := []struct {
		give    string
		want    Int64
		wantErr bool
	}{
		{give: `12`, want: 12},
		{give: `"12"`, want: 12},
		{give: `" 12 "`, want: 12},
		{give: `3049041101760282624`, want: 3049041101760282624},
		{give: `"3049041101760282624"`, want: 3049041101760282624},
		{give: `-5`, want: -5},
		{give: `null`, want: 0},
		{give: `12.0`, wantErr: true},
		{give: `1e2`, wantErr: true},
		{give: `9223372036854775808`, wantErr: true},
		{give: `"twelve"`, wantErr: true},
		{give: `""`, wantErr: true},
		{give: `false`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var got Int64
			err := json.Unmarshal([]byte(tt.give), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Int64 = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPeekKey(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"valid request", `{"idempotencyKey": "order-1", "quantity": 1}`, "order-1"},
		{"invalid later field", `{"idempotencyKey": "order-1", "quantity": "many"}`, "order-1"},
		{"syntax error after key", `{"idempotencyKey": "order-1", "quantity": }`, "order-1"},
		{"truncated after key", `{"plan": {"name": "P"}, "idempotencyKey": "order-1", "qua`, "order-1"},
		{"syntax error before key", `{"quantity": ,"idempotencyKey": "order-1"}`, ""},
		{"trailing data", `{"idempotencyKey": "order-1"} xyz`, "order-1"},
		{"oversize", `{"idempotencyKey": "order-1", "poNumber": "` + strings.Repeat("x", MaxRequestBytes) + `"}`, "order-1"},
		{"nested key is not the key", `{"plan": {"idempotencyKey": "order-1"}}`, ""},
		{"last wins", `{"idempotencyKey": "a", "idempotencyKey": "b"}`, "b"},
		{"last is not a string", `{"idempotencyKey": "a", "idempotencyKey": 5}`, ""},
		{"escaped", `{"idempotencyKey": "order\u002d1"}`, "order-1"},
		{"number", `{"idempotencyKey": 5}`, ""},
		{"empty", `{"idempotencyKey": ""}`, ""},
		{"surrounding space", `{"idempotencyKey": " order-1"}`, ""},
		{"control character", `{"idempotencyKey": "order\n1"}`, ""},
		{"too long", `{"idempotencyKey": "` + strings.Repeat("k", MaxKeyLength+1) + `"}`, ""},
		{"longest", `{"idempotencyKey": "` + strings.Repeat("k", MaxKeyLength) + `"}`, strings.Repeat("k", MaxKeyLength)},
		{"wrong case", `{"IdempotencyKey": "order-1"}`, ""},
		{"array", `["order-1"]`, ""},
		{"not JSON", `idempotencyKey=order-1`, ""},
		{"nothing", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PeekKey([]byte(tt.give)); got != tt.want {
				t.Errorf("PeekKey = %q, want %q", got, tt.want)
			}
		})
	}
}
