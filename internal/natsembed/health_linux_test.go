//go:build linux

package natsembed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/testutil"
)

// TestRecoversWhenDiskFreed fills a tmpfs under the server (root only): the stream that failed
// to write refuses every later write, Health names the error, and once the disk is freed the
// server restarts JetStream by itself and the stream takes writes again with every
// acknowledged message kept.
func TestRecoversWhenDiskFreed(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("needs a real full file system: mount tmpfs on %s: %v (run as root to include it)", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	srv, err := natsembed.Start(natsembed.Options{DataDir: filepath.Join(dir, "data"), RecoverInterval: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	publish := func(i int) error {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := js.Publish(pctx, "t", []byte(fmt.Sprintf("m%d-%s", i, strings.Repeat("x", 1000))))
		return err
	}
	acked := 0
	for ; acked < 10; acked++ {
		if err := publish(acked); err != nil {
			t.Fatal(err)
		}
	}
	// Fill the disk, then publish until the stream fails.
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 32<<10); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("the stream never failed on a full disk")
		}
		if err := publish(acked); err != nil {
			break
		}
		acked++
	}
	var health error
	testutil.Eventually(t, 5*time.Second, func() bool { health = srv.Health(); return health != nil })
	if !strings.Contains(health.Error(), "no space left on device") || !strings.Contains(health.Error(), "'$G > T'") {
		t.Errorf("Health = %v, want stream T's write error", health)
	}
	// Still full: the stream stays broken and nothing restarts.
	time.Sleep(500 * time.Millisecond)
	if err := publish(acked); err == nil {
		t.Fatal("publish succeeded on a full disk")
	}
	if n, _ := srv.Restarts(); n != 0 {
		t.Errorf("restarts while the disk is full = %d, want 0", n)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	// The restart is counted just after JetStream serves again: wait for the count first.
	testutil.Eventually(t, 10*time.Second, func() bool {
		n, _ := srv.Restarts()
		return n >= 1 && srv.Health() == nil && publish(acked) == nil
	}, "JetStream restarted and taking writes")
	acked++
	if n, cause := srv.Restarts(); n < 1 || cause == nil {
		t.Errorf("Restarts = %d, %v; want at least one, with its cause", n, cause)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < uint64(acked) {
		t.Errorf("stream has %d messages after recovery, want the %d acknowledged", info.State.Msgs, acked)
	}
	for seq := uint64(1); seq <= 10; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || !strings.HasPrefix(string(m.Data), fmt.Sprintf("m%d-", seq-1)) {
			t.Errorf("message %d after recovery: %v", seq, err)
		}
	}
}
