package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Normalize returns a copy of r in canonical form: defaults applied (productId 12, years 1,
// autoRenew true), names, SNs, poNumber and e-mails trimmed, e-mails lower-cased, leading
// zeros removed from all-digit IDs, and an empty services list made nil. The order of services
// is kept as the producer gave it. The idempotency key is left verbatim (Validate rejects
// surrounding spaces instead). Normalize does not validate and shares no memory with r.
func (r PurchaseRequest) Normalize() PurchaseRequest {
	n := r
	if n.ProductID == 0 {
		n.ProductID = DefaultProductID
	}
	n.ProductNo = strings.TrimSpace(r.ProductNo)
	n.CustomerEmail = normEmail(r.CustomerEmail)
	if r.Plan != nil {
		n.Plan = &Ref{ID: normID(r.Plan.ID), Name: strings.TrimSpace(r.Plan.Name)}
	}
	n.Services = nil
	if len(r.Services) > 0 {
		n.Services = make([]ServiceRef, len(r.Services))
		for i, s := range r.Services {
			n.Services[i] = ServiceRef{ID: normID(s.ID), Name: strings.TrimSpace(s.Name), Quantity: s.Quantity}
		}
	}
	if n.Years == 0 {
		n.Years = DefaultYears
	}
	if r.BillingContact != nil {
		n.BillingContact = &ContactRef{ID: normID(r.BillingContact.ID), Email: normEmail(r.BillingContact.Email)}
	}
	n.PONumber = strings.TrimSpace(r.PONumber)
	autoRenew := r.AutoRenewEnabled()
	n.AutoRenew = &autoRenew
	return n
}

// AutoRenewEnabled reports whether auto-renewal is to be enabled after the order: true unless
// autoRenew was sent as false.
func (r PurchaseRequest) AutoRenewEnabled() bool { return r.AutoRenew == nil || *r.AutoRenew }

// Fingerprint identifies the purchase r asks for: the hex SHA-256 of the JSON encoding of
// r.Normalize() with plan and service names and productNo lower-cased (they are matched
// case-insensitively). Requests that differ only in key order, whitespace, IDs sent as numbers
// or strings, the case of names, or defaults sent explicitly have the same fingerprint; any
// other difference, including the order of services, changes it.
func (r PurchaseRequest) Fingerprint() string {
	n := r.Normalize() // shares no memory with r
	n.ProductNo = strings.ToLower(n.ProductNo)
	if n.Plan != nil {
		n.Plan.Name = strings.ToLower(n.Plan.Name)
	}
	for i := range n.Services {
		n.Services[i].Name = strings.ToLower(n.Services[i].Name)
	}
	// Marshal cannot fail: the request holds only strings, integers and booleans.
	b, _ := json.Marshal(n)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// normID removes leading zeros from an all-digit ID ("007" → "7"); other IDs are kept as they
// are, for Validate to reject.
func normID(id ID) ID {
	s := strings.TrimSpace(string(id))
	if !isDigits(s) {
		return ID(s)
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		s = "0"
	}
	return ID(s)
}
