package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// demoPurchase is one sample request and the outcome the demo expects for it.
type demoPurchase struct {
	label    string
	key      string
	body     string // raw JSON, so the demo can show a malformed request too
	wantType string
	wantWhy  messages.Reason
	replayed bool
}

func demoPurchases() (first, second []demoPurchase) {
	first = []demoPurchase{
		{label: "new license", key: "shop-demo-1001", wantType: messages.TypeCompleted,
			body: `{"idempotencyKey":"shop-demo-1001","plan":{"name":"Enterprise Plan"},"quantity":20}`},
		{label: "existing PBX + service", key: "crm-demo-2001", wantType: messages.TypeCompleted,
			body: `{"idempotencyKey":"crm-demo-2001","productNo":"` + partnertest.ExistingSN + `","plan":{"name":"Ultimate Plan"},` +
				`"services":[{"name":"Disaster Recovery"}],"quantity":100,"years":2,"billingContact":{"email":"` + partnertest.BillingEmail + `"},"poNumber":"PO-77812"}`},
		{label: "for a customer", key: "shop-demo-1002", wantType: messages.TypeCompleted,
			body: `{"idempotencyKey":"shop-demo-1002","customerEmail":"` + partnertest.CustomerEmail + `","plan":{"id":"` + strconv.FormatInt(partnertest.PlanUltimateID, 10) + `"},"quantity":50,"autoRenew":false}`},
		{label: "unknown plan", key: "shop-demo-1003", wantType: messages.TypeFailed, wantWhy: messages.ReasonInvalidRequest,
			body: `{"idempotencyKey":"shop-demo-1003","plan":{"name":"Ultimite Plan"},"quantity":10}`},
		{label: "malformed request", key: "shop-demo-1004", wantType: messages.TypeFailed, wantWhy: messages.ReasonInvalidRequest,
			body: `{"idempotencyKey":"shop-demo-1004","plan":{"name":"Enterprise Plan"},"quantity":"lots"}`},
	}
	second = []demoPurchase{
		{label: "duplicate of 1001", key: "shop-demo-1001", wantType: messages.TypeCompleted, replayed: true,
			body: `{"quantity":20,"plan":{"name":"enterprise plan"},"idempotencyKey":"shop-demo-1001"}`},
		{label: "key reused, other request", key: "shop-demo-1002", wantType: messages.TypeFailed, wantWhy: messages.ReasonConflict,
			body: `{"idempotencyKey":"shop-demo-1002","customerEmail":"` + partnertest.CustomerEmail + `","plan":{"name":"Ultimate Plan"},"quantity":60}`},
	}
	return first, second
}

func newDemoCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "embedded NATS + partner simulator + worker; submit sample purchases and print their outcomes",
		Long: `Runs the whole product in one process: an embedded NATS JetStream server in a temporary
directory, the partner simulator (with latency and a lost create-order reply) and one worker.
It submits sample purchases, a duplicate and a reused key, and prints their outcomes; exit 0
when every outcome is as expected.`,
		Example: `  fulfil demo
  fulfil demo --log-level info      # also the worker's log, on stderr`,
		Args: noArgs,
	}
	c.logFlag(cmd.Flags(), "error")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		log, err := newLogger(c.logLevel, stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		ok, err := demo(cmd.Context(), stdout, log)
		if err != nil {
			fmt.Fprintf(stderr, "fulfil demo: %v\n", err)
			return exitFailed
		}
		if !ok {
			return exitFailed
		}
		return exitOK
	})
	return cmd
}

// demo runs the whole product in one process and reports whether every outcome was as expected.
func demo(ctx context.Context, stdout io.Writer, log *zap.Logger) (bool, error) {
	dir, err := os.MkdirTemp("", "fulfil-demo-*")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir, Port: -1, ServerName: "fulfil-demo", Logger: log})
	if err != nil {
		return false, err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("fulfil-demo"))
	if err != nil {
		return false, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false, err
	}

	// A realistic partner: some latency, and one create-order reply lost after the order was
	// committed, which the saga must reconcile instead of buying twice.
	sim := partnertest.NewServer(partnertest.WithSeed(7))
	defer sim.Close()
	for _, ep := range partnerclient.AllEndpoints {
		sim.SetFaults(ep, partnertest.Faults{Latency: 15 * time.Millisecond, Jitter: 10 * time.Millisecond})
	}
	sim.FailNext(partnerclient.EndpointCreateOrder, 1, partnertest.FaultCommitThenReset)
	sim.FailNext(partnerclient.EndpointBillingContacts, 1, partnertest.Fault503)

	client, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret),
		partnerclient.WithLogger(log.Named("partner")))
	if err != nil {
		return false, err
	}
	saga := &workflow.Saga{Partner: client, Logger: log.Named("saga"), Retry: workflow.RetryPolicy{InitialInterval: 50 * time.Millisecond}}
	w, err := worker.New(js, saga, worker.Config{Logger: log, NakDelay: 200 * time.Millisecond, AckWait: 30 * time.Second})
	if err != nil {
		return false, err
	}
	if err := w.Setup(ctx); err != nil {
		return false, err
	}
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() { stopWorker(); <-workerDone }()

	ectx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events, err := watchEvents(ectx, js, messages.DefaultSubjectPrefix, time.Now().Add(-time.Minute))
	if err != nil {
		return false, err
	}

	first, second := demoPurchases()
	fmt.Fprintln(stdout, "fulfil demo: embedded NATS JetStream, the partner simulator and one worker.")
	fmt.Fprintf(stdout, "Submitting %d purchases, then a duplicate and a reused key...\n\n", len(first))
	got := map[string][]messages.Event{}
	if err := demoRound(ctx, js, first, events, got); err != nil {
		return false, err
	}
	if err := demoRound(ctx, js, second, events, got); err != nil {
		return false, err
	}

	all := append(first, second...)
	seen := map[string]int{}
	allOK := true
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tKEY\tOUTCOME\tORDER\tPBX\tACTIVATION\tDETAIL\tAS EXPECTED")
	for _, p := range all {
		evs := got[p.key]
		i := seen[p.key]
		seen[p.key]++
		if i >= len(evs) {
			fmt.Fprintf(tw, "%s\t%s\t(none)\t\t\t\t\tno\n", p.label, p.key)
			allOK = false
			continue
		}
		ok := demoRow(tw, p, evs[i])
		allOK = allOK && ok
	}
	tw.Flush()

	orders := sim.Orders()
	fmt.Fprintf(stdout, "\nPartner ledger: %d orders placed for 3 purchases; create_order was called %d times "+
		"(one reply was lost after the order was committed, and the saga adopted that order instead of buying again).\n",
		len(orders), sim.Calls(partnerclient.EndpointCreateOrder))
	if len(orders) != 3 {
		allOK = false
	}
	if allOK {
		fmt.Fprintln(stdout, "All outcomes as expected.")
	} else {
		fmt.Fprintln(stdout, "Some outcomes were NOT as expected.")
	}
	return allOK, nil
}

// demoRound publishes purchases and waits until each has its result event.
func demoRound(ctx context.Context, js jetstream.JetStream, ps []demoPurchase, events <-chan event, got map[string][]messages.Event) error {
	want := map[string]int{}
	for _, p := range ps {
		m := nats.NewMsg(messages.SubjectsFor("").Requested)
		m.Data = []byte(p.body)
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(messages.RequestMsgID(p.key, m.Data))); err != nil {
			return fmt.Errorf("publish %s: %w", p.key, err)
		}
		if _, ok := want[p.key]; !ok {
			want[p.key] = len(got[p.key])
		}
		want[p.key]++
	}
	deadline := time.After(60 * time.Second)
	for !roundDone(want, got) {
		select {
		case ev := <-events:
			if terminal(ev) {
				got[ev.Key()] = append(got[ev.Key()], ev.Event)
			}
		case <-deadline:
			return fmt.Errorf("timed out waiting for result events")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func roundDone(want map[string]int, got map[string][]messages.Event) bool {
	for k, n := range want {
		if len(got[k]) < n {
			return false
		}
	}
	return true
}

func demoRow(w io.Writer, p demoPurchase, ev messages.Event) bool {
	switch e := ev.(type) {
	case *messages.Completed:
		ok := p.wantType == messages.TypeCompleted && e.Replayed == p.replayed
		detail := "auto-renewal " + onOff(e.AutoRenewal)
		if e.Replayed {
			detail = "replayed: same order, no partner call"
		}
		fmt.Fprintf(w, "%s\t%s\tcompleted\t%s\t%s\t%s\t%s\t%s\n", p.label, p.key, e.OrderNo, e.ProductNo, short(e.ActivationCode), detail, yesNo(ok))
		return ok
	case *messages.Failed:
		ok := p.wantType == messages.TypeFailed && e.Reason == p.wantWhy
		fmt.Fprintf(w, "%s\t%s\tfailed: %s\t\t\t\t%s\t%s\n", p.label, p.key, e.Reason, short60(e.Message), yesNo(ok))
		return ok
	}
	return false
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func short60(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
