package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
)

// submitOptions are the flags of `fulfil submit` besides the configuration.
type submitOptions struct {
	file, key, productNo, customer, plan, billing, po, msgID, output string
	services                                                         []string
	quantity, years                                                  int
	autoRenew                                                        bool
	timeout                                                          time.Duration
}

func newSubmitCmd() *cobra.Command {
	var c config
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "publish a purchase request (flags or -f FILE) and wait for its result event",
		Long: `Publishes a purchase request, built from the flags or read from a JSON file (-f), and waits for
its result event. Exit 0 completed, 1 failed, 3 no result within --timeout, 4 NATS unreachable.`,
		Example: `  fulfil submit --key shop-eu-order-100231 --plan "Ultimate Plan" --quantity 5
  fulfil submit --key crm-2001 --product-no 3651xxxx --plan "Ultimate Plan" --service "Disaster Recovery" --years 2
  fulfil submit -f examples/requests/new-licence.json -o json
  fulfil submit -f - --timeout 0 < request.json      # publish only, do not wait`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	c.natsFlags(fs, false)
	c.logFlag(fs, "error")
	fs.StringVarP(&o.file, "file", "f", "", "read the request from a JSON file (- for stdin)")
	fs.StringVar(&o.key, "key", "", "idempotency key")
	fs.StringVar(&o.productNo, "product-no", "", "SN of an existing PBX (absent: a new license)")
	fs.StringVar(&o.customer, "customer-email", "", "subordinate customer of a new license")
	fs.StringVar(&o.plan, "plan", "", "plan name or ID")
	fs.StringArrayVar(&o.services, "service", nil, "service name or ID (repeatable)")
	fs.IntVar(&o.quantity, "quantity", 0, "extensions")
	fs.IntVar(&o.years, "years", 0, "years (1-5, default 1)")
	fs.StringVar(&o.billing, "billing-email", "", "billing contact e-mail")
	fs.StringVar(&o.po, "po-number", "", "purchase order number")
	fs.BoolVar(&o.autoRenew, "auto-renew", true, "enable auto-renewal after the order")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the result event (0: do not wait)")
	outputFlag(fs, &o.output, "text", true)
	fs.Lookup("json").Usage = "same as -o json: print the result event as JSON"
	fs.StringVar(&o.msgID, "msg-id", "", "Nats-Msg-Id of the request (default: KEY:first 32 hex digits of the body's SHA-256, so only an exact re-send is deduplicated)")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		return runSubmit(cmd.Context(), &c, o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

func runSubmit(ctx context.Context, c *config, o submitOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	var data []byte
	var err error
	if o.file != "" {
		if o.file == "-" {
			data, err = io.ReadAll(io.LimitReader(stdin, messages.MaxRequestBytes+1))
		} else {
			data, err = os.ReadFile(o.file)
		}
		if err != nil {
			return usageError(stderr, err)
		}
	} else {
		req := messages.PurchaseRequest{
			IdempotencyKey: o.key, ProductNo: o.productNo, CustomerEmail: o.customer,
			Plan: ref(o.plan), Quantity: o.quantity, Years: o.years, PONumber: o.po, AutoRenew: &o.autoRenew,
		}
		for _, s := range o.services {
			r := ref(s)
			req.Services = append(req.Services, messages.ServiceRef{ID: r.ID, Name: r.Name})
		}
		if o.billing != "" {
			req.BillingContact = &messages.ContactRef{Email: o.billing}
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
		if o.file == "" {
			return flagProblems(stderr, err)
		}
		return usageError(stderr, err)
	}

	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	env, err := connectNATS(c, false, log)
	if err != nil {
		return natsFailure(stderr, "submit", err)
	}
	defer env.close()
	id := o.msgID
	if id == "" {
		id = messages.RequestMsgID(req.IdempotencyKey, data)
	}
	return submitAndWait(ctx, env.js, c.prefix, req, id, data, o.timeout, o.output == "json", stdout, stderr)
}

// submitFlags names the flag of each request field that `fulfil submit` builds from flags.
var submitFlags = map[string]string{
	"idempotencyKey": "--key", "productNo": "--product-no", "customerEmail": "--customer-email", "plan": "--plan",
	"services": "--service", "quantity": "--quantity", "years": "--years", "billingContact": "--billing-email",
	"poNumber": "--po-number",
}

// flagProblems reports the problems of a request built from flags, naming the flags rather
// than the JSON fields ("--plan is required", not "plan: required"), and returns exit 2.
func flagProblems(stderr io.Writer, err error) int {
	var verr *messages.ValidationError
	if !errors.As(err, &verr) {
		return usageError(stderr, err)
	}
	var b strings.Builder
	noun := "problems"
	if len(verr.Problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(&b, "fulfil submit: %d %s with the purchase; nothing was published:\n", len(verr.Problems), noun)
	for _, p := range verr.Problems {
		fmt.Fprintf(&b, "  %s\n", flagProblem(p))
	}
	_, _ = io.WriteString(stderr, b.String())
	return exitUsage
}

// flagProblem words one problem with the flag that sets its field.
func flagProblem(p messages.Problem) string {
	field := p.Field
	top, rest, _ := strings.Cut(field, ".")
	base, index, indexed := strings.Cut(top, "[")
	flagName, ok := submitFlags[base]
	switch {
	case !ok:
		if field == "" {
			return p.Message
		}
		return field + ": " + p.Message
	case p.Message == "required" && base == "idempotencyKey":
		return "--key is required: the idempotency key, unique per purchase"
	case p.Message == "required":
		return flagName + " is required"
	case base == "plan" && strings.HasPrefix(p.Message, "give exactly one of"):
		return "--plan must be a plan name or ID"
	case indexed:
		n, _ := strconv.Atoi(strings.TrimSuffix(index, "]"))
		what := flagName + " " + strconv.Itoa(n+1)
		if strings.HasPrefix(p.Message, "give exactly one of") {
			return what + " must be a service name or ID"
		}
		if rest == "quantity" {
			return what + ": quantity " + p.Message
		}
		if i, ok := strings.CutPrefix(p.Message, "duplicates services["); ok {
			first, _ := strconv.Atoi(strings.TrimSuffix(i, "]"))
			return what + " repeats " + flagName + " " + strconv.Itoa(first+1)
		}
		return what + ": " + p.Message
	}
	return flagName + ": " + p.Message
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

// submitAndWait publishes a validated request and reports the outcome of that very message:
// the result event whose Fulfil-Request-Seq is the sequence of its publish acknowledgement
// (for a publish the stream dropped as a duplicate, the sequence of the message it repeats).
func submitAndWait(ctx context.Context, js jetstream.JetStream, prefix string, req messages.PurchaseRequest, msgID string, data []byte, timeout time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	key, fingerprint := req.IdempotencyKey, req.Fingerprint()
	if rec, ok := lookupKey(ctx, js, key); ok && rec.Fingerprint != fingerprint {
		fmt.Fprintf(stderr, "fulfil submit: warning: key %s was already used for a different purchase (%s); "+
			"this request will be answered with conflict. Give a new purchase its own key\n", key, rec.Status)
	}
	subjects := messages.SubjectsFor(prefix)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan event
	if timeout > 0 {
		var err error
		events, err = followNewEvents(wctx, js, prefix)
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
		// No new message: the stream dropped this one as a repeat of message ack.Sequence.
		if code, done := answerDuplicate(ctx, js, key, fingerprint, msgID, ack.Sequence, nil, asJSON, stdout, stderr); done {
			return code
		}
		// Not finished yet: follow the events of the message it repeats, which may be older
		// than a second; a duplicate comes at most a duplicate window after it.
		cancel()
		wctx, cancel = context.WithCancel(ctx)
		defer cancel()
		events, err = watchEvents(wctx, js, prefix, time.Now().Add(-duplicateWindow(ctx, js)-5*time.Second))
		if err != nil {
			fmt.Fprintf(stderr, "fulfil submit: %v\n", err)
			return exitFailed
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
			if ack.Duplicate {
				code, _ := answerDuplicate(ctx, js, key, fingerprint, msgID, ack.Sequence, ev.Event, asJSON, stdout, stderr)
				return code
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

// answerDuplicate answers a publish the stream dropped as a repeat of the message at seq: with
// the default Nats-Msg-Id that message had the very same body, but a producer-chosen id may
// have been used for another request. The key's record decides: a different purchase is a
// conflict (no worker ever sees this publish, so submit says it); the same purchase, finished,
// gets the stored outcome. ev is the outcome event of the message at seq, if known. done is
// false when the answer has to wait for that event.
func answerDuplicate(ctx context.Context, js jetstream.JetStream, key, fingerprint, msgID string, seq uint64, ev messages.Event, asJSON bool, stdout, stderr io.Writer) (code int, done bool) {
	rec, ok := lookupKey(ctx, js, key)
	switch {
	case ok && rec.Fingerprint != fingerprint:
		if f, isFailed := ev.(*messages.Failed); isFailed && f.Reason == messages.ReasonConflict {
			return printOutcome(ev, asJSON, stdout), true // that message was this request
		}
		return printOutcome(conflictEvent(key, fmt.Sprintf("idempotency key was already used with a different request; "+
			"this publish repeated the Nats-Msg-Id %q of request %d and was dropped by the stream, so no worker answers it. "+
			"The first request is unaffected. Use a new key for a new purchase", msgID, seq)), asJSON, stdout), true
	case ok && rec.Finished():
		if stored, err := messages.DecodeEvent(rec.Outcome); err == nil {
			if rec.OutcomeSeq != seq {
				setReplayedFlag(stored) // as the worker answers a request that did not produce it
			}
			return printOutcome(stored, asJSON, stdout), true
		}
	}
	if ev == nil {
		return 0, false
	}
	if f, isFailed := ev.(*messages.Failed); isFailed && f.Step == messages.StepValidate {
		// This request is valid and no conflict, so the message at seq was another request.
		fmt.Fprintf(stderr, "fulfil submit: not answered: this publish repeated the Nats-Msg-Id %q of request %d, another request "+
			"(answered with %s), and was dropped by the stream; publish it again without --msg-id\n", msgID, seq, f.Reason)
		return exitFailed, true
	}
	return printOutcome(ev, asJSON, stdout), true
}

// conflictEvent is the failed / conflict answer for key.
func conflictEvent(key, message string) *messages.Failed {
	return &messages.Failed{
		EventHeader: messages.EventHeader{Type: messages.TypeFailed, IdempotencyKey: key, SagaID: worker.SagaID(key), Time: time.Now().UTC().Truncate(time.Millisecond)},
		Step:        messages.StepValidate,
		Reason:      messages.ReasonConflict,
		Message:     message,
	}
}

func setReplayedFlag(ev messages.Event) {
	switch e := ev.(type) {
	case *messages.Completed:
		e.Replayed = true
	case *messages.Failed:
		e.Replayed = true
	}
}

// duplicateWindow is the requests stream's Nats-Msg-Id window (2 minutes if unknown).
func duplicateWindow(ctx context.Context, js jetstream.JetStream) time.Duration {
	if s, err := js.Stream(ctx, messages.StreamRequests); err == nil {
		if d := s.CachedInfo().Config.Duplicates; d > 0 {
			return d
		}
	}
	return 2 * time.Minute
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

// lookupKey returns key's idempotency record, if the key is known and this NATS user may
// read the sagas bucket. A user without that permission (the shipped producer role) is
// refused by the server at once, but a refused JetStream request gets no answer and would
// wait for the JetStream API timeout (5 s) on every submit; so the refusal, which the server
// reports to the connection's error handler, ends the lookup.
func lookupKey(ctx context.Context, js jetstream.JetStream, key string) (idempotency.Record, bool) {
	rec, err := lookupKeyErr(ctx, js, key)
	return rec, err == nil
}

// lookupKeyErr is lookupKey with the reason it found no record: the cause of a refusal is
// the server's nats.ErrPermissionViolation.
func lookupKeyErr(ctx context.Context, js jetstream.JetStream, key string) (idempotency.Record, error) {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if nc := js.Conn(); nc != nil {
		prev := nc.ErrorHandler()
		bucketStream := "KV_" + idempotency.DefaultBucket
		nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), bucketStream) {
				cancel(err)
			}
			if prev != nil {
				prev(c, sub, err)
			}
		})
		defer nc.SetErrorHandler(prev)
	}
	store, err := idempotency.Bind(lctx, js, idempotency.Config{})
	if err == nil {
		var rec idempotency.Record
		if rec, err = store.Get(lctx, key); err == nil {
			return rec, nil
		}
	}
	if cause := context.Cause(lctx); cause != nil && ctx.Err() == nil {
		return idempotency.Record{}, cause
	}
	return idempotency.Record{}, err
}

// followNewEvents follows the events stream from the first event stored after the call and
// sends every decoded event to the returned channel until ctx ends, as watchEvents does. It
// starts at a stream sequence (the last one now, plus one), not at a time: every event stored
// after it returns is delivered whatever the clocks of this host and the NATS server say, and
// none from before is replayed. The ordered consumer keeps that start if it has to be
// recreated before its first message.
func followNewEvents(ctx context.Context, js jetstream.JetStream, prefix string) (<-chan event, error) {
	stream, err := js.Stream(ctx, messages.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	return followEvents(ctx, js, jetstream.OrderedConsumerConfig{
		FilterSubjects: messages.SubjectsFor(prefix).Events(),
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    stream.CachedInfo().State.LastSeq + 1,
	})
}
