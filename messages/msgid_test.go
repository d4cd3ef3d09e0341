package messages_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/messages"
)

func ExampleRequestMsgID() {
	body := []byte(`{"idempotencyKey":"shop-eu-order-100231","plan":{"name":"Ultimate Plan"},"quantity":1}`)
	fmt.Println(messages.RequestMsgID("shop-eu-order-100231", body))
	// Output: shop-eu-order-100231:de4297f741095bff0c71abf58b59a333
}

func TestRequestMsgID(t *testing.T) {
	const key = "shop-eu-order-100231"
	body := func(q int) []byte {
		return fmt.Appendf(nil, `{"idempotencyKey":%q,"plan":{"name":"Ultimate Plan"},"quantity":%d}`, key, q)
	}
	// The rule as a producer in another language would write it.
	sum := sha256.Sum256(body(1))
	if got, want := messages.RequestMsgID(key, body(1)), key+":"+hex.EncodeToString(sum[:])[:32]; got != want {
		t.Errorf("RequestMsgID = %q, want %q", got, want)
	}
	if a, b := messages.RequestMsgID(key, body(1)), messages.RequestMsgID(key, body(1)); a != b {
		t.Errorf("an exact re-send gets another id: %q, %q", a, b)
	}
	if a, b := messages.RequestMsgID(key, body(1)), messages.RequestMsgID(key, body(2)); a == b {
		t.Errorf("a different purchase under the same key gets the same id %q: the stream would drop it unseen", a)
	}
	// Even a difference the fingerprint ignores (whitespace) makes another message: the worker,
	// not the stream, decides that it is the same purchase.
	spaced := []byte(strings.Replace(string(body(1)), ",", ", ", 1))
	if a, b := messages.RequestMsgID(key, body(1)), messages.RequestMsgID(key, spaced); a == b {
		t.Errorf("other bytes, same id %q", a)
	}
	if a, b := messages.RequestMsgID("k1", body(1)), messages.RequestMsgID("k2", body(1)); a == b {
		t.Errorf("other key, same id %q", a)
	}
	long := strings.Repeat("k", 128)
	if got := messages.RequestMsgID(long, body(1)); len(got) != 128+1+messages.MsgIDHashDigits || !strings.HasPrefix(got, long+":") {
		t.Errorf("RequestMsgID(128-character key) = %q", got)
	}
}
