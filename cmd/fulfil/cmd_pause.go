package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/internal/control"
)

// newPauseCmd is `fulfil pause` (paused) or `fulfil resume`.
func newPauseCmd(paused bool) *cobra.Command {
	var c config
	var reason, by string
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "let create order go ahead again after fulfil pause",
		Example: `  fulfil resume
  fulfil resume --by alice@ops`,
		Args: noArgs,
	}
	if paused {
		cmd.Use, cmd.Short = "pause", "stop every worker from sending create order (--reason TEXT); the rest goes on"
		cmd.Example = `  fulfil pause --reason "partner invoice dispute"
  fulfil pause --reason "spend review" --by alice@ops`
	}
	c.natsFlags(cmd.Flags(), false)
	if paused {
		cmd.Flags().StringVar(&reason, "reason", "", "why the account is paused, shown by fulfil status and in the progress events of waiting purchases")
	}
	cmd.Flags().StringVar(&by, "by", operator(), "who sets the flag")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return setPause(cmd.Context(), &c, cmd.Name(), paused, by, reason, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// setPause sets or clears the account's pause flag in the control bucket, creating the bucket
// if no worker has yet.
func setPause(ctx context.Context, c *config, name string, paused bool, by, reason string, stdout, stderr io.Writer) int {
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(c, false, log)
	if err != nil {
		return natsFailure(stderr, name, err)
	}
	defer env.close()
	ctl, err := control.Ensure(ctx, env.js, control.Config{Replicas: defaultReplicas(env.nc.ConnectedClusterName())})
	if err != nil {
		fmt.Fprintf(stderr, "fulfil %s: %v\n", name, err)
		return exitFailed
	}
	prev, err := ctl.SetPause(ctx, paused, by, reason)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil %s: %v\n", name, err)
		return exitFailed
	}
	switch {
	case paused && prev.Paused:
		fmt.Fprintf(stdout, "paused (it already was, by %s since %s); reason now %q\n", prev.By, stamp(prev.At), reason)
	case paused:
		fmt.Fprintln(stdout, "paused: no worker sends create order until `fulfil resume`; lookups, events and the steps after an order go on")
	case prev.Paused:
		fmt.Fprintf(stdout, "resumed (was paused by %s since %s): waiting purchases go ahead now\n", prev.By, stamp(prev.At))
	default:
		fmt.Fprintln(stdout, "resumed (it was not paused)")
	}
	return exitOK
}

// operator names who runs the command: user@host.
func operator() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if name == "" {
		name = "unknown"
	}
	if host != "" {
		name += "@" + host
	}
	return name
}

// printControl renders the account's control state for `fulfil status`.
func printControl(ctx context.Context, w io.Writer, ctl *control.Control, now time.Time) error {
	p, err := ctl.Pause(ctx)
	if err != nil {
		return err
	}
	if p.Paused {
		fmt.Fprintf(w, "account: PAUSED by %s since %s", p.By, stamp(p.At))
		if p.Reason != "" {
			fmt.Fprintf(w, ": %s", p.Reason)
		}
		fmt.Fprintln(w, "\n  no create order is sent until `fulfil resume`")
	} else {
		fmt.Fprint(w, "account: running")
		if !p.At.IsZero() {
			fmt.Fprintf(w, " (resumed by %s at %s)", p.By, stamp(p.At))
		}
		fmt.Fprintln(w)
	}
	sp, err := ctl.SpendAt(ctx, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "orders counted: %d this UTC hour, %d this UTC day (counted only while a worker has a cap set)\n", sp.Hour(now), sp.Total)
	sum, ok, err := ctl.LastAudit(ctx)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		fmt.Fprintln(w, "last audit: none yet")
	case sum.Error != "":
		fmt.Fprintf(w, "last audit: %s by %s FAILED: %s\n", stamp(sum.At), sum.By, sum.Error)
	default:
		scan := ""
		if !sum.Complete {
			scan = ", order list INCOMPLETE"
		}
		fmt.Fprintf(w, "last audit: %s by %s, %d orders and %d sagas since %s%s: %d orphan, %d duplicate, %d missing\n",
			stamp(sum.At), sum.By, sum.Orders, sum.Sagas, stamp(sum.Since), scan,
			sum.Counts["orphan"], sum.Counts["duplicate"], sum.Counts["missing"])
	}
	return nil
}

// printControlJSON renders the account's control state for `fulfil status -o json`; ctl is
// nil when no worker has created the control bucket yet.
func printControlJSON(ctx context.Context, w io.Writer, ctl *control.Control, now time.Time) error {
	out := map[string]any{"pause": control.Pause{}, "ordersThisHour": 0, "ordersToday": 0, "lastAudit": nil}
	if ctl != nil {
		p, err := ctl.Pause(ctx)
		if err != nil {
			return err
		}
		sp, err := ctl.SpendAt(ctx, now)
		if err != nil {
			return err
		}
		sum, ok, err := ctl.LastAudit(ctx)
		if err != nil {
			return err
		}
		out["pause"], out["ordersThisHour"], out["ordersToday"] = p, sp.Hour(now), sp.Total
		if ok {
			out["lastAudit"] = sum
		}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	_, err := fmt.Fprintln(w, string(b))
	return err
}
