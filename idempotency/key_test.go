package idempotency_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/idempotency"
)

// validKVKey is what JetStream accepts as a KV key.
var validKVKey = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

func printableASCII() string {
	var b strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		b.WriteByte(c)
	}
	return b.String()
}

func TestEncodeKeyRoundTrip(t *testing.T) {
	tests := []string{printableASCII(), strings.Repeat("~", 128), ".", "*", ">", " ", "/", "a.b.*.>", "="}
	for c := byte(' '); c <= '~'; c++ {
		tests = append(tests, string(c))
	}
	for _, give := range tests {
		enc := idempotency.EncodeKey(give)
		if !validKVKey.MatchString(enc) {
			t.Errorf("EncodeKey(%q) = %q, not a valid KV key", give, enc)
		}
		got, err := idempotency.DecodeKey(enc)
		if err != nil || got != give {
			t.Errorf("DecodeKey(EncodeKey(%q)) = %q, %v", give, got, err)
		}
	}
	if n := len(idempotency.EncodeKey(strings.Repeat("k", 128))); n != 171 {
		t.Errorf("encoded 128-character key has %d characters, want 171", n)
	}
}

func TestDecodeKeyRejectsGarbage(t *testing.T) {
	if _, err := idempotency.DecodeKey("not base64!"); err == nil {
		t.Error("DecodeKey accepted invalid input")
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		give string
		want error
	}{
		{give: "shop-eu-order-100231"},
		{give: printableASCII()},
		{give: strings.Repeat("k", 128)},
		{give: "", want: idempotency.ErrInvalidKey},
		{give: strings.Repeat("k", 129), want: idempotency.ErrInvalidKey},
		{give: "a\x00", want: idempotency.ErrInvalidKey},
		{give: "\u00e9", want: idempotency.ErrInvalidKey},
	}
	for _, tt := range tests {
		if err := idempotency.ValidateKey(tt.give); !errors.Is(err, tt.want) {
			t.Errorf("ValidateKey(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
}
