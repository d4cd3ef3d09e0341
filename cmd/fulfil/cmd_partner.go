package main

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/partnercheck"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// startPartnerSim serves the simulator of `partner check --partner-sim`; tests replace it
// to inspect the simulator.
var startPartnerSim = func() *partnertest.Server { return partnertest.NewServer() }

func runPartner(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return runPartnerCheck(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "Usage: fulfil partner check [--save DIR] [--product-id 12] [partner flags]")
	fmt.Fprintln(stderr, "\nCalls every read-only partner API endpoint and compares the answers with fulfil's decoders.")
	fmt.Fprintln(stderr, "A value of an unexpected type in a field fulfil does not rely on is reported as drift (a warning);")
	fmt.Fprintln(stderr, "one in a field it relies on, or a failed call, makes the check fail (exit 1).")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return exitOK
	}
	return exitUsage
}

// runPartnerCheck checks the partner API's answers against the decoders: exit 0 when
// every call succeeded and every value fulfil relies on fits, 1 otherwise. Drift (a value
// of an unexpected type elsewhere, which the decoders tolerate) is reported, not failed.
func runPartnerCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs, ee := newFlags("partner check", &c, secPartner|secLog, stderr)
	save := fs.String("save", "", "write each response to DIR/<endpoint>.json, tokens and secret redacted; account data is kept, so review before committing")
	productID := fs.Int64("product-id", 12, "product whose licences and plans are read (12: P-Series Software Edition)")
	if err := parse(fs, ee, args); err != nil {
		return usageError(stderr, err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *productID < 0 {
		return usageError(stderr, fmt.Errorf("--product-id %d: must not be negative", *productID))
	}
	if err := c.resolvePartner(); err != nil {
		return usageError(stderr, err)
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	defer func() { _ = log.Sync() }()
	if c.partnerSim {
		sim := startPartnerSim()
		defer sim.Close()
		log.Info("checking the built-in partner simulator", zap.String("url", sim.URL))
		c.partnerSim = false
		c.partnerURL, c.clientID, c.clientSecret = sim.URL, partnertest.DefaultClientID, partnertest.DefaultClientSecret
	}
	rec := partnercheck.NewRecorder(nil)
	client, stop, err := partner(&c, log, nil, rec.Option())
	if err != nil {
		return usageError(stderr, err)
	}
	defer stop()

	report, err := partnercheck.Check(ctx, client, rec, partnercheck.Options{ProductID: *productID, FixtureDir: *save})
	if report != nil {
		if werr := report.Write(stdout); werr != nil {
			fmt.Fprintf(stderr, "fulfil partner check: %v\n", werr)
			return exitFailed
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "fulfil partner check: %v\n", err)
		return exitFailed
	}
	if !report.OK() {
		return exitFailed
	}
	return exitOK
}
