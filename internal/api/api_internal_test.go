package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fulfil/fulfil/messages"
)

func TestPointer(t *testing.T) {
	for give, want := range map[string]string{
		"":                   "#",
		"quantity":           "#/quantity",
		"plan.name":          "#/plan/name",
		"services[1].id":     "#/services/1/id",
		"services[12]":       "#/services/12",
		"billingContact.id":  "#/billingContact/id",
		"odd/name~x":         "#/odd~1name~0x",
		"services[0].name.x": "#/services/0/name/x",
	} {
		if got := pointer(give); got != want {
			t.Errorf("pointer(%q) = %q, want %q", give, got, want)
		}
	}
}

func TestWithKey(t *testing.T) {
	for _, give := range []string{
		`{}`, ` { } `, `{"plan":{"name":"P"},"quantity":1}`, "{\n  \"quantity\": 1\n}\n",
		`{"idempotencyKey":null,"plan":{"name":"P"},"quantity":1}`, // a later member wins over the null
	} {
		got := withKey([]byte(give), `k "1" \ <x>`)
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Errorf("withKey(%q) = %q: %v", give, got, err)
			continue
		}
		req, err := messages.DecodeRequest(got)
		if err != nil || req.IdempotencyKey != `k "1" \ <x>` {
			t.Errorf("withKey(%q) = %q: key %q, %v", give, got, req.IdempotencyKey, err)
		}
		if !strings.HasPrefix(string(got), give[:strings.LastIndexByte(give, '}')]) {
			t.Errorf("withKey(%q) = %q changed the bytes before the last member", give, got)
		}
	}
}

func TestStructuredFieldString(t *testing.T) {
	for _, tt := range []struct {
		give, want string
		ok         bool
	}{
		{`plain-key`, "plain-key", true},
		{`"quoted"`, "quoted", true},
		{`"with \"quotes\" and \\"`, `with "quotes" and \`, true},
		{`" padded "`, " padded ", true},
		{`"open`, "", false},
		{`"bad \x escape"`, "", false},
		{`"two" "items"`, "", false},
	} {
		got, ok := sfString(tt.give)
		if got != tt.want || ok != tt.ok {
			t.Errorf("sfString(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.ok)
		}
	}
}

func TestKeys(t *testing.T) {
	k, err := ParseKeys([]byte("# shop EU\n  key-one-0123456789abcdef  \n\n# CRM\nkey-two-0123456789abcdef\r\n"))
	if err != nil || k.Len() != 2 {
		t.Fatalf("ParseKeys: %v, %d keys", err, k.Len())
	}
	if _, ok := k.match("key-one-0123456789abcdef"); !ok {
		t.Error("the first key does not match")
	}
	if id, ok := k.match("key-two-0123456789abcdef"); !ok || len(id) != 8 {
		t.Errorf("the second key: %q, %v", id, ok)
	}
	for _, bad := range []string{"", "key-one-0123456789abcde", "key-one-0123456789abcdeff", "# shop EU"} {
		if _, ok := k.match(bad); ok {
			t.Errorf("%q matches", bad)
		}
	}
	_, err = ParseKeys([]byte("short\nhas a blank in the middle here\nok-ok-ok-ok-ok-ok-ok\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "short") {
		t.Errorf("ParseKeys of bad keys: %v (want lines 1 and 2 named, and no key text)", err)
	}
	if (*Keys)(nil).Len() != 0 {
		t.Error("nil Keys is not empty")
	}
}

func TestCovered(t *testing.T) {
	listed := []messages.Problem{{Field: "quantity"}, {Field: "plan.name"}, {Field: "services[1]"}}
	for field, want := range map[string]bool{
		"quantity": true, "plan": true, "plan.name": true, "services[1].id": true, "services[10].id": false,
		"years": false, "services": true, "planx": false,
	} {
		if got := covered(listed, field); got != want {
			t.Errorf("covered(%q) = %v, want %v", field, got, want)
		}
	}
}
