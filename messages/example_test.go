package messages_test

import (
	"errors"
	"fmt"

	"github.com/fulfil/fulfil/messages"
)

func ExampleDecodeRequest() {
	body := []byte(`{"idempotencyKey": "shop-eu-order-100231", "plan": {"id": 3049041101760282624},
		"quantity": 100, "billingContact": {"email": " Billing@Reseller.Example "}}`)
	req, err := messages.DecodeRequest(body)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	req = req.Normalize()
	fmt.Println(req.Plan.ID, req.ProductID, req.Years, req.AutoRenewEnabled(), req.BillingContact.Email)
	// Output: 3049041101760282624 12 1 true billing@reseller.example
}

func ExamplePurchaseRequest_Validate() {
	req, _ := messages.DecodeRequest([]byte(`{"idempotencyKey": "order-7", "quantity": 0, "years": 9}`))
	err := req.Validate()
	fmt.Println(errors.Is(err, messages.ErrInvalidRequest))
	fmt.Println(err)
	// Output:
	// true
	// invalid purchase request: plan: required; quantity: must be between 1 and 100000; years: must be between 1 and 5
}

func ExampleDecodeEvent() {
	ev, err := messages.DecodeEvent([]byte(`{"type": "purchase.failed", "idempotencyKey": "order-7",
		"sagaId": "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11", "time": "2026-11-22T10:00:01Z",
		"step": "resolve_plan", "reason": "invalid_request", "message": "plan \"X\" not found"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	if f, ok := ev.(*messages.Failed); ok {
		fmt.Println(f.Key(), f.Reason, f.Step)
	}
	// Output: order-7 invalid_request resolve_plan
}
