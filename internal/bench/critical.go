package bench

import (
	"fmt"
	"time"
)

// Sequential partner rounds of a new-license purchase (no productNo, no customerEmail), as the
// saga is written:
//
//   - workflow/resolve.go (*run).lookups: resolve_product is skipped for a new license;
//     resolve_plan (PurchaseInfo) and resolve_billing (BillingContacts) run concurrently: 1 round.
//   - workflow/order.go (*run).createOrder: one CreateOrder; the intent stored with the lookups
//     needs no reconciliation and checkOrderStatus calls nothing for a "succeed" order: 1 round.
//   - workflow/post.go (*run).postOrder: enableRenewal (EnableAutoRenewal, which answers true
//     when auto-renewal is already on, so no status read comes first: 1 round) runs
//     concurrently with fetchActivation (ActivationCode: 1 round): 1 round.
//
// The access token is fetched once per client (the first call), so it adds nothing amortised;
// Run warms the client up before measuring.
const (
	roundsLookups    = 1
	roundsOrder      = 1
	roundsRenewal    = 1
	roundsActivation = 1
)

// CallsPerSaga is the number of partner requests of one new-license purchase:
// PurchaseInfo, BillingContacts, CreateOrder, EnableAutoRenewal, ActivationCode.
const CallsPerSaga = 5

// CriticalRounds is the number of sequential partner rounds of a new-license purchase.
func CriticalRounds() int {
	return roundsLookups + roundsOrder + max(roundsRenewal, roundsActivation)
}

// CriticalPath is the least latency of a new-license purchase when every partner call takes
// latency: latency × CriticalRounds.
func CriticalPath(latency time.Duration) time.Duration {
	return latency * time.Duration(CriticalRounds())
}

// Formula spells out CriticalPath for latency.
func Formula(latency time.Duration) string {
	return fmt.Sprintf("critical path = L × (lookups %d + create order %d + max(renewal %d, activation %d)) + token ≈ 0 = %s × %d = %s",
		roundsLookups, roundsOrder, roundsRenewal, roundsActivation, latency, CriticalRounds(), CriticalPath(latency))
}
