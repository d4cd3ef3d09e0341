package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

func newStatusCmd() *cobra.Command {
	var c config
	var output string
	var raw bool
	cmd := &cobra.Command{
		Use:   "status [IDEMPOTENCY_KEY]",
		Short: "show the saga state of one idempotency key; without a key, the account's pause, spend and last audit",
		Example: `  fulfil status shop-eu-order-100231
  fulfil status shop-eu-order-100231 -o json          # the document GET /v1/purchases/KEY answers
  fulfil status shop-eu-order-100231 -o json --raw    # the stored idempotency record
  fulfil status                                       # the account: pause, spend counters, last audit`,
		Args: cobra.MaximumNArgs(1),
	}
	c.natsFlags(cmd.Flags(), false)
	outputFlag(cmd.Flags(), &output, "text", true)
	cmd.Flags().Lookup("json").Usage = "same as -o json: print the purchase as JSON, the document GET /v1/purchases/KEY answers"
	cmd.Flags().BoolVar(&raw, "raw", false, "with -o json: print the stored idempotency record instead")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) int {
		return runStatus(cmd.Context(), &c, args, output == "json", raw, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

func runStatus(ctx context.Context, c *config, args []string, asJSON, raw bool, stdout, stderr io.Writer) int {
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(c, false, log)
	if err != nil {
		return natsFailure(stderr, "status", err)
	}
	defer env.close()
	ctl, err := control.Bind(ctx, env.js, control.Config{})
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		fmt.Fprintf(stderr, "fulfil status: %v\n", err)
		return exitFailed
	}
	if len(args) == 0 {
		if asJSON {
			if err := printControlJSON(ctx, stdout, ctl, time.Now()); err != nil {
				fmt.Fprintf(stderr, "fulfil status: %v\n", err)
				return exitFailed
			}
			return exitOK
		}
		if ctl == nil {
			fmt.Fprintln(stdout, "account: running (no worker has started and nobody has paused it yet)")
			return exitOK
		}
		if err := printControl(ctx, stdout, ctl, time.Now()); err != nil {
			fmt.Fprintf(stderr, "fulfil status: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	key := args[0]
	if asJSON && !raw {
		return printPurchaseJSON(ctx, env.js, key, stdout, stderr)
	}
	store, err := idempotency.Bind(ctx, env.js, idempotency.Config{})
	if err != nil {
		fmt.Fprintf(stderr, "fulfil status: %v\n", err)
		return exitFailed
	}
	rec, err := store.Get(ctx, key)
	if errors.Is(err, idempotency.ErrNotFound) {
		fmt.Fprintf(stderr, "fulfil status: no saga for key %q (never submitted, still invalid, or older than the retention)\n", key)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "fulfil status: %v\n", err)
		return exitFailed
	}
	if asJSON {
		b, _ := json.MarshalIndent(rec, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return exitOK
	}
	if err := printStatus(stdout, rec, time.Now()); err != nil {
		fmt.Fprintf(stderr, "fulfil status: %v\n", err)
		return exitFailed
	}
	if ctl != nil {
		if p, err := ctl.Pause(ctx); err == nil && p.Paused {
			fmt.Fprintf(stdout, "\naccount: PAUSED by %s since %s", p.By, stamp(p.At))
			if p.Reason != "" {
				fmt.Fprintf(stdout, ": %s", p.Reason)
			}
			if rec.Finished() {
				fmt.Fprintln(stdout, "\n  (this purchase has finished; others send no create order until `fulfil resume`)")
			} else {
				fmt.Fprintln(stdout, "\n  this purchase sends no create order until `fulfil resume`")
			}
		}
	}
	return exitOK
}

// printStatus renders a record for humans.
func printStatus(w io.Writer, rec idempotency.Record, now time.Time) error {
	st, err := workflow.DecodeState(rec.State)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("key", rec.Key)
	row("saga", rec.SagaID)
	row("status", string(rec.Status))
	row("created", stamp(rec.CreatedAt))
	row("updated", stamp(rec.UpdatedAt))
	row("deliveries", fmt.Sprint(rec.Deliveries))
	if !rec.Finished() && rec.Lease.Owner != "" {
		state := "held"
		if now.After(rec.Lease.Expires) {
			state = "expired"
		}
		row("lease", fmt.Sprintf("%s by %s (epoch %d, until %s)", state, rec.Lease.Owner, rec.Lease.Epoch, stamp(rec.Lease.Expires)))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nsteps:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range messages.Steps {
		s := st.Steps[name]
		if s == nil {
			fmt.Fprintf(tw, "  %s\t-\t\t\n", name)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d attempt(s)\t%s\n", name, s.Status, s.Attempts, stamp(s.At))
	}
	tw.Flush()

	if in := st.Order.Intent; in != nil {
		fmt.Fprintf(w, "\norder intent: poNumber %s, sent %d time(s), first %s, last %s", in.PONumber, in.Sends, stamp(in.FirstSentAt), stamp(in.LastSentAt))
		if in.Unknown {
			fmt.Fprint(w, ", outcome UNKNOWN (reconciliation pending)")
		}
		fmt.Fprintln(w)
	}
	if res := st.Order.Result; res != nil {
		adopted := ""
		if res.Adopted {
			adopted = " (adopted after reconciliation)"
		}
		fmt.Fprintf(w, "order: %s %s, PBX %s%s\n", res.OrderNo, res.OrderStatus, res.ProductNo, adopted)
	}
	if st.Renewal != nil {
		fmt.Fprintf(w, "auto-renewal: enabled=%v skipped=%v\n", st.Renewal.Enabled, st.Renewal.Skipped)
	}
	if st.Activation != nil {
		fmt.Fprintf(w, "activation code: %s\n", st.Activation.Code)
	}
	if len(rec.Outcome) > 0 {
		var m map[string]any
		if json.Unmarshal(rec.Outcome, &m) == nil {
			var parts []string
			for _, k := range []string{"reason", "step", "message", "orderNo"} {
				if v, ok := m[k]; ok && v != "" {
					parts = append(parts, fmt.Sprintf("%s=%v", k, v))
				}
			}
			fmt.Fprintf(w, "outcome: %s %s\n", rec.OutcomeType, strings.Join(parts, " "))
		}
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
