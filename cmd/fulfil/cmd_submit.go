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
	"go.uber.org/zap"

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
	return submitAndWait(ctx, env.js, c.prefix, req.IdempotencyKey, data, *timeout, *asJSON, stdout, stderr, log)
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

func submitAndWait(ctx context.Context, js jetstream.JetStream, prefix, key string, data []byte, timeout time.Duration, asJSON bool, stdout, stderr io.Writer, log *zap.Logger) int {
	subjects := messages.SubjectsFor(prefix)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan messages.Event
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
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(key))
	if err != nil {
		fmt.Fprintf(stderr, "fulfil submit: publish: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "submitted %s (stream sequence %d%s)\n", key, ack.Sequence, dupNote(ack.Duplicate))
	if timeout == 0 {
		return exitOK
	}
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-events:
			if ev.Key() != key {
				continue
			}
			if p, ok := ev.(*messages.Progress); ok {
				fmt.Fprintf(stderr, "  %-17s %s%s\n", p.Step, p.Status, suffix(p.Message))
				continue
			}
			if !terminal(ev) {
				continue
			}
			return printOutcome(ev, asJSON, stdout)
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
