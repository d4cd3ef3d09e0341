package worker

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fulfil/fulfil/messages"
)

// TestAppendProgressMatchesMarshal checks that a progress event is encoded byte for byte as
// json.Marshal encodes it: with every field set (so that a field added to messages.Progress
// and not to appendProgress fails here), with the optional ones empty, and with strings that
// need escaping.
func TestAppendProgressMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 1, 2, 345000000, time.UTC)
	var every messages.Progress
	fillFields(t, reflect.ValueOf(&every).Elem(), at)
	tests := []struct {
		name string
		give messages.Progress
	}{
		{name: "every field set", give: every},
		{name: "done", give: messages.Progress{EventHeader: messages.EventHeader{Type: messages.TypeProgress, IdempotencyKey: "k-1",
			SagaID: "6f1c0c9e-5b0e-5b8f-9a43-3f1f3b0d2a11", Time: at}, Step: messages.StepCreateOrder, Status: messages.StatusDone}},
		{name: "retrying with a message to escape", give: messages.Progress{EventHeader: messages.EventHeader{Type: messages.TypeProgress,
			IdempotencyKey: "<key>&\"\\", Time: at}, Step: "create_order", Status: messages.StatusRetrying, Attempt: -3,
			Message: "partner answered 503 <html>\n\t\x01 \u2028 \xff"}},
		{name: "zero", give: messages.Progress{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendProgress([]byte("x"), &tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("x"), want...)) {
				t.Errorf("appendProgress =\n%s\nwant\n%s", got[1:], want)
			}
		})
	}
	if _, err := appendProgress(nil, &messages.Progress{EventHeader: messages.EventHeader{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}); err == nil {
		t.Error("appendProgress accepts the year 10000, which json.Marshal refuses")
	}
}

// fillFields sets every field of the struct v to a non-zero value.
func fillFields(t *testing.T, v reflect.Value, at time.Time) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeOf(at):
			f.Set(reflect.ValueOf(at))
		case f.Kind() == reflect.Struct:
			fillFields(t, f, at)
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name + " value")
		case f.CanInt():
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("field %s of kind %s: teach the test (and appendProgress) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
}
