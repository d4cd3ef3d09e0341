package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/audit"
)

// runAudit compares the partner's orders with the sagas: exit 0 without findings, 1 with
// findings (or when the audit could not run), 2 on usage errors.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs, ee := newFlags("audit", &c, secNATS|secPartner|secLog, stderr)
	since := fs.Duration("since", audit.DefaultWindow, "how far back to look: orders created and purchases ordered since then")
	var output string
	fs.StringVar(&output, "o", "table", "output: table or json")
	fs.StringVar(&output, "output", "table", "output: table or json (same as -o)")
	pageSize := fs.Int("page-size", 100, "order-list page size")
	maxPages := fs.Int("max-pages", 200, "order-list pages read at most; a longer list makes the audit incomplete")
	c.logLevel = "error"
	if err := parse(fs, ee, args); err != nil {
		return usageError(stderr, err)
	}
	switch {
	case fs.NArg() != 0:
		return usageError(stderr, fmt.Errorf("audit takes no arguments, got %q", fs.Args()))
	case output != "table" && output != "json":
		return usageError(stderr, fmt.Errorf("-o %q: want table or json", output))
	case *since <= 0:
		return usageError(stderr, fmt.Errorf("--since %s: want a positive duration such as 72h", *since))
	case *pageSize < 1 || *maxPages < 1:
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
	client, stopSim, err := partner(&c, log, nil)
	if err != nil {
		return fail(err)
	}
	defer stopSim()
	env, err := connectNATS(&c, false, log)
	if err != nil {
		return fail(err)
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
	rep, err := audit.Run(ctx, client, recs, audit.Options{Since: now.Add(-*since), Now: now, PageSize: *pageSize, MaxPages: *maxPages})
	if err != nil {
		return fail(err)
	}
	if output == "json" {
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
