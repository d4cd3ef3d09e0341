package main

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		return nil, err
	}
	env := &natsEnv{url: c.natsURL}
	if env.url == "" {
		if embed {
			host, portStr, err := net.SplitHostPort(c.embeddedListen)
			if err != nil {
				return nil, fmt.Errorf("nats listen address %q: %w", c.embeddedListen, err)
			}
			port, err := strconv.Atoi(portStr)
			if err != nil {
				return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
			}
			srv, err := natsembed.Start(natsembed.Options{DataDir: c.dataDir, Host: host, Port: port, ServerName: "fulfil-embedded", SyncInterval: c.syncInterval, Logger: log, Owner: "fulfil worker"})
			if err != nil {
				return nil, fmt.Errorf("embedded NATS server: %w", err)
			}
			env.srv = srv
			env.url = srv.ClientURL()
			log.Info("embedded NATS server started", zap.String("url", env.url), zap.String("data_dir", c.dataDir))
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
	}
	if c.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(c.natsCreds))
	}
	if c.natsCA != "" {
		opts = append(opts, nats.RootCAs(c.natsCA))
	}
	if c.natsCert != "" {
		opts = append(opts, nats.ClientCert(c.natsCert, c.natsKey))
	}
	nc, err := nats.Connect(env.url, opts...)
	if err != nil {
		env.close()
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
