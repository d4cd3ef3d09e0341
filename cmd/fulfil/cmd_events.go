package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
)

// runEvents prints the events stream, optionally filtered, and follows it.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs, ee := newFlags("events", &c, secNATS, stderr)
	key := fs.String("key", "", "only events of this idempotency key")
	typ := fs.String("type", "", "only this type: completed, failed or progress")
	since := fs.Duration("since", 24*time.Hour, "start this long ago")
	follow := fs.Bool("follow", true, "keep following new events (false: print what exists and exit)")
	asJSON := fs.Bool("json", false, "print each event as JSON")
	if err := parse(fs, ee, args); err != nil {
		return usageError(stderr, err)
	}
	subjects := messages.SubjectsFor(c.prefix)
	filter := subjects.Events()
	switch *typ {
	case "":
	case "completed":
		filter = []string{subjects.Completed}
	case "failed":
		filter = []string{subjects.Failed}
	case "progress":
		filter = []string{subjects.Progress}
	default:
		fmt.Fprintf(stderr, "fulfil events: --type %q: want completed, failed or progress\n", *typ)
		return exitUsage
	}
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(&c, false, log)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil events: %v\n", err)
		return exitFailed
	}
	defer env.close()
	start := time.Now().Add(-*since)
	cons, err := env.js.OrderedConsumer(ctx, messages.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: filter, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
	if err != nil {
		fmt.Fprintf(stderr, "fulfil events: %v\n", err)
		return exitFailed
	}
	if !*follow {
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
		if *key == "" || m.Headers().Get(messages.HeaderIdempotencyKey) == *key {
			printEvent(stdout, m.Data(), *asJSON)
		}
		if md, err := m.Metadata(); !*follow && err == nil && md.NumPending == 0 {
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
