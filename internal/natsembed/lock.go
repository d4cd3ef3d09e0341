package natsembed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LockFile is the name of the lock file Start creates in the data directory.
const LockFile = "fulfil.lock"

// Holder describes the process that holds a data directory's lock. It is written to the lock
// file as one line of JSON, for example
//
//	{"pid":1234,"host":"web-1","started":"2026-05-04T10:00:00Z","owner":"fulfil worker"}
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Owner   string    `json:"owner"`
}

func (h Holder) String() string {
	owner := h.Owner
	if owner == "" {
		owner = "another process"
	}
	if h.PID == 0 {
		return owner
	}
	s := fmt.Sprintf("%s pid %d", owner, h.PID)
	if h.Host != "" {
		s += " on " + h.Host
	}
	if !h.Started.IsZero() {
		s += " (started " + h.Started.Format(time.RFC3339) + ")"
	}
	return s
}

// LockedError is returned by Start when another process holds the data directory's lock:
// two servers on one store would corrupt it.
type LockedError struct {
	Dir    string
	Holder Holder // as read from the lock file; zero fields when it could not be read
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("data dir %s is in use by %s; stop it or use another data dir (FULFIL_DATA_DIR)", e.Dir, e.Holder)
}

// ErrLocked matches a *LockedError.
var ErrLocked = errors.New("natsembed: data dir in use")

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// dirLock is an exclusive advisory lock on the data directory's lock file. The operating
// system releases it when the process ends, however it ends, so a stale file never blocks.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock of dir for owner, or fails at once with a *LockedError naming the
// holder. It then writes this process into the lock file.
func lockDir(dir, owner string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	locked, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !locked {
		_ = f.Close()
		return nil, &LockedError{Dir: dir, Holder: readHolder(path)}
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second), Owner: owner})
	if err := writeHolder(f, append(b, '\n')); err != nil {
		_ = unlock(f)
		_ = f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

func writeHolder(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder reads the lock file's holder. The holder writes it right after taking the lock,
// so an empty or partial file is read again for a moment.
func readHolder(path string) Holder {
	var h Holder
	for range 10 {
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &h) == nil && h.PID != 0 {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Holder{}
}

// release unlocks and closes the lock file. The file stays: removing it could let a third
// process lock a new file while a second one still waits on the old one.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unlock(l.f)
	_ = l.f.Close()
	l.f = nil
}
