package webhook

import (
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published example.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecificationsExample(t *testing.T) {
	s, err := ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(specTimestamp, 0)
	if got := s.Sign(specID, ts, []byte(specBody)); got != specSignature {
		t.Fatalf("Sign = %s, want %s", got, specSignature)
	}
	if err := Verify(s, specID, "1614265330", "v1,bm90IGl0 "+specSignature, []byte(specBody), ts.Add(time.Minute), DefaultTolerance); err != nil {
		t.Errorf("Verify with a second signature: %v", err)
	}
	if err := Verify(s, specID, "1614265330", specSignature, []byte(specBody), ts.Add(6*time.Minute), DefaultTolerance); err == nil {
		t.Error("Verify accepted a timestamp 6 minutes old")
	}
	if err := Verify(s, specID, "1614265330", specSignature, []byte(specBody+" "), ts, DefaultTolerance); err == nil {
		t.Error("Verify accepted another body")
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64!", "whsec_c2hvcnQ=", "whsec_"} {
		_, err := ParseSecret(bad)
		if err == nil {
			t.Errorf("ParseSecret(%q) accepted it", bad)
			continue
		}
		if len(bad) > 10 && strings.Contains(err.Error(), bad[6:]) {
			t.Errorf("error %q shows the secret", err)
		}
	}
	ss, err := ParseSecrets(specSecret + " whsec_" + strings.Repeat("QUJD", 10))
	if err != nil || len(ss) != 2 {
		t.Fatalf("two secrets: %v %v", ss, err)
	}
	if got := SignatureHeader(ss, "id", time.Unix(1, 0), nil); len(strings.Fields(got)) != 2 {
		t.Errorf("signature header %q, want two signatures", got)
	}
	if s := ss[0].String(); strings.Contains(s, "MfKQ") {
		t.Errorf("String shows the key: %s", s)
	}
}
