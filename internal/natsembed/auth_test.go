package natsembed_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfil/fulfil/internal/natsembed"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A server with Auth takes only its users, each with its permissions; the password may come
// from the environment.
func TestAuth(t *testing.T) {
	t.Setenv("TEST_APP_PASSWORD", "s3cret-app")
	auth, err := natsembed.LoadAuth(writeConf(t, `
APP = { publish = { allow = ["app.>"] }, subscribe = { allow = ["_INBOX.>"] } }
authorization {
  users = [
    { user: app, password: $TEST_APP_PASSWORD, permissions: $APP }
    { user: admin, password: "admin-pw" }
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(auth.Users(), ","); got != "app,admin" {
		t.Errorf("Users = %s", got)
	}
	if p, ok := auth.Permissions("app"); !ok || p == nil || p.Publish.Allow[0] != "app.>" {
		t.Errorf("Permissions(app) = %+v, %v", p, ok)
	}
	srv, err := natsembed.Start(natsembed.Options{DataDir: t.TempDir(), Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	for name, opts := range map[string][]nats.Option{"anonymous": nil, "wrong password": {nats.UserInfo("app", "guess")}} {
		if nc, err := nats.Connect(srv.ClientURL(), opts...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		}
	}
	errs := make(chan error, 10)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("app", "s3cret-app"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("app.x", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("other", nil); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), `Permissions Violation for Publish to "other"`) {
			t.Errorf("error %v, want a publish violation on other", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("publishing outside the permissions was not refused")
	}
	// JetStream still restarts with the users in place.
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "admin-pw")); err != nil {
		t.Error(err)
	} else {
		nc.Close()
	}
}

// LoadAuth refuses what an embedded server cannot enforce, or what would let anyone in.
func TestLoadAuthRefuses(t *testing.T) {
	for _, tt := range []struct{ name, conf, want string }{
		{"no users", `port: 4222`, "defines no users"},
		{"no auth user", `authorization { users = [{user: a, password: b}] }
no_auth_user: a`, "no_auth_user"},
		{"token", `authorization { token: abc }`, "single token or user"},
		{"accounts", `accounts { A { users = [{user: a, password: b}] } }`, "accounts need an external"},
		{"missing variable", `authorization { users = [{user: a, password: $NOT_SET_ANYWHERE_X}] }`, "NOT_SET_ANYWHERE_X"},
		{"syntax", `authorization { users = [`, "auth file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsembed.LoadAuth(writeConf(t, tt.conf))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadAuth: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := natsembed.LoadAuth(filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Error("LoadAuth of a missing file succeeded")
	}
}
