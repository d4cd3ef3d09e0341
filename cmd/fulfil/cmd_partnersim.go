package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// partnerSimOptions is the command line of fulfil partnersim.
type partnerSimOptions struct {
	addr     string
	clientID string
	opts     []partnertest.Option
	hostile  partnertest.Hostile
}

// parsePartnerSim reads the flags of fulfil partnersim. The hostile knobs also come from the
// environment: FULFIL_ and the flag's name in capitals, "-" as "_".
func parsePartnerSim(args []string, stderr io.Writer) (partnerSimOptions, error) {
	fs := flag.NewFlagSet("fulfil partnersim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fulfil partnersim [flags]\n\n"+
			"Serves the partner API simulator. The hostile flags make it differ from the documentation\n"+
			"the way a real portal might; rates are probabilities drawn from --seed.\n\n")
		fs.PrintDefaults()
	}
	ee := &envErrs{}
	env := func(name string) string { return " ($" + envName(name) + ")" }

	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	id := fs.String("client-id", partnertest.DefaultClientID, "client ID the simulator accepts")
	secret := fs.String("client-secret", partnertest.DefaultClientSecret, "client secret the simulator accepts")
	latency := fs.Duration("latency", 0, "added latency of every business call")
	jitter := fs.Duration("jitter", 0, "random extra latency, uniform in [0, jitter)")
	errRate := fs.Float64("error-rate", 0, "probability of a 503 per business call")
	rateLimit := fs.Float64("rate-limit-rate", 0, "probability of a 429 per business call")
	reset := fs.Float64("reset-rate", 0, "probability of a connection reset per business call")
	commitFail := fs.Float64("commit-then-fail", 0, "probability that create order commits, then loses its reply")
	tokenTTL := fs.Duration("token-ttl", 30*time.Minute, "access token lifetime")
	seed := fs.Int64("seed", 1, "seed of the fault and ID generator")

	var h partnertest.Hostile
	fs.Float64Var(&h.OrderErrorEnvelopeRate, "order-error-envelope-rate", ee.float("order-error-envelope-rate", 0),
		"hostile: probability that create order commits, then answers HTTP 200 with code system_error and status 500"+
			env("order-error-envelope-rate"))
	fs.Float64Var(&h.OrderNoOrderNoRate, "order-no-orderno-rate", ee.float("order-no-orderno-rate", 0),
		"hostile: probability that create order commits and answers success without orderNo"+env("order-no-orderno-rate"))
	fs.Float64Var(&h.UndocumentedStatusRate, "undocumented-status-rate", ee.float("undocumented-status-rate", 0),
		"hostile: probability that a new order shows --undocumented-status for --undocumented-status-for"+
			env("undocumented-status-rate"))
	fs.StringVar(&h.UndocumentedStatus, "undocumented-status",
		envString("undocumented-status", partnertest.DefaultUndocumentedStatus),
		"hostile: the undocumented orderStatus"+env("undocumented-status"))
	fs.DurationVar(&h.UndocumentedStatusFor, "undocumented-status-for", ee.duration("undocumented-status-for", 30*time.Second),
		"hostile: how long after its creation an order shows the undocumented status before \"succeed\"; 0: for ever"+
			env("undocumented-status-for"))
	fs.StringVar(&h.RedirectTo, "redirect-to", envString("redirect-to", ""),
		"hostile: base URL of another listener; every request, the token request included, is answered with a "+
			"redirect there (same path and query) and not carried out; empty: off"+env("redirect-to"))
	fs.DurationVar(&h.RedirectFor, "redirect-for", ee.duration("redirect-for", 0),
		"hostile: how long from start-up --redirect-to lasts; 0: for ever"+env("redirect-for"))
	fs.IntVar(&h.RedirectStatus, "redirect-status", ee.int("redirect-status", http.StatusTemporaryRedirect),
		"hostile: HTTP status of the redirects, 300 to 399"+env("redirect-status"))
	fs.BoolVar(&h.EmptyBillingContacts, "empty-billing-contacts", ee.bool("empty-billing-contacts", false),
		"hostile: the billing contact list answers \"result\":{}"+env("empty-billing-contacts"))
	fs.BoolVar(&h.AutoRenewalAsBool, "auto-renewal-as-bool", ee.bool("auto-renewal-as-bool", false),
		"hostile: product list and details give planAutoRenewal and serviceAutoRenewal as true/false, not 1/0"+
			env("auto-renewal-as-bool"))
	fs.BoolVar(&h.OrderListOldestFirst, "order-list-oldest-first", ee.bool("order-list-oldest-first", false),
		"hostile: the order list answers oldest first, whatever sort says"+env("order-list-oldest-first"))
	fs.IntVar(&h.OrderListShift, "order-list-shift", ee.int("order-list-shift", 0),
		"hostile: every order-list page after the first starts this many orders early, repeating the end of the "+
			"previous page, as when orders arrive while a client pages"+env("order-list-shift"))
	fs.BoolVar(&h.OrderListWithoutPONumber, "order-list-without-po-number", ee.bool("order-list-without-po-number", false),
		"hostile: order-list items have no poNumber (order details keep it)"+env("order-list-without-po-number"))

	if err := fs.Parse(args); err != nil {
		return partnerSimOptions{}, flagError{err} // the flag package has reported it
	}
	errs := []error(*ee)
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"error-rate", *errRate}, {"rate-limit-rate", *rateLimit}, {"reset-rate", *reset},
		{"commit-then-fail", *commitFail}, {"order-error-envelope-rate", h.OrderErrorEnvelopeRate},
		{"order-no-orderno-rate", h.OrderNoOrderNoRate}, {"undocumented-status-rate", h.UndocumentedStatusRate},
	} {
		if !(p.v >= 0 && p.v <= 1) {
			errs = append(errs, fmt.Errorf("--%s %v: probabilities must be between 0 and 1", p.name, p.v))
		}
	}
	if h.RedirectTo != "" {
		if u, err := url.Parse(h.RedirectTo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--redirect-to %q: want an absolute http:// or https:// URL", h.RedirectTo))
		}
	}
	if h.RedirectStatus < 300 || h.RedirectStatus > 399 {
		errs = append(errs, fmt.Errorf("--redirect-status %d: want a 3xx status", h.RedirectStatus))
	}
	if h.OrderListShift < 0 {
		errs = append(errs, fmt.Errorf("--order-list-shift %d: want 0 or more", h.OrderListShift))
	}
	if h.RedirectFor < 0 || h.UndocumentedStatusFor < 0 {
		errs = append(errs, errors.New("--redirect-for and --undocumented-status-for must not be negative"))
	}
	if strings.TrimSpace(h.UndocumentedStatus) == "" {
		errs = append(errs, errors.New("--undocumented-status must not be empty"))
	}
	if len(errs) > 0 {
		return partnerSimOptions{}, errors.Join(errs...)
	}

	o := partnerSimOptions{addr: *addr, clientID: *id, hostile: h, opts: []partnertest.Option{
		partnertest.WithCredentials(*id, *secret),
		partnertest.WithTokenTTL(*tokenTTL),
		partnertest.WithSeed(*seed),
		partnertest.WithHostile(h),
	}}
	for _, ep := range partnerclient.AllEndpoints {
		if ep == partnerclient.EndpointToken {
			continue
		}
		f := partnertest.Faults{Latency: *latency, Jitter: *jitter, ErrorRate: *errRate, RateLimitRate: *rateLimit, ResetRate: *reset}
		if ep == partnerclient.EndpointCreateOrder {
			f.CommitThenFail = *commitFail
		}
		o.opts = append(o.opts, partnertest.WithFaults(ep, f))
	}
	return o, nil
}

// flagError is a command-line error that the flag package has already reported.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// describeHostile lists the hostile knobs in force, one a line; none for the documented
// behaviour.
func describeHostile(h partnertest.Hostile) []string {
	var out []string
	add := func(on bool, format string, args ...any) {
		if on {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	add(h.OrderErrorEnvelopeRate > 0, "create order commits, then answers an error envelope (status 500) with probability %g", h.OrderErrorEnvelopeRate)
	add(h.OrderNoOrderNoRate > 0, "create order answers without orderNo with probability %g", h.OrderNoOrderNoRate)
	add(h.UndocumentedStatusRate > 0, "new orders show orderStatus %q for %v with probability %g", h.UndocumentedStatus, h.UndocumentedStatusFor, h.UndocumentedStatusRate)
	forText := "for ever"
	if h.RedirectFor > 0 {
		forText = "for " + h.RedirectFor.String()
	}
	add(h.RedirectTo != "", "every request is redirected (%d) to %s %s", h.RedirectStatus, h.RedirectTo, forText)
	add(h.EmptyBillingContacts, "the billing contact list is {}")
	add(h.AutoRenewalAsBool, "planAutoRenewal and serviceAutoRenewal are true/false")
	add(h.OrderListOldestFirst, "the order list is oldest first")
	add(h.OrderListShift > 0, "order-list pages after the first start %d orders early", h.OrderListShift)
	add(h.OrderListWithoutPONumber, "order-list items have no poNumber")
	return out
}

func runPartnerSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parsePartnerSim(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		if !errors.As(err, new(flagError)) {
			fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
		}
		return exitUsage
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
		return exitFailed
	}
	// The Sim is made once listening, so that --redirect-for counts from the first possible
	// request.
	sim := partnertest.New(o.opts...)
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "partner simulator listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "credentials: FULFIL_PARTNER_URL=http://%s FULFIL_PARTNER_CLIENT_ID=%s FULFIL_PARTNER_CLIENT_SECRET=<the --client-secret value>\n", ln.Addr(), o.clientID)
	for _, line := range describeHostile(o.hostile) {
		fmt.Fprintf(stdout, "hostile: %s\n", line)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return exitOK
	case err := <-errc:
		fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
		return exitFailed
	}
}
