// Command publish-and-wait is what a web shop or CRM does to buy a license through fulfil: it
// publishes one purchase request on NATS JetStream and waits for the purchase's outcome on the
// events stream, read through a durable consumer of its own.
//
//	go run ./examples/go/publish-and-wait [--nats-url URL] [--consumer NAME] [--timeout 2m] FILE
//
// FILE is a purchase request (see examples/requests and docs/contract.md). The request is
// published exactly as read, with
//
//	Nats-Msg-Id: <idempotencyKey>:<first 32 lowercase hex digits of SHA-256 of the body>
//
// so an exact re-send within the stream's duplicate window is dropped by the stream, while a
// different body under the same key reaches the worker (and is answered with a replay of the
// key's outcome, or a conflict).
//
// The outcome is read from FULFIL_EVENTS through the durable pull consumer --consumer
// (created when missing), which only sees the completed and failed subjects. A real shop runs
// that consumer in a long-lived process and handles every outcome it delivers; this program
// acknowledges the outcomes of other requests after printing them, and stops at its own: the
// event whose Fulfil-Idempotency-Key header is the request's key and whose Fulfil-Request-Seq
// header is the stream sequence of the publish acknowledgement.
//
// It prints the outcome event as one JSON line on standard output and exits 0 when the
// purchase completed, 1 when it failed, 2 for a bad request or bad flags, 3 when no outcome
// arrived within --timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
)

const (
	exitCompleted = 0
	exitFailed    = 1
	exitUsage     = 2
	exitTimeout   = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("publish-and-wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats-url", envOr("NATS_URL", nats.DefaultURL), "NATS server URL(s), comma separated (env NATS_URL)")
	creds := fs.String("nats-creds", os.Getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS)")
	prefix := fs.String("subject-prefix", envOr("FULFIL_SUBJECT_PREFIX", messages.DefaultSubjectPrefix), "first token of fulfil's subjects (env FULFIL_SUBJECT_PREFIX)")
	durable := fs.String("consumer", "example-shop-outcomes", "name of this application's durable consumer on "+messages.StreamEvents)
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the outcome")
	traceparent := fs.String("traceparent", "", "W3C traceparent to send with the request (optional)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: publish-and-wait [flags] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}

	// The body is published byte for byte as read: the Nats-Msg-Id is computed over these bytes.
	body, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	// Validate locally first, with the same rules as the worker.
	req, err := messages.DecodeRequest(body)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Arg(0), err)
		return exitUsage
	}
	key := req.IdempotencyKey

	opts := []nats.Option{nats.Name("fulfil example publish-and-wait")}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "connect to NATS: %v\n", err)
		return exitFailed
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	subjects := messages.SubjectsFor(*prefix)

	// 1. The durable consumer exists before the request is published, so the outcome cannot
	//    slip past it. On its first creation it starts with new events only; afterwards it
	//    resumes where this application left off.
	outcomes, err := js.CreateOrUpdateConsumer(ctx, messages.StreamEvents, jetstream.ConsumerConfig{
		Durable:        *durable,
		Description:    "purchase outcomes for the fulfil publish-and-wait example",
		FilterSubjects: []string{subjects.Completed, subjects.Failed},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
	})
	if err != nil {
		fmt.Fprintf(stderr, "consumer %s on %s: %v (is a fulfil worker running?)\n", *durable, messages.StreamEvents, err)
		return exitFailed
	}

	// 2. Publish with the contract's Nats-Msg-Id (and the optional traceparent):
	//    key + ":" + the first 32 lowercase hex digits of SHA-256(body), that is
	//    fmt.Sprintf("%s:%x", key, sha256.Sum256(body))[:len(key)+33].
	msgID := messages.RequestMsgID(key, body)
	msg := nats.NewMsg(subjects.Requested)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	if *traceparent != "" {
		msg.Header.Set(messages.HeaderTraceParent, *traceparent)
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "published %s as %s: stream sequence %d\n", key, msgID, ack.Sequence)

	// 3. Wait for the outcome of that request message.
	var ev messages.Event
	if ack.Duplicate {
		// The stream dropped this publish: the same bytes were published within its duplicate
		// window, and the acknowledgement names that earlier message. Its outcome may already
		// have been delivered (and acknowledged) on the durable consumer, so read it from the
		// stream instead, starting one duplicate window (plus a margin) ago.
		fmt.Fprintf(stderr, "duplicate of a publish within the duplicate window: reading that request's outcome from %s\n", messages.StreamEvents)
		window := 2 * time.Minute
		if s, err := js.Stream(ctx, messages.StreamRequests); err == nil {
			window = s.CachedInfo().Config.Duplicates
		}
		start := time.Now().Add(-window - time.Minute)
		reader, err := js.OrderedConsumer(ctx, messages.StreamEvents, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subjects.Completed, subjects.Failed},
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   &start,
		})
		if err != nil {
			fmt.Fprintf(stderr, "read %s: %v\n", messages.StreamEvents, err)
			return exitFailed
		}
		ev, err = waitOutcome(ctx, reader, key, ack.Sequence, false, stderr)
	} else {
		ev, err = waitOutcome(ctx, outcomes, key, ack.Sequence, true, stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "no outcome for %s within %s\n", key, *timeout)
			return exitTimeout
		}
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return report(ev, stdout, stderr)
}

// waitOutcome reads events from c until the outcome of the request message with stream
// sequence seq and idempotency key key arrives. With ack (the durable consumer), every event
// read is acknowledged once handled: the outcomes of other requests are printed, standing in
// for what a shop would do with them.
func waitOutcome(ctx context.Context, c jetstream.Consumer, key string, seq uint64, ack bool, stderr io.Writer) (messages.Event, error) {
	for ctx.Err() == nil {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h := m.Headers()
		evKey := h.Get(messages.HeaderIdempotencyKey)
		evSeq, _ := strconv.ParseUint(h.Get(messages.HeaderRequestSeq), 10, 64)
		ev, err := messages.DecodeEvent(m.Data())
		mine := err == nil && evKey == key && evSeq == seq
		switch {
		case err != nil:
			// A newer contract version may add event types: skip what is not known.
			fmt.Fprintf(stderr, "skipping an event on %s: %v\n", m.Subject(), err)
		case !mine && ack:
			fmt.Fprintf(stderr, "outcome of another request: %s (request sequence %d): %s\n", evKey, evSeq, ev.EventType())
		}
		if ack {
			if err := m.DoubleAck(ctx); err != nil {
				return nil, fmt.Errorf("acknowledge event: %w", err)
			}
		}
		if mine {
			return ev, nil
		}
	}
	return nil, ctx.Err()
}

// report prints the outcome event as one JSON line and returns the exit code for it.
func report(ev messages.Event, stdout, stderr io.Writer) int {
	b, err := json.Marshal(ev)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintln(stdout, string(b))
	switch e := ev.(type) {
	case *messages.Completed:
		fmt.Fprintf(stderr, "completed%s: order %s, PBX %s, auto-renewal %v\n", replayed(e.Replayed), e.OrderNo, e.ProductNo, e.AutoRenewal)
		return exitCompleted
	case *messages.Failed:
		fmt.Fprintf(stderr, "failed%s at %s: %s: %s\n", replayed(e.Replayed), e.Step, e.Reason, e.Message)
		return exitFailed
	}
	return exitFailed
}

func replayed(r bool) string {
	if r {
		return " (replayed)"
	}
	return ""
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
