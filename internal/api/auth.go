package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// MinKeyLength is the shortest API key accepted: anything shorter is too easy to guess.
const MinKeyLength = 16

// Keys is a set of API keys, kept only as SHA-256 hashes. The zero value and nil hold no key.
type Keys struct {
	hashes [][sha256.Size]byte
}

// LoadKeys reads API keys from a file: one key per line; blank lines and lines starting with
// '#' are ignored, and surrounding blanks are trimmed. Each key must be at least
// MinKeyLength characters of visible ASCII ('!' to '~'). Errors name the file and line, never
// the key.
func LoadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	k, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("API keys file %s: %w", path, err)
	}
	return k, nil
}

// ParseKeys parses the contents of an API keys file (see LoadKeys).
func ParseKeys(data []byte) (*Keys, error) {
	k := &Keys{}
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		switch {
		case len(s) < MinKeyLength:
			errs = append(errs, fmt.Errorf("line %d: a key must be at least %d characters", i+1, MinKeyLength))
		case !visibleASCII(s):
			errs = append(errs, fmt.Errorf("line %d: a key must be visible ASCII characters only ('!' to '~', no blanks)", i+1))
		default:
			k.hashes = append(k.hashes, sha256.Sum256([]byte(s)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

// Len returns the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.hashes)
}

// match reports whether presented is one of the keys, and an ID of the key for logs (the
// first 8 hex digits of its SHA-256). It compares the hash of presented with every key's in
// constant time, and always with all of them.
func (k *Keys) match(presented string) (id string, ok bool) {
	sum := sha256.Sum256([]byte(presented))
	found := 0
	for _, h := range k.hashes {
		found |= subtle.ConstantTimeCompare(sum[:], h[:])
	}
	if found != 1 {
		return "", false
	}
	return hex.EncodeToString(sum[:4]), true
}

// credential returns the API key a request presents: "Authorization: Bearer KEY", else
// "X-API-Key: KEY"; "" when it presents none.
func credential(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, token, ok := strings.Cut(a, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// authenticate checks the request's API key. It returns the key's ID, or the 401 problem.
func (s *Server) authenticate(r *http.Request) (string, *Problem) {
	if s.cfg.Keys.Len() == 0 {
		return "", nil
	}
	presented := credential(r)
	if presented == "" {
		return "", newProblem(TypeUnauthorized, "Authentication required", http.StatusUnauthorized,
			"send an API key as \"Authorization: Bearer KEY\" (or \"X-API-Key: KEY\")").
			with("WWW-Authenticate", `Bearer realm="fulfil"`)
	}
	id, ok := s.cfg.Keys.match(presented)
	if !ok {
		return "", newProblem(TypeUnauthorized, "Authentication failed", http.StatusUnauthorized, "the API key is not valid").
			with("WWW-Authenticate", `Bearer realm="fulfil", error="invalid_token"`)
	}
	return id, nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}
