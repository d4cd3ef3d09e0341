// Package partnertest is an in-memory simulator of the part of the Yeastar Partner Portal
// OpenAPI that fulfil uses. Every test, the demo and the benchmark run against it.
//
// The simulator follows the Partner Portal API guide, and the shapes fulfil assumes where the
// guide is cut off: the documented paths, the envelope {code, detailMessage, requestId, result,
// status}, the documented field names and JSON types (quantity "20" as a String,
// planAutoRenewal 0/1 as an Integer, times as milliseconds). Its paths, body types and
// documented values are its own, written from the guide, and never taken from partnerclient, so
// that a misspelt path, key or type in the client fails against it; JSON keys of request bodies
// are matched case-sensitively. Its behaviour is real rather than canned: tokens expire and
// rotate, orders are validated against the catalogue and committed to a ledger, new licences get
// serial numbers and activation codes, and auto-renewal is a flag on the product.
//
// A Sim is an http.Handler; NewServer serves one on loopback:
//
//	srv := partnertest.NewServer(partnertest.WithSeed(1))
//	defer srv.Close()
//	// point the client at srv.URL with DefaultClientID / DefaultClientSecret
//
// Faults are configured per endpoint. Deterministic one-shot faults (FailNext) are taken first,
// then the probabilistic ones of Faults (connection reset, 503, 429), then the real handler runs.
// Authentication and User-Agent checks come before any fault, so a call that fails them does not
// use up a one-shot fault. "Commit then fail" faults let the handler change state (for Create an
// Order: commit the order) and then lose the reply, which is the ambiguous outcome the worker
// must reconcile. Latency is added after the answer is decided and before it is written, so a
// client that times out on a slow Create an Order leaves a committed order behind, as it would
// against the real API.
//
// Hostile (WithHostile, SetHostile) makes the simulator differ from the documentation the way a
// real portal might: an error envelope or a result without orderNo after the order was
// committed, an undocumented orderStatus for a while, redirects of every request to another
// listener, an empty billing contact object, auto-renewal flags as booleans, and an order list
// that is oldest first, shifted between pages or without poNumber. A Trap is a listener to
// redirect to, which reports whether any request reached it with credentials.
//
// Everything is safe for concurrent use. Inspection methods (Orders, Requests, Calls, Product,
// AutoRenewal) return copies. Recorded requests never hold the Authorization header, the client
// secret or a refresh token.
package partnertest
