package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// invocation is the state of one run of the command line.
type invocation struct {
	// problems are the settings that did not parse: environment values, and for the
	// commands that report every problem at once (worker, api) flag values too.
	problems []error
}

// annotationCollect marks a command that reports unparsable settings itself, with the
// other problems of its settings (invocation.problems), instead of stopping at the first.
const annotationCollect = "fulfil_collect_problems"

// newRoot returns the command tree.
func newRoot(inv *invocation) *cobra.Command {
	root := &cobra.Command{
		Use:   "fulfil",
		Short: "turn purchase requests on NATS JetStream into Yeastar P-Series licenses",
		Long: `fulfil turns purchase requests on NATS JetStream (or HTTP) into Yeastar P-Series licenses.

Every flag also reads the environment variable named in its help; a flag given on the
command line wins. Flags take the GNU form (--name value, --name=value), also after
arguments; the single-dash form of Go programs (-name value) is accepted for compatibility.

Exit codes: 0 done; 1 the purchase (or what was checked) failed; 2 usage or configuration;
3 no result in time; 4 NATS unreachable.`,
		Example: `  fulfil demo                                   # the whole product in one process
  fulfil worker --partner-sim                   # a worker with the built-in partner simulator
  fulfil submit --key order-1 --plan "Ultimate Plan" --quantity 5
  fulfil status order-1 -o json
  fulfil completion bash > /etc/bash_completion.d/fulfil`,
		Version:                    versionLine(readVersion()),
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Args:                       cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return exitCode(exitUsage)
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			errs := applyEnv(cmd.Flags())
			if cmd.Annotations[annotationCollect] != "" {
				inv.problems = append(inv.problems, errs...)
				return nil
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			if f := cmd.Flags().Lookup("output"); f != nil && !slices.Contains([]string{"text", "table", "json"}, f.Value.String()) {
				return fmt.Errorf("-o %q: want text or json", f.Value.String())
			}
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	addTemplateFuncs()
	root.SetUsageTemplate(strings.TrimSuffix(root.UsageTemplate(), "\n") + "{{flagNotes .}}{{with index .Annotations \"" +
		annotationExitCodes + "\"}}\n\nExit codes: {{.}}{{end}}\n")
	root.AddCommand(
		newWorkerCmd(inv),
		newDemoCmd(),
		newPartnerSimCmd(),
		newSubmitCmd(),
		newAPICmd(inv),
		newStatusCmd(),
		newPauseCmd(true),
		newPauseCmd(false),
		newAuditCmd(),
		newEventsCmd(),
		newDLQCmd(),
		newWebhooksCmd(),
		newPartnerCmd(),
		newBenchCmd(),
		newVersionCmd(),
	)
	root.InitDefaultCompletionCmd()
	setExitCodes(root)
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  fulfil completion bash > /etc/bash_completion.d/fulfil
  fulfil completion zsh > "${fpath[1]}/_fulfil"
  fulfil completion fish > ~/.config/fish/completions/fulfil.fish`
			for _, sub := range c.Commands() {
				sub.Example = "  fulfil completion " + sub.Name() + " --help"
			}
		}
	}
	return root
}

// addTemplateFuncs registers the usage template's functions with cobra, once: cobra keeps
// them in a global map, and commands run concurrently in the tests.
var addTemplateFuncs = sync.OnceFunc(func() { cobra.AddTemplateFunc("flagNotes", flagNotes) })

// flagNotes is the end of a command's usage: how flags read the environment, and the
// single-dash form accepted for compatibility.
func flagNotes(cmd *cobra.Command) string {
	var env, long bool
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		env = env || flagEnv(f) != ""
		long = long || (f.Name != "help" && f.Name != "version" && !f.Hidden)
	})
	var b strings.Builder
	if env {
		b.WriteString("\n\nA flag marked ($NAME) also reads that environment variable; the command line wins.")
	}
	if long {
		if !env {
			b.WriteString("\n")
		}
		b.WriteString("\n-name is accepted as --name, as Go's flag package spells it, for compatibility.")
	}
	return b.String()
}

// annotationExitCodes holds the exit codes a command's usage lists.
const annotationExitCodes = "fulfil_exit_codes"

// exitCodes are the exit codes of each command, by command path without "fulfil ". The
// codes mean the same everywhere: 0 done, 1 the purchase (or what was checked) failed, 2 usage
// or configuration, 3 no result in time, 4 NATS unreachable.
var exitCodes = map[string]string{
	"":                "0 help, 2 usage",
	"worker":          "0 stopped cleanly, 1 error while running, 2 bad settings (all listed, nothing started), 4 NATS unreachable",
	"demo":            "0 every outcome as expected, 1 otherwise, 2 usage",
	"partnersim":      "0 stopped, 1 cannot listen, 2 usage",
	"submit":          "0 completed, 1 failed (conflict included), 2 invalid request or flags, 3 no result within --timeout, 4 NATS unreachable",
	"api":             "0 stopped cleanly, 1 error while running, 2 bad settings, 4 NATS unreachable",
	"status":          "0 shown, 1 not found or error, 2 usage or configuration, 4 NATS unreachable",
	"pause":           "0 paused, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"resume":          "0 resumed, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"audit":           "0 no findings, 1 findings (or the audit could not run), 2 usage or configuration, 4 NATS unreachable",
	"events":          "0 done, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"dlq":             "2 without a subcommand",
	"dlq list":        "0 listed, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"dlq replay":      "0 replayed, 1 error or nothing to replay, 2 usage or configuration, 4 NATS unreachable",
	"webhooks":        "2 without a subcommand",
	"webhooks status": "0 shown, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"webhooks list":   "0 listed, 1 error, 2 usage or configuration, 4 NATS unreachable",
	"webhooks replay": "0 replayed, 1 error or nothing to replay, 2 usage or configuration, 4 NATS unreachable",
	"partner":         "2 without a subcommand",
	"partner check":   "0 every call succeeded and every value fits, 1 a call failed or a value does not fit, 2 bad configuration",
	"bench":           "0 every purchase completed with exactly one order, 1 otherwise, 2 usage",
	"version":         "0, 2 usage",
	"completion":      "0, 2 usage",
}

// setExitCodes annotates every command with its exit codes (a completion script: those of
// completion).
func setExitCodes(cmd *cobra.Command) {
	path := strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), "fulfil"), " ")
	if strings.HasPrefix(path, "completion") {
		path = "completion"
	}
	if codes, ok := exitCodes[path]; ok {
		if cmd.Annotations == nil {
			cmd.Annotations = map[string]string{}
		}
		cmd.Annotations[annotationExitCodes] = codes
	}
	for _, sub := range cmd.Commands() {
		setExitCodes(sub)
	}
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	inv := &invocation{}
	root := newRoot(inv)
	root.SetArgs(gnuFlags(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(os.Stdin)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	// Anything else is cobra's or the flags': a usage error.
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	if !strings.Contains(err.Error(), "Did you mean") {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitUsage
}

// exitCode ends a command with an exit code; the command has said why on stderr.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit code %d", int(c)) }

// runE adapts a command's body, which reports on stderr and returns an exit code, to cobra.
func runE(f func(cmd *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if code := f(cmd, args); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
}

// groupCmd returns a command that only holds subcommands (dlq, webhooks, partner): without
// one it prints its usage and exits 2; an unknown one is a usage error with suggestions.
func groupCmd(use, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:                        use,
		Short:                      short,
		Example:                    example,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return exitCode(exitUsage)
		},
	}
}

// unknownCommand is the error for an unknown subcommand of cmd, with suggestions.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
	}
	return errors.New(msg)
}

// noArgs accepts no positional argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: %s takes only flags", args[0], cmd.CommandPath())
	}
	return nil
}

// gnuFlags rewrites the single-dash long flags of Go's flag package (-data-dir x, -json) to
// --data-dir x and --json, for the flags the command has; shorthands (-f, -o, -h) and
// anything else stay as they are.
func gnuFlags(root *cobra.Command, args []string) []string {
	if len(args) > 0 && strings.HasPrefix(args[0], "__complete") {
		return args
	}
	cmd, i := root, 0
	for ; i < len(args); i++ {
		sub := findSub(cmd, args[i])
		if sub == nil {
			break
		}
		cmd = sub
	}
	lookup := func(name string) *pflag.Flag {
		if name == "help" || (cmd == root && name == "version") {
			return &pflag.Flag{Name: name, NoOptDefVal: "true"}
		}
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		return cmd.InheritedFlags().Lookup(name)
	}
	out := slices.Clone(args)
	for j := i; j < len(out); j++ {
		a := out[j]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, _, hasValue := strings.Cut(a[2:], "=")
			if f := lookup(name); f != nil && !hasValue && f.NoOptDefVal == "" {
				j++ // its value
			}
			continue
		}
		if !strings.HasPrefix(a, "-") || len(a) < 3 {
			continue
		}
		name, _, hasValue := strings.Cut(a[1:], "=")
		f := lookup(name)
		if f == nil || len(name) < 2 {
			continue
		}
		out[j] = "-" + a
		if !hasValue && f.NoOptDefVal == "" {
			j++ // its value
		}
	}
	return out
}

// findSub returns cmd's subcommand called name (or by an alias), or nil.
func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

// outputFlag registers -o/--output (text or json; def is the default) and, with jsonAlias,
// --json as the older spelling of -o json.
func outputFlag(fs *pflag.FlagSet, p *string, def string, jsonAlias bool) {
	fs.StringVarP(p, "output", "o", def, "output format: "+def+" or json")
	if jsonAlias {
		f := fs.VarPF(&jsonFlag{p: p, def: def}, "json", "", "same as -o json")
		f.NoOptDefVal = "true"
	}
}

// jsonFlag is --json: true sets the output format to json.
type jsonFlag struct {
	p   *string
	def string
}

func (j *jsonFlag) String() string {
	if j == nil || j.p == nil {
		return "false"
	}
	return fmt.Sprint(*j.p == "json")
}

func (j *jsonFlag) Set(s string) error {
	var on bool
	switch strings.ToLower(s) {
	case "1", "t", "true":
		on = true
	case "0", "f", "false":
	default:
		return fmt.Errorf("not a boolean: %q", s)
	}
	if on {
		*j.p = "json"
	} else if *j.p == "json" {
		*j.p = j.def
	}
	return nil
}

func (j *jsonFlag) Type() string     { return "bool" }
func (j *jsonFlag) IsBoolFlag() bool { return true }
