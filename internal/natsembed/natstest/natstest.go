// Package natstest starts embedded JetStream servers for tests.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/internal/natsembed"
)

// Start runs an embedded JetStream server on a random port with its store in t.TempDir(),
// shuts it down when the test ends and returns its client URL. It fails the test if the server
// does not start.
func Start(t testing.TB) (url string) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{DataDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// Connect connects to url and returns the connection and a JetStream context on it. The
// connection is closed when the test ends. It fails the test if it cannot connect.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
