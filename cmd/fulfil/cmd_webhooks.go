package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/metrics"
	"github.com/fulfil/fulfil/internal/webhook"
)

// webhookConfig is the settings of webhook delivery, read by `fulfil worker`.
type webhookConfig struct {
	urls        string
	secret      string
	secretFile  string
	insecure    bool
	progress    bool
	timeout     time.Duration
	retryPeriod time.Duration

	// Set by check:
	endpoints []webhook.Endpoint
	secrets   []webhook.Secret

	tracerProvider trace.TracerProvider // set once tracing started; nil: off
}

// flags registers the webhook flags.
func (w *webhookConfig) flags(fs *pflag.FlagSet) {
	f := envFlags{fs}
	f.String(&w.urls, "webhook-url", "FULFIL_WEBHOOK_URL", "", "endpoint URL(s), comma separated, that receive every completed and failed event as a signed POST; empty disables webhooks")
	f.String(&w.secret, "webhook-secret", "FULFIL_WEBHOOK_SECRET", "", "signing secret, whsec_ and the base64 of 24 to 64 bytes (several separated by spaces during a rotation); prefer the _FILE variant")
	f.String(&w.secretFile, "webhook-secret-file", "FULFIL_WEBHOOK_SECRET_FILE", "", "file holding the webhook signing secret")
	f.Bool(&w.insecure, "webhook-insecure", "FULFIL_WEBHOOK_INSECURE", false, "allow a plain http:// webhook URL on a non-loopback host")
	f.Bool(&w.progress, "webhook-progress", "FULFIL_WEBHOOK_PROGRESS", false, "also send progress events")
	f.Duration(&w.timeout, "webhook-timeout", "FULFIL_WEBHOOK_TIMEOUT", webhook.DefaultTimeout, "time limit of one webhook request")
	f.Duration(&w.retryPeriod, "webhook-retry-period", "FULFIL_WEBHOOK_RETRY_PERIOD", webhook.DefaultRetryPeriod,
		"how long an event an endpoint does not take is retried before it is dead-lettered")
}

// check reports every problem of the webhook settings, naming each setting (never a secret's
// value, nor more of a URL than its host), and parses the endpoints and secrets.
func (w *webhookConfig) check(eventsMaxAge time.Duration) []error {
	var errs []error
	add := func(flagName, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s "+format, append([]any{setting(flagName)}, a...)...))
	}
	if w.secretFile != "" {
		b, err := os.ReadFile(w.secretFile)
		if err != nil {
			add("webhook-secret-file", "%v", err)
		} else {
			w.secret = strings.TrimSpace(string(b))
		}
	}
	if strings.TrimSpace(w.urls) == "" {
		return errs
	}
	eps, err := webhook.ParseEndpoints(w.urls, w.insecure)
	for _, e := range flatten(err) {
		add("webhook-url", "%v", e)
	}
	w.endpoints = eps
	secretSetting := "webhook-secret"
	if w.secretFile != "" {
		secretSetting = "webhook-secret-file"
	}
	switch {
	case w.secret == "" && w.secretFile == "":
		add("webhook-secret", "is required with FULFIL_WEBHOOK_URL: set it (or FULFIL_WEBHOOK_SECRET_FILE) to whsec_ and the base64 of 24 to 64 random bytes")
	case w.secret == "":
		add(secretSetting, "is empty")
	default:
		secrets, err := webhook.ParseSecrets(w.secret)
		if err != nil {
			add(secretSetting, "%v", err)
		}
		w.secrets = secrets
	}
	if w.timeout < 100*time.Millisecond || w.timeout > 5*time.Minute {
		add("webhook-timeout", "must be 100ms to 5m, got %s", w.timeout)
	}
	switch {
	case w.retryPeriod < time.Second:
		add("webhook-retry-period", "must be at least 1s (24h is the default), got %s", w.retryPeriod)
	case w.retryPeriod > eventsMaxAge:
		add("webhook-retry-period", "%s is longer than FULFIL_EVENTS_MAX_AGE (%s): events would be removed while they are retried", w.retryPeriod, eventsMaxAge)
	}
	return errs
}

// startWebhooks sets up and runs webhook delivery, when endpoints are configured, until ctx
// ends; stop waits for it to hand its held events back. The events stream must exist.
func startWebhooks(ctx context.Context, c *config, js jetstream.JetStream, reg prometheus.Registerer, log *zap.Logger) (stop func(), err error) {
	w := &c.webhook
	if len(w.endpoints) == 0 {
		return func() {}, nil
	}
	svc, err := webhook.New(js, webhook.Config{
		Endpoints: w.endpoints, Secrets: w.secrets, Progress: w.progress, SubjectPrefix: c.prefix,
		RetryPeriod: w.retryPeriod, Timeout: w.timeout, Replicas: c.replicas, DeadLetterMaxAge: c.eventsMaxAge,
		DuplicateWindow: c.dupWindow, Logger: log.Named("webhook"), Metrics: metrics.NewWebhooks(reg),
		TracerProvider: w.tracerProvider,
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = svc.Setup(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("set up webhooks: %w", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	return func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			log.Warn("webhook delivery did not stop within 30s; its events are redelivered after the ack wait")
		}
	}, nil
}

// newWebhooksCmd is `fulfil webhooks status|list|replay`.
func newWebhooksCmd() *cobra.Command {
	cmd := groupCmd("webhooks", "webhook endpoints' lag, and their dead letters (webhooks status, list, replay SEQ|ID|--all)",
		`  fulfil webhooks status
  fulfil webhooks list --endpoint hooks.shop.example -o json
  fulfil webhooks replay 17
  fulfil webhooks replay --all --endpoint hooks.shop.example`)
	cmd.AddCommand(newWebhooksStatusCmd(), newWebhooksListCmd(), newWebhooksReplayCmd())
	return cmd
}

func newWebhooksStatusCmd() *cobra.Command {
	var c config
	var output string
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "every webhook endpoint's lag: pending, in retry, replays, dead letters",
		Example: "  fulfil webhooks status\n  fulfil webhooks status -o json",
		Args:    noArgs,
	}
	c.natsFlags(cmd.Flags(), false)
	outputFlag(cmd.Flags(), &output, "text", false)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		stderr := cmd.ErrOrStderr()
		log, _ := newLogger("error", stderr)
		env, err := connectNATS(&c, false, log)
		if err != nil {
			return natsFailure(stderr, "webhooks status", err)
		}
		defer env.close()
		return webhookStatus(cmd.Context(), env.js, output == "json", cmd.OutOrStdout(), stderr)
	})
	return cmd
}

func newWebhooksListCmd() *cobra.Command {
	var c config
	var output, endpoint string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list the webhook dead letters: events an endpoint did not take within the retry period",
		Example: `  fulfil webhooks list
  fulfil webhooks list --endpoint hooks.shop.example
  fulfil webhooks list -o json     # one JSON object per dead letter, with the event`,
		Args: noArgs,
	}
	c.natsFlags(cmd.Flags(), false)
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only the dead letters of this endpoint (its host, or its ID)")
	outputFlag(cmd.Flags(), &output, "text", true)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		stderr := cmd.ErrOrStderr()
		dls, _, code := webhookDeadLetters(cmd.Context(), &c, "list", endpoint, "", stderr)
		if code != exitOK {
			return code
		}
		return listWebhookDeadLetters(dls, output == "json", cmd.OutOrStdout())
	})
	return cmd
}

func newWebhooksReplayCmd() *cobra.Command {
	var c config
	var endpoint string
	var all bool
	cmd := &cobra.Command{
		Use:   "replay SEQ|WEBHOOK-ID|--all",
		Short: "send webhook dead letters to their endpoint again",
		Example: `  fulfil webhooks replay 17                         # by the SEQ of fulfil webhooks list
  fulfil webhooks replay msg_2Xk...                 # by webhook-id
  fulfil webhooks replay --all --endpoint hooks.shop.example`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0) != all {
				return errors.New("give one SEQ or WEBHOOK-ID, or --all")
			}
			return nil
		},
	}
	c.natsFlags(cmd.Flags(), false)
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only the dead letters of this endpoint (its host, or its ID)")
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --endpoint)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) int {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		id := ""
		if len(args) == 1 {
			id = args[0]
		}
		dls, env, code := webhookDeadLetters(cmd.Context(), &c, "replay", endpoint, id, stderr)
		if code != exitOK {
			return code
		}
		defer env.close()
		if len(dls) == 0 {
			fmt.Fprintln(stderr, "fulfil webhooks replay: nothing to replay")
			return exitFailed
		}
		code = exitOK
		for _, d := range dls {
			configured, err := webhook.ReplayDeadLetter(cmd.Context(), env.js, c.prefix, d)
			if err != nil {
				fmt.Fprintf(stderr, "fulfil webhooks replay: %v\n", err)
				code = exitFailed
				continue
			}
			fmt.Fprintf(stdout, "replayed webhook dead letter %d (%s, %s, webhook-id %s) to %s\n", d.Seq, orDash(d.Key), orDash(d.Type), d.WebhookID, d.Host)
			if !configured {
				fmt.Fprintf(stderr, "fulfil webhooks replay: no worker has %s (endpoint %s) configured; the replay waits until one has\n", d.Host, d.EndpointID)
			}
		}
		return code
	})
	return cmd
}

// webhookDeadLetters connects to NATS and returns the webhook dead letters of endpoint (all
// if empty) and id (a SEQ or webhook-id; all if empty). The caller closes env (for list it
// is closed already).
func webhookDeadLetters(ctx context.Context, c *config, sub, endpoint, id string, stderr io.Writer) ([]webhook.DeadLetter, *natsEnv, int) {
	log, _ := newLogger("error", stderr)
	env, err := connectNATS(c, false, log)
	if err != nil {
		return nil, nil, natsFailure(stderr, "webhooks "+sub, err)
	}
	dls, err := webhook.ListDeadLetters(ctx, env.js)
	if err != nil {
		env.close()
		fmt.Fprintf(stderr, "fulfil webhooks %s: %v\n", sub, err)
		return nil, nil, exitFailed
	}
	dls = slices.DeleteFunc(dls, func(d webhook.DeadLetter) bool {
		return (endpoint != "" && d.Host != endpoint && d.EndpointID != endpoint) ||
			(id != "" && strconv.FormatUint(d.Seq, 10) != id && d.WebhookID != id)
	})
	if sub == "list" {
		env.close()
		env = nil
	}
	return dls, env, exitOK
}

func listWebhookDeadLetters(dls []webhook.DeadLetter, asJSON bool, stdout io.Writer) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, d := range dls {
			_ = enc.Encode(map[string]any{"seq": d.Seq, "webhookId": d.WebhookID, "endpoint": d.Host, "endpointId": d.EndpointID,
				"idempotencyKey": d.Key, "type": d.Type, "eventSeq": d.EventSeq, "attempts": d.Attempts, "lastResult": d.LastResult,
				"deadLettered": d.Time, "event": json.RawMessage(validJSON(d.Data))})
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tENDPOINT\tKEY\tTYPE\tATTEMPTS\tLAST RESULT\tWEBHOOK-ID")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, stamp(d.Time), d.Host, orDash(d.Key), orDash(d.Type), d.Attempts, orDash(d.LastResult), d.WebhookID)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d webhook dead letter(s)\n", len(dls))
	return exitOK
}

// validJSON is data when it is JSON, else data as a JSON string.
func validJSON(data []byte) []byte {
	if json.Valid(data) {
		return data
	}
	b, _ := json.Marshal(string(data))
	return b
}

func webhookStatus(ctx context.Context, js jetstream.JetStream, asJSON bool, stdout, stderr io.Writer) int {
	st, err := webhook.Status(ctx, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !asJSON {
			fmt.Fprintln(stdout, "no events stream yet: no worker has started")
		}
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "fulfil webhooks status: %v\n", err)
		return exitFailed
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, s := range st {
			var pinnedSince *time.Time
			if s.Pinned {
				pinnedSince = &s.PinnedSince
			}
			_ = enc.Encode(map[string]any{"endpoint": s.Host, "endpointId": s.EndpointID, "consumer": s.Consumer, "filter": s.Filter,
				"lag": s.Lag(), "pending": s.Pending, "inRetry": s.InRetry, "replays": s.Replays, "deadLetters": s.DeadLetters,
				"redelivered": s.Redelivered, "delivered": s.Delivered, "pinned": s.Pinned, "pinnedSince": pinnedSince})
		}
		return exitOK
	}
	eventsOf := func(s webhook.EndpointStatus) string {
		for _, f := range s.Filter {
			if strings.HasSuffix(f, ".purchase.progress") {
				return "results, progress"
			}
		}
		return "results"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tID\tEVENTS\tLAG\tPENDING\tIN RETRY\tREPLAYS\tDEAD LETTERS\tREDELIVERED\tWORKER PINNED SINCE")
	for _, s := range st {
		pinned := "-"
		if s.Pinned {
			pinned = stamp(s.PinnedSince)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", orDash(s.Host), s.EndpointID, eventsOf(s), s.Lag(), s.Pending, s.InRetry,
			s.Replays, s.DeadLetters, s.Redelivered, pinned)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d webhook endpoint(s)\n", len(st))
	return exitOK
}
