//go:build linux

package worker_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/internal/testutil"
)

// mountTmpfs mounts a tmpfs of size (e.g. "16m") on a new directory and unmounts it when the
// test ends. It skips the test when mounting is not permitted (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("this test needs a real full file system: mount -t tmpfs -o size=%s tmpfs %s: %v (run as root to include it)", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

// TestDiskFullThenFreed is the outage as it happens: the embedded server's data dir is on a
// 16 MiB tmpfs that fills up while purchases run. JetStream's streams fail their writes and
// refuse every later one; the server restarts JetStream once the disk takes writes again, and
// the worker finishes every purchase by itself, none lost or doubled.
func TestDiskFullThenFreed(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system")
	}
	mnt := mountTmpfs(t, "16m")
	srv, err := natsembed.Start(natsembed.Options{DataDir: filepath.Join(mnt, "data"), RecoverInterval: 200 * time.Millisecond,
		Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ballast := filepath.Join(mnt, "ballast")
	var healthWhileFull error
	fullStoreRun(t, srv.ClientURL(),
		func() { fillDisk(t, ballast) },
		func() {
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
		},
		func() error {
			// The server's own health names the write error.
			testutil.Eventually(t, 10*time.Second, func() bool {
				healthWhileFull = srv.Health()
				return healthWhileFull != nil
			}, "the embedded server to report a write error")
			t.Logf("server health while full: %v", healthWhileFull)
			if !strings.Contains(healthWhileFull.Error(), "no space left on device") {
				return errors.New("server health does not name the full disk: " + healthWhileFull.Error())
			}
			return nil
		})
	if err := srv.Health(); err != nil {
		t.Errorf("server health after the disk was freed: %v", err)
	}
	if n, cause := srv.Restarts(); n < 1 {
		t.Errorf("JetStream restarts = %d, want at least 1", n)
	} else {
		t.Logf("JetStream restarted %d time(s), last for: %v", n, cause)
	}
}
