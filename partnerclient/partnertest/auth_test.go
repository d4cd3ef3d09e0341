package partnertest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

func TestTokenIssue(t *testing.T) {
	creds := url.Values{
		"grant_type":    {"pp_credentials"},
		"client_id":     {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret},
	}
	tests := []struct {
		name string
		send func(*apiClient) answer
	}{
		{"form", func(c *apiClient) answer { return c.tokenForm(creds) }},
		{"multipart", func(c *apiClient) answer { return c.tokenMultipart(creds) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			a := tt.send(c)
			wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
			var tok tokenResult
			a.decode(t, &tok)
			if tok.ExpiresIn != "1800" || tok.TokenHead != "Bearer " || tok.Token == "" || tok.RefreshToken == "" {
				t.Fatalf("token result %+v", tok)
			}
			c.token = tok.Token
			wantCode(t, c.get(docBillingContacts, nil), http.StatusOK, partnertest.CodeSuccess)
		})
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		give       url.Values
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"wrong secret", url.Values{"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID},
			"client_secret": {"nope"}}, http.StatusUnauthorized, partnertest.CodeInvalidClient, ""},
		{"wrong client", url.Values{"grant_type": {"pp_credentials"}, "client_id": {"other"},
			"client_secret": {partnertest.DefaultClientSecret}}, http.StatusUnauthorized, partnertest.CodeInvalidClient, ""},
		{"no secret", url.Values{"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID}},
			http.StatusBadRequest, partnertest.CodeValidationFailed, "client_secret"},
		{"no grant", url.Values{"client_id": {partnertest.DefaultClientID}},
			http.StatusBadRequest, partnertest.CodeValidationFailed, "grant_type"},
		{"unknown grant", url.Values{"grant_type": {"password"}},
			http.StatusBadRequest, partnertest.CodeValidationFailed, "grant_type"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"bogus"}},
			http.StatusUnauthorized, partnertest.CodeTokenInvalid, ""},
		{"no refresh token", url.Values{"grant_type": {"refresh_token"}},
			http.StatusBadRequest, partnertest.CodeValidationFailed, "refresh_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			a := c.tokenForm(tt.give)
			wantCode(t, a, tt.wantStatus, tt.wantCode)
			if tt.wantField != "" {
				if _, ok := a.fields(t)[tt.wantField]; !ok {
					t.Fatalf("result %s does not name %s", a.Result, tt.wantField)
				}
			}
		})
	}
}

func TestTokenRejectsJSON(t *testing.T) {
	_, c := newServer(t)
	a := c.postJSON(docToken, map[string]string{
		"grant_type": "pp_credentials", "client_id": partnertest.DefaultClientID,
		"client_secret": partnertest.DefaultClientSecret,
	})
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
	if a.fields(t)["Content-Type"] == "" {
		t.Fatalf("result %s does not name Content-Type", a.Result)
	}
}

func TestWithCredentials(t *testing.T) {
	_, c := newServer(t, partnertest.WithCredentials("id-1", "secret-1"))
	a := c.tokenForm(url.Values{"grant_type": {"pp_credentials"}, "client_id": {"id-1"}, "client_secret": {"secret-1"}})
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	a = c.tokenForm(url.Values{"grant_type": {"pp_credentials"}, "client_id": {partnertest.DefaultClientID},
		"client_secret": {partnertest.DefaultClientSecret}})
	wantCode(t, a, http.StatusUnauthorized, partnertest.CodeInvalidClient)
}

func TestTokenRefreshRotates(t *testing.T) {
	_, c := newServer(t)
	first := c.login()
	refresh := func(rt string) answer {
		return c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}

	a := refresh(first.RefreshToken)
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	var second tokenResult
	a.decode(t, &second)
	if second.Token == first.Token || second.RefreshToken == first.RefreshToken || second.RefreshToken == "" {
		t.Fatalf("refresh did not issue new tokens: %+v", second)
	}
	wantCode(t, refresh(first.RefreshToken), http.StatusUnauthorized, partnertest.CodeTokenInvalid)

	c.token = second.Token
	wantCode(t, c.get(docBillingContacts, nil), http.StatusOK, partnertest.CodeSuccess)
	wantCode(t, refresh(second.RefreshToken), http.StatusOK, partnertest.CodeSuccess)
}

func TestTokenExpiry(t *testing.T) {
	clk := newFakeClock()
	_, c := newServer(t, partnertest.WithClock(clk.Now))
	tok := c.login()
	call := func() answer { return c.get(docBillingContacts, nil) }

	clk.Advance(30*time.Minute - time.Second)
	wantCode(t, call(), http.StatusOK, partnertest.CodeSuccess)
	clk.Advance(time.Second)
	wantCode(t, call(), http.StatusUnauthorized, partnertest.CodeTokenInvalid)

	a := c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	var next tokenResult
	a.decode(t, &next)
	c.token = next.Token
	wantCode(t, call(), http.StatusOK, partnertest.CodeSuccess)

	clk.Advance(15 * 24 * time.Hour)
	a = c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}})
	wantCode(t, a, http.StatusUnauthorized, partnertest.CodeTokenInvalid)
}

func TestTokenTTLReported(t *testing.T) {
	tests := []struct {
		give time.Duration
		want string
	}{
		{500 * time.Millisecond, "1"},
		{90 * time.Second, "90"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, c := newServer(t, partnertest.WithTokenTTL(tt.give))
			if got := c.login().ExpiresIn; got != tt.want {
				t.Fatalf("expiresIn = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRefreshTTL(t *testing.T) {
	clk := newFakeClock()
	_, c := newServer(t, partnertest.WithClock(clk.Now), partnertest.WithRefreshTTL(time.Hour))
	tok := c.login()
	clk.Advance(time.Hour)
	a := c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	wantCode(t, a, http.StatusUnauthorized, partnertest.CodeTokenInvalid)
}

func TestExpireAndRevokeTokens(t *testing.T) {
	srv, c := newServer(t)
	tok := c.login()
	srv.ExpireTokens()
	wantCode(t, c.get(docBillingContacts, nil), http.StatusUnauthorized, partnertest.CodeTokenInvalid)

	a := c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	wantCode(t, a, http.StatusOK, partnertest.CodeSuccess)
	var next tokenResult
	a.decode(t, &next)
	c.token = next.Token
	wantCode(t, c.get(docBillingContacts, nil), http.StatusOK, partnertest.CodeSuccess)

	srv.RevokeRefreshTokens()
	wantCode(t, c.get(docBillingContacts, nil), http.StatusUnauthorized, partnertest.CodeTokenInvalid)
	a = c.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}})
	wantCode(t, a, http.StatusUnauthorized, partnertest.CodeTokenInvalid)
	c.login()
	wantCode(t, c.get(docBillingContacts, nil), http.StatusOK, partnertest.CodeSuccess)
}

func TestAuthFailures(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*http.Request)
		wantStatus int
		wantCode   string
	}{
		{"no Authorization", func(r *http.Request) { r.Header.Del("Authorization") },
			http.StatusUnauthorized, partnertest.CodeTokenInvalid},
		{"wrong scheme", func(r *http.Request) {
			r.Header.Set("Authorization", "Basic "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		}, http.StatusUnauthorized, partnertest.CodeTokenInvalid},
		{"unknown token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-a-token") },
			http.StatusUnauthorized, partnertest.CodeTokenInvalid},
		{"no User-Agent", func(r *http.Request) { r.Header.Set("User-Agent", "") },
			http.StatusBadRequest, partnertest.CodeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			a := c.send(http.MethodGet, docBillingContacts, nil, "", nil, tt.edit)
			wantCode(t, a, tt.wantStatus, tt.wantCode)
		})
	}
}

func TestUserAgentRequiredOnTokenCall(t *testing.T) {
	_, c := newServer(t)
	a := c.send(http.MethodPost, docToken, nil, "application/x-www-form-urlencoded",
		[]byte("grant_type=pp_credentials&client_id=fulfil-sim&client_secret=fulfil-sim-secret"),
		func(r *http.Request) { r.Header.Set("User-Agent", "") })
	wantCode(t, a, http.StatusBadRequest, partnertest.CodeValidationFailed)
	if got := a.fields(t)["User-Agent"]; got != "required" {
		t.Fatalf("result %s, want User-Agent: required", a.Result)
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"unknown path", http.MethodGet, "/order/openapi/order/v1/nothing", http.StatusNotFound, partnertest.CodeNotFound},
		{"GET on POST endpoint", http.MethodGet, docCreateOrder, http.StatusMethodNotAllowed,
			partnertest.CodeMethodNotAllowed},
		{"POST on GET endpoint", http.MethodPost, docProductList, http.StatusMethodNotAllowed,
			partnertest.CodeMethodNotAllowed},
		{"GET token", http.MethodGet, docToken, http.StatusMethodNotAllowed,
			partnertest.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t)
			c.login()
			a := c.send(tt.method, tt.path, nil, "", nil, nil)
			wantCode(t, a, tt.wantStatus, tt.wantCode)
		})
	}
}
