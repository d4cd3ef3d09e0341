package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// partnerSimFlags are the flags of fulfil partnersim. The hostile knobs also come from the
// environment: FULFIL_ and the flag's name in capitals, "-" as "_".
type partnerSimFlags struct {
	addr, id, secret                      string
	latency, jitter, tokenTTL             time.Duration
	errRate, rateLimit, reset, commitFail float64
	seed                                  int64
	hostile                               partnertest.Hostile
}

func (p *partnerSimFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.addr, "addr", "127.0.0.1:8089", "listen address")
	fs.StringVar(&p.id, "client-id", partnertest.DefaultClientID, "client ID the simulator accepts")
	fs.StringVar(&p.secret, "client-secret", partnertest.DefaultClientSecret, "client secret the simulator accepts")
	fs.DurationVar(&p.latency, "latency", 0, "added latency of every business call")
	fs.DurationVar(&p.jitter, "jitter", 0, "random extra latency, uniform in [0, jitter)")
	fs.Float64Var(&p.errRate, "error-rate", 0, "probability of a 503 per business call")
	fs.Float64Var(&p.rateLimit, "rate-limit-rate", 0, "probability of a 429 per business call")
	fs.Float64Var(&p.reset, "reset-rate", 0, "probability of a connection reset per business call")
	fs.Float64Var(&p.commitFail, "commit-then-fail", 0, "probability that create order commits, then loses its reply")
	fs.DurationVar(&p.tokenTTL, "token-ttl", 30*time.Minute, "access token lifetime")
	fs.Int64Var(&p.seed, "seed", 1, "seed of the fault and ID generator")

	h := &p.hostile
	f := envFlags{fs}
	f.Float64(&h.OrderErrorEnvelopeRate, "order-error-envelope-rate", "FULFIL_ORDER_ERROR_ENVELOPE_RATE", 0,
		"hostile: probability that create order commits, then answers HTTP 200 with code system_error and status 500")
	f.Float64(&h.OrderNoOrderNoRate, "order-no-orderno-rate", "FULFIL_ORDER_NO_ORDERNO_RATE", 0,
		"hostile: probability that create order commits and answers success without orderNo")
	f.Float64(&h.UndocumentedStatusRate, "undocumented-status-rate", "FULFIL_UNDOCUMENTED_STATUS_RATE", 0,
		"hostile: probability that a new order shows --undocumented-status for --undocumented-status-for")
	f.String(&h.UndocumentedStatus, "undocumented-status", "FULFIL_UNDOCUMENTED_STATUS", partnertest.DefaultUndocumentedStatus,
		"hostile: the undocumented orderStatus")
	f.Duration(&h.UndocumentedStatusFor, "undocumented-status-for", "FULFIL_UNDOCUMENTED_STATUS_FOR", 30*time.Second,
		"hostile: how long after its creation an order shows the undocumented status before \"succeed\"; 0: for ever")
	f.String(&h.RedirectTo, "redirect-to", "FULFIL_REDIRECT_TO", "",
		"hostile: base URL of another listener; every request, the token request included, is answered with a "+
			"redirect there (same path and query) and not carried out; empty: off")
	f.Duration(&h.RedirectFor, "redirect-for", "FULFIL_REDIRECT_FOR", 0, "hostile: how long from start-up --redirect-to lasts; 0: for ever")
	f.Int(&h.RedirectStatus, "redirect-status", "FULFIL_REDIRECT_STATUS", http.StatusTemporaryRedirect, "hostile: HTTP status of the redirects, 300 to 399")
	f.Bool(&h.EmptyBillingContacts, "empty-billing-contacts", "FULFIL_EMPTY_BILLING_CONTACTS", false,
		"hostile: the billing contact list answers \"result\":{}")
	f.Bool(&h.AutoRenewalAsBool, "auto-renewal-as-bool", "FULFIL_AUTO_RENEWAL_AS_BOOL", false,
		"hostile: product list and details give planAutoRenewal and serviceAutoRenewal as true/false, not 1/0")
	f.String(&h.EnableWhenOn, "enable-when-on", "FULFIL_ENABLE_WHEN_ON", "",
		"hostile: how enable auto-renewal answers when auto-renewal is already on: "+partnertest.EnableWhenOnFalse+
			" (result false) or "+partnertest.EnableWhenOnRefused+" (HTTP 200, code "+partnertest.CodeAlreadyEnabled+
			"); empty: as documented (result true)")
	f.Bool(&h.OrderListOldestFirst, "order-list-oldest-first", "FULFIL_ORDER_LIST_OLDEST_FIRST", false,
		"hostile: the order list answers oldest first, whatever sort says")
	f.Int(&h.OrderListShift, "order-list-shift", "FULFIL_ORDER_LIST_SHIFT", 0,
		"hostile: every order-list page after the first starts this many orders early, repeating the end of the "+
			"previous page, as when orders arrive while a client pages")
	f.Bool(&h.OrderListWithoutPONumber, "order-list-without-po-number", "FULFIL_ORDER_LIST_WITHOUT_PO_NUMBER", false,
		"hostile: order-list items have no poNumber (order details keep it)")
}

// options checks the flags' values and returns the simulator's options.
func (p *partnerSimFlags) options() (partnerSimOptions, error) {
	h := p.hostile
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"error-rate", p.errRate}, {"rate-limit-rate", p.rateLimit}, {"reset-rate", p.reset},
		{"commit-then-fail", p.commitFail}, {"order-error-envelope-rate", h.OrderErrorEnvelopeRate},
		{"order-no-orderno-rate", h.OrderNoOrderNoRate}, {"undocumented-status-rate", h.UndocumentedStatusRate},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("--%s %v: probabilities must be between 0 and 1", r.name, r.v))
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
	switch h.EnableWhenOn {
	case "", partnertest.EnableWhenOnFalse, partnertest.EnableWhenOnRefused:
	default:
		errs = append(errs, fmt.Errorf("--enable-when-on %q: want %s, %s or empty", h.EnableWhenOn,
			partnertest.EnableWhenOnFalse, partnertest.EnableWhenOnRefused))
	}
	if strings.TrimSpace(h.UndocumentedStatus) == "" {
		errs = append(errs, errors.New("--undocumented-status must not be empty"))
	}
	if len(errs) > 0 {
		return partnerSimOptions{}, errors.Join(errs...)
	}

	o := partnerSimOptions{addr: p.addr, clientID: p.id, hostile: h, opts: []partnertest.Option{
		partnertest.WithCredentials(p.id, p.secret),
		partnertest.WithTokenTTL(p.tokenTTL),
		partnertest.WithSeed(p.seed),
		partnertest.WithHostile(h),
	}}
	for _, ep := range partnerclient.AllEndpoints {
		if ep == partnerclient.EndpointToken {
			continue
		}
		f := partnertest.Faults{Latency: p.latency, Jitter: p.jitter, ErrorRate: p.errRate, RateLimitRate: p.rateLimit, ResetRate: p.reset}
		if ep == partnerclient.EndpointCreateOrder {
			f.CommitThenFail = p.commitFail
		}
		o.opts = append(o.opts, partnertest.WithFaults(ep, f))
	}
	return o, nil
}

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
	add(h.EnableWhenOn == partnertest.EnableWhenOnFalse, "enabling auto-renewal that is already on answers false")
	add(h.EnableWhenOn == partnertest.EnableWhenOnRefused, "enabling auto-renewal that is already on is refused (HTTP 200, code %s)",
		partnertest.CodeAlreadyEnabled)
	add(h.OrderListOldestFirst, "the order list is oldest first")
	add(h.OrderListShift > 0, "order-list pages after the first start %d orders early", h.OrderListShift)
	add(h.OrderListWithoutPONumber, "order-list items have no poNumber")
	return out
}

func newPartnerSimCmd() *cobra.Command {
	var p partnerSimFlags
	cmd := &cobra.Command{
		Use:   "partnersim",
		Short: "run the partner API simulator standalone",
		Long: `Serves the partner API simulator. The hostile flags make it differ from the documentation
the way a real portal might; rates are probabilities drawn from --seed.`,
		Example: `  fulfil partnersim --addr 127.0.0.1:8089 --latency 50ms --error-rate 0.05 --commit-then-fail 0.02
  fulfil partnersim --redirect-to http://127.0.0.1:9099 --redirect-for 5s
  FULFIL_ORDER_LIST_SHIFT=2 fulfil partnersim
  fulfil partnersim --enable-when-on refused`,
		Args: noArgs,
	}
	p.register(cmd.Flags())
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		stderr := cmd.ErrOrStderr()
		o, err := p.options()
		if err != nil {
			fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
			return exitUsage
		}
		return servePartnerSim(cmd.Context(), o, cmd.OutOrStdout(), stderr)
	})
	return cmd
}

// servePartnerSim serves the simulator until ctx ends.
func servePartnerSim(ctx context.Context, o partnerSimOptions, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
		return exitFailed
	}
	// The Sim is made once listening, so that --redirect-for counts from the first possible
	// request.
	sim := partnertest.New(o.opts...)
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
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
