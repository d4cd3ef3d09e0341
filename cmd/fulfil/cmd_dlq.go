package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/worker"
)

// newDLQCmd is `fulfil dlq list` and `fulfil dlq replay KEY|--all`.
func newDLQCmd() *cobra.Command {
	cmd := groupCmd("dlq", "list or replay dead-lettered requests (dlq list, dlq replay KEY|--all)",
		`  fulfil dlq list
  fulfil dlq list --key shop-eu-order-100231 -o json
  fulfil dlq replay shop-eu-order-100231
  fulfil dlq replay --all`)
	cmd.AddCommand(newDLQListCmd(), newDLQReplayCmd())
	return cmd
}

func newDLQListCmd() *cobra.Command {
	var c config
	var key, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list the dead-lettered requests: those no worker could process within --max-deliver deliveries",
		Example: `  fulfil dlq list
  fulfil dlq list --key shop-eu-order-100231
  fulfil dlq list -o json          # one JSON object per dead letter`,
		Args: noArgs,
	}
	c.natsFlags(cmd.Flags(), false)
	cmd.Flags().StringVar(&key, "key", "", "only this idempotency key")
	outputFlag(cmd.Flags(), &output, "text", false)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		dls, env, code := deadLetters(cmd.Context(), &c, "list", key, stderr)
		if code != exitOK {
			return code
		}
		env.close()
		if output == "json" {
			enc := json.NewEncoder(stdout)
			for _, d := range dls {
				_ = enc.Encode(map[string]any{"seq": d.Seq, "deadLettered": d.Time, "idempotencyKey": d.Key, "reason": d.Reason,
					"deliveries": d.Deliveries, "requestSeq": d.RequestSeq, "truncated": d.Truncated, "request": json.RawMessage(validJSON(d.Data))})
			}
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tKEY\tREASON\tDELIVERIES\tREQUEST SEQ")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\n", d.Seq, stamp(d.Time), orDash(d.Key), d.Reason, d.Deliveries, d.RequestSeq)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d dead letter(s)\n", len(dls))
		return exitOK
	})
	return cmd
}

func newDLQReplayCmd() *cobra.Command {
	var c config
	var all bool
	var key string
	cmd := &cobra.Command{
		Use:   "replay KEY|--all",
		Short: "publish dead-lettered requests again, as new requests",
		Example: `  fulfil dlq replay shop-eu-order-100231
  fulfil dlq replay --all`,
		Args: func(cmd *cobra.Command, args []string) error {
			if n := len(args) + btoi(key != "") + btoi(all); n != 1 || len(args) > 1 {
				return errors.New("give one idempotency KEY, or --all")
			}
			return nil
		},
	}
	c.natsFlags(cmd.Flags(), false)
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.Flags().StringVar(&key, "key", "", "the idempotency key to replay (the same as the KEY argument)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) int {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		if len(args) == 1 {
			key = args[0]
		}
		dls, env, code := deadLetters(cmd.Context(), &c, "replay", key, stderr)
		if code != exitOK {
			return code
		}
		defer env.close()
		if len(dls) == 0 {
			fmt.Fprintln(stderr, "fulfil dlq replay: nothing to replay")
			return exitFailed
		}
		code = exitOK
		for _, d := range dls {
			seq, err := worker.ReplayDeadLetter(cmd.Context(), env.js, c.prefix, d)
			if err != nil {
				fmt.Fprintf(stderr, "fulfil dlq replay: %v\n", err)
				code = exitFailed
				continue
			}
			fmt.Fprintf(stdout, "replayed dead letter %d (%s, %s) as request %d\n", d.Seq, orDash(d.Key), d.Reason, seq)
		}
		return code
	})
	return cmd
}

// deadLetters connects to NATS and returns the dead letters of key (all if empty); the
// caller closes env.
func deadLetters(ctx context.Context, c *config, sub, key string, stderr io.Writer) ([]worker.DeadLetter, *natsEnv, int) {
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(c, false, log)
	if err != nil {
		return nil, nil, natsFailure(stderr, "dlq "+sub, err)
	}
	dls, err := worker.ListDeadLetters(ctx, env.js, key)
	if err != nil {
		env.close()
		fmt.Fprintf(stderr, "fulfil dlq %s: %v\n", sub, err)
		return nil, nil, exitFailed
	}
	return dls, env, exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
