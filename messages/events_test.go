package messages

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestSubjectsFor(t *testing.T) {
	tests := []struct {
		give string
		want Subjects
	}{
		{"", Subjects{
			Requested: "fulfil.purchase.requested", Progress: "fulfil.purchase.progress",
			Completed: "fulfil.purchase.completed", Failed: "fulfil.purchase.failed",
		}},
		{"acme.eu", Subjects{
			Requested: "acme.eu.purchase.requested", Progress: "acme.eu.purchase.progress",
			Completed: "acme.eu.purchase.completed", Failed: "acme.eu.purchase.failed",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := SubjectsFor(tt.give)
			if got.Requested != tt.want.Requested || got.Progress != tt.want.Progress ||
				got.Completed != tt.want.Completed || got.Failed != tt.want.Failed {
				t.Errorf("SubjectsFor(%q) = %+v, want %+v", tt.give, got, tt.want)
			}
			if events := got.Events(); !reflect.DeepEqual(events, []string{tt.want.Progress, tt.want.Completed, tt.want.Failed}) {
				t.Errorf("Events() = %q", events)
			}
		})
	}
}

func TestSubjectsForType(t *testing.T) {
	s := SubjectsFor("acme")
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{TypeCompleted, "acme.purchase.completed", true},
		{TypeFailed, "acme.purchase.failed", true},
		{TypeProgress, "acme.purchase.progress", true},
		{"purchase.requested", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, ok := s.ForType(tt.give)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ForType(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNewHeader(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	h := NewHeader(TypeFailed, "order-1", "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11",
		time.Date(2026, 11, 22, 11, 0, 3, 123456789, local))
	want := EventHeader{
		Type:           TypeFailed,
		IdempotencyKey: "order-1",
		SagaID:         "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11",
		Time:           time.Date(2026, 11, 22, 10, 0, 3, 123000000, time.UTC),
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("NewHeader = %+v, want %+v", h, want)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"type":"purchase.failed","idempotencyKey":"order-1","sagaId":"6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11","time":"2026-11-22T10:00:03.123Z"}`
	if string(b) != wantJSON {
		t.Errorf("JSON = %s, want %s", b, wantJSON)
	}
	if h.EventType() != TypeFailed || h.Key() != "order-1" {
		t.Errorf("EventType, Key = %q, %q", h.EventType(), h.Key())
	}
}

func TestDecodeEventRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 3, 0, time.UTC)
	saga := "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11"
	tests := []struct {
		name string
		give Event
	}{
		{"completed", &Completed{
			EventHeader: NewHeader(TypeCompleted, "order-1", saga, at),
			ProductID:   12, ProductNo: "3651E1292455", OrderNo: "ZC3206258125675945984", OrderStatus: "succeed",
			TransactionNo: "AK3206258126833573889", InstanceID: "1282391", AutoRenewal: true, ActivationCode: "ABCD-1234",
			Replayed: true,
		}},
		{"failed", &Failed{
			EventHeader: NewHeader(TypeFailed, "order-1", saga, at),
			Step:        StepCreateOrder, Reason: ReasonRejected, Message: "insufficient balance",
			PartnerCode: "10011", PartnerRequestID: "req-9",
		}},
		{"failed after order", &Failed{
			EventHeader: NewHeader(TypeFailed, "order-1", saga, at),
			Step:        StepFetchActivation, Reason: ReasonPostOrderFailed, OrderNo: "ZC1",
		}},
		{"progress", &Progress{
			EventHeader: NewHeader(TypeProgress, "order-1", saga, at.Add(1500*time.Millisecond)),
			Step:        StepCreateOrder, Status: StatusRetrying, Attempt: 2, Message: "503",
		}},
		{"progress without attempt", &Progress{
			EventHeader: NewHeader(TypeProgress, "order-1", saga, at),
			Step:        StepResolveProduct, Status: StatusSkipped,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(data)
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", data, err)
			}
			if !reflect.DeepEqual(got, tt.give) {
				t.Errorf("DecodeEvent =\n%#v\nwant\n%#v", got, tt.give)
			}
		})
	}
}

func TestDecodeEventExamples(t *testing.T) {
	saga := "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11"
	tests := []struct {
		give string
		want Event
	}{
		{"testdata/completed.json", &Completed{
			EventHeader: EventHeader{Type: TypeCompleted, IdempotencyKey: "shop-eu-order-100231", SagaID: saga,
				Time: time.Date(2026, 11, 22, 10, 0, 3, 0, time.UTC)},
			ProductID: 12, ProductNo: "3651E1292455", OrderNo: "ZC3206258125675945984", OrderStatus: "succeed",
			TransactionNo: "AK3206258126833573889", InstanceID: "1282391", AutoRenewal: true, ActivationCode: "...",
		}},
		{"testdata/failed.json", &Failed{
			EventHeader: EventHeader{Type: TypeFailed, IdempotencyKey: "shop-eu-order-100231", SagaID: saga,
				Time: time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)},
			Step: StepResolvePlan, Reason: ReasonInvalidRequest,
			Message: `plan "Ultimite Plan" not found; available: Enterprise Plan, Ultimate Plan`,
		}},
		{"testdata/progress.json", &Progress{
			EventHeader: EventHeader{Type: TypeProgress, IdempotencyKey: "shop-eu-order-100231", SagaID: saga,
				Time: time.Date(2026, 11, 22, 10, 0, 2, 250000000, time.UTC)},
			Step: StepCreateOrder, Status: StatusRetrying, Attempt: 1, Message: "partner API: 503 Service Unavailable",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			data, err := os.ReadFile(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(data)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeEvent =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantUnknown bool
	}{
		{"unknown type", `{"type": "purchase.requested"}`, true},
		{"no type", `{"idempotencyKey": "k"}`, true},
		{"not JSON", `{"type": `, false},
		{"not an object", `["purchase.failed"]`, false},
		{"bad time", `{"type": "purchase.failed", "time": "yesterday"}`, false},
		{"bad field type", `{"type": "purchase.progress", "attempt": "two"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(tt.give))
			if err == nil {
				t.Fatalf("DecodeEvent = %#v, want an error", ev)
			}
			if got := errors.Is(err, ErrUnknownEventType); got != tt.wantUnknown {
				t.Errorf("errors.Is(%v, ErrUnknownEventType) = %v, want %v", err, got, tt.wantUnknown)
			}
		})
	}
}
