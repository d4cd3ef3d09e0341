package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/jsonenc"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "<script>&amp;</script>", "quote\" back\\slash", "\b\f\n\r\t\x00\x1f\x7f",
		"ünï©ødé 日本", "\u2028 \u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate", "emoji 🚀", "\x01\x1b[31m"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonenc.AppendString([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
	}
}

func TestAppendTime(t *testing.T) {
	for _, at := range []time.Time{{}, time.Date(2026, 11, 30, 8, 1, 2, 345678900, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -3*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)} {
		want, err := json.Marshal(at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonenc.AppendTime(nil, at)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendTime(%s) = %s, %v; want %s", at, got, err, want)
		}
	}
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := json.Marshal(at); err == nil {
			t.Fatalf("json.Marshal accepts %s", at)
		}
		if _, err := jsonenc.AppendTime(nil, at); err == nil {
			t.Errorf("AppendTime(%s): no error, want one as json.Marshal gives", at)
		}
	}
}
