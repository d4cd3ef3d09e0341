package idempotency

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAppendRecordMatchesMarshal checks that a record is encoded byte for byte as json.Marshal
// encodes it, for every kind of field value the store writes and strings it never should.
func TestAppendRecordMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 1, 2, 345678900, time.UTC)
	full := Record{
		Key: "shop-eu-order-100231", SagaID: "6f1c0c9e-5b0e-5b8f-9a43-3f1f3b0d2a11", Fingerprint: "sha256:ab12",
		Request: json.RawMessage(`{"idempotencyKey":"k","plan":{"name":"Enterprise Plan"},"quantity":20}`),
		Status:  StatusCompleted, Lease: Lease{Owner: "w-1/12/3", Epoch: 7, Expires: at.Add(30 * time.Second)},
		Deliveries: 3, State: json.RawMessage(`{"steps":[1,2,{"a":"b"}]}`), OutcomeType: "purchase.completed",
		Outcome: json.RawMessage(`{"type":"purchase.completed"}`), OutcomeSeq: 1 << 40, Reopened: 2,
		CreatedAt: at, UpdatedAt: at.Add(time.Millisecond),
	}
	odd := strings.Join([]string{"<script>&amp;", "quote\" back\\slash", "\b\f\n\r\t\x00\x1f\x7f", "ünï©ødé 日本",
		"\u2028\u2029", "bad \xff utf8 \xc3", "emoji 🚀"}, "|")
	tests := []struct {
		name string
		give Record
	}{
		{name: "zero", give: Record{}},
		{name: "new", give: Record{Key: "k", SagaID: "s", Fingerprint: "f", Request: json.RawMessage(`{}`), Status: StatusRunning,
			Lease: Lease{Owner: "o", Epoch: 1, Expires: at}, Deliveries: 1, CreatedAt: at, UpdatedAt: at}},
		{name: "full", give: full},
		{name: "odd strings", give: Record{Key: odd, SagaID: odd, Fingerprint: odd, Status: Status(odd), Lease: Lease{Owner: odd},
			OutcomeType: odd}},
		{name: "empty raw messages", give: Record{Request: json.RawMessage{}, State: json.RawMessage{}, Outcome: json.RawMessage{}}},
		{name: "time zone and whole seconds", give: Record{CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600+1800)),
			UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "empty raw messages" {
				// json.Marshal refuses an empty, non-nil RawMessage without omitempty; the store
				// never writes one (a request is always JSON), and appendRecord writes it as is.
				tt.give.Request = json.RawMessage(`null`)
			}
			want, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendRecord([]byte("prefix"), &tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Errorf("appendRecord =\n%s\nwant\n%s", got[len("prefix"):], want)
			}
		})
	}
}

func TestAppendRecordYearOutOfRange(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		rec := Record{UpdatedAt: at}
		if _, err := json.Marshal(rec); err == nil {
			t.Fatalf("json.Marshal accepts %s", at)
		}
		if _, err := appendRecord(nil, &rec); err == nil {
			t.Errorf("appendRecord accepts %s, want an error as json.Marshal gives", at)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	at := time.Now().UTC()
	rec := Record{Key: "shop-eu-order-100231", SagaID: "6f1c0c9e-5b0e-5b8f-9a43-3f1f3b0d2a11", Fingerprint: strings.Repeat("ab", 32),
		Request: json.RawMessage(`{"idempotencyKey":"shop-eu-order-100231","plan":{"name":"Enterprise Plan"},"quantity":20}`),
		Status:  StatusRunning, Lease: Lease{Owner: "bench-0/12345/1", Epoch: 1, Expires: at}, Deliveries: 1,
		State:     json.RawMessage(`{"steps":{"resolve_plan":{"status":"done","attempts":1,"at":"2026-11-30T08:01:02.345Z"}},"order":{"intent":{"poNumber":"FUL-0123456789ABCDEF01234567","sent":true}}}`),
		CreatedAt: at, UpdatedAt: at}
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendRecord(buf[:0], &rec)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(rec)
		}
	})
}
