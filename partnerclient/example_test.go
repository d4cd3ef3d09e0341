package partnerclient_test

import (
	"context"
	"fmt"
	"log"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// Buy a licence for a new PBX: the Ultimate Plan for 20 extensions, one year, then turn
// auto-renewal on and fetch the activation code. The simulator stands in for the portal.
func Example() {
	sim := partnertest.NewServer(partnertest.WithSeed(1))
	defer sim.Close()

	c, err := partnerclient.New(sim.URL,
		partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	info, err := c.PurchaseInfo(ctx, partnertest.ProductID, "")
	if err != nil {
		log.Fatal(err)
	}
	var plan partnerclient.PlanInfo
	for _, p := range info.Plans {
		if p.PlanName == "Ultimate Plan" {
			plan = p
		}
	}
	contacts, err := c.BillingContacts(ctx)
	if err != nil {
		log.Fatal(err)
	}

	order, err := c.CreateOrder(ctx, partnerclient.OrderRequest{
		OperationType: partnerclient.OperationPurchasePlan,
		ProductID:     partnertest.ProductID,
		BillingID:     contacts[0].BillingContactID,
		PONumber:      "PO-77812",
		ServiceList: []partnerclient.OrderLine{{
			ServiceType:  partnerclient.ServiceTypePlan,
			ServiceID:    plan.PlanID,
			Quantity:     20,
			PurchaseType: partnerclient.PurchaseTypePurchase,
			BillingModel: partnerclient.BillingModelRecurring,
			BillingCycle: partnerclient.BillingCycleAnnually,
			MultiCycle:   1,
		}},
	})
	if err != nil {
		outcome, reason := partnerclient.Classify(err)
		log.Fatalf("order %s (%s): %v", outcome, reason, err)
	}
	fmt.Println("order:", order.OrderStatus)

	renewing, err := c.EnableAutoRenewal(ctx, partnerclient.AutoRenewalRequest{
		ProductNo:       order.ProductNo,
		ProductID:       fmt.Sprint(partnertest.ProductID),
		PlanOrServiceID: plan.PlanID,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("auto-renewal:", renewing)

	code, err := c.ActivationCode(ctx, partnertest.ProductID, order.ProductNo)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("activation code issued:", code.Code != "")
	// Output:
	// order: succeed
	// auto-renewal: true
	// activation code issued: true
}
