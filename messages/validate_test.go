package messages

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// validRequest returns a request that passes Validate; tests change one thing at a time.
func validRequest() PurchaseRequest {
	return PurchaseRequest{
		IdempotencyKey: "shop-eu-order-100231",
		Plan:           &Ref{Name: "Ultimate Plan"},
		Quantity:       100,
	}
}

func TestValidate(t *testing.T) {
	no := false
	tests := []struct {
		name string
		give func(r *PurchaseRequest)
		want []string // fields with problems, in order; nil when valid
	}{
		{"minimal", func(r *PurchaseRequest) {}, nil},
		{"everything set", func(r *PurchaseRequest) {
			r.ProductID = 12
			r.ProductNo = "3651E1292455"
			r.CustomerEmail = "IT@Customer.Example"
			r.Services = []ServiceRef{{Name: "Disaster Recovery"}, {ID: "3129372068699893760", Quantity: 2}}
			r.Years = 5
			r.BillingContact = &ContactRef{ID: "1234567890123456789"}
			r.PONumber = "PO-77812"
			r.AutoRenew = &no
		}, nil},

		{"key missing", func(r *PurchaseRequest) { r.IdempotencyKey = "" }, []string{"idempotencyKey"}},
		{"key one character", func(r *PurchaseRequest) { r.IdempotencyKey = "k" }, nil},
		{"key at the limit", func(r *PurchaseRequest) { r.IdempotencyKey = strings.Repeat("k", MaxKeyLength) }, nil},
		{"key over the limit", func(r *PurchaseRequest) { r.IdempotencyKey = strings.Repeat("k", MaxKeyLength+1) }, []string{"idempotencyKey"}},
		{"key all printable ASCII", func(r *PurchaseRequest) { r.IdempotencyKey = "a !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~z" }, nil},
		{"key inner space", func(r *PurchaseRequest) { r.IdempotencyKey = "order 1" }, nil},
		{"key leading space", func(r *PurchaseRequest) { r.IdempotencyKey = " order-1" }, []string{"idempotencyKey"}},
		{"key trailing space", func(r *PurchaseRequest) { r.IdempotencyKey = "order-1 " }, []string{"idempotencyKey"}},
		{"key only a space", func(r *PurchaseRequest) { r.IdempotencyKey = " " }, []string{"idempotencyKey"}},
		{"key tab", func(r *PurchaseRequest) { r.IdempotencyKey = "order\t1" }, []string{"idempotencyKey"}},
		{"key DEL", func(r *PurchaseRequest) { r.IdempotencyKey = "order\x7f" }, []string{"idempotencyKey"}},
		{"key non-ASCII", func(r *PurchaseRequest) { r.IdempotencyKey = "bestellung-ä" }, []string{"idempotencyKey"}},

		{"productId default", func(r *PurchaseRequest) { r.ProductID = 0 }, nil},
		{"productId other", func(r *PurchaseRequest) { r.ProductID = 13 }, nil},
		{"productId negative", func(r *PurchaseRequest) { r.ProductID = -1 }, []string{"productId"}},

		{"productNo with hyphen", func(r *PurchaseRequest) { r.ProductNo = "abc-123" }, nil},
		{"productNo trimmed", func(r *PurchaseRequest) { r.ProductNo = " 3651E1292455 " }, nil},
		{"productNo 64", func(r *PurchaseRequest) { r.ProductNo = strings.Repeat("A", 64) }, nil},
		{"productNo too long", func(r *PurchaseRequest) { r.ProductNo = strings.Repeat("A", MaxProductNoLength+1) }, []string{"productNo"}},
		{"productNo space", func(r *PurchaseRequest) { r.ProductNo = "3651 E129" }, []string{"productNo"}},
		{"productNo underscore", func(r *PurchaseRequest) { r.ProductNo = "3651_E129" }, []string{"productNo"}},

		{"customerEmail", func(r *PurchaseRequest) { r.CustomerEmail = "it+pbx@sub.customer.example" }, nil},
		{"customerEmail no at", func(r *PurchaseRequest) { r.CustomerEmail = "it.customer.example" }, []string{"customerEmail"}},
		{"customerEmail no domain dot", func(r *PurchaseRequest) { r.CustomerEmail = "it@localhost" }, []string{"customerEmail"}},
		{"customerEmail two ats", func(r *PurchaseRequest) { r.CustomerEmail = "it@x@customer.example" }, []string{"customerEmail"}},
		{"customerEmail empty local", func(r *PurchaseRequest) { r.CustomerEmail = "@customer.example" }, []string{"customerEmail"}},
		{"customerEmail inner space", func(r *PurchaseRequest) { r.CustomerEmail = "i t@customer.example" }, []string{"customerEmail"}},
		{"customerEmail empty label", func(r *PurchaseRequest) { r.CustomerEmail = "it@customer..example" }, []string{"customerEmail"}},
		{"customerEmail display name", func(r *PurchaseRequest) { r.CustomerEmail = "IT <it@customer.example>" }, []string{"customerEmail"}},
		{"customerEmail too long", func(r *PurchaseRequest) { r.CustomerEmail = "it@" + strings.Repeat("a.", 126) + "example" }, []string{"customerEmail"}},

		{"plan missing", func(r *PurchaseRequest) { r.Plan = nil }, []string{"plan"}},
		{"plan by id", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "3049041101760282624"} }, nil},
		{"plan empty", func(r *PurchaseRequest) { r.Plan = &Ref{} }, []string{"plan"}},
		{"plan blank name", func(r *PurchaseRequest) { r.Plan = &Ref{Name: "  "} }, []string{"plan"}},
		{"plan id and name", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "1", Name: "Ultimate Plan"} }, []string{"plan"}},
		{"plan id not digits", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "12a"} }, []string{"plan.id"}},
		{"plan id negative", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "-12"} }, []string{"plan.id"}},
		{"plan id zero", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "000"} }, []string{"plan.id"}},
		{"plan id max int64", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "9223372036854775807"} }, nil},
		{"plan id over int64", func(r *PurchaseRequest) { r.Plan = &Ref{ID: "9223372036854775808"} }, []string{"plan.id"}},
		{"plan name 128", func(r *PurchaseRequest) { r.Plan = &Ref{Name: strings.Repeat("ü", 128)} }, nil},
		{"plan name 129", func(r *PurchaseRequest) { r.Plan = &Ref{Name: strings.Repeat("ü", MaxNameLength+1)} }, []string{"plan.name"}},
		{"plan name control", func(r *PurchaseRequest) { r.Plan = &Ref{Name: "Ultimate\nPlan"} }, []string{"plan.name"}},

		{"service empty", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Quantity: 1}} }, []string{"services[0]"}},
		{"service id and name", func(r *PurchaseRequest) { r.Services = []ServiceRef{{ID: "7", Name: "Hot Standby"}} }, []string{"services[0]"}},
		{"service bad id", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: "A"}, {ID: "x7"}} }, []string{"services[1].id"}},
		{"service long name", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: strings.Repeat("s", MaxNameLength+1)}} }, []string{"services[0].name"}},
		{"service quantity 0", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: "A", Quantity: 0}} }, nil},
		{"service quantity max", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: "A", Quantity: MaxQuantity}} }, nil},
		{"service quantity negative", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: "A", Quantity: -1}} }, []string{"services[0].quantity"}},
		{"service quantity over max", func(r *PurchaseRequest) { r.Services = []ServiceRef{{Name: "A", Quantity: MaxQuantity + 1}} }, []string{"services[0].quantity"}},
		{"service duplicate name", func(r *PurchaseRequest) {
			r.Services = []ServiceRef{{Name: "Hot Standby"}, {Name: "Disaster Recovery"}, {Name: " hot standby"}}
		}, []string{"services[2]"}},
		{"service duplicate id", func(r *PurchaseRequest) { r.Services = []ServiceRef{{ID: "7"}, {ID: "007"}} }, []string{"services[1]"}},
		{"service id equal to a name", func(r *PurchaseRequest) { r.Services = []ServiceRef{{ID: "7"}, {Name: "7"}} }, nil},

		{"quantity 0", func(r *PurchaseRequest) { r.Quantity = 0 }, []string{"quantity"}},
		{"quantity 1", func(r *PurchaseRequest) { r.Quantity = 1 }, nil},
		{"quantity max", func(r *PurchaseRequest) { r.Quantity = MaxQuantity }, nil},
		{"quantity over max", func(r *PurchaseRequest) { r.Quantity = MaxQuantity + 1 }, []string{"quantity"}},
		{"quantity negative", func(r *PurchaseRequest) { r.Quantity = -3 }, []string{"quantity"}},

		{"years 1", func(r *PurchaseRequest) { r.Years = 1 }, nil},
		{"years max", func(r *PurchaseRequest) { r.Years = MaxYears }, nil},
		{"years over max", func(r *PurchaseRequest) { r.Years = MaxYears + 1 }, []string{"years"}},
		{"years negative", func(r *PurchaseRequest) { r.Years = -1 }, []string{"years"}},

		{"billingContact by email", func(r *PurchaseRequest) { r.BillingContact = &ContactRef{Email: "billing@reseller.example"} }, nil},
		{"billingContact empty", func(r *PurchaseRequest) { r.BillingContact = &ContactRef{} }, []string{"billingContact"}},
		{"billingContact both", func(r *PurchaseRequest) { r.BillingContact = &ContactRef{ID: "1", Email: "b@r.example"} }, []string{"billingContact"}},
		{"billingContact bad id", func(r *PurchaseRequest) { r.BillingContact = &ContactRef{ID: "1.5"} }, []string{"billingContact.id"}},
		{"billingContact bad email", func(r *PurchaseRequest) { r.BillingContact = &ContactRef{Email: "billing"} }, []string{"billingContact.email"}},

		{"poNumber 64", func(r *PurchaseRequest) { r.PONumber = strings.Repeat("P", 64) }, nil},
		{"poNumber 65", func(r *PurchaseRequest) { r.PONumber = strings.Repeat("P", 65) }, []string{"poNumber"}},
		{"poNumber trimmed to 64", func(r *PurchaseRequest) { r.PONumber = " " + strings.Repeat("P", 64) + " " }, nil},
		{"poNumber non-ASCII", func(r *PurchaseRequest) { r.PONumber = "Bestellung-ä" }, []string{"poNumber"}},
		{"poNumber control", func(r *PurchaseRequest) { r.PONumber = "PO\x001" }, []string{"poNumber"}},

		{"several problems at once", func(r *PurchaseRequest) {
			r.IdempotencyKey = ""
			r.Plan = nil
			r.Quantity = 0
			r.Years = 9
			r.PONumber = strings.Repeat("P", 65)
		}, []string{"idempotencyKey", "plan", "quantity", "years", "poNumber"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRequest()
			tt.give(&r)
			err := r.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if got := problemFields(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problem fields = %q, want %q (error: %v)", got, tt.want, err)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	r := validRequest()
	r.Quantity = 0
	r.Plan = nil
	err := r.Validate()
	want := fmt.Sprintf("invalid purchase request: plan: required; quantity: must be between %d and %d", MinQuantity, MaxQuantity)
	if err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %q", err, want)
	}
	wrapped := errors.Join(errors.New("decoding"), err)
	var ve *ValidationError
	if !errors.Is(wrapped, ErrInvalidRequest) || !errors.As(wrapped, &ve) || len(ve.Problems) != 2 {
		t.Errorf("wrapped error %v does not match ErrInvalidRequest / *ValidationError", wrapped)
	}
	if errors.Is(errors.New("invalid purchase request"), ErrInvalidRequest) {
		t.Error("an unrelated error matches ErrInvalidRequest")
	}
}

func TestValidationErrorWholeMessage(t *testing.T) {
	err := &ValidationError{Problems: []Problem{{Message: "message is empty"}}}
	if got, want := err.Error(), "invalid purchase request: message is empty"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
