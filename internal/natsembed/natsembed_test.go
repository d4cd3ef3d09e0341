package natsembed_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
)

func TestStartJetStream(t *testing.T) {
	url := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.x", []byte("hello"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Sequence != 1 {
		t.Errorf("sequence = %d, want 1", ack.Sequence)
	}
}

// TestRestartKeepsData checks that acknowledged messages survive a shutdown and restart on the
// same data directory.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	srv := start(t, natsembed.Options{DataDir: dir})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()

	srv = start(t, natsembed.Options{DataDir: dir})
	nc, err = nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("get msg after restart: %v", err)
	}
	if string(msg.Data) != "kept" {
		t.Errorf("data = %q, want %q", msg.Data, "kept")
	}
}

func TestStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		give natsembed.Options
		want string
	}{
		{name: "no data dir", give: natsembed.Options{}, want: "DataDir is required"},
		{name: "port taken", give: natsembed.Options{DataDir: t.TempDir(), Port: port}, want: "listening on port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Logger = zaptest.NewLogger(t)
			srv, err := natsembed.Start(tt.give)
			if err == nil {
				srv.Shutdown()
				t.Fatal("Start succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestClientURLUsesHost(t *testing.T) {
	srv := start(t, natsembed.Options{DataDir: t.TempDir(), ServerName: "fulfil-test"})
	if got := srv.ClientURL(); !strings.HasPrefix(got, "nats://127.0.0.1:") {
		t.Errorf("ClientURL = %q, want nats://127.0.0.1:<port>", got)
	}
}

func start(t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}
