package partnerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// tokenTimeout bounds a shared token request when the per-call timeout is disabled.
const tokenTimeout = 30 * time.Second

// token is a cached access token.
type token struct {
	access    string
	refresh   string
	head      string
	expiry    time.Time
	refreshAt time.Time // expiry minus the refresh margin
}

// usable reports whether t can be sent without refreshing it first.
func (t *token) usable(now time.Time) bool {
	return t != nil && t.access != "" && now.Before(t.refreshAt)
}

// header is the Authorization header value.
func (t *token) header() string {
	head := strings.TrimSpace(t.head)
	if head == "" {
		head = "Bearer"
	}
	return head + " " + t.access
}

// Authenticate makes sure a valid access token is cached, logging in or refreshing if
// needed; use it as a readiness check. It returns ErrMissingCredentials, or an *Error
// of Endpoint EndpointToken (ErrUnauthorized for bad credentials).
func (c *Client) Authenticate(ctx context.Context) error {
	if !c.hasCredentials() {
		return fmt.Errorf("partner %s: %w", EndpointToken, ErrMissingCredentials)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	_, err := c.token(ctx)
	return err
}

// token returns a usable access token. Callers that find none share one token request,
// which is not canceled when one of them gives up.
func (c *Client) token(ctx context.Context) (*token, error) {
	if t := c.cached(); t.usable(c.now()) {
		return t, nil
	}
	ch := c.flight.DoChan("token", func() (any, error) {
		d := c.requestTimeout
		if d <= 0 {
			d = tokenTimeout
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
		defer cancel()
		return c.renew(fctx)
	})
	select {
	case <-ctx.Done():
		return nil, &Error{Endpoint: EndpointToken, Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*token), nil
	}
}

func (c *Client) cached() *token {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	return c.tok
}

// invalidate drops the access token t after the server refused it, keeping its refresh
// token. A token that was already replaced is left alone.
func (c *Client) invalidate(t *token) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.tok == t {
		c.tok = &token{refresh: t.refresh}
	}
}

// renew refreshes the cached token, or logs in when there is no refresh token or the
// refresh fails.
func (c *Client) renew(ctx context.Context) (*token, error) {
	old := c.cached()
	if old.usable(c.now()) {
		return old, nil // renewed by the flight that just ended
	}
	if old != nil && old.refresh != "" {
		t, err := c.requestToken(ctx, url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {old.refresh},
		}, old.refresh)
		if err == nil {
			return t, nil
		}
		c.log.Debug("partner token refresh failed; logging in", zap.Error(err))
	}
	return c.login(ctx)
}

// login requests a new token with the client credentials and caches it.
func (c *Client) login(ctx context.Context) (*token, error) {
	return c.requestToken(ctx, url.Values{
		"grant_type":    {"pp_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.clientSecret},
	}, "")
}

// requestToken sends one token call and caches its token. refresh is the refresh token
// sent, or empty for a login.
func (c *Client) requestToken(ctx context.Context, form url.Values, refresh string) (*token, error) {
	if refresh != "" {
		c.tokenRefreshes.Add(1)
	}
	issued := c.now()
	resp, err := c.send(ctx, request{
		ep:          EndpointToken,
		method:      http.MethodPost,
		path:        PathToken,
		body:        []byte(form.Encode()),
		contentType: "application/x-www-form-urlencoded",
	})
	if err != nil {
		return nil, err
	}
	type issuedToken struct {
		Token
		ttl time.Duration
	}
	got, err := decodeResult(c, EndpointToken, resp, func(raw json.RawMessage, d driftSink) (issuedToken, error) {
		t, ttl, err := decodeToken(raw, d)
		return issuedToken{t, ttl}, err
	})
	if err != nil {
		return nil, err
	}
	t := &token{
		access:    got.AccessToken,
		refresh:   got.RefreshToken,
		head:      got.TokenHead,
		expiry:    issued.Add(got.ttl),
		refreshAt: issued.Add(got.ttl - min(c.refreshMargin, got.ttl/2)),
	}
	if t.refresh == "" {
		t.refresh = refresh // not rotated
	}
	c.tokMu.Lock()
	c.tok = t
	c.tokMu.Unlock()
	return t, nil
}

// call sends an authenticated request. When the server refuses the access token, it
// re-authenticates once and repeats the request once: a 401 means nothing was done.
func (c *Client) call(ctx context.Context, r request) (response, error) {
	if !c.hasCredentials() {
		return response{}, fmt.Errorf("partner %s: %w", r.ep, ErrMissingCredentials)
	}
	release, err := c.acquire(ctx, r.ep)
	if err != nil {
		return response{}, err
	}
	defer release()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		t, err := c.token(ctx)
		if err != nil {
			return response{}, err
		}
		r.auth = t.header()
		resp, err := c.send(ctx, r)
		var e *Error
		if attempt == 0 && errors.As(err, &e) && e.authFailure() {
			c.log.Debug("partner access token refused; re-authenticating", zap.String("endpoint", string(r.ep)))
			c.invalidate(t)
			continue
		}
		return resp, err
	}
}
