package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// ErrInvalidRequest matches every *ValidationError.
var ErrInvalidRequest = errors.New("invalid purchase request")

// Problem is one wrong field of a request.
type Problem struct {
	Field   string
	Message string
}

// ValidationError lists every problem found in a request.
type ValidationError struct {
	Problems []Problem
}

// Error names every wrong field.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return "invalid purchase request: " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Problems: []Problem{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// DecodeRequest decodes a request message. It rejects payloads over MaxRequestBytes, invalid
// JSON, a non-object and trailing data; unknown fields are ignored. Errors are *ValidationError.
func DecodeRequest(data []byte) (PurchaseRequest, error) {
	var r PurchaseRequest
	if len(data) > MaxRequestBytes {
		return r, invalid("(body)", "request is %d bytes; the limit is %d", len(data), MaxRequestBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r, invalid("(body)", "request must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&r); err != nil {
		return PurchaseRequest{}, invalid(fieldOf(err), "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return PurchaseRequest{}, invalid("(body)", "unexpected data after the JSON object")
	}
	return r, nil
}

func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field
	}
	return "(body)"
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("wrong type: got JSON %s, want %s", te.Value, jsonKind(te.Type.String()))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "malformed JSON: unexpected end of input"
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), goType == "messages.Int64":
		return "an integer"
	case goType == "string", goType == "messages.ID":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	default:
		return "an object"
	}
}

// PeekKey extracts a valid idempotencyKey from a payload that failed full decoding, or "".
func PeekKey(data []byte) string {
	if len(data) > MaxRequestBytes {
		return ""
	}
	var probe struct {
		Key json.RawMessage `json:"idempotencyKey"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		// Malformed JSON: find the key in the text, if it is well-formed there.
		i := bytes.Index(data, []byte(`"idempotencyKey"`))
		if i < 0 {
			return ""
		}
		rest := bytes.TrimLeft(data[i+len(`"idempotencyKey"`):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			return ""
		}
		var key string
		if err := json.NewDecoder(bytes.NewReader(rest[1:])).Decode(&key); err != nil || validKey(key) != "" {
			return ""
		}
		return key
	}
	var key string
	if err := json.Unmarshal(probe.Key, &key); err != nil || validKey(key) != "" {
		return ""
	}
	return key
}

// validKey returns what is wrong with key, or "".
func validKey(key string) string {
	switch {
	case key == "":
		return "required"
	case len(key) > MaxKeyLength:
		return fmt.Sprintf("must be at most %d characters, got %d", MaxKeyLength, len(key))
	case strings.TrimSpace(key) != key:
		return "must not start or end with spaces"
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "must be printable ASCII"
		}
	}
	return ""
}

// Validate checks every rule of the contract and reports all problems at once as a
// *ValidationError.
func (r PurchaseRequest) Validate() error {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if msg := validKey(r.IdempotencyKey); msg != "" {
		add("idempotencyKey", "%s", msg)
	}
	if r.ProductID < 0 {
		add("productId", "must be positive")
	}
	if r.ProductNo != "" && !isSN(r.ProductNo) {
		add("productNo", "must be 1-64 letters, digits or '-'")
	}
	if r.CustomerEmail != "" && !isEmail(r.CustomerEmail) {
		add("customerEmail", "not an e-mail address")
	}
	switch {
	case r.Plan == nil:
		add("plan", "required: {\"id\": ...} or {\"name\": ...}")
	default:
		checkRef(add, "plan", r.Plan.ID, r.Plan.Name)
	}
	seen := map[string]bool{}
	for i, s := range r.Services {
		field := fmt.Sprintf("services[%d]", i)
		checkRef(add, field, s.ID, s.Name)
		if s.Quantity < 0 {
			add(field+".quantity", "must not be negative")
		}
		id := strings.ToLower(strings.TrimSpace(string(s.ID) + "\x00" + s.Name))
		if seen[id] {
			add(field, "duplicate service")
		}
		seen[id] = true
	}
	if r.Quantity < MinQuantity || r.Quantity > MaxQuantity {
		add("quantity", "must be between %d and %d, got %d", MinQuantity, MaxQuantity, r.Quantity)
	}
	if r.Years != 0 && (r.Years < MinYears || r.Years > MaxYears) {
		add("years", "must be between %d and %d, got %d", MinYears, MaxYears, r.Years)
	}
	if b := r.BillingContact; b != nil {
		switch {
		case (b.ID == "") == (b.Email == ""):
			add("billingContact", "give exactly one of id or email")
		case b.ID != "" && !isDigits(string(b.ID)):
			add("billingContact.id", "must be digits")
		case b.Email != "" && !isEmail(b.Email):
			add("billingContact.email", "not an e-mail address")
		}
	}
	if len(r.PONumber) > 64 || !printable(r.PONumber) {
		add("poNumber", "must be at most 64 printable ASCII characters")
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

func checkRef(add func(string, string, ...any), field string, id ID, name string) {
	switch {
	case (id == "") == (strings.TrimSpace(name) == ""):
		add(field, "give exactly one of id or name")
	case id != "" && !isDigits(string(id)):
		add(field+".id", "must be digits")
	case len(name) > 128:
		add(field+".name", "must be at most 128 characters")
	}
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isSN(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

func isEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s, "@")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Normalize returns r with defaults applied (productId 12, years 1, autoRenew true), strings
// trimmed and e-mails lower-cased.
func (r PurchaseRequest) Normalize() PurchaseRequest {
	if r.ProductID == 0 {
		r.ProductID = DefaultProductID
	}
	if r.Years == 0 {
		r.Years = DefaultYears
	}
	if r.AutoRenew == nil {
		t := true
		r.AutoRenew = &t
	} else {
		v := *r.AutoRenew
		r.AutoRenew = &v
	}
	r.ProductNo = strings.TrimSpace(r.ProductNo)
	r.CustomerEmail = strings.ToLower(strings.TrimSpace(r.CustomerEmail))
	r.PONumber = strings.TrimSpace(r.PONumber)
	if r.Plan != nil {
		p := *r.Plan
		p.Name = strings.TrimSpace(p.Name)
		r.Plan = &p
	}
	if r.Services != nil {
		svcs := make([]ServiceRef, len(r.Services))
		for i, s := range r.Services {
			s.Name = strings.TrimSpace(s.Name)
			svcs[i] = s
		}
		r.Services = svcs
	}
	if r.BillingContact != nil {
		b := *r.BillingContact
		b.Email = strings.ToLower(strings.TrimSpace(b.Email))
		r.BillingContact = &b
	}
	return r
}

// AutoRenewEnabled reports whether auto-renewal should be enabled (default true).
func (r PurchaseRequest) AutoRenewEnabled() bool { return r.AutoRenew == nil || *r.AutoRenew }

// Fingerprint is the hex SHA-256 of the normalized request's canonical JSON: the same
// purchase always has the same fingerprint, whatever the key order, whitespace, ID encoding or
// explicitly sent defaults.
func (r PurchaseRequest) Fingerprint() string {
	n := r.Normalize()
	if n.Plan != nil {
		n.Plan.Name = strings.ToLower(n.Plan.Name)
	}
	for i := range n.Services {
		n.Services[i].Name = strings.ToLower(n.Services[i].Name)
	}
	b, _ := json.Marshal(n) // struct fields marshal in a fixed order
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DecodeEvent decodes an event by its type into *Completed, *Failed or *Progress.
func DecodeEvent(data []byte) (Event, error) {
	var h EventHeader
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, err
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
		return nil, fmt.Errorf("unknown event type %q", h.Type)
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, err
	}
	return ev, nil
}
