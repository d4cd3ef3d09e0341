package natsembed_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/natsembed"
)

// TestDataDirLocked starts a second server on a data dir in use: it must refuse at once and
// name the holder, and start once the first one has stopped.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := natsembed.Start(natsembed.Options{DataDir: dir, Owner: "fulfil worker"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, natsembed.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	var h natsembed.Holder
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("lock file %q: %v", b, err)
	}
	host, _ := os.Hostname()
	if h.PID != os.Getpid() || h.Host != host || h.Owner != "fulfil worker" || time.Since(h.Started) > time.Minute {
		t.Errorf("lock file holder = %+v, want this process", h)
	}

	start := time.Now()
	second, err := natsembed.Start(natsembed.Options{DataDir: dir})
	if err == nil {
		second.Shutdown()
		first.Shutdown()
		t.Fatal("a second server started on a data dir in use")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusing took %s", took)
	}
	var locked *natsembed.LockedError
	if !errors.As(err, &locked) || !errors.Is(err, natsembed.ErrLocked) {
		t.Fatalf("error %v (%T), want a *LockedError", err, err)
	}
	for _, want := range []string{"data dir " + dir + " is in use by fulfil worker pid " + strconv.Itoa(os.Getpid()), "started ", "FULFIL_DATA_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	first.Shutdown()
	first.Shutdown() // harmless
	third := start3(t, dir)
	third.Shutdown()
}

func start3(t *testing.T, dir string) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("start after the holder stopped: %v", err)
	}
	return srv
}
