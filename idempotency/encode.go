package idempotency

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
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
	b = appendString(b, r.Key)
	b = append(b, `,"sagaId":`...)
	b = appendString(b, r.SagaID)
	b = append(b, `,"fingerprint":`...)
	b = appendString(b, r.Fingerprint)
	b = append(b, `,"request":`...)
	b = appendRaw(b, r.Request)
	b = append(b, `,"status":`...)
	b = appendString(b, string(r.Status))
	b = append(b, `,"lease":{"owner":`...)
	b = appendString(b, r.Lease.Owner)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, r.Lease.Epoch, 10)
	b = append(b, `,"expires":`...)
	b, err := appendTime(b, r.Lease.Expires)
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
		b = appendString(b, r.OutcomeType)
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
	if b, err = appendTime(b, r.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updatedAt":`...)
	if b, err = appendTime(b, r.UpdatedAt); err != nil {
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

var errYearRange = errors.New("idempotency: encode record: year outside of range [0,9999]")

// appendTime appends t as time.Time.MarshalJSON does.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return nil, errYearRange
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does by default: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by
// U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
