package natsembed

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// readyTimeout bounds how long Start waits for the server to accept connections.
const readyTimeout = 10 * time.Second

// Options configure an embedded server. Zero fields take the defaults given beside them.
type Options struct {
	// DataDir holds the JetStream store. Required; created if missing.
	DataDir string
	// Host to listen on (default "127.0.0.1").
	Host string
	// Port to listen on (default -1: a random free port).
	Port int
	// ServerName names the server in logs and monitoring (default: the generated server ID).
	ServerName string
	// SyncInterval is how often JetStream syncs its files to disk (0: the server's default,
	// two minutes). See the package documentation for what survives which failure.
	SyncInterval time.Duration
	// SyncAlways syncs every write to disk before it is acknowledged.
	SyncAlways bool
	// MaxPayload is the largest message the server accepts (0: the server's default, 1 MiB).
	MaxPayload int32
	// Logger receives the server's warnings and errors (nil: discard them). Notices are
	// logged at debug level.
	Logger *zap.Logger
	// Owner names this process in the data directory's lock file, e.g. "fulfil worker"
	// (default "fulfil"). See LockFile.
	Owner string
	// MaxStore caps the bytes JetStream stores on disk (0: the server's default, most of the
	// free space of the data directory's file system).
	MaxStore int64
	// RecoverInterval is how often the server checks its store for a write error (a full
	// disk) and, once the data directory can be written again, restarts JetStream to
	// recover (0: every 2s; negative: never). See Server.Health.
	RecoverInterval time.Duration
	// Auth makes clients log in as one of its users, with the users' permissions (nil: the
	// server takes anonymous clients; keep it on a loopback Host then). See LoadAuth.
	Auth *Auth
}

// Server is a running embedded NATS server with JetStream enabled.
type Server struct {
	ns     *server.Server
	opts   *server.Options
	dir    string
	lock   *dirLock
	log    *zap.Logger
	quit   chan struct{}
	done   chan struct{}
	close  sync.Once
	unlock sync.Once

	mu       sync.Mutex
	restarts int   // JetStream restarts after store errors
	lastErr  error // the store error that caused the last restart
}

// Start starts a server and waits until it accepts connections and JetStream is enabled.
// It returns an error when DataDir is empty or unusable, or the server cannot start within
// 10 seconds (for example because the port is taken).
func Start(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("natsembed: DataDir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: data dir: %w", err)
	}
	if opts.Owner == "" {
		opts.Owner = "fulfil"
	}
	// Two servers on one store would corrupt it: the second one refuses at once.
	lock, err := lockDir(opts.DataDir, opts.Owner)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	srv, err := start(opts)
	if err != nil {
		lock.release()
		return nil, err
	}
	srv.lock = lock
	interval := opts.RecoverInterval
	if interval == 0 {
		interval = defaultRecoverInterval
	}
	if interval > 0 {
		go srv.watch(interval)
	} else {
		close(srv.done)
	}
	return srv, nil
}

func start(opts Options) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	sopts := &server.Options{
		ServerName:             opts.ServerName,
		Host:                   opts.Host,
		Port:                   opts.Port,
		MaxPayload:             opts.MaxPayload,
		JetStream:              true,
		StoreDir:               opts.DataDir,
		SyncInterval:           opts.SyncInterval,
		SyncAlways:             opts.SyncAlways,
		JetStreamMaxStore:      opts.MaxStore,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if err := opts.Auth.apply(sopts); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	log := &zapLogger{log: opts.Logger}
	if log.log == nil {
		log.log = zap.NewNop()
	}
	log.log = log.log.Named("nats-server")
	ns.SetLoggerV2(log, false, false, false)

	ns.Start()
	if err := waitReady(ns, log); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("natsembed: JetStream did not start")
	}
	return &Server{ns: ns, opts: sopts, dir: opts.DataDir, log: log.log, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// waitReady waits until ns accepts connections, returning early with the fatal error the
// server logged when it gives up (a taken port, an unusable store directory).
func waitReady(ns *server.Server, log *zapLogger) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if err := log.fatal(); err != nil {
			return err
		}
		if ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
	}
	if err := log.fatal(); err != nil {
		return err
	}
	return fmt.Errorf("server not ready for connections after %s", readyTimeout)
}

// ClientURL returns the URL clients connect to, e.g. "nats://127.0.0.1:4222".
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// ClientMsgs returns the messages the open client connections named name have sent to and
// received from the server (protocol messages such as PING are not counted). It is what the
// clients' nats.Conn.Stats would report, read on the server side.
func (s *Server) ClientMsgs(name string) (uint64, error) { return ClientMsgs(s.ns, name) }

// ClientMsgs is Server.ClientMsgs for any nats-server in this process (a cluster node, say).
func ClientMsgs(ns *server.Server, name string) (uint64, error) {
	var total uint64
	for offset := 0; ; {
		cz, err := ns.Connz(&server.ConnzOptions{Offset: offset, Limit: 1024})
		if err != nil {
			return 0, err
		}
		for _, c := range cz.Conns {
			if c.Name == name {
				total += uint64(c.InMsgs + c.OutMsgs)
			}
		}
		offset += len(cz.Conns)
		if len(cz.Conns) == 0 || offset >= cz.Total {
			return total, nil
		}
	}
}

// Shutdown stops the server, waits until it has stopped and releases the data directory.
// It is safe to call more than once.
func (s *Server) Shutdown() {
	s.close.Do(func() { close(s.quit) })
	<-s.done
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.unlock.Do(s.lock.release)
}

// zapLogger bridges the server's logger to zap and remembers the first fatal error, which
// the server reports instead of returning it from Start.
type zapLogger struct {
	log *zap.Logger

	mu  sync.Mutex
	err error
}

func (l *zapLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *zapLogger) Noticef(format string, v ...any) { l.emit(zap.DebugLevel, format, v) }
func (l *zapLogger) Warnf(format string, v ...any)   { l.emit(zap.WarnLevel, format, v) }
func (l *zapLogger) Errorf(format string, v ...any)  { l.emit(zap.ErrorLevel, format, v) }
func (l *zapLogger) Debugf(format string, v ...any)  {}
func (l *zapLogger) Tracef(format string, v ...any)  {}

// Fatalf logs at error level and records the error: the server stops by itself where it must,
// and the embedding process decides whether to exit.
func (l *zapLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	if l.err == nil {
		l.err = errors.New(msg)
	}
	l.mu.Unlock()
}

func (l *zapLogger) emit(level zapcore.Level, format string, v []any) {
	if ce := l.log.Check(level, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, v...)
		ce.Write()
	}
}
