package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/audit"
)

func newAuditCmd() *cobra.Command {
	var c config
	var o auditOptions
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "compare the partner's orders with the sagas: orphan, duplicate and missing orders (exit 1 on findings)",
		Example: `  fulfil audit
  fulfil audit --since 168h -o json
  fulfil audit --partner-sim                 # against the built-in simulator`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	c.natsFlags(fs, false)
	c.partnerFlags(fs)
	c.logFlag(fs, "error")
	fs.DurationVar(&o.since, "since", audit.DefaultWindow, "how far back to look: orders created and purchases ordered since then")
	outputFlag(fs, &o.output, "table", false)
	fs.IntVar(&o.pageSize, "page-size", 100, "order-list page size")
	fs.IntVar(&o.maxPages, "max-pages", 200, "order-list pages read at most; a longer list makes the audit incomplete")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return runAudit(cmd.Context(), &c, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

type auditOptions struct {
	since              time.Duration
	output             string
	pageSize, maxPages int
}

// runAudit compares the partner's orders with the sagas: exit 0 without findings, 1 with
// findings (or when the audit could not run), 2 on usage errors.
func runAudit(ctx context.Context, c *config, o auditOptions, stdout, stderr io.Writer) int {
	switch {
	case o.since <= 0:
		return usageError(stderr, fmt.Errorf("--since %s: want a positive duration such as 72h", o.since))
	case o.pageSize < 1 || o.maxPages < 1:
		return usageError(stderr, fmt.Errorf("--page-size and --max-pages must be positive"))
	}
	if err := c.resolvePartner(); err != nil {
		return usageError(stderr, err)
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "fulfil audit: %v\n", err)
		return exitFailed
	}
	client, stopSim, err := partner(c, log, nil)
	if err != nil {
		return fail(err)
	}
	defer stopSim()
	env, err := connectNATS(c, false, log)
	if err != nil {
		return natsFailure(stderr, "audit", err)
	}
	defer env.close()
	store, err := idempotency.Bind(ctx, env.js, idempotency.Config{})
	if err != nil {
		return fail(err)
	}
	recs, err := store.List(ctx)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	rep, err := audit.Run(ctx, client, recs, audit.Options{Since: now.Add(-o.since), Now: now, PageSize: o.pageSize, MaxPages: o.maxPages})
	if err != nil {
		return fail(err)
	}
	if o.output == "json" {
		err = audit.WriteJSON(stdout, rep)
	} else {
		err = audit.WriteTable(stdout, rep)
	}
	if err != nil {
		return fail(err)
	}
	if len(rep.Findings) > 0 {
		return exitFailed
	}
	return exitOK
}
