package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/natsembed"
)

// natsEnv is a NATS connection, and the embedded server behind it if one was started.
type natsEnv struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *natsembed.Server
	url string
}

// connectNATS connects to NATS_URL; when it is empty and embed is true it first starts an
// embedded JetStream server storing in the data dir, else it dials the local default.
func connectNATS(c *config, embed bool, log *zap.Logger) (*natsEnv, error) {
	if err := c.checkNATS(); err != nil {
		return nil, settingsErr{err}
	}
	env := &natsEnv{url: c.natsURL}
	if env.url == "" {
		if embed {
			if c.natsAuth.authFile != "" && c.natsAuth.auth == nil {
				if errs := c.checkEmbedded(); len(errs) > 0 {
					return nil, settingsErr{errors.Join(errs...)}
				}
			}
			host, portStr, err := net.SplitHostPort(c.embeddedListen)
			if err != nil {
				return nil, fmt.Errorf("nats listen address %q: %w", c.embeddedListen, err)
			}
			port, err := strconv.Atoi(portStr)
			if err != nil {
				return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
			}
			srv, err := natsembed.Start(natsembed.Options{DataDir: c.dataDir, Host: host, Port: port, ServerName: "fulfil-embedded", SyncInterval: c.syncInterval, Logger: log, Owner: "fulfil worker", Auth: c.natsAuth.auth})
			if err != nil {
				return nil, fmt.Errorf("embedded NATS server: %w", err)
			}
			env.srv = srv
			env.url = srv.ClientURL()
			log.Info("embedded NATS server started", zap.String("url", env.url), zap.String("data_dir", c.dataDir),
				zap.Bool("authentication", c.natsAuth.auth != nil))
		} else {
			env.url = "nats://" + c.embeddedListen
		}
	}
	opts := []nats.Option{
		nats.Name("fulfil"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrlRedacted())) }),
		nats.ErrorHandler(asyncNATSError(log, embed)),
	}
	if c.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(c.natsCreds))
	}
	opts = append(opts, c.natsAuth.options()...)
	if c.natsCA != "" {
		opts = append(opts, nats.RootCAs(c.natsCA))
	}
	if c.natsCert != "" {
		opts = append(opts, nats.ClientCert(c.natsCert, c.natsKey))
	}
	nc, err := nats.Connect(env.url, opts...)
	if err != nil {
		env.close()
		if errors.Is(err, nats.ErrNoServers) {
			return nil, &unreachableError{url: redactURL(env.url), hint: c.natsURL == "", err: err}
		}
		return nil, fmt.Errorf("connect to NATS %s: %w", redactURL(env.url), err)
	}
	env.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		env.close()
		return nil, err
	}
	env.js = js
	return env, nil
}

// asyncNATSError logs what the server reports outside a request, such as a permission
// violation, instead of the client library's print to stderr. A worker runs unattended, so
// its log shows them as warnings; a command reports its own failures, so for it they are
// debug lines (fulfil submit as producer is refused the sagas bucket, and does without).
func asyncNATSError(log *zap.Logger, worker bool) nats.ErrHandler {
	level := zap.DebugLevel
	if worker {
		level = zap.WarnLevel
	}
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		msg := "NATS error"
		if errors.Is(err, nats.ErrPermissionViolation) {
			msg = "NATS refused an operation: this NATS user lacks the permission (deploy/nats/auth.conf lists each role's)"
		}
		fields := []zap.Field{zap.Error(err)}
		if sub != nil {
			fields = append(fields, zap.String("subject", sub.Subject))
		}
		log.Log(level, msg, fields...)
	}
}

// close drains the connection (in-flight publishes and acks finish) and stops the embedded server.
func (e *natsEnv) close() {
	if e.nc != nil {
		closed := make(chan struct{})
		e.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := e.nc.Drain(); err != nil {
			e.nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			e.nc.Close()
		}
	}
	if e.srv != nil {
		e.srv.Shutdown()
	}
}

// redactURL hides user information in NATS URLs.
func redactURL(u string) string { return redactUserInfo(u) }

// natsAuth is how fulfil's NATS clients log in, and, for the worker, what its embedded server
// requires of its own clients.
type natsAuth struct {
	user         string
	passwordFile string
	nkeyFile     string
	inboxPrefix  string
	// The worker's embedded server.
	authFile string
	insecure bool

	password string          // read from passwordFile by check
	auth     *natsembed.Auth // loaded from authFile by checkEmbedded
}

// flags registers the login flags (every command that talks to NATS) and, with embedded,
// the embedded server's.
func (a *natsAuth) flags(fs *pflag.FlagSet, embedded bool) {
	f := envFlags{fs}
	f.String(&a.user, "nats-user", "FULFIL_NATS_USER", "", "NATS user name (with --nats-password-file), e.g. one of deploy/nats/auth.conf's")
	f.String(&a.passwordFile, "nats-password-file", "FULFIL_NATS_PASSWORD_FILE", "", "file holding the NATS user's password")
	f.String(&a.nkeyFile, "nats-nkey-file", "FULFIL_NATS_NKEY_FILE", "", "file holding a NATS user nkey seed (SU...), instead of a user and password")
	f.String(&a.inboxPrefix, "nats-inbox-prefix", "FULFIL_NATS_INBOX_PREFIX", nats.InboxPrefix[:len(nats.InboxPrefix)-1],
		"subject prefix of this client's reply inboxes; the worker, intake and operator users of deploy/nats/auth.conf may only use _INBOX_worker, _INBOX_intake and _INBOX_operator")
	if embedded {
		f.String(&a.authFile, "nats-auth-file", "FULFIL_NATS_AUTH_FILE", "", "embedded server: NATS configuration file with the users who may log in and their permissions (deploy/nats/auth.conf)")
		f.Bool(&a.insecure, "nats-insecure", "FULFIL_NATS_INSECURE", false,
			"embedded server: allow a non-loopback --nats-listen without --nats-auth-file: whoever reaches it can buy licences")
	}
}

// check reports every problem of the client login settings and reads the password file.
func (a *natsAuth) check(creds string) []error {
	var errs []error
	add := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s "+format, append([]any{setting(flagName)}, args...)...))
	}
	a.password = ""
	switch {
	case a.passwordFile != "" && a.user == "":
		add("nats-password-file", "needs FULFIL_NATS_USER (--nats-user)")
	case a.user != "" && a.passwordFile == "":
		add("nats-user", "needs FULFIL_NATS_PASSWORD_FILE (--nats-password-file)")
	case a.passwordFile != "":
		b, err := os.ReadFile(a.passwordFile)
		if err != nil {
			add("nats-password-file", "%v", err)
		} else if a.password = strings.TrimSpace(string(b)); a.password == "" {
			add("nats-password-file", "%q is empty", a.passwordFile)
		}
	}
	if a.nkeyFile != "" {
		if _, err := nats.NkeyOptionFromSeed(a.nkeyFile); err != nil {
			add("nats-nkey-file", "%v", err)
		}
	}
	if n := btoi(a.user != "") + btoi(a.nkeyFile != "") + btoi(creds != ""); n > 1 {
		errs = append(errs, errors.New("NATS login: use one of FULFIL_NATS_USER with FULFIL_NATS_PASSWORD_FILE, FULFIL_NATS_NKEY_FILE or NATS_CREDS"))
	}
	if p := a.inboxPrefix; p != "" && (strings.ContainsAny(p, "*> \t\r\n") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..")) {
		add("nats-inbox-prefix", "%q: must be a subject without wildcards, e.g. _INBOX_worker (empty: _INBOX)", p)
	}
	return errs
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkEmbedded reports the worker's problems with its embedded server's authentication: an
// auth file that does not load, a worker that could not log in to its own server, and a
// non-loopback listen address without authentication (unless FULFIL_NATS_INSECURE). Whoever
// can publish to the embedded server can buy licences.
func (c *config) checkEmbedded() []error {
	a := &c.natsAuth
	a.auth = nil
	if strings.TrimSpace(c.natsURL) != "" {
		if a.authFile != "" {
			return []error{fmt.Errorf("%s applies to the embedded NATS server only; NATS_URL is set, so the server there decides who may log in", setting("nats-auth-file"))}
		}
		return nil
	}
	if a.authFile == "" {
		host, _, err := net.SplitHostPort(c.embeddedListen)
		if err != nil || isLoopback(host) || a.insecure {
			return nil
		}
		return []error{fmt.Errorf("%s %q is not a loopback address, and the embedded NATS server has no authentication: whoever reaches it could publish "+
			"purchase requests and spend the reseller's money. Set FULFIL_NATS_AUTH_FILE (--nats-auth-file) to a users file such as deploy/nats/auth.conf "+
			"(and FULFIL_NATS_USER, FULFIL_NATS_PASSWORD_FILE for the worker's own login), listen on 127.0.0.1, "+
			"or set FULFIL_NATS_INSECURE=true to accept an open server", setting("nats-listen"), c.embeddedListen)}
	}
	auth, err := natsembed.LoadAuth(a.authFile)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", setting("nats-auth-file"), err)}
	}
	a.auth = auth
	var who string
	switch {
	case a.user != "":
		who = a.user
	case a.nkeyFile != "":
		// The server checks the nkey when the worker connects.
	default:
		return []error{fmt.Errorf("%s is set, so the worker logs in to its own embedded server: set FULFIL_NATS_USER and FULFIL_NATS_PASSWORD_FILE "+
			"(or FULFIL_NATS_NKEY_FILE) to its user there (worker in deploy/nats/auth.conf)", setting("nats-auth-file"))}
	}
	if who != "" && !auth.HasUser(who) {
		return []error{fmt.Errorf("%s has no user %q (it has %s); the worker could not log in to its own embedded server",
			setting("nats-auth-file"), who, strings.Join(auth.Users(), ", "))}
	}
	return nil
}

// options returns the client options of the login settings (check must have run).
func (a *natsAuth) options() []nats.Option {
	var opts []nats.Option
	if a.user != "" {
		opts = append(opts, nats.UserInfo(a.user, a.password))
	}
	if a.nkeyFile != "" {
		if o, err := nats.NkeyOptionFromSeed(a.nkeyFile); err == nil {
			opts = append(opts, o)
		}
	}
	if a.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.inboxPrefix))
	}
	return opts
}

// settingsErr is a NATS setting that is wrong: a usage or configuration error (exit 2).
type settingsErr struct{ error }

func (e settingsErr) Unwrap() error { return e.error }

// unreachableError says that no NATS server answered at url (exit 4).
type unreachableError struct {
	url  string
	hint bool // NATS_URL was empty: the local default was dialed
	err  error
}

func (e *unreachableError) Error() string {
	if e.hint {
		return fmt.Sprintf("no NATS server at %s: start one with `fulfil worker` (it embeds one) or set NATS_URL", e.url)
	}
	return fmt.Sprintf("no NATS server at %s: check NATS_URL (--nats-url) and that the servers are up", e.url)
}

func (e *unreachableError) Unwrap() error { return e.err }

// natsFailure reports why a command could not connect to NATS and returns its exit code: 2
// for wrong settings, 4 when no server answered, 1 otherwise (e.g. refused credentials).
func natsFailure(stderr io.Writer, command string, err error) int {
	fmt.Fprintf(stderr, "fulfil %s: %v\n", command, err)
	return natsExitCode(err)
}

// natsExitCode is the exit code of a failed NATS connection.
func natsExitCode(err error) int {
	var unreachable *unreachableError
	switch {
	case errors.As(err, &unreachable):
		return exitUnreachable
	case errors.As(err, new(settingsErr)):
		return exitUsage
	}
	return exitFailed
}
