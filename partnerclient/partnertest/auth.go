package partnertest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

const (
	grantCredentials = "pp_credentials"
	grantRefresh     = "refresh_token"
	tokenHead        = "Bearer "
	tokenBytes       = 32
)

// handleToken serves Request Access Token and Refresh Access Token.
func (s *Sim) handleToken(r *http.Request, body []byte) reply {
	form := parseForm(r.Header.Get(fieldContentType), body)
	if form == nil {
		return invalid(fieldContentType, tagOneOf,
			"body must be application/x-www-form-urlencoded or multipart/form-data")
	}
	switch grant := form.Get("grant_type"); grant {
	case grantCredentials:
		id, secret := form.Get("client_id"), form.Get("client_secret")
		if id == "" {
			return invalid("client_id", tagRequired, "client_id is required")
		}
		if secret == "" {
			return invalid("client_secret", tagRequired, "client_secret is required")
		}
		idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID))
		secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret))
		if idOK&secretOK != 1 {
			return reply{status: http.StatusUnauthorized, code: CodeInvalidClient,
				detail: "client authentication failed"}
		}
		tok, _ := s.issueTokens("")
		return success(tok)
	case grantRefresh:
		old := form.Get("refresh_token")
		if old == "" {
			return invalid("refresh_token", tagRequired, "refresh_token is required")
		}
		tok, ok := s.issueTokens(old)
		if !ok {
			return tokenInvalid("refresh token is invalid or expired")
		}
		return success(tok)
	case "":
		return invalid("grant_type", tagRequired, "grant_type is required")
	default:
		return invalid("grant_type", tagOneOf, "grant_type must be pp_credentials or refresh_token")
	}
}

// issueTokens creates an access and a refresh token. A non-empty rotated refresh token must be
// valid and is used up in the same step, so of two refreshes with the same token only one
// succeeds; ok is false when it is not valid.
func (s *Sim) issueTokens(rotated string) (tok tokenJSON, ok bool) {
	access, refresh := newToken(), newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	if rotated != "" {
		exp, known := s.refresh[rotated]
		if !known || !now.Before(exp) {
			return tokenJSON{}, false
		}
		delete(s.refresh, rotated)
	}
	s.purgeExpired(now)
	s.issued = append(s.issued, access, refresh)
	s.access[access] = now.Add(s.tokenTTL)
	s.refresh[refresh] = now.Add(s.refreshTTL)
	return tokenJSON{
		ExpiresIn:    itoa(max(1, int64(s.tokenTTL/time.Second))),
		RefreshToken: refresh,
		Token:        access,
		TokenHead:    tokenHead,
	}, true
}

// purgeExpired forgets expired tokens. The caller holds s.mu.
func (s *Sim) purgeExpired(now time.Time) {
	for t, exp := range s.access {
		if !now.Before(exp) {
			delete(s.access, t)
		}
	}
	for t, exp := range s.refresh {
		if !now.Before(exp) {
			delete(s.refresh, t)
		}
	}
}

// authorize checks the Authorization header of a business call.
func (s *Sim) authorize(r *http.Request) (reply, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, strings.TrimSpace(tokenHead)) || strings.TrimSpace(token) == "" {
		return tokenInvalid("missing or malformed Authorization header"), false
	}
	s.mu.Lock()
	exp, known := s.access[strings.TrimSpace(token)]
	valid := known && s.clock().Before(exp)
	s.mu.Unlock()
	if !valid {
		return tokenInvalid("access token is invalid or expired"), false
	}
	return reply{}, true
}

// ExpireTokens makes every access token issued so far expired. Refresh tokens stay valid.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// RevokeRefreshTokens invalidates every access and refresh token issued so far, so the client
// must log in again with its credentials.
func (s *Sim) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
	clear(s.refresh)
}

func newToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// IssuedTokens returns every access and refresh token issued so far, for tests that make sure
// no token leaks into logs or events.
func (s *Sim) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}
