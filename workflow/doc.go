// Package workflow is the purchase saga: it turns one validated purchase request into one
// Partner Portal order, with auto-renewal enabled and the activation code fetched.
//
// The saga has six named steps (see messages.Steps):
//
//	resolve_product  existing PBX SN verified in the product list, or the subordinate customer
//	                 resolved by e-mail (skipped for a new license bought for the partner itself)
//	resolve_plan     plan and services resolved by ID or name against purchase_product_info
//	resolve_billing  billing contact resolved by ID or e-mail (or the account's only contact)
//	create_order     the only call that spends money; exactly once (see below)
//	enable_renewal   auto-renewal enabled (skipped when the request says autoRenew=false)
//	fetch_activation the activation code of the PBX
//
// The three lookups run concurrently; so do renewal and activation once the order exists: a
// purchase makes three sequential partner rounds (lookups, create order, renewal beside
// activation). A saga waits for such a round (Saga.MaxRounds bounds the sagas in one) before it
// starts the round's goroutines, so that thousands of sagas in flight wait cheaply.
//
// # Checkpoints and recovery
//
// The saga keeps its progress in a State that the caller persists through a Checkpointer before
// the next step starts: the lookups together with the order intent, then the order. Renewal and
// activation are safe to repeat, so their results are stored by the caller with the outcome:
// the code is a read, and enabling auto-renewal only ever turns it on. Enabling a renewal that
// is already on answers true; an answer that might mean "already on" in a portal's own words (a
// refusal, false, an undocumented answer) is checked against the renewal status after it. Run resumes from any State: a
// finished side effect is never repeated. The partner
// API cannot cancel an order, so the saga recovers forward: steps after the order are retried to
// completion, never compensated.
//
// # Create order, exactly once
//
// Before the call, the order body and its poNumber are written into State as an intent and
// checkpointed. The poNumber defaults to one derived from the idempotency key, so every attempt
// sends the same body. If a send ends with an unknown outcome (timeout, reset, 5xx after the body
// was written), or a redelivery finds an intent without a result, the saga never re-sends blindly:
// it reconciles through the order list (newest first, back to the first send minus a margin) and
// order details, adopts the single matching order, re-sends only when the list proves there is
// none, and otherwise fails with needs_reconciliation.
//
// # Errors
//
// Run returns nil when the purchase completed (the result is in State), a *Failure for a terminal
// failure (the failed event's fields), and any other error when the saga should be retried later
// (transient faults outlasted the in-process retry budget, or ctx ended). Terminal decides which
// failure a retry-later error becomes when no delivery is left.
//
// The package has no side effects of its own: the partner, the clock and the checkpointer are
// injected.
package workflow
