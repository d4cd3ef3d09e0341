package idempotency

import (
	"encoding/json"
	"strconv"

	"github.com/fulfil/fulfil/internal/jsonenc"
)

// appendRecord appends the JSON encoding of r to b: what json.Marshal(r) writes, field for
// field and byte for byte, without reflection and without compacting the embedded JSON
// (Request, State, Outcome), which is appended as given. Every saga writes its record several
// times and the checkpoint it embeds grows with each step: json.Marshal scanned and copied it
// twice per write.
//
// The embedded JSON must be valid and compact (as json.Marshal produces it); a record holding
// anything else could not be read back. It returns an error for a time json.Marshal refuses
// (a year outside 0–9999).
func appendRecord(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"key":`...)
	b = jsonenc.AppendString(b, r.Key)
	b = append(b, `,"sagaId":`...)
	b = jsonenc.AppendString(b, r.SagaID)
	b = append(b, `,"fingerprint":`...)
	b = jsonenc.AppendString(b, r.Fingerprint)
	b = append(b, `,"request":`...)
	b = appendRaw(b, r.Request)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, string(r.Status))
	b = append(b, `,"lease":{"owner":`...)
	b = jsonenc.AppendString(b, r.Lease.Owner)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, r.Lease.Epoch, 10)
	b = append(b, `,"expires":`...)
	b, err := jsonenc.AppendTime(b, r.Lease.Expires)
	if err != nil {
		return nil, err
	}
	b = append(b, `},"deliveries":`...)
	b = strconv.AppendInt(b, int64(r.Deliveries), 10)
	if len(r.State) > 0 {
		b = append(b, `,"state":`...)
		b = append(b, r.State...)
	}
	if r.OutcomeType != "" {
		b = append(b, `,"outcomeType":`...)
		b = jsonenc.AppendString(b, r.OutcomeType)
	}
	if len(r.Outcome) > 0 {
		b = append(b, `,"outcome":`...)
		b = append(b, r.Outcome...)
	}
	if r.OutcomeSeq != 0 {
		b = append(b, `,"outcomeSeq":`...)
		b = strconv.AppendUint(b, r.OutcomeSeq, 10)
	}
	if r.Reopened != 0 {
		b = append(b, `,"reopened":`...)
		b = strconv.AppendInt(b, int64(r.Reopened), 10)
	}
	b = append(b, `,"createdAt":`...)
	if b, err = jsonenc.AppendTime(b, r.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updatedAt":`...)
	if b, err = jsonenc.AppendTime(b, r.UpdatedAt); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendRaw appends embedded JSON as json.Marshal writes a json.RawMessage field without
// omitempty: null when nil.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}
