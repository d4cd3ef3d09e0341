package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func runPartnerSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fulfil partnersim", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	for _, p := range []float64{*errRate, *rateLimit, *reset, *commitFail} {
		if p < 0 || p > 1 {
			fmt.Fprintln(stderr, "fulfil partnersim: probabilities must be between 0 and 1")
			return exitUsage
		}
	}
	opts := []partnertest.Option{
		partnertest.WithCredentials(*id, *secret),
		partnertest.WithTokenTTL(*tokenTTL),
		partnertest.WithSeed(*seed),
	}
	for _, ep := range partnerclient.AllEndpoints {
		if ep == partnerclient.EndpointToken {
			continue
		}
		f := partnertest.Faults{Latency: *latency, Jitter: *jitter, ErrorRate: *errRate, RateLimitRate: *rateLimit, ResetRate: *reset}
		if ep == partnerclient.EndpointCreateOrder {
			f.CommitThenFail = *commitFail
		}
		opts = append(opts, partnertest.WithFaults(ep, f))
	}
	sim := partnertest.New(opts...)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil partnersim: %v\n", err)
		return exitFailed
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "partner simulator listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "credentials: FULFIL_PARTNER_URL=http://%s FULFIL_PARTNER_CLIENT_ID=%s FULFIL_PARTNER_CLIENT_SECRET=<the --client-secret value>\n", ln.Addr(), *id)
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
