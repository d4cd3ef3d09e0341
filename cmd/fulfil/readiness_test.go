package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// TestReadyzStoreCannotWrite: /readyz answers 503 naming the store's write error while
// JetStream's storage is full, and 200 again once it is freed.
func TestReadyzStoreCannotWrite(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{DataDir: t.TempDir(), MaxStore: 4 << 20, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	env := &natsEnv{nc: nc, js: js, srv: srv, url: srv.ClientURL()}
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	client, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(js, &workflow.Saga{Partner: client}, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.ControlGuard().Stop) // Setup starts the pause-flag watch; only Run would stop it
	addr := freePort(t)
	hs, err := startHTTP(addr, false, http.NotFoundHandler(), readiness(env, client, w), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before: %d %s", code, body)
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BALLAST", Subjects: []string{"ballast"}}); err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 64<<10); ; {
		if _, err := js.Publish(ctx, "ballast", chunk); err != nil {
			break
		}
	}
	// An idle worker trusts its last successful write for worker.StoreProbeAfter, then probes.
	var body string
	testutil.Eventually(t, worker.StoreProbeAfter+5*time.Second, func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable
	}, "/readyz to answer 503 while the store is full")
	if !strings.Contains(body, "idempotency store cannot write: bucket FULFIL_SAGAS") || !strings.Contains(body, "insufficient resources") {
		t.Errorf("/readyz while full: %q, want it to name the bucket and the error", body)
	}

	if err := js.DeleteStream(ctx, "BALLAST"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { code, _ := readyz(); return code == http.StatusOK },
		"/readyz to answer 200 once the store was freed")
}
