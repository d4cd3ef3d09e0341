package partnerclient

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
)

// defaultCheckProductID is P-Series Software Edition.
const defaultCheckProductID = 12

// CheckOptions configures Check.
type CheckOptions struct {
	// ProductID is the product whose licences and plans are read (default 12, P-Series
	// Software Edition).
	ProductID int64
	// FixtureDir, when set, receives each successful response body as
	// <FixtureDir>/<endpoint>.json, with secrets redacted (see Check). The directory is
	// created if needed.
	FixtureDir string
}

// CheckReport is the outcome of Check: one EndpointCheck per endpoint, in AllEndpoints
// order, side-effecting endpoints included as skipped.
type CheckReport struct {
	ProductID int64
	Endpoints []EndpointCheck
}

// EndpointCheck is the check of one endpoint.
type EndpointCheck struct {
	Endpoint Endpoint
	// Skipped says why the endpoint was not called: it has a side effect, or there was
	// nothing to look up. The fields below are empty then.
	Skipped    string
	StatusCode int    // HTTP status of the last response, 0 if none
	RequestID  string // envelope requestId
	// Err is the call's failure: a transport error, a non-"success" code, or a result
	// its decoder rejects. Like every *Error it holds no secret.
	Err error
	// Findings compare the result with the Go type its decoder fills.
	Findings []Finding
	// Body is the response body with secrets redacted, as written to Fixture.
	Body []byte
	// Fixture is the file Body was written to, if any.
	Fixture string
}

// FindingKind classifies a Finding.
type FindingKind string

// Finding kinds. Unexpected and missing fields and drift are warnings: the decoders ignore
// the first, leave the second zero, and tolerate the third. A kind mismatch means a value
// the decoder cannot take, or takes as nonsense, in a field the saga relies on.
const (
	FindingUnexpected FindingKind = "unexpected"    // in the response, not declared by the Go type
	FindingMissing    FindingKind = "missing"       // declared by the Go type, absent from the response
	FindingMismatch   FindingKind = "kind mismatch" // a JSON value the Go type does not fit, where the saga relies on it
	// FindingDrift is a value of an unexpected type in a field the saga does not rely on:
	// the decoder leaves it zero (or converts it, e.g. true for an Integer 0/1 flag) and
	// records it (see Drift).
	FindingDrift FindingKind = "drift"
)

// Finding is one difference between a response's result and the Go type its decoder
// fills.
type Finding struct {
	Kind FindingKind
	// Path locates the field inside the result, e.g. "results[].planId"; "[]" stands
	// for every item of a list. It is empty for the result itself.
	Path string
	Want string // for a mismatch: the JSON kinds the Go type accepts
	Got  string // for a mismatch: the JSON kind found, e.g. "float"
}

// String formats f as "kind mismatch results[].planId: want integer or numeric
// string, got float" or "drift results[].planAutoRenewal: want number, got boolean".
func (f Finding) String() string {
	path := cmp.Or(f.Path, "(result)")
	if f.Kind == FindingMismatch || f.Kind == FindingDrift {
		return fmt.Sprintf("%s %s: want %s, got %s", f.Kind, path, f.Want, f.Got)
	}
	return fmt.Sprintf("%s %s", f.Kind, path)
}

// Status is "ok", "skipped", "failed" (Err is set) or "mismatch" (a kind mismatch).
func (e EndpointCheck) Status() string {
	switch {
	case e.Skipped != "":
		return "skipped"
	case e.Err != nil:
		return "failed"
	case e.mismatches() > 0:
		return "mismatch"
	}
	return "ok"
}

func (e EndpointCheck) mismatches() int {
	n := 0
	for _, f := range e.Findings {
		if f.Kind == FindingMismatch {
			n++
		}
	}
	return n
}

func (e EndpointCheck) fields(kind FindingKind) string {
	var paths []string
	for _, f := range e.Findings {
		if f.Kind == kind {
			paths = append(paths, cmp.Or(f.Path, "(result)"))
		}
	}
	if len(paths) == 0 {
		return "-"
	}
	return strings.Join(paths, ", ")
}

// OK reports whether every call made succeeded and no value had a kind its Go type does
// not fit. Skipped endpoints and unexpected or missing fields do not count.
func (r *CheckReport) OK() bool {
	for _, e := range r.Endpoints {
		if s := e.Status(); s != "ok" && s != "skipped" {
			return false
		}
	}
	return true
}

// Write prints the report as a table (endpoint, status, request_id, unexpected fields,
// missing fields), then the reason of every skip, failure and kind mismatch, then a
// verdict. It returns the first write error.
func (r *CheckReport) Write(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Partner API check, product %d\n\n", r.ProductID)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSTATUS\tREQUEST_ID\tUNEXPECTED FIELDS\tMISSING FIELDS")
	for _, e := range r.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Endpoint, e.Status(), cmp.Or(e.RequestID, "-"),
			e.fields(FindingUnexpected), e.fields(FindingMissing))
	}
	_ = tw.Flush() // writes to a bytes.Buffer cannot fail
	var notes []string
	failed, mismatches, drift := 0, 0, 0
	for _, e := range r.Endpoints {
		switch {
		case e.Skipped != "":
			notes = append(notes, fmt.Sprintf("%s: skipped: %s", e.Endpoint, e.Skipped))
		case e.Err != nil:
			failed++
			notes = append(notes, fmt.Sprintf("%s: %v", e.Endpoint, e.Err))
		}
		for _, f := range e.Findings {
			switch f.Kind {
			case FindingMismatch:
				mismatches++
				notes = append(notes, fmt.Sprintf("%s: %s", e.Endpoint, f))
			case FindingDrift:
				drift++
				notes = append(notes, fmt.Sprintf("%s: %s: want %s, got %s (drift: tolerated)", e.Endpoint, f.Path, f.Want, f.Got))
			}
		}
		if e.Fixture != "" {
			notes = append(notes, fmt.Sprintf("%s: saved %s", e.Endpoint, e.Fixture))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	if r.OK() {
		b.WriteString("\nOK: every call succeeded and every value fits its decoder; unexpected and missing fields are warnings.\n")
	} else {
		fmt.Fprintf(&b, "\nNOT OK: %d call(s) failed, %d kind mismatch(es).\n", failed, mismatches)
	}
	if drift > 0 {
		fmt.Fprintf(&b, "DRIFT: %d value(s) of an unexpected type in fields fulfil does not rely on; the decoders tolerate them, but the documentation or fulfil's types need a look.\n", drift)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Check calls every read-only endpoint once with the client's credentials and compares
// each result with the Go type its decoder fills, to test the response shapes the
// documentation leaves out (docs/partner-api.md) against the real API. It never calls
// CreateOrder or EnableAutoRenewal.
//
// It logs in (a new token), lists the licences of opts.ProductID, reads the details,
// activation code and auto-renewal status of the first licence listed, the purchase
// info of the product, the billing contacts, the subordinate users, the order list and
// the details of the first order listed. Requests go through the same path as every
// call (rate limit, User-Agent, token refresh).
//
// A failed call is reported in its EndpointCheck and does not stop the check. With
// opts.FixtureDir set, each successful body is written to <dir>/<endpoint>.json after
// redaction: the token and refreshToken of the token response, and every occurrence of
// the client secret or a token anywhere, become "REDACTED". Other account data (e-mail
// addresses, names, companies, serial numbers) is kept, so review fixtures before
// committing them.
//
// Check returns an error wrapping ErrMissingCredentials without credentials, one
// wrapping ErrInvalidOption for a negative product ID, and an error when the fixture
// directory cannot be created; a fixture that cannot be written gives the report and an
// error.
func (c *Client) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	if !c.hasCredentials() {
		return nil, fmt.Errorf("partner check: %w", ErrMissingCredentials)
	}
	if opts.ProductID < 0 {
		return nil, invalid("product ID %d", opts.ProductID)
	}
	if opts.FixtureDir != "" {
		if err := os.MkdirAll(opts.FixtureDir, 0o750); err != nil {
			return nil, fmt.Errorf("partner check: fixture directory: %w", err)
		}
	}
	k := &checker{c: c, dir: opts.FixtureDir, report: &CheckReport{ProductID: cmp.Or(opts.ProductID, defaultCheckProductID)}}
	k.run(ctx)
	return k.report, errors.Join(k.writeErrs...)
}

// checker runs one Check.
type checker struct {
	c         *Client
	dir       string
	report    *CheckReport
	tokens    []string // tokens seen in the token response, redacted everywhere
	writeErrs []error
}

func (k *checker) run(ctx context.Context) {
	c, id := k.c, k.report.ProductID
	var product *Product
	var order *OrderSummary
	noProduct, noOrder := "the product list was not read", "the order list was not read"
	for _, ep := range AllEndpoints {
		if ep.SideEffect() {
			k.skip(ep, "has a side effect; never called by the check")
			continue
		}
		switch ep {
		case EndpointToken:
			k.call(ctx, ep, func(ctx context.Context) error {
				ctx, cancel := c.withTimeout(ctx)
				defer cancel()
				t, err := c.login(ctx)
				if err == nil {
					k.tokens = append(k.tokens, t.access, t.refresh)
				}
				return err
			})
		case EndpointProductList:
			k.call(ctx, ep, func(ctx context.Context) error {
				page, err := c.ListProducts(ctx, ListProductsParams{ProductID: id})
				if err == nil {
					noProduct = "no licence in the product list"
					if len(page.Results) > 0 {
						product = &page.Results[0]
					}
				}
				return err
			})
		case EndpointProductDetails, EndpointActivationCode, EndpointAutoRenewStatus:
			if product == nil || product.ProductNo == "" {
				k.skip(ep, noProduct)
				continue
			}
			sn := product.ProductNo
			k.call(ctx, ep, func(ctx context.Context) error {
				var err error
				switch ep {
				case EndpointProductDetails:
					_, err = c.ProductDetails(ctx, id, sn)
				case EndpointActivationCode:
					_, err = c.ActivationCode(ctx, id, sn)
				default:
					_, err = c.AutoRenewStatus(ctx, id, sn)
				}
				return err
			})
		case EndpointPurchaseInfo:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.PurchaseInfo(ctx, id, "")
				return err
			})
		case EndpointBillingContacts:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.BillingContacts(ctx)
				return err
			})
		case EndpointSubordinateUsers:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.SubordinateUsers(ctx)
				return err
			})
		case EndpointOrderList:
			k.call(ctx, ep, func(ctx context.Context) error {
				page, err := c.ListOrders(ctx, ListOrdersParams{})
				if err == nil {
					noOrder = "no order in the order list"
					if len(page.Results) > 0 {
						order = &page.Results[0]
					}
				}
				return err
			})
		case EndpointOrderDetails:
			ref := ""
			if order != nil {
				ref = order.OrderNo
				if ref == "" && order.ID != 0 {
					ref = order.ID.String()
				}
			}
			if ref == "" {
				k.skip(ep, noOrder)
				continue
			}
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.OrderDetails(ctx, ref)
				return err
			})
		default:
			k.skip(ep, "not known to the check")
		}
	}
}

func (k *checker) skip(ep Endpoint, why string) {
	k.report.Endpoints = append(k.report.Endpoints, EndpointCheck{Endpoint: ep, Skipped: why})
}

// call runs fn with a tap on ep's response body and records the outcome.
func (k *checker) call(ctx context.Context, ep Endpoint, fn func(context.Context) error) {
	tap := &rawTap{ep: ep}
	err := fn(context.WithValue(ctx, rawTapKey{}, tap))
	status, body := tap.get()
	e := EndpointCheck{Endpoint: ep, StatusCode: status, Err: err}
	var ae *Error
	if errors.As(err, &ae) {
		e.RequestID = ae.RequestID
	}
	if body != nil {
		if env, envErr := decodeEnvelope(body); envErr == nil {
			e.RequestID = string(env.RequestID)
		}
		e.Findings, _ = checkBody(ep, body) // err already says why the body was refused
		e.Body = redactBody(body, ep == EndpointToken, append(k.c.secrets(), k.tokens...))
		if err == nil && k.dir != "" {
			path := filepath.Join(k.dir, string(ep)+".json")
			if werr := os.WriteFile(path, e.Body, 0o600); werr != nil {
				k.writeErrs = append(k.writeErrs, fmt.Errorf("partner check: %w", werr))
			} else {
				e.Fixture = path
			}
		}
	}
	k.report.Endpoints = append(k.report.Endpoints, e)
}

// rawTap receives the body of the last response of one endpoint sent with a context
// holding it (under rawTapKey); Check uses it to see what the decoders saw. Token
// requests may run on another goroutine, hence the lock.
type rawTap struct {
	ep Endpoint

	mu     sync.Mutex
	status int
	body   []byte
}

type rawTapKey struct{}

// tapBody hands a response body to the context's rawTap, if it watches ep.
func tapBody(ctx context.Context, ep Endpoint, status int, body []byte) {
	t, ok := ctx.Value(rawTapKey{}).(*rawTap)
	if !ok || t.ep != ep {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status, t.body = status, bytes.Clone(body)
}

func (t *rawTap) get() (int, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.body
}
