package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Reasons lists every failure reason.
var Reasons = []Reason{
	ReasonInvalidRequest, ReasonConflict, ReasonRejected,
	ReasonExhausted, ReasonNeedsReconciliation, ReasonPostOrderFailed,
}

// Statuses lists every progress status.
var Statuses = []string{StatusDone, StatusSkipped, StatusRetrying}

// ErrUnknownEventType is returned by DecodeEvent for a type it does not know.
var ErrUnknownEventType = errors.New("unknown event type")

// NewHeader returns the common fields of an event of type typ about key. The time is stored in
// UTC and truncated to milliseconds, so an event survives a JSON round trip unchanged; it
// marshals as RFC 3339.
func NewHeader(typ, key, sagaID string, t time.Time) EventHeader {
	return EventHeader{Type: typ, IdempotencyKey: key, SagaID: sagaID, Time: t.UTC().Truncate(time.Millisecond)}
}

// ForType returns the subject that events of type typ are published on, and false for an
// unknown type.
func (s Subjects) ForType(typ string) (string, bool) {
	switch typ {
	case TypeCompleted:
		return s.Completed, true
	case TypeFailed:
		return s.Failed, true
	case TypeProgress:
		return s.Progress, true
	}
	return "", false
}

// DecodeEvent decodes an event body into *Completed, *Failed or *Progress according to its
// "type". It returns an error wrapping ErrUnknownEventType for another or missing type, and a
// JSON error for a body that does not decode. Unknown fields are ignored.
func DecodeEvent(data []byte) (Event, error) {
	var h struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	var ev Event
	switch h.Type {
	case TypeCompleted:
		ev = &Completed{}
	case TypeFailed:
		ev = &Failed{}
	case TypeProgress:
		ev = &Progress{}
	default:
		return nil, fmt.Errorf("decode event: %w %q", ErrUnknownEventType, h.Type)
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", h.Type, err)
	}
	return ev, nil
}
