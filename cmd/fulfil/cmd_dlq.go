package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fulfil/fulfil/worker"
)

// runDLQ serves `fulfil dlq list` and `fulfil dlq replay KEY|--all`.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, "usage: fulfil dlq list [--key KEY] | fulfil dlq replay KEY|--all")
		return exitUsage
	}
	sub := args[0]
	var c config
	fs, ee := newFlags("dlq "+sub, &c, secNATS, stderr)
	key := fs.String("key", "", "only this idempotency key")
	all := fs.Bool("all", false, "replay every dead letter")
	if err := parse(fs, ee, args[1:]); err != nil {
		return usageError(stderr, err)
	}
	if sub == "replay" {
		switch {
		case fs.NArg() == 1 && *key == "":
			*key = fs.Arg(0)
		case fs.NArg() > 1 || (*key == "") == !*all:
			fmt.Fprintln(stderr, "usage: fulfil dlq replay KEY|--all")
			return exitUsage
		}
	}
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(&c, false, log)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil dlq: %v\n", err)
		return exitFailed
	}
	defer env.close()
	dls, err := worker.ListDeadLetters(ctx, env.js, *key)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil dlq: %v\n", err)
		return exitFailed
	}
	if sub == "list" {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tKEY\tREASON\tDELIVERIES\tREQUEST SEQ")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\n", d.Seq, stamp(d.Time), orDash(d.Key), d.Reason, d.Deliveries, d.RequestSeq)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d dead letter(s)\n", len(dls))
		return exitOK
	}
	if len(dls) == 0 {
		fmt.Fprintln(stderr, "fulfil dlq replay: nothing to replay")
		return exitFailed
	}
	code := exitOK
	for _, d := range dls {
		seq, err := worker.ReplayDeadLetter(ctx, env.js, c.prefix, d)
		if err != nil {
			fmt.Fprintf(stderr, "fulfil dlq replay: %v\n", err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "replayed dead letter %d (%s, %s) as request %d\n", d.Seq, orDash(d.Key), d.Reason, seq)
	}
	return code
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
