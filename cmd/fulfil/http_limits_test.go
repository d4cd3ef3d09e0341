package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func startTestHTTP(t *testing.T, limits httpLimits, withPprof bool) *http.Server {
	t.Helper()
	srv, err := startHTTPWith("127.0.0.1:0", limits, withPprof, http.NotFoundHandler(),
		func(context.Context) error { return nil }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// An idle keep-alive connection to the metrics and health endpoints is closed after the idle
// timeout: 500 of them used to stay open for ever.
func TestHTTPClosesIdleKeepAliveConnections(t *testing.T) {
	limits := defaultHTTPLimits(false)
	limits.Idle = 300 * time.Millisecond
	srv := startTestHTTP(t, limits, false)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: fulfil\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = r.ReadByte()
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the idle connection is still open after %s", time.Since(start).Round(time.Millisecond))
	case !errors.Is(err, io.EOF) && !strings.Contains(fmtErr(err), "reset"):
		t.Fatalf("read after the response: %v, want the server to close the connection", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %s, want about %s", took, limits.Idle)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Headers are capped, and a client that sends its request slowly is cut off.
func TestHTTPLimitsHeadersAndSlowClients(t *testing.T) {
	limits := defaultHTTPLimits(false)
	limits.ReadHeader = 300 * time.Millisecond
	srv := startTestHTTP(t, limits, false)

	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 256<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("256 KiB of headers: status %d, want 431", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: fulfil\r\n"); err != nil { // never finished
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a request whose headers never end kept its connection for %s", time.Since(start).Round(time.Millisecond))
	}
}

// Every limit is set, and the write timeout leaves room for the 30-second CPU profile that
// /debug/pprof/profile takes by default (net/http/pprof refuses a profile as long as it).
func TestHTTPLimitsAllowProfiles(t *testing.T) {
	for _, withPprof := range []bool{false, true} {
		l := defaultHTTPLimits(withPprof)
		if l.ReadHeader <= 0 || l.Read <= 0 || l.Write <= 0 || l.Idle <= 0 || l.MaxHeaderBytes <= 0 {
			t.Errorf("pprof %v: a limit is unset: %+v", withPprof, l)
		}
		if withPprof && l.Write <= 60*time.Second {
			t.Errorf("with pprof the write timeout is %s, want room for a 60 s profile", l.Write)
		}
	}
	srv := startTestHTTP(t, defaultHTTPLimits(true), true)
	if srv.WriteTimeout <= 60*time.Second || srv.IdleTimeout <= 0 || srv.ReadTimeout <= 0 || srv.ReadHeaderTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server limits: write %s, idle %s, read %s, read header %s, max header bytes %d",
			srv.WriteTimeout, srv.IdleTimeout, srv.ReadTimeout, srv.ReadHeaderTimeout, srv.MaxHeaderBytes)
	}
	resp, err := http.Get("http://" + srv.Addr + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 1 s CPU profile: status %d", resp.StatusCode)
	}
}
