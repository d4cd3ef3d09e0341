package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs, ee := newFlags("submit", &c, secNATS|secLog, stderr)
	file := fs.String("f", "", "read the request from a JSON file (- for stdin)")
	key := fs.String("key", "", "idempotency key")
	productNo := fs.String("product-no", "", "SN of an existing PBX (absent: a new license)")
	customer := fs.String("customer-email", "", "subordinate customer of a new license")
	plan := fs.String("plan", "", "plan name or ID")
	var services stringList
	fs.Var(&services, "service", "service name or ID (repeatable)")
	quantity := fs.Int("quantity", 0, "extensions")
	years := fs.Int("years", 0, "years (1-5, default 1)")
	billing := fs.String("billing-email", "", "billing contact e-mail")
	po := fs.String("po-number", "", "purchase order number")
	autoRenew := fs.Bool("auto-renew", true, "enable auto-renewal after the order")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the result event (0: do not wait)")
	asJSON := fs.Bool("json", false, "print the result event as JSON")
	msgID := fs.String("msg-id", "", "Nats-Msg-Id of the request (default: the idempotency key, so a quick re-publish is deduplicated)")
	c.logLevel = "error"
	if err := parse(fs, ee, args); err != nil {
		return usageError(stderr, err)
	}

	var data []byte
	var err error
	if *file != "" {
		if *file == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, messages.MaxRequestBytes+1))
		} else {
			data, err = os.ReadFile(*file)
		}
		if err != nil {
			return usageError(stderr, err)
		}
	} else {
		req := messages.PurchaseRequest{
			IdempotencyKey: *key, ProductNo: *productNo, CustomerEmail: *customer,
			Plan: ref(*plan), Quantity: *quantity, Years: *years, PONumber: *po, AutoRenew: autoRenew,
		}
		for _, s := range services {
			r := ref(s)
			req.Services = append(req.Services, messages.ServiceRef{ID: r.ID, Name: r.Name})
		}
		if *billing != "" {
			req.BillingContact = &messages.ContactRef{Email: *billing}
		}
		data, err = json.Marshal(req)
		if err != nil {
			return usageError(stderr, err)
		}
	}
	req, err := messages.DecodeRequest(data)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		return usageError(stderr, err)
	}

	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	env, err := connectNATS(&c, false, log)
	if err != nil {
		fmt.Fprintf(stderr, "fulfil submit: %v\n", err)
		return exitFailed
	}
	defer env.close()
	id := *msgID
	if id == "" {
		id = req.IdempotencyKey
	}
	return submitAndWait(ctx, env.js, c.prefix, req.IdempotencyKey, id, data, *timeout, *asJSON, stdout, stderr)
}

// ref turns a flag value into a plan/service reference: all digits is an ID, else a name.
func ref(v string) *messages.Ref {
	if v == "" {
		return nil
	}
	if strings.Trim(v, "0123456789") == "" {
		return &messages.Ref{ID: messages.ID(v)}
	}
	return &messages.Ref{Name: v}
}

func submitAndWait(ctx context.Context, js jetstream.JetStream, prefix, key, msgID string, data []byte, timeout time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	subjects := messages.SubjectsFor(prefix)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan event
	if timeout > 0 {
		var err error
		events, err = watchEvents(wctx, js, prefix, time.Now().Add(-time.Second))
		if err != nil {
			fmt.Fprintf(stderr, "fulfil submit: %v (is a worker running?)\n", err)
			return exitFailed
		}
	}
	m := nats.NewMsg(subjects.Requested)
	m.Data = data
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
	if err != nil {
		fmt.Fprintf(stderr, "fulfil submit: publish: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "submitted %s (stream sequence %d%s)\n", key, ack.Sequence, dupNote(ack.Duplicate))
	if timeout == 0 {
		return exitOK
	}
	if ack.Duplicate {
		// No new message: the first one's outcome may be stored already.
		if ev, ok := storedOutcome(ctx, js, key); ok {
			return printOutcome(ev, asJSON, stdout)
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-events:
			if ev.Key() != key || ev.requestSeq != ack.Sequence {
				continue // another request's event
			}
			if p, ok := ev.Event.(*messages.Progress); ok {
				fmt.Fprintf(stderr, "  %-17s %s%s\n", p.Step, p.Status, suffix(p.Message))
				continue
			}
			if !terminal(ev) {
				continue
			}
			return printOutcome(ev.Event, asJSON, stdout)
		case <-deadline:
			fmt.Fprintf(stderr, "fulfil submit: no result within %s; see `fulfil status %s`\n", timeout, key)
			return exitTimeout
		case <-ctx.Done():
			return exitTimeout
		}
	}
}

func dupNote(dup bool) string {
	if dup {
		return ", duplicate of a recent publish"
	}
	return ""
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// printOutcome prints a result event and returns the exit code for it.
func printOutcome(ev messages.Event, asJSON bool, stdout io.Writer) int {
	if asJSON {
		b, _ := json.MarshalIndent(ev, "", "  ")
		fmt.Fprintln(stdout, string(b))
	}
	switch e := ev.(type) {
	case *messages.Completed:
		if !asJSON {
			fmt.Fprintf(stdout, "completed%s: order %s (%s), PBX %s, auto-renewal %v, activation code %s\n",
				replayedNote(e.Replayed), e.OrderNo, e.OrderStatus, e.ProductNo, e.AutoRenewal, e.ActivationCode)
		}
		return exitOK
	case *messages.Failed:
		if !asJSON {
			fmt.Fprintf(stdout, "failed%s at %s: %s: %s\n", replayedNote(e.Replayed), e.Step, e.Reason, e.Message)
			if e.OrderNo != "" {
				fmt.Fprintf(stdout, "order %s exists\n", e.OrderNo)
			}
		}
		return exitFailed
	}
	return exitFailed
}

func replayedNote(r bool) string {
	if r {
		return " (replayed)"
	}
	return ""
}

// storedOutcome returns the terminal event stored for key, if the key has finished.
func storedOutcome(ctx context.Context, js jetstream.JetStream, key string) (messages.Event, bool) {
	store, err := idempotency.Bind(ctx, js, idempotency.Config{})
	if err != nil {
		return nil, false
	}
	rec, err := store.Get(ctx, key)
	if err != nil || !rec.Finished() {
		return nil, false
	}
	ev, err := messages.DecodeEvent(rec.Outcome)
	if err != nil {
		return nil, false
	}
	return ev, true
}
