package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/partnercheck"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// startPartnerSim serves the simulator of `partner check --partner-sim`; tests replace it
// to inspect the simulator.
var startPartnerSim = func() *partnertest.Server { return partnertest.NewServer() }

func newPartnerCmd() *cobra.Command {
	cmd := groupCmd("partner", "check the partner API against fulfil's decoders (partner check)",
		`  fulfil partner check --partner-sim
  fulfil partner check --save partnerclient/testdata/fixtures`)
	cmd.AddCommand(newPartnerCheckCmd())
	return cmd
}

func newPartnerCheckCmd() *cobra.Command {
	var c config
	var save, output string
	var productID int64
	cmd := &cobra.Command{
		Use:   "check",
		Short: "call every read-only partner API endpoint and compare the answers with fulfil's decoders",
		Long: `Calls every read-only partner API endpoint and compares the answers with fulfil's decoders.
A value of an unexpected type in a field fulfil does not rely on is reported as drift (a warning);
one in a field it relies on, or a failed call, makes the check fail (exit 1).`,
		Example: `  FULFIL_PARTNER_CLIENT_ID_FILE=id.txt FULFIL_PARTNER_CLIENT_SECRET_FILE=secret.txt fulfil partner check
  fulfil partner check --partner-sim -o json
  fulfil partner check --save partnerclient/testdata/fixtures --product-id 12`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	c.partnerFlags(fs)
	c.logFlag(fs, defaultLogLevel)
	fs.StringVar(&save, "save", "", "write each response to DIR/<endpoint>.json, tokens and secret redacted; account data is kept, so review before committing")
	fs.Int64Var(&productID, "product-id", 12, "product whose licences and plans are read (12: P-Series Software Edition)")
	outputFlag(fs, &output, "text", false)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return runPartnerCheck(cmd.Context(), &c, save, productID, output == "json", cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// runPartnerCheck checks the partner API's answers against the decoders: exit 0 when
// every call succeeded and every value fulfil relies on fits, 1 otherwise. Drift (a value
// of an unexpected type elsewhere, which the decoders tolerate) is reported, not failed.
func runPartnerCheck(ctx context.Context, c *config, save string, productID int64, asJSON bool, stdout, stderr io.Writer) int {
	if productID < 0 {
		return usageError(stderr, fmt.Errorf("--product-id %d: must not be negative", productID))
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
	client, stop, err := partner(c, log, nil, rec.Option())
	if err != nil {
		return usageError(stderr, err)
	}
	defer stop()

	report, err := partnercheck.Check(ctx, client, rec, partnercheck.Options{ProductID: productID, FixtureDir: save})
	if report != nil {
		if werr := writePartnerReport(stdout, report, err, asJSON); werr != nil {
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

// partnerCheckJSON is what `partner check -o json` prints: the report as data
// (partnercheck.Result), with ok false and the error when Check itself failed after checking,
// e.g. a fixture that could not be written.
type partnerCheckJSON struct {
	partnercheck.Result
	Error string `json:"error,omitempty"`
}

// writePartnerReport prints the check's report: its table, or with asJSON one JSON object
// (partnerCheckJSON).
func writePartnerReport(w io.Writer, r *partnercheck.Report, checkErr error, asJSON bool) error {
	if !asJSON {
		return r.Write(w)
	}
	out := partnerCheckJSON{Result: r.Result()}
	if checkErr != nil {
		out.OK, out.Error = false, checkErr.Error()
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
