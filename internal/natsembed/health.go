package natsembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// defaultRecoverInterval is Options.RecoverInterval's default.
const defaultRecoverInterval = 2 * time.Second

// maxRecoverBackoff bounds the wait between JetStream restarts that did not cure the store.
const maxRecoverBackoff = time.Minute

// probeBytes is what the data directory must take before JetStream is restarted: enough for
// the streams to be recovered and to accept writes again.
const probeBytes = 1 << 20

// probeFile is written and removed in the data directory to test for free space.
const probeFile = ".fulfil-space-probe"

// Health reports nil while JetStream is enabled and none of its streams has a write error.
// Otherwise it returns an error naming the cause, for example
//
//	JetStream stream '$G > KV_FULFIL_SAGAS' write error: write …/1.blk: no space left on device
//
// A stream that failed to write (a full disk) refuses every later write until it is loaded
// again; JetStream itself disables itself on some storage errors. The server notices either
// within Options.RecoverInterval and, as soon as the data directory takes a small write
// again, restarts JetStream, which loads every stream and consumer from disk: writes that
// were acknowledged before the error are kept, and clients carry on as after a server restart.
func (s *Server) Health() error {
	if !s.ns.JetStreamEnabled() {
		return errors.New("JetStream is disabled")
	}
	hs := s.ns.Healthz(&server.HealthzOptions{Details: true})
	var msgs []string
	for _, e := range hs.Errors {
		msgs = append(msgs, e.Error)
	}
	if len(msgs) == 0 && hs.Error != "" {
		msgs = append(msgs, hs.Error)
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Restarts returns how many times the server restarted JetStream to recover from a store
// error, and the error that caused the last restart.
func (s *Server) Restarts() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts, s.lastErr
}

// watch checks the store every interval until Shutdown and restarts JetStream when it has
// been unhealthy on two checks in a row and the data directory can be written.
func (s *Server) watch(interval time.Duration) {
	defer close(s.done)
	wait, unhealthy := interval, 0
	for {
		select {
		case <-s.quit:
			return
		case <-time.After(wait):
		}
		err := s.Health()
		if err == nil {
			wait, unhealthy = interval, 0
			continue
		}
		// A stream being created or loaded may be missing for a moment: act on the second look.
		if unhealthy++; unhealthy < 2 {
			continue
		}
		if perr := probeSpace(s.dir); perr != nil {
			s.log.Debug("store unhealthy and the data dir not writable yet", zap.NamedError("store_error", err), zap.Error(perr))
			continue
		}
		s.log.Warn("JetStream store unhealthy and the data dir writable again: restarting JetStream", zap.Error(err))
		if rerr := s.restartJetStream(); rerr != nil {
			s.log.Error("JetStream restart failed", zap.Error(rerr))
		} else {
			s.log.Warn("JetStream restarted after a store error")
		}
		s.mu.Lock()
		s.restarts++
		s.lastErr = err
		s.mu.Unlock()
		unhealthy = 0
		// If the restart did not cure it, do not restart in a tight loop.
		wait = min(2*wait, maxRecoverBackoff)
	}
}

// restartJetStream shuts JetStream down, as the server does itself when it runs out of space,
// and enables it again with the server's configuration, as a configuration reload does.
func (s *Server) restartJetStream() error {
	if err := s.ns.ShutdownJetStream(); err != nil {
		return fmt.Errorf("shut down JetStream: %w", err)
	}
	if err := s.ns.ReloadOptions(s.opts.Clone()); err != nil {
		return fmt.Errorf("enable JetStream: %w", err)
	}
	if !s.ns.JetStreamEnabled() {
		return errors.New("JetStream did not start again")
	}
	return nil
}

// probeSpace writes probeBytes to a file in dir, syncs and removes it.
func probeSpace(dir string) (err error) {
	path := filepath.Join(dir, probeFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		_ = os.Remove(path)
	}()
	if _, err := f.Write(make([]byte, probeBytes)); err != nil {
		return err
	}
	return f.Sync()
}
