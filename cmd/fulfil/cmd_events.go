package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/messages"
)

func newEventsCmd() *cobra.Command {
	var c config
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events",
		Short: "print and follow the events stream, filtered by key or type",
		Example: `  fulfil events                                     # the last 24 hours, then follow
  fulfil events --key shop-eu-order-100231 --follow=false
  fulfil events --type failed --since 1h -o json    # one event a line, as published`,
		Args: noArgs,
	}
	c.natsFlags(cmd.Flags(), false)
	fs := cmd.Flags()
	fs.StringVar(&o.key, "key", "", "only events of this idempotency key")
	fs.StringVar(&o.typ, "type", "", "only this type: completed, failed or progress")
	fs.DurationVar(&o.since, "since", 24*time.Hour, "start this long ago")
	fs.BoolVar(&o.follow, "follow", true, "keep following new events (false: print what exists and exit)")
	outputFlag(fs, &o.output, "text", true)
	fs.Lookup("json").Usage = "same as -o json: print each event as JSON"
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return runEvents(cmd.Context(), &c, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

type eventsOptions struct {
	key, typ, output string
	since            time.Duration
	follow           bool
}

// runEvents prints the events stream, optionally filtered, and follows it.
func runEvents(ctx context.Context, c *config, o eventsOptions, stdout, stderr io.Writer) int {
	asJSON := o.output == "json"
	subjects := messages.SubjectsFor(c.prefix)
	filter := subjects.Events()
	switch o.typ {
	case "":
	case "completed":
		filter = []string{subjects.Completed}
	case "failed":
		filter = []string{subjects.Failed}
	case "progress":
		filter = []string{subjects.Progress}
	default:
		fmt.Fprintf(stderr, "fulfil events: --type %q: want completed, failed or progress\n", o.typ)
		return exitUsage
	}
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(c, false, log)
	if err != nil {
		return natsFailure(stderr, "events", err)
	}
	defer env.close()
	start := time.Now().Add(-o.since)
	cons, err := env.js.OrderedConsumer(ctx, messages.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: filter, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
	if err != nil {
		fmt.Fprintf(stderr, "fulfil events: %v\n", err)
		return exitFailed
	}
	if !o.follow {
		info, err := cons.Info(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "fulfil events: %v\n", err)
			return exitFailed
		}
		if info.NumPending == 0 {
			return exitOK
		}
	}
	it, err := cons.Messages()
	if err != nil {
		fmt.Fprintf(stderr, "fulfil events: %v\n", err)
		return exitFailed
	}
	stopOnDone := context.AfterFunc(ctx, it.Stop)
	defer stopOnDone()
	for {
		m, err := it.Next()
		if err != nil {
			return exitOK // stopped
		}
		if o.key == "" || m.Headers().Get(messages.HeaderIdempotencyKey) == o.key {
			printEvent(stdout, m.Data(), asJSON)
		}
		if md, err := m.Metadata(); !o.follow && err == nil && md.NumPending == 0 {
			it.Stop()
			return exitOK
		}
	}
}

func printEvent(w io.Writer, data []byte, asJSON bool) {
	if asJSON {
		fmt.Fprintln(w, strings.TrimSpace(string(data)))
		return
	}
	ev, err := messages.DecodeEvent(data)
	if err != nil {
		fmt.Fprintf(w, "(undecodable event: %v)\n", err)
		return
	}
	switch e := ev.(type) {
	case *messages.Progress:
		fmt.Fprintf(w, "%s  %-24s progress   %-16s %s%s\n", stamp(e.Time), e.IdempotencyKey, e.Step, e.Status, suffix(e.Message))
	case *messages.Completed:
		fmt.Fprintf(w, "%s  %-24s completed  order %s PBX %s%s\n", stamp(e.Time), e.IdempotencyKey, e.OrderNo, e.ProductNo, replayedNote(e.Replayed))
	case *messages.Failed:
		fmt.Fprintf(w, "%s  %-24s failed     %s at %s: %s%s\n", stamp(e.Time), e.IdempotencyKey, e.Reason, e.Step, e.Message, replayedNote(e.Replayed))
	default:
		b, _ := json.Marshal(ev)
		fmt.Fprintln(w, string(b))
	}
}
