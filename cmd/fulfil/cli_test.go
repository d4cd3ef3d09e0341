package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fulfil/fulfil/messages"
)

// fulfilRun runs the fulfil binary (the test binary standing in for it) with args and the
// extra environment env, and returns its exit code and output.
func fulfilRun(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := fulfilCmd(ctx, t, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("fulfil %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// commandPaths lists the path of every command of the tree ("dlq list"), without cobra's
// hidden ones.
func commandPaths() [][]string {
	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		for _, sub := range cmd.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			p := append(slices.Clone(path), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(newRoot(&invocation{}), nil)
	return paths
}

// findCommand returns the command at path.
func findCommand(t *testing.T, path ...string) *cobra.Command {
	t.Helper()
	cmd, _, err := newRoot(&invocation{}).Find(path)
	if err != nil || cmd.Name() != path[len(path)-1] {
		t.Fatalf("no command %v: %v", path, err)
	}
	return cmd
}

func TestHelpExitsZeroEverywhere(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 20 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range append(paths, nil) {
		for _, h := range []string{"--help", "-h", "-help"} {
			var out, errb syncBuffer
			if code := run(context.Background(), append(slices.Clone(p), h), &out, &errb); code != exitOK {
				t.Errorf("fulfil %s %s: exit %d, want 0\n%s", strings.Join(p, " "), h, code, errb.String())
			}
			if !strings.Contains(out.String(), "Usage:") || !strings.Contains(out.String(), "Examples:") ||
				!strings.Contains(out.String(), "\nExit codes: ") {
				t.Errorf("fulfil %s %s: no usage with examples and exit codes on stdout:\n%s", strings.Join(p, " "), h, out.String())
			}
		}
	}
	// The binary itself, for the commands that only hold subcommands (exit 2 before).
	for _, group := range []string{"dlq", "webhooks", "partner"} {
		if code, out, errOut := fulfilRun(t, nil, group, "--help"); code != exitOK || !strings.Contains(out, "Available Commands:") {
			t.Errorf("fulfil %s --help: exit %d\n%s%s", group, code, out, errOut)
		}
	}
}

func TestEveryCommandHasExamples(t *testing.T) {
	for _, p := range commandPaths() {
		cmd := findCommand(t, p...)
		if strings.TrimSpace(cmd.Example) == "" {
			t.Errorf("fulfil %s has no examples", strings.Join(p, " "))
		}
		if !strings.Contains(cmd.Example, "fulfil ") {
			t.Errorf("fulfil %s: examples do not show a command line:\n%s", strings.Join(p, " "), cmd.Example)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		args      []string
		wantInErr []string
	}{
		{nil, []string{"Usage:", "Available Commands:"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"wrkr"}, []string{`unknown command "wrkr"`, "Did you mean this?", "worker"}},
		{[]string{"dlq"}, []string{"Usage:", "list", "replay"}},
		{[]string{"dlq", "lst"}, []string{`unknown command "lst"`, "Did you mean this?", "list"}},
		{[]string{"webhooks"}, []string{"Usage:", "status"}},
		{[]string{"partner"}, []string{"Usage:", "check"}},
		{[]string{"status", "--no-such-flag"}, []string{"unknown flag: --no-such-flag", "fulfil status --help"}},
		{[]string{"status", "a", "b"}, []string{"fulfil status"}},
		{[]string{"dlq", "list", "--all"}, []string{"unknown flag: --all"}},
		{[]string{"dlq", "replay"}, []string{"KEY, or --all"}},
		{[]string{"dlq", "replay", "k", "--all"}, []string{"KEY, or --all"}},
		{[]string{"webhooks", "replay", "1", "2"}, []string{"SEQ or WEBHOOK-ID, or --all"}},
		{[]string{"status", "-o", "yaml"}, []string{`-o "yaml"`}},
		{[]string{"version", "extra"}, []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := fulfilRun(t, nil, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %s", out)
			}
			for _, want := range tt.wantInErr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
		})
	}
}

// Each command shows only its own flags: the embedded server's on the worker, the NATS
// connection's on every command that dials NATS, --all only where it replays.
func TestSubcommandsHaveOnlyTheirFlags(t *testing.T) {
	dialing := [][]string{{"worker"}, {"submit"}, {"api"}, {"status"}, {"pause"}, {"resume"}, {"audit"}, {"events"},
		{"dlq", "list"}, {"dlq", "replay"}, {"webhooks", "status"}, {"webhooks", "list"}, {"webhooks", "replay"}}
	natsFlags := []string{"nats-url", "nats-creds", "nats-tls-ca", "nats-tls-cert", "nats-tls-key", "nats-listen", "subject-prefix",
		"nats-user", "nats-password-file", "nats-nkey-file", "nats-inbox-prefix"}
	only := map[string][][]string{
		"data-dir": {{"worker"}}, "sync-interval": {{"worker"}}, "nats-auth-file": {{"worker"}}, "nats-insecure": {{"worker"}},
		"ack-wait": {{"worker"}}, "max-deliver": {{"worker"}}, "lease-ttl": {{"worker"}}, "key-retention": {{"worker"}},
		"events-max-age": {{"worker"}}, "duplicate-window": {{"worker"}}, "repair": {{"worker"}}, "pprof": {{"worker"}},
		"max-orders-per-hour": {{"worker"}}, "max-orders-per-day": {{"worker"}}, "resend-after-unknown": {{"worker"}},
		"audit-interval": {{"worker"}}, "audit-window": {{"worker"}}, "webhook-url": {{"worker"}},
		"concurrency": {{"worker"}, {"bench"}},
		"api-addr":    {{"worker"}, {"api"}}, "http-addr": {{"worker"}, {"api"}},
		"partner-url": {{"worker"}, {"audit"}, {"partner", "check"}},
		"all":         {{"dlq", "replay"}, {"webhooks", "replay"}},
	}
	for _, p := range commandPaths() {
		cmd := findCommand(t, p...)
		name := strings.Join(p, " ")
		dials := slices.ContainsFunc(dialing, func(d []string) bool { return slices.Equal(d, p) })
		for _, f := range natsFlags {
			if has := cmd.Flags().Lookup(f) != nil; has != dials {
				t.Errorf("fulfil %s: has --%s %v, want %v", name, f, has, dials)
			}
		}
		for f, cmds := range only {
			want := slices.ContainsFunc(cmds, func(c []string) bool { return slices.Equal(c, p) })
			if has := cmd.Flags().Lookup(f) != nil; has != want {
				t.Errorf("fulfil %s: has --%s %v, want %v", name, f, has, want)
			}
		}
	}
	var out syncBuffer
	run(context.Background(), []string{"dlq", "list", "--help"}, &out, io.Discard)
	for _, unwanted := range []string{"--all", "--data-dir", "replay every"} {
		if strings.Contains(out.String(), unwanted) {
			t.Errorf("fulfil dlq list --help shows %s:\n%s", unwanted, out.String())
		}
	}
}

// settingDefaults are the flags of the configuration with their environment variables and
// defaults, as they were before the move to cobra: none may change.
var settingDefaults = []struct{ flag, env, def string }{
	{"nats-url", "NATS_URL", ""}, {"nats-creds", "NATS_CREDS", ""}, {"nats-tls-ca", "FULFIL_NATS_TLS_CA", ""},
	{"nats-tls-cert", "FULFIL_NATS_TLS_CERT", ""}, {"nats-tls-key", "FULFIL_NATS_TLS_KEY", ""},
	{"data-dir", "FULFIL_DATA_DIR", "./fulfil-data"}, {"nats-listen", "FULFIL_NATS_LISTEN", "127.0.0.1:4222"},
	{"partner-url", "FULFIL_PARTNER_URL", "https://openapi.partner.yeastar.com"},
	{"partner-client-id", "FULFIL_PARTNER_CLIENT_ID", ""}, {"partner-client-id-file", "FULFIL_PARTNER_CLIENT_ID_FILE", ""},
	{"partner-client-secret", "FULFIL_PARTNER_CLIENT_SECRET", ""}, {"partner-client-secret-file", "FULFIL_PARTNER_CLIENT_SECRET_FILE", ""},
	{"partner-insecure", "FULFIL_PARTNER_INSECURE", "false"}, {"partner-sim", "FULFIL_PARTNER_SIM", "false"},
	{"subject-prefix", "FULFIL_SUBJECT_PREFIX", "fulfil"}, {"http-addr", "FULFIL_HTTP_ADDR", "127.0.0.1:8080"},
	{"pprof", "FULFIL_PPROF", "false"}, {"log-level", "FULFIL_LOG_LEVEL", "info"}, {"replicas", "FULFIL_REPLICAS", "0"},
	{"ack-wait", "FULFIL_ACK_WAIT", "1m0s"}, {"max-deliver", "FULFIL_MAX_DELIVER", "10"}, {"lease-ttl", "FULFIL_LEASE_TTL", "30s"},
	{"key-retention", "FULFIL_KEY_RETENTION", "720h0m0s"}, {"events-max-age", "FULFIL_EVENTS_MAX_AGE", "720h0m0s"},
	{"duplicate-window", "FULFIL_DUPLICATE_WINDOW", "2m0s"}, {"repair", "FULFIL_REPAIR", "false"},
	{"sync-interval", "FULFIL_SYNC_INTERVAL", "0s"}, {"partner-rate-limit", "FULFIL_PARTNER_RATE_LIMIT", "50"},
	{"max-orders-per-hour", "FULFIL_MAX_ORDERS_PER_HOUR", "0"}, {"max-orders-per-day", "FULFIL_MAX_ORDERS_PER_DAY", "0"},
	{"resend-after-unknown", "FULFIL_RESEND_AFTER_UNKNOWN", "auto"}, {"audit-interval", "FULFIL_AUDIT_INTERVAL", "1h0m0s"},
	{"audit-window", "FULFIL_AUDIT_WINDOW", "72h0m0s"}, {"concurrency", "FULFIL_CONCURRENCY", "64"},
	{"nats-user", "FULFIL_NATS_USER", ""}, {"nats-password-file", "FULFIL_NATS_PASSWORD_FILE", ""},
	{"nats-nkey-file", "FULFIL_NATS_NKEY_FILE", ""}, {"nats-inbox-prefix", "FULFIL_NATS_INBOX_PREFIX", "_INBOX"},
	{"nats-auth-file", "FULFIL_NATS_AUTH_FILE", ""}, {"nats-insecure", "FULFIL_NATS_INSECURE", "false"},
	{"api-addr", "FULFIL_API_ADDR", "127.0.0.1:8081"}, {"api-keys-file", "FULFIL_API_KEYS_FILE", ""},
	{"api-tls-cert", "FULFIL_API_TLS_CERT", ""}, {"api-tls-key", "FULFIL_API_TLS_KEY", ""},
	{"webhook-url", "FULFIL_WEBHOOK_URL", ""}, {"webhook-secret", "FULFIL_WEBHOOK_SECRET", ""},
	{"webhook-secret-file", "FULFIL_WEBHOOK_SECRET_FILE", ""}, {"webhook-insecure", "FULFIL_WEBHOOK_INSECURE", "false"},
	{"webhook-progress", "FULFIL_WEBHOOK_PROGRESS", "false"}, {"webhook-timeout", "FULFIL_WEBHOOK_TIMEOUT", "10s"},
	{"webhook-retry-period", "FULFIL_WEBHOOK_RETRY_PERIOD", "24h0m0s"},
}

// benchDefaults are the flags of fulfil bench, likewise.
var benchDefaults = []struct{ flag, env, def string }{
	{"latency", "FULFIL_LATENCY", "0,50ms"}, {"purchases", "FULFIL_PURCHASES", "2000"}, {"workers", "FULFIL_WORKERS", "1"},
	{"concurrency", "FULFIL_CONCURRENCY", "256"}, {"partner-conns", "FULFIL_PARTNER_CONNS", "0"},
	{"rates", "FULFIL_RATES", "25%,50%,75%,90%,100%"}, {"point-duration", "FULFIL_POINT_DURATION", "3s"},
	{"timeout", "FULFIL_TIMEOUT", "2m0s"}, {"repeat", "FULFIL_REPEAT", "3"}, {"out", "FULFIL_OUT", "./bench-out"},
	{"worker-processes", "FULFIL_WORKER_PROCESSES", "false"}, {"pprof-addr", "FULFIL_PPROF_ADDR", ""},
	{"log-level", "FULFIL_LOG_LEVEL", "error"},
}

// The environment variable of each flag is declared once, with the flag: every command that has
// the flag reads the same variable, the help names it, and the names and defaults are those
// of the documented configuration.
func TestEnvironmentVariablesDeclaredWithTheFlags(t *testing.T) {
	byFlag, byEnv := map[string]string{}, map[string]string{}
	walkFlags(newRoot(&invocation{}), func(cmd *cobra.Command, f *pflag.Flag) {
		env := flagEnv(f)
		if env == "" {
			return
		}
		if prev, ok := byFlag[f.Name]; ok && prev != env {
			t.Errorf("--%s reads %s on fulfil %s, %s elsewhere", f.Name, env, cmd.Name(), prev)
		}
		if prev, ok := byEnv[env]; ok && prev != f.Name {
			t.Errorf("%s is read by --%s and --%s", env, f.Name, prev)
		}
		byFlag[f.Name], byEnv[env] = env, f.Name
		if !strings.Contains(f.Usage, "($"+env+")") {
			t.Errorf("fulfil %s --%s: help does not name $%s", cmd.Name(), f.Name, env)
		}
	})
	check := func(cmd *cobra.Command, want []struct{ flag, env, def string }) {
		for _, w := range want {
			f := cmd.Flags().Lookup(w.flag)
			if f == nil {
				t.Errorf("fulfil %s has no --%s", cmd.Name(), w.flag)
				continue
			}
			if flagEnv(f) != w.env || f.DefValue != w.def {
				t.Errorf("fulfil %s --%s: $%s, default %q; want $%s, default %q", cmd.Name(), w.flag, flagEnv(f), f.DefValue, w.env, w.def)
			}
		}
	}
	check(findCommand(t, "worker"), settingDefaults)
	check(findCommand(t, "bench"), benchDefaults)
	if envName("nats-url") != "NATS_URL" || envName("point-duration") != "FULFIL_POINT_DURATION" || envName("redirect-for") != "FULFIL_REDIRECT_FOR" {
		t.Errorf("envName: %q %q %q", envName("nats-url"), envName("point-duration"), envName("redirect-for"))
	}
}

// Flags win over the environment; the environment wins over the defaults; a value the
// environment gives that does not parse is a configuration error (exit 2), named.
func TestFlagsEnvironmentAndDefaults(t *testing.T) {
	flagAddr, envAddr := freePort(t), freePort(t)
	code, _, errOut := fulfilRun(t, []string{"FULFIL_NATS_LISTEN=" + envAddr}, "status", "--nats-listen", flagAddr)
	if code != exitUnreachable || !strings.Contains(errOut, "nats://"+flagAddr) {
		t.Errorf("flag and environment: exit %d, want %d naming the flag's %s:\n%s", code, exitUnreachable, flagAddr, errOut)
	}
	code, _, errOut = fulfilRun(t, []string{"FULFIL_NATS_LISTEN=" + envAddr}, "status")
	if code != exitUnreachable || !strings.Contains(errOut, "nats://"+envAddr) {
		t.Errorf("environment: exit %d, want %d naming %s:\n%s", code, exitUnreachable, envAddr, errOut)
	}
	code, _, errOut = fulfilRun(t, []string{"FULFIL_PARTNER_RATE_LIMIT=fast"}, "audit", "--partner-sim")
	if code != exitUsage || !strings.Contains(errOut, `FULFIL_PARTNER_RATE_LIMIT="fast": not a number`) {
		t.Errorf("unparsable environment: exit %d, want %d:\n%s", code, exitUsage, errOut)
	}
	code, _, errOut = fulfilRun(t, []string{"FULFIL_ACK_WAIT=soon", "FULFIL_CONCURRENCY=many"}, "worker", "--partner-sim", "--http-addr", "")
	if code != exitUsage || !strings.Contains(errOut, "fulfil worker: 2 problems with the settings") ||
		!strings.Contains(errOut, `FULFIL_ACK_WAIT="soon": not a duration`) || !strings.Contains(errOut, `FULFIL_CONCURRENCY="many": not an integer`) {
		t.Errorf("worker, unparsable environment: exit %d, want %d:\n%s", code, exitUsage, errOut)
	}
}

func TestGNUFlags(t *testing.T) {
	root := newRoot(&invocation{})
	tests := []struct{ give, want []string }{
		{[]string{"status", "-json", "-nats-url", "nats://x:1", "k"}, []string{"status", "--json", "--nats-url", "nats://x:1", "k"}},
		{[]string{"status", "k", "-nats-url=nats://x:1"}, []string{"status", "k", "--nats-url=nats://x:1"}},
		{[]string{"submit", "-f", "-", "-timeout", "0"}, []string{"submit", "-f", "-", "--timeout", "0"}},
		{[]string{"submit", "-o", "json", "-key", "-odd-key"}, []string{"submit", "-o", "json", "--key", "-odd-key"}},
		{[]string{"worker", "--sync-interval", "-1s", "-data-dir", "d"}, []string{"worker", "--sync-interval", "-1s", "--data-dir", "d"}},
		{[]string{"dlq", "replay", "-all"}, []string{"dlq", "replay", "--all"}},
		{[]string{"dlq", "list", "-all"}, []string{"dlq", "list", "-all"}}, // not a flag of dlq list: left to fail
		{[]string{"events", "-follow=false", "--", "-json"}, []string{"events", "--follow=false", "--", "-json"}},
		{[]string{"worker", "-help"}, []string{"worker", "--help"}},
		{[]string{"-version"}, []string{"--version"}},
	}
	for _, tt := range tests {
		if got := gnuFlags(root, tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("gnuFlags(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}

	// Flags after arguments, against a NATS server without fulfil's streams: each command gets
	// as far as asking it (exit 1), where a flag it did not read would leave it dialing the
	// default address (exit 4) or failing on usage (exit 2).
	url := startTestNATS(t)
	for _, args := range [][]string{
		{"status", "some-key", "--nats-url", url, "--json"},
		{"status", "some-key", "--nats-url", url, "-o", "json"},
		{"status", "-nats-url", url, "-json", "some-key"},
		{"dlq", "replay", "some-key", "--nats-url", url},
		{"dlq", "replay", "-nats-url", url, "-all"},
		{"webhooks", "replay", "7", "--nats-url", url},
		{"webhooks", "replay", "7", "-nats-url=" + url},
		{"dlq", "list", "--nats-url", url, "-o", "json"},
	} {
		if code, out, errOut := fulfilRun(t, nil, args...); code != exitFailed {
			t.Errorf("fulfil %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, exitFailed, out, errOut)
		}
	}
}

func TestExitFourWhenNATSIsUnreachable(t *testing.T) {
	addr := freePort(t)
	for _, args := range [][]string{
		{"submit", "--key", "k-1", "--plan", "Ultimate Plan", "--quantity", "5"},
		{"status", "k-1"},
		{"status"},
		{"events", "--follow=false"},
		{"dlq", "list"},
		{"webhooks", "status"},
		{"pause", "--reason", "test"},
	} {
		code, _, errOut := fulfilRun(t, nil, append(args, "--nats-listen", addr)...)
		want := "no NATS server at nats://" + addr + ": start one with `fulfil worker` (it embeds one) or set NATS_URL"
		if code != exitUnreachable || !strings.Contains(errOut, want) {
			t.Errorf("fulfil %s: exit %d, want %d with %q:\n%s", strings.Join(args, " "), code, exitUnreachable, want, errOut)
		}
	}
	code, _, errOut := fulfilRun(t, []string{"NATS_URL=nats://" + addr}, "status")
	if code != exitUnreachable || !strings.Contains(errOut, "check NATS_URL") {
		t.Errorf("NATS_URL unreachable: exit %d, want %d:\n%s", code, exitUnreachable, errOut)
	}
	// A setting that cannot work is a configuration error, not an unreachable server.
	code, _, errOut = fulfilRun(t, nil, "status", "--nats-listen", addr, "--nats-tls-cert", filepath.Join(t.TempDir(), "nope.pem"))
	if code != exitUsage || !strings.Contains(errOut, "FULFIL_NATS_TLS_KEY") {
		t.Errorf("half a client certificate: exit %d, want %d:\n%s", code, exitUsage, errOut)
	}
}

func TestNATSURLHelpStatesTheDefault(t *testing.T) {
	for _, tt := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"status"}, []string{"nats://127.0.0.1:4222", "FULFIL_NATS_LISTEN"}},
		{[]string{"worker"}, []string{"embedded JetStream server", "--nats-listen", "--data-dir"}},
	} {
		f := findCommand(t, tt.cmd...).Flags().Lookup("nats-url")
		for _, w := range tt.want {
			if !strings.Contains(f.Usage, w) {
				t.Errorf("fulfil %s --nats-url: help %q lacks %q", tt.cmd[0], f.Usage, w)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := fulfilRun(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "fulfil ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, %q\n%s", code, out, errOut)
	}
	code, flagOut, _ := fulfilRun(t, nil, "--version")
	if code != exitOK || flagOut != out {
		t.Errorf("--version: exit %d, %q; want %q", code, flagOut, out)
	}
	code, out, errOut = fulfilRun(t, nil, "version", "-o", "json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || v.GoVersion != runtime.Version() || v.Version == "" ||
		v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version -o json: exit %d, %v, %q\n%s", code, err, out, errOut)
	}
}

func TestCompletionScripts(t *testing.T) {
	bash, _ := exec.LookPath("bash")
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := fulfilRun(t, nil, "completion", shell)
		if code != exitOK || len(out) < 200 || !strings.Contains(out, "fulfil") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, code, len(out), errOut)
			continue
		}
		if shell == "bash" && bash != "" {
			path := filepath.Join(t.TempDir(), "fulfil.bash")
			if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("bash -n rejects the completion script: %v\n%s", err, b)
			}
		}
	}
	// The completion of a command's flags comes from the same tree.
	code, out, _ := fulfilRun(t, nil, "__complete", "dlq", "replay", "--")
	if code != exitOK || !strings.Contains(out, "--all") || strings.Contains(out, "--data-dir") {
		t.Errorf("__complete dlq replay --: exit %d\n%s", code, out)
	}
}

func TestSubmitErrorsNameTheFlags(t *testing.T) {
	var errb syncBuffer
	code := run(context.Background(), []string{"submit", "--quantity", "0", "--years", "9", "--service", "Disaster Recovery", "--service", "Disaster Recovery"}, io.Discard, &errb)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, errb.String())
	}
	for _, want := range []string{"--key is required", "--plan is required", "--quantity: must be between", "--years: must be between", "--service 2 repeats --service 1"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	for _, field := range []string{"idempotencyKey", "\n  plan:", "\n  quantity:", "services["} {
		if strings.Contains(errb.String(), field) {
			t.Errorf("stderr names the JSON field %q:\n%s", field, errb.String())
		}
	}
	// From a file, the JSON fields are the words to use.
	file := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(file, []byte(`{"quantity":5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	errb = syncBuffer{}
	if code := run(context.Background(), []string{"submit", "-f", file}, io.Discard, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "idempotencyKey: required") || !strings.Contains(errb.String(), "plan: required") {
		t.Errorf("-f: exit %d:\n%s", code, errb.String())
	}
}

// -o json on every command that lists or shows, against a worker: each prints JSON; --json is
// the same as -o json where it existed.
func TestOutputJSON(t *testing.T) {
	for _, p := range [][]string{{"status"}, {"events"}, {"dlq", "list"}, {"webhooks", "list"}, {"webhooks", "status"},
		{"audit"}, {"partner", "check"}, {"version"}, {"submit"}} {
		if f := findCommand(t, p...).Flags().ShorthandLookup("o"); f == nil || f.Name != "output" {
			t.Errorf("fulfil %s has no -o/--output", strings.Join(p, " "))
		}
	}

	natsAddr, httpAddr := freePort(t), freePort(t)
	common := []string{"--nats-listen", natsAddr}
	ctx, cancel := context.WithCancel(context.Background())
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"worker", "--partner-sim", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--api-addr", "",
			"--log-level", "warn"}, common...), io.Discard, &werr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("worker exit %d:\n%s", code, werr.String())
		}
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)

	fulfilIn := func(args ...string) (int, string) {
		t.Helper()
		var out, errb syncBuffer
		code := run(context.Background(), append(args, common...), &out, &errb)
		if t.Failed() {
			t.Logf("fulfil %v: stderr:\n%s", args, errb.String())
		}
		return code, out.String()
	}
	object := func(name, text string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			t.Errorf("%s: not a JSON object: %v\n%s", name, err, text)
		}
		return m
	}
	lines := func(name, text string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if l != "" {
				out = append(out, object(name, l))
			}
		}
		return out
	}

	code, out := fulfilIn("submit", "--key", "json-1", "--plan", "Ultimate Plan", "--quantity", "5", "--timeout", "60s", "-o", "json")
	if m := object("submit", out); code != exitOK || m["type"] != messages.TypeCompleted {
		t.Errorf("submit -o json: exit %d, %v", code, m)
	}
	code, out = fulfilIn("submit", "--key", "json-1", "--plan", "Ultimate Plan", "--quantity", "6", "--timeout", "60s", "--json")
	if m := object("submit --json", out); code != exitFailed || m["reason"] != "conflict" {
		t.Errorf("submit --json of a conflict: exit %d, %v", code, m)
	}
	code, out = fulfilIn("status", "json-1", "-o", "json")
	if m := object("status KEY", out); code != exitOK || m["idempotencyKey"] != "json-1" {
		t.Errorf("status KEY -o json: exit %d, %v", code, m)
	}
	code, out = fulfilIn("status", "-o", "json")
	if m := object("status", out); code != exitOK || m["pause"] == nil {
		t.Errorf("status -o json: exit %d, %v", code, m)
	}
	code, out = fulfilIn("events", "--follow=false", "--key", "json-1", "-o", "json")
	if evs := lines("events", out); code != exitOK || len(evs) == 0 {
		t.Errorf("events -o json: exit %d, %d events", code, len(evs))
	}
	code, out = fulfilIn("dlq", "list", "-o", "json")
	if dls := lines("dlq list", out); code != exitOK || len(dls) != 1 || dls[0]["reason"] != "conflict" || dls[0]["idempotencyKey"] != "json-1" {
		t.Errorf("dlq list -o json: exit %d, %v", code, dls)
	}
	for _, args := range [][]string{{"webhooks", "list", "-o", "json"}, {"webhooks", "list", "--json"}, {"webhooks", "status", "-o", "json"}} {
		if code, out := fulfilIn(args...); code != exitOK || len(lines(strings.Join(args, " "), out)) != 0 {
			t.Errorf("%v: exit %d, %q (no webhooks configured)", args, code, out)
		}
	}
	code, out = fulfilIn("audit", "--partner-sim", "-o", "json")
	if m := object("audit", out); (code != exitOK && code != exitFailed) || m == nil {
		t.Errorf("audit -o json: exit %d", code)
	}
	var pout, perr syncBuffer
	code = run(context.Background(), []string{"partner", "check", "--partner-sim", "--log-level", "error", "-o", "json"}, &pout, &perr)
	if m := object("partner check", pout.String()); code != exitOK || m["ok"] != true || !strings.Contains(fmt.Sprint(m["endpoints"]), "endpoint:product_list") {
		t.Errorf("partner check -o json: exit %d, %v\n%s", code, m, perr.String())
	}
}
