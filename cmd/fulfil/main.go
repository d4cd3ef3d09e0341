// Command fulfil turns purchase requests on NATS JetStream into Yeastar P-Series licenses.
//
// Usage:
//
//	fulfil worker      run a worker until SIGINT/SIGTERM, then drain in-flight sagas
//	fulfil demo        embedded NATS + partner simulator + worker; submit sample purchases
//	fulfil partnersim  run the partner API simulator standalone
//	fulfil submit      publish a purchase request and wait for its result event
//	fulfil api         serve the HTTP intake (POST /v1/purchases) without a worker
//	fulfil status KEY  show the saga state of one idempotency key (no KEY: the account's pause,
//	                   spend counters and last audit)
//	fulfil pause       stop every create order (fulfil resume lets them go ahead)
//	fulfil audit       compare the partner's orders with the sagas
//	fulfil events      print and follow events, filtered by key or type
//	fulfil dlq         list or replay dead-lettered requests
//	fulfil webhooks    show webhook endpoints' lag; list or replay webhook dead letters
//	fulfil partner     check the partner API against fulfil's decoders
//	fulfil bench       measure throughput and latency
//
// Run "fulfil COMMAND -h" for the flags of a command. Every flag has an environment variable.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran, and the outcome is a failure
	exitUsage   = 2 // bad flags or configuration
	exitTimeout = 3 // no outcome within the wait time
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"worker", "run a worker until SIGINT/SIGTERM, then drain in-flight sagas", runWorker},
		{"demo", "embedded NATS + partner simulator + worker; submit sample purchases and print their outcomes", runDemo},
		{"partnersim", "run the partner API simulator standalone", runPartnerSim},
		{"submit", "publish a purchase request (flags or -f FILE) and wait for its result event", runSubmit},
		{"api", "serve the HTTP intake (POST /v1/purchases, GET /v1/purchases/{key}) without a worker; needs NATS only", runAPI},
		{"status", "show the saga state of one idempotency key; without a key, the account's pause, spend and last audit", runStatus},
		{"pause", "stop every worker from sending create order (--reason TEXT); the rest goes on", runPause},
		{"resume", "let create order go ahead again after fulfil pause", runResume},
		{"audit", "compare the partner's orders with the sagas: orphan, duplicate and missing orders (exit 1 on findings)", runAudit},
		{"events", "print and follow the events stream, filtered by key or type", runEvents},
		{"dlq", "list or replay dead-lettered requests (dlq list, dlq replay KEY|--all)", runDLQ},
		{"webhooks", "webhook endpoints' lag, and their dead letters (webhooks status, list, replay SEQ|ID|--all)", runWebhooks},
		{"partner", "check the partner API against fulfil's decoders (partner check)", runPartner},
		{"bench", "measure throughput and latency against the critical path and a bare loop; writes SVG plots", runBench},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "fulfil: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fulfil turns purchase requests on NATS JetStream into Yeastar P-Series licenses.")
	fmt.Fprintln(w, "\nUsage: fulfil COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'fulfil COMMAND -h' for a command's flags; each flag also reads an environment variable.")
}
