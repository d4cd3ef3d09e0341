package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// DecodeRequest decodes the body of a request message. It returns a *ValidationError (which
// matches ErrInvalidRequest) when data is larger than MaxRequestBytes, is not valid JSON, is
// not a JSON object, has data after the object, has a field of the wrong JSON type, or is
// not valid UTF-8 text; the error lists every such field, and the returned request holds what
// could be decoded.
//
// encoding/json would decode a broken UTF-8 sequence, or a \u escape of a lone surrogate, as
// U+FFFD, and a name would reach the partner mangled. DecodeRequest checks each member's raw
// bytes instead and names the member ("plan.name: must be valid UTF-8 text"); broken bytes
// elsewhere (an unknown member, a member's name) are a problem of the whole message.
//
// Field names are matched exactly (JSON in Go is otherwise case-insensitive); unknown fields
// are ignored; a field given twice takes its last value; null is the same as absent. IDs and
// productId may be JSON strings or integers and are never parsed as floating point.
// DecodeRequest does not apply the contract's rules: call Validate.
func DecodeRequest(data []byte) (PurchaseRequest, error) {
	var r PurchaseRequest
	if len(data) > MaxRequestBytes {
		return r, problems{{Message: fmt.Sprintf("message is %d bytes; the limit is %d", len(data), MaxRequestBytes)}}.err()
	}
	obj, msg := parseObject(data)
	if msg != "" {
		return r, problems{{Message: msg}}.err()
	}
	var d decoder
	d.member(obj, "", "idempotencyKey", &r.IdempotencyKey)
	d.member(obj, "", "productId", &r.ProductID)
	d.member(obj, "", "productNo", &r.ProductNo)
	d.member(obj, "", "customerEmail", &r.CustomerEmail)
	if o, ok := d.object("plan", obj["plan"]); ok {
		r.Plan = &Ref{}
		d.member(o, "plan.", "id", &r.Plan.ID)
		d.member(o, "plan.", "name", &r.Plan.Name)
	}
	if items, ok := d.array("services", obj["services"]); ok {
		r.Services = make([]ServiceRef, len(items))
		for i, item := range items {
			path := fmt.Sprintf("services[%d]", i)
			if isNull(item) {
				d.add(path, "must be an object")
				continue
			}
			if o, ok := d.object(path, item); ok {
				s := &r.Services[i]
				d.member(o, path+".", "id", &s.ID)
				d.member(o, path+".", "name", &s.Name)
				d.member(o, path+".", "quantity", &s.Quantity)
			}
		}
	}
	d.member(obj, "", "quantity", &r.Quantity)
	d.member(obj, "", "years", &r.Years)
	if o, ok := d.object("billingContact", obj["billingContact"]); ok {
		r.BillingContact = &ContactRef{}
		d.member(o, "billingContact.", "id", &r.BillingContact.ID)
		d.member(o, "billingContact.", "email", &r.BillingContact.Email)
	}
	d.member(obj, "", "poNumber", &r.PONumber)
	d.member(obj, "", "autoRenew", &r.AutoRenew)
	if !d.badUTF8 && !utf8.Valid(data) {
		d.add("", "message is not valid UTF-8 text (at byte %d)", invalidUTF8At(data))
	}
	return r, d.err()
}

// parseObject decodes exactly one JSON object into its members; otherwise it says why not.
func parseObject(data []byte) (map[string]json.RawMessage, string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, "message is empty"
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
		}
		return nil, fmt.Sprintf("not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "unexpected data after the JSON object"
	}
	if kind := jsonKind(raw); kind != "an object" {
		return nil, "must be a JSON object, not " + kind
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Sprintf("not valid JSON: %v", err)
	}
	return obj, ""
}

// PeekKey returns the idempotencyKey of a request body that may not decode as a whole, or ""
// when none can be read or it is not a valid key (see Validate). It reads the top-level object
// member by member and stops at the first syntax error, so a key that precedes the damage is
// still found; like DecodeRequest, the last of repeated keys wins.
func PeekKey(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	key := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		if t == "idempotencyKey" {
			key = ""
			_ = json.Unmarshal(raw, &key)
		}
	}
	if keyProblem(key) != "" {
		return ""
	}
	return key
}

// decoder decodes members one by one and collects a Problem for each that fails.
type decoder struct {
	problems
	badUTF8 bool // a member was reported for broken UTF-8
}

// member decodes obj[name] into target when present and not null. Its raw bytes must be
// valid UTF-8, and a string must not hold an escaped lone surrogate: json.Unmarshal would
// turn either into U+FFFD.
func (d *decoder) member(obj map[string]json.RawMessage, prefix, name string, target any) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return
	}
	if !utf8.Valid(raw) {
		d.badUTF8 = true
		d.add(prefix+name, "%s", msgUTF8)
		return
	}
	if err := json.Unmarshal(raw, target); err != nil {
		d.add(prefix+name, "%s", typeProblem(target))
		return
	}
	if bytes.Contains(raw, []byte(`\u`)) && jsonKind(raw) == "a string" {
		var s string
		if json.Unmarshal(raw, &s) == nil && strings.Count(s, "\uFFFD") > replacementsSent(raw) {
			d.badUTF8 = true
			d.add(prefix+name, "%s (an escaped lone surrogate)", msgUTF8)
		}
	}
}

// replacementsSent counts the U+FFFD characters a JSON string literal holds as such: raw, or
// escaped as \ufffd.
func replacementsSent(raw []byte) int {
	n := bytes.Count(raw, []byte("\uFFFD"))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i+4 < len(raw) && raw[i] == 'u' && strings.EqualFold(string(raw[i+1:i+5]), "fffd") {
			n++
			i += 4
		}
	}
	return n
}

// invalidUTF8At returns the offset of the first byte of data that is not valid UTF-8.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// object returns the members of raw; ok is false when raw is absent, null or not an object
// (which is a problem).
func (d *decoder) object(path string, raw json.RawMessage) (obj map[string]json.RawMessage, ok bool) {
	if raw == nil || isNull(raw) {
		return nil, false
	}
	if jsonKind(raw) != "an object" || json.Unmarshal(raw, &obj) != nil {
		d.add(path, "must be an object")
		return nil, false
	}
	return obj, true
}

// array returns the items of raw; ok is false when raw is absent, null or not an array (which
// is a problem).
func (d *decoder) array(path string, raw json.RawMessage) (items []json.RawMessage, ok bool) {
	if raw == nil || isNull(raw) {
		return nil, false
	}
	if jsonKind(raw) != "an array" || json.Unmarshal(raw, &items) != nil {
		d.add(path, "must be an array")
		return nil, false
	}
	return items, true
}

// typeProblem describes the JSON a target needs.
func typeProblem(target any) string {
	switch target.(type) {
	case *string:
		return "must be a string"
	case *int:
		return "must be an integer"
	case *Int64:
		return "must be an integer (a JSON number or a string of digits)"
	case *ID:
		return "must be an ID (a JSON string or an integer)"
	case **bool:
		return "must be true or false"
	}
	return "has the wrong type"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the kind of a valid JSON value.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
