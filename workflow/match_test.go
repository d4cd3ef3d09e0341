package workflow

import (
	"strings"
	"testing"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
)

var testCatalogue = partnerclient.PurchaseInfo{
	Plans: []partnerclient.PlanInfo{
		{PlanID: 100, PlanName: "Enterprise Plan", MinQuantity: 1, MaxQuantity: 1000},
		{PlanID: 200, PlanName: "Ultimate Plan", MinQuantity: 1, MaxQuantity: 1000},
	},
	Services: []partnerclient.ServiceInfo{
		{ServiceID: 300, ServiceName: "Disaster Recovery", ConnectionPlanIDs: []partnerclient.ID{200}},
		{ServiceID: 400, ServiceName: "Hot Standby", ConnectionPlanIDs: []partnerclient.ID{100, 200}},
	},
}

func TestMatchPlan(t *testing.T) {
	tests := []struct {
		name     string
		give     messages.PurchaseRequest
		wantPlan partnerclient.ID
		wantSvcs []partnerclient.ID
		wantErr  string
	}{
		{name: "by name, any case", give: messages.PurchaseRequest{Plan: &messages.Ref{Name: " ultimate plan"}, Quantity: 5}, wantPlan: 200},
		{name: "by id", give: messages.PurchaseRequest{Plan: &messages.Ref{ID: "100"}, Quantity: 5}, wantPlan: 100},
		{name: "unknown plan lists the catalogue", give: messages.PurchaseRequest{Plan: &messages.Ref{Name: "Ultimite Plan"}, Quantity: 5},
			wantErr: `plan "Ultimite Plan" not found; available: Enterprise Plan, Ultimate Plan`},
		{name: "quantity above the plan's maximum", give: messages.PurchaseRequest{Plan: &messages.Ref{ID: "100"}, Quantity: 1001},
			wantErr: "quantity 1001 is outside Enterprise Plan's range 1–1000"},
		{name: "services by name and id", give: messages.PurchaseRequest{Plan: &messages.Ref{ID: "200"}, Quantity: 5,
			Services: []messages.ServiceRef{{Name: "disaster recovery"}, {ID: "400", Quantity: 2}}}, wantPlan: 200, wantSvcs: []partnerclient.ID{300, 400}},
		{name: "service not offered with the plan", give: messages.PurchaseRequest{Plan: &messages.Ref{ID: "100"}, Quantity: 5,
			Services: []messages.ServiceRef{{Name: "Disaster Recovery"}}},
			wantErr: `service "Disaster Recovery" cannot be ordered with Enterprise Plan; it needs Ultimate Plan`},
		{name: "unknown service", give: messages.PurchaseRequest{Plan: &messages.Ref{ID: "100"}, Quantity: 5,
			Services: []messages.ServiceRef{{Name: "Fax"}}},
			wantErr: `service "Fax" not found; available: Disaster Recovery, Hot Standby`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := matchPlan(testCatalogue, tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.PlanID != tt.wantPlan {
				t.Errorf("plan = %d, want %d", got.PlanID, tt.wantPlan)
			}
			if len(got.Services) != len(tt.wantSvcs) {
				t.Fatalf("services = %+v, want %v", got.Services, tt.wantSvcs)
			}
			for i, id := range tt.wantSvcs {
				if got.Services[i].ServiceID != id {
					t.Errorf("service %d = %d, want %d", i, got.Services[i].ServiceID, id)
				}
			}
		})
	}
}

func TestMatchBilling(t *testing.T) {
	one := []partnerclient.BillingContact{{BillingContactID: 7, EmailAddress: "billing@reseller.example"}}
	two := append(one, partnerclient.BillingContact{BillingContactID: 8, EmailAddress: "ap@reseller.example"})
	tests := []struct {
		name     string
		contacts []partnerclient.BillingContact
		give     *messages.ContactRef
		want     partnerclient.ID
		wantErr  string
	}{
		{name: "the only contact", contacts: one, want: 7},
		{name: "none given, several exist", contacts: two, wantErr: "billingContact is required: the account has 2 billing contacts (ap@reseller.example, billing@reseller.example)"},
		{name: "none exist", wantErr: "billingContact: the partner account has no billing contact"},
		{name: "by e-mail", contacts: two, give: &messages.ContactRef{Email: "ap@reseller.example"}, want: 8},
		{name: "by id", contacts: two, give: &messages.ContactRef{ID: "7"}, want: 7},
		{name: "unknown", contacts: two, give: &messages.ContactRef{Email: "x@y.example"}, wantErr: `billing contact "x@y.example" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := matchBilling(tt.contacts, tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ContactID != tt.want {
				t.Errorf("contact = %d, want %d", got.ContactID, tt.want)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	retry := &RetryError{Step: messages.StepEnableRenewal}
	tests := []struct {
		name string
		give *State
		want messages.Reason
	}{
		{name: "order exists", give: &State{Order: OrderStep{Result: &OrderResult{OrderNo: "ZC1"}}}, want: messages.ReasonPostOrderFailed},
		{name: "unknown send outstanding", give: &State{Order: OrderStep{Intent: &OrderIntent{Sends: 1, Unknown: true}}}, want: messages.ReasonNeedsReconciliation},
		{name: "sent, definitely not placed", give: &State{Order: OrderStep{Intent: &OrderIntent{Sends: 1}}}, want: messages.ReasonExhausted},
		{name: "nothing sent", give: &State{}, want: messages.ReasonExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Terminal(tt.give, retry).Reason; got != tt.want {
				t.Errorf("reason = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDefaultPONumberIsStable(t *testing.T) {
	a, b := DefaultPONumber("shop-1"), DefaultPONumber("shop-1")
	if a != b || a == DefaultPONumber("shop-2") || !strings.HasPrefix(a, "FUL-") || len(a) != 28 {
		t.Errorf("DefaultPONumber: %q %q", a, b)
	}
}
