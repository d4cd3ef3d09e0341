package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret: "whsec_" and the base64 of the key.
const SecretPrefix = "whsec_"

// Bounds of a secret's decoded key, as the specification recommends.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// Secret is a signing key. Its String never shows the key.
type Secret struct{ key []byte }

// String hides the key.
func (Secret) String() string { return "whsec_[redacted]" }

// GoString hides the key.
func (Secret) GoString() string { return "webhook.Secret{[redacted]}" }

// ParseSecret decodes "whsec_<base64>" (standard base64, padded or not). The error never
// holds the secret.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, SecretPrefix) {
		return Secret{}, errors.New(`must start with "whsec_" followed by the base64 of the key`)
	}
	b64 := strings.TrimRight(strings.TrimPrefix(s, SecretPrefix), "=")
	key, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return Secret{}, errors.New(`the part after "whsec_" is not base64`)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("the key must be %d to %d bytes, got %d", MinSecretBytes, MaxSecretBytes, len(key))
	}
	return Secret{key: key}, nil
}

// ParseSecrets parses one or more secrets separated by spaces (several during a rotation: each
// signs every message, and a receiver accepts any signature it can verify).
func ParseSecrets(s string) ([]Secret, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("empty")
	}
	out := make([]Secret, 0, len(fields))
	for i, f := range fields {
		sec, err := ParseSecret(f)
		if err != nil {
			if len(fields) > 1 {
				return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
			}
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// Sign returns the signature of one message: "v1," and the base64 of HMAC-SHA256 over
// "<id>.<timestamp>.<body>" keyed with the secret's decoded bytes.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignatureHeader is the webhook-signature value for secrets: their signatures separated by
// spaces.
func SignatureHeader(secrets []Secret, id string, ts time.Time, body []byte) string {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = s.Sign(id, ts, body)
	}
	return strings.Join(sigs, " ")
}

// DefaultTolerance is how far a receiver lets webhook-timestamp be from its clock.
const DefaultTolerance = 5 * time.Minute

// Verify checks a received message the way a receiver does: the timestamp within tolerance of
// now, and one of the space-separated "v1," signatures equal (compared in constant time) to
// the one secret makes.
func Verify(secret Secret, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number of seconds")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s away from now, more than %s", d.Round(time.Second), tolerance)
	}
	want := []byte(secret.Sign(id, ts, body))
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return errors.New("no valid v1 signature")
}
