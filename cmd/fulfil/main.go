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
//	fulfil version     the build's version
//	fulfil completion  shell completion for bash, zsh and fish
//
// Run "fulfil COMMAND --help" for the flags and examples of a command. The command line is
// built with cobra (root.go holds the tree, one cmd_*.go file per command); every flag of
// the configuration also reads an environment variable, declared where the flag is defined
// (config.go, envFlags). Exit codes: 0 done, 1 failed, 2 usage or configuration, 3 no result
// in time, 4 NATS unreachable.
package main

import (
	"context"
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
	exitOK          = 0
	exitFailed      = 1 // the command ran, and the outcome is a failure
	exitUsage       = 2 // bad flags or configuration
	exitTimeout     = 3 // no outcome within the wait time
	exitUnreachable = 4 // no NATS server answered
)
