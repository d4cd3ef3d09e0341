package idempotency

import (
	"encoding/base64"
	"fmt"

	"github.com/fulfil/fulfil/messages"
)

// ValidateKey checks that key is 1–128 printable ASCII characters (space to '~'). It returns
// an error matching ErrInvalidKey otherwise.
func ValidateKey(key string) error {
	if key == "" || len(key) > messages.MaxKeyLength {
		return fmt.Errorf("%w: length %d, want 1 to %d", ErrInvalidKey, len(key), messages.MaxKeyLength)
	}
	for i := range len(key) {
		if c := key[i]; c < ' ' || c > '~' {
			return fmt.Errorf("%w: byte %#02x at %d is not printable ASCII", ErrInvalidKey, c, i)
		}
	}
	return nil
}

// EncodeKey maps an idempotency key to the KV key of its record: unpadded URL-safe base64,
// whose alphabet [A-Za-z0-9_-] is a subset of what KV keys allow. A 128-character key encodes
// to 171 characters.
func EncodeKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// DecodeKey reverses EncodeKey. It returns an error if s is not unpadded URL-safe base64.
func DecodeKey(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("decode KV key %q: %w", s, err)
	}
	return string(b), nil
}
