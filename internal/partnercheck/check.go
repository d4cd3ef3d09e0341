// Package partnercheck checks the partner API's answers against the decoders of
// partnerclient: `fulfil partner check`.
//
// Check calls every read-only endpoint once (never CreateOrder or EnableAutoRenewal) and
// compares each result with the Go type its decoder fills: fields the type does not
// declare ("unexpected"), fields the response lacks ("missing"), values of an unexpected
// type in fields the saga does not rely on ("drift", e.g. "product_list:
// results[].planAutoRenewal: want number, got boolean"), all three warnings, and values
// whose JSON kind the type cannot take where the saga relies on them ("kind mismatch", e.g.
// a float ID), an error. It sees the raw answers through a Recorder, the transport of the
// client's HTTP client; partnerclient itself knows nothing of the check.
//
// With Options.FixtureDir it saves each response, tokens and secret redacted but account
// data kept, as <endpoint>.json; partnerclient's tests decode every file in its
// testdata/fixtures (and this package's tests compare them with the types), so responses
// captured from the real portal there show at once whether the decoders cope:
//
//	fulfil partner check --save partnerclient/testdata/fixtures
//	go test ./partnerclient/ ./internal/partnercheck/
package partnercheck

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/fulfil/fulfil/partnerclient"
)

// defaultCheckProductID is P-Series Software Edition.
const defaultCheckProductID = 12

// Options configures Check.
type Options struct {
	// ProductID is the product whose licences and plans are read (default 12, P-Series
	// Software Edition).
	ProductID int64
	// FixtureDir, when set, receives each successful response body as
	// <FixtureDir>/<endpoint>.json, with secrets redacted (see Check). The directory is
	// created if needed.
	FixtureDir string
}

// Report is the outcome of Check: the check of every endpoint, in
// partnerclient.AllEndpoints order, side-effecting endpoints included as skipped. OK says
// whether it passed; Write prints it as a table, Result (and MarshalJSON) gives it as data.
type Report struct {
	productID int64
	endpoints []endpointCheck
}

// Result is the structured form of a Report, what `fulfil partner check -o json` prints.
type Result struct {
	// OK is Report.OK: every call made succeeded and every value the saga relies on fits.
	OK        bool  `json:"ok"`
	ProductID int64 `json:"productId"`
	// Failed counts the calls that failed, Mismatches the kind mismatches and Drift the values
	// of an unexpected type in fields the saga does not rely on (tolerated), over all endpoints.
	Failed     int `json:"failed"`
	Mismatches int `json:"mismatches"`
	Drift      int `json:"drift"`
	// Endpoints holds one result per endpoint, in partnerclient.AllEndpoints order.
	Endpoints []EndpointResult `json:"endpoints"`
}

// EndpointResult is the check of one endpoint. It holds no secret: no body, and errors are
// *partnerclient.Error texts, which carry none.
type EndpointResult struct {
	Endpoint partnerclient.Endpoint `json:"endpoint"`
	// Status is "ok", "skipped", "failed" (Error is set) or "mismatch" (a kind mismatch).
	Status string `json:"status"`
	// Skipped says why the endpoint was not called; the fields below are empty then.
	Skipped string `json:"skipped,omitempty"`
	// HTTPStatus is the HTTP status of the last response (0: none, e.g. a transport error).
	HTTPStatus int `json:"httpStatus,omitempty"`
	// Code and RequestID are the envelope's code ("success" or the partner's error code) and
	// requestId.
	Code      string `json:"code,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// Error is the call's failure: a transport error, a non-"success" code, or a result its
	// decoder rejects.
	Error string `json:"error,omitempty"`
	// Findings compare the result with the Go type its decoder fills: unexpected and missing
	// fields, drift and kind mismatches, sorted by path.
	Findings []Finding `json:"findings,omitempty"`
	// Fixture is the file the redacted response was saved to (Options.FixtureDir).
	Fixture string `json:"fixture,omitempty"`
}

// ProductID returns the product whose licences and plans were read.
func (r *Report) ProductID() int64 { return r.productID }

// Result returns the report as data.
func (r *Report) Result() Result {
	res := Result{OK: r.OK(), ProductID: r.productID, Endpoints: make([]EndpointResult, 0, len(r.endpoints))}
	for _, e := range r.endpoints {
		er := EndpointResult{Endpoint: e.Endpoint, Status: e.Status(), Skipped: e.Skipped, HTTPStatus: e.StatusCode,
			Code: e.Code, RequestID: e.RequestID, Findings: slices.Clone(e.Findings), Fixture: e.Fixture}
		if e.Err != nil {
			er.Error = e.Err.Error()
			res.Failed++
		}
		for _, f := range e.Findings {
			switch f.Kind {
			case FindingMismatch:
				res.Mismatches++
			case FindingDrift:
				res.Drift++
			}
		}
		res.Endpoints = append(res.Endpoints, er)
	}
	return res
}

// MarshalJSON encodes the report as its Result.
func (r *Report) MarshalJSON() ([]byte, error) { return json.Marshal(r.Result()) }

// endpointCheck is the check of one endpoint.
type endpointCheck struct {
	Endpoint partnerclient.Endpoint
	// Skipped says why the endpoint was not called: it has a side effect, or there was
	// nothing to look up. The fields below are empty then.
	Skipped    string
	StatusCode int    // HTTP status of the last response, 0 if none
	Code       string // envelope code
	RequestID  string // envelope requestId
	// Err is the call's failure: a transport error, a non-"success" code, or a result
	// its decoder rejects. Like every *partnerclient.Error it holds no secret.
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

// Kinds of finding. Unexpected and missing fields and drift are warnings: the decoders ignore
// the first, leave the second zero, and tolerate the third. A kind mismatch means a value
// the decoder cannot take, or takes as nonsense, in a field the saga relies on.
const (
	FindingUnexpected FindingKind = "unexpected"    // in the response, not declared by the Go type
	FindingMissing    FindingKind = "missing"       // declared by the Go type, absent from the response
	FindingMismatch   FindingKind = "kind mismatch" // a JSON value the Go type does not fit, where the saga relies on it
	// FindingDrift is a value of an unexpected type in a field the saga does not rely on:
	// the decoder leaves it zero (or converts it, e.g. true for an Integer 0/1 flag) and
	// records it (see partnerclient.Client.Drift).
	FindingDrift FindingKind = "drift"
)

// Finding is one difference between a response's result and the Go type its decoder
// fills.
type Finding struct {
	Kind FindingKind `json:"kind"`
	// Path locates the field inside the result, e.g. "results[].planId"; "[]" stands
	// for every item of a list. It is empty for the result itself.
	Path string `json:"path"`
	Want string `json:"want,omitempty"` // for a mismatch or drift: the JSON kinds the Go type accepts
	Got  string `json:"got,omitempty"`  // for a mismatch or drift: the JSON kind found, e.g. "float"
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
func (e endpointCheck) Status() string {
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

func (e endpointCheck) mismatches() int {
	n := 0
	for _, f := range e.Findings {
		if f.Kind == FindingMismatch {
			n++
		}
	}
	return n
}

func (e endpointCheck) fields(kind FindingKind) string {
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
func (r *Report) OK() bool {
	for _, e := range r.endpoints {
		if s := e.Status(); s != "ok" && s != "skipped" {
			return false
		}
	}
	return true
}

// Write prints the report as a table (endpoint, status, request_id, unexpected fields,
// missing fields), then the reason of every skip, failure and kind mismatch, then a
// verdict. It returns the first write error.
func (r *Report) Write(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Partner API check, product %d\n\n", r.productID)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSTATUS\tREQUEST_ID\tUNEXPECTED FIELDS\tMISSING FIELDS")
	for _, e := range r.endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Endpoint, e.Status(), cmp.Or(e.RequestID, "-"),
			e.fields(FindingUnexpected), e.fields(FindingMissing))
	}
	_ = tw.Flush() // writes to a bytes.Buffer cannot fail
	var notes []string
	failed, mismatches, drift := 0, 0, 0
	for _, e := range r.endpoints {
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

// Check calls every read-only endpoint once with c's credentials and compares each result
// with the Go type its decoder fills, to test the response shapes the documentation leaves
// out (docs/partner-api.md) against the real API. It never calls CreateOrder or
// EnableAutoRenewal.
//
// c must be new, created with rec.Option() (or partnerclient.WithHTTPClient and a client
// whose Transport is rec), so that rec sees every answer c reads, as c read it; the
// requests go through the same path as every call (rate limit, User-Agent, token refresh).
//
// It logs in (c's first call: a new token), lists the licences of opts.ProductID, reads
// the details, activation code and auto-renewal status of the first licence listed, the
// purchase info of the product, the billing contacts, the subordinate users, the order
// list and the details of the first order listed.
//
// A failed call is reported for its endpoint and does not stop the check. With
// opts.FixtureDir set, each successful body is written to <dir>/<endpoint>.json after
// redaction: the token and refreshToken of the token response, and every occurrence of
// the client secret or a token anywhere, become "REDACTED". Other account data (e-mail
// addresses, names, companies, serial numbers) is kept, so review fixtures before
// committing them.
//
// Check returns an error wrapping partnerclient.ErrMissingCredentials without
// credentials, one wrapping partnerclient.ErrInvalidOption for a negative product ID, an
// error when rec has seen an answer already (c is not new) and an error when the fixture
// directory cannot be created; a fixture that cannot be written gives the report and an
// error.
func Check(ctx context.Context, c *partnerclient.Client, rec *Recorder, opts Options) (*Report, error) {
	if opts.ProductID < 0 {
		return nil, fmt.Errorf("partner check: product ID %d: %w", opts.ProductID, partnerclient.ErrInvalidOption)
	}
	if c == nil || rec == nil {
		return nil, fmt.Errorf("partner check: no client or recorder: %w", partnerclient.ErrInvalidOption)
	}
	if rec.len() > 0 {
		return nil, errors.New("partner check: the client has been used; Check needs a new one")
	}
	if opts.FixtureDir != "" {
		if err := os.MkdirAll(opts.FixtureDir, 0o750); err != nil {
			return nil, fmt.Errorf("partner check: fixture directory: %w", err)
		}
	}
	k := &checker{c: c, rec: rec, dir: opts.FixtureDir, report: &Report{productID: cmp.Or(opts.ProductID, defaultCheckProductID)}}
	if err := k.run(ctx); err != nil {
		return nil, err
	}
	return k.report, errors.Join(k.writeErrs...)
}

// checker runs one Check.
type checker struct {
	c         *partnerclient.Client
	rec       *Recorder
	dir       string
	report    *Report
	writeErrs []error
}

func (k *checker) run(ctx context.Context) error {
	c, id := k.c, k.report.productID
	var product *partnerclient.Product
	var order *partnerclient.OrderSummary
	noProduct, noOrder := "the product list was not read", "the order list was not read"
	for _, ep := range partnerclient.AllEndpoints {
		if ep.SideEffect() {
			k.skip(ep, "has a side effect; never called by the check")
			continue
		}
		switch ep {
		case partnerclient.EndpointToken:
			// The client is new (Check made sure), so this logs in.
			err := k.call(ctx, ep, c.Authenticate)
			if errors.Is(err, partnerclient.ErrMissingCredentials) {
				return fmt.Errorf("partner check: %w", partnerclient.ErrMissingCredentials)
			}
		case partnerclient.EndpointProductList:
			k.call(ctx, ep, func(ctx context.Context) error {
				page, err := c.ListProducts(ctx, partnerclient.ListProductsParams{ProductID: id})
				if err == nil {
					noProduct = "no licence in the product list"
					if len(page.Results) > 0 {
						product = &page.Results[0]
					}
				}
				return err
			})
		case partnerclient.EndpointProductDetails, partnerclient.EndpointActivationCode, partnerclient.EndpointAutoRenewStatus:
			if product == nil || product.ProductNo == "" {
				k.skip(ep, noProduct)
				continue
			}
			sn := product.ProductNo
			k.call(ctx, ep, func(ctx context.Context) error {
				var err error
				switch ep {
				case partnerclient.EndpointProductDetails:
					_, err = c.ProductDetails(ctx, id, sn)
				case partnerclient.EndpointActivationCode:
					_, err = c.ActivationCode(ctx, id, sn)
				default:
					_, err = c.AutoRenewStatus(ctx, id, sn)
				}
				return err
			})
		case partnerclient.EndpointPurchaseInfo:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.PurchaseInfo(ctx, id, "")
				return err
			})
		case partnerclient.EndpointBillingContacts:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.BillingContacts(ctx)
				return err
			})
		case partnerclient.EndpointSubordinateUsers:
			k.call(ctx, ep, func(ctx context.Context) error {
				_, err := c.SubordinateUsers(ctx)
				return err
			})
		case partnerclient.EndpointOrderList:
			k.call(ctx, ep, func(ctx context.Context) error {
				page, err := c.ListOrders(ctx, partnerclient.ListOrdersParams{})
				if err == nil {
					noOrder = "no order in the order list"
					if len(page.Results) > 0 {
						order = &page.Results[0]
					}
				}
				return err
			})
		case partnerclient.EndpointOrderDetails:
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
	return nil
}

func (k *checker) skip(ep partnerclient.Endpoint, why string) {
	k.report.endpoints = append(k.report.endpoints, endpointCheck{Endpoint: ep, Skipped: why})
}

// call runs fn, records the outcome with the last answer of ep the recorder saw meanwhile,
// and returns fn's error.
func (k *checker) call(ctx context.Context, ep partnerclient.Endpoint, fn func(context.Context) error) error {
	mark := k.rec.len()
	err := fn(ctx)
	status, body := k.rec.last(mark, ep)
	e := endpointCheck{Endpoint: ep, StatusCode: status, Err: err}
	// The error may be another endpoint's (the token call a call made first): its code and
	// request ID are not this endpoint's.
	var ae *partnerclient.Error
	if errors.As(err, &ae) && ae.Endpoint == ep {
		e.Code, e.RequestID = ae.Code, ae.RequestID
	}
	if body != nil {
		if env, envErr := decodeEnvelope(body); envErr == nil {
			e.Code, e.RequestID = cmp.Or(string(env.Code), e.Code), cmp.Or(env.RequestID, e.RequestID)
		}
		e.Findings, _ = checkBody(ep, body) // err already says why the body was refused
		e.Body = redactBody(body, ep == partnerclient.EndpointToken, k.rec.secrets())
		if err == nil && k.dir != "" {
			path := filepath.Join(k.dir, string(ep)+".json")
			if werr := os.WriteFile(path, e.Body, 0o600); werr != nil {
				k.writeErrs = append(k.writeErrs, fmt.Errorf("partner check: %w", werr))
			} else {
				e.Fixture = path
			}
		}
	}
	k.report.endpoints = append(k.report.endpoints, e)
	return err
}
