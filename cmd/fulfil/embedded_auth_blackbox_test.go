package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfil/fulfil/internal/devsecrets"
)

// wildcardPort returns a free 0.0.0.0:port and the loopback address to dial it.
func wildcardPort(t *testing.T) (listen, dial string) {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return "0.0.0.0:" + port, "127.0.0.1:" + port
}

// A worker whose embedded NATS server would listen beyond loopback without authentication
// refuses to start, exit 2, and says how to fix it; whether the address comes from the flag or
// the environment, and for any non-loopback host.
func TestEmbeddedServerOnTheNetworkNeedsAuth(t *testing.T) {
	listen, dial := wildcardPort(t)
	for _, tt := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--nats-listen", listen}, nil},
		{"environment", nil, []string{"FULFIL_NATS_LISTEN=" + listen}},
		{"every interface, no host", []string{"--nats-listen", ":" + strings.Split(listen, ":")[1]}, nil},
		{"insecure false", []string{"--nats-listen", listen}, []string{"FULFIL_NATS_INSECURE=false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := fulfilCmd(ctx, t, append([]string{"worker", "--partner-sim", "--http-addr", "", "--api-addr", "", "--data-dir", dataDir}, tt.args...)...)
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("exit %v, want %d:\n%s", err, exitUsage, out)
			}
			for _, want := range []string{"nothing was started", "FULFIL_NATS_LISTEN (--nats-listen)", "not a loopback address",
				"FULFIL_NATS_AUTH_FILE", "deploy/nats/auth.conf", "FULFIL_NATS_INSECURE=true", "127.0.0.1"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("data dir created (%v): something was started", err)
			}
			if c, err := net.DialTimeout("tcp", dial, 200*time.Millisecond); err == nil {
				c.Close()
				t.Errorf("%s answers", dial)
			}
		})
	}
}

// With the shipped users file the embedded server listens on every interface, refuses
// anonymous clients, and the worker logs in to it as worker; FULFIL_NATS_INSECURE=true
// accepts an open server instead.
func TestEmbeddedServerWithAuthFile(t *testing.T) {
	secrets := t.TempDir()
	if _, err := devsecrets.Generate(secrets, devsecrets.Options{}); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, u := range devsecrets.Users {
		b, err := os.ReadFile(filepath.Join(secrets, devsecrets.PasswordFile(u)))
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, devsecrets.PasswordEnv(u)+"="+strings.TrimSpace(string(b)))
	}
	authFile, err := filepath.Abs(filepath.Join(deployDir, "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	password := func(user string) string {
		b, _ := os.ReadFile(filepath.Join(secrets, devsecrets.PasswordFile(user)))
		return strings.TrimSpace(string(b))
	}

	// Without the worker's own login it cannot start either.
	cmd := fulfilCmd(context.Background(), t, "worker", "--partner-sim", "--http-addr", "", "--api-addr", "", "--data-dir", t.TempDir(),
		"--nats-listen", "0.0.0.0:0", "--nats-auth-file", authFile)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "set FULFIL_NATS_USER and FULFIL_NATS_PASSWORD_FILE") || cmd.ProcessState.ExitCode() != exitUsage {
		t.Errorf("auth file without the worker's login: %v:\n%s", err, out)
	}

	listen, dial := wildcardPort(t)
	httpAddr := freePort(t)
	cmd = fulfilCmd(context.Background(), t, "worker", "--partner-sim", "--http-addr", httpAddr, "--api-addr", "", "--data-dir", t.TempDir(),
		"--nats-listen", listen, "--nats-auth-file", authFile, "--nats-user", "worker",
		"--nats-password-file", filepath.Join(secrets, devsecrets.PasswordFile("worker")), "--nats-inbox-prefix", "_INBOX_worker")
	cmd.Env = append(cmd.Env, env...)
	werr := startCmd(t, cmd)
	waitReady(t, "http://"+httpAddr+"/readyz", nil, werr)
	if nc, err := nats.Connect("nats://"+dial, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("an anonymous client connected to the embedded server")
	}
	nc, err := nats.Connect("nats://"+dial, nats.UserInfo("producer", password("producer")))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	nc.Close()

	// Open on purpose.
	listen, dial = wildcardPort(t)
	httpAddr = freePort(t)
	cmd = fulfilCmd(context.Background(), t, "worker", "--partner-sim", "--http-addr", httpAddr, "--api-addr", "", "--data-dir", t.TempDir(), "--nats-listen", listen)
	cmd.Env = append(cmd.Env, "FULFIL_NATS_INSECURE=true")
	werr = startCmd(t, cmd)
	waitReady(t, "http://"+httpAddr+"/readyz", nil, werr)
	nc, err = nats.Connect("nats://" + dial)
	if err != nil {
		t.Fatalf("FULFIL_NATS_INSECURE=true: %v", err)
	}
	nc.Close()
}

// startCmd starts a long-running fulfil process, interrupted when the test ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	return out
}
