package partnerclient

// Response decoding. Where Yeastar's help pages stop, the shapes follow the assumptions in
// docs/partner-api.md ("Shapes fulfil assumes"); when a real response is captured, this file
// and the types in types.go are the ones to change. Every decoder is tolerant: IDs and
// numbers may be strings or numbers, unknown fields are ignored, results documented as
// "Object<…> (a list in practice)" may be a list, an object wrapping a list, or a single
// object, and a value of an unexpected type in a field the saga does not rely on is left
// zero and recorded as Drift (lenient.go). Every decoder also checks the fields the saga
// relies on (the validate methods): an answer without them fails as undecodable.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// envelope is the body every endpoint answers with.
type envelope struct {
	Code          FlexString      `json:"code"`
	DetailMessage FlexString      `json:"detailMessage"`
	RequestID     FlexString      `json:"requestId"`
	Result        json.RawMessage `json:"result"`
	Status        envStatus       `json:"status"`
}

// envStatus is the envelope's status field, documented as an Integer holding the HTTP
// status of the request. It takes a number or a numeric string; any other value, or a
// number outside 100-599, reads as 0 (absent) instead of failing the whole answer.
type envStatus int

// UnmarshalJSON never fails and never allocates.
func (s *envStatus) UnmarshalJSON(b []byte) error {
	*s = 0
	b = bytes.TrimSpace(b)
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' {
		b = bytes.TrimSpace(b[1 : n-1])
	}
	if len(b) != 3 {
		return nil
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return nil
		}
		v = v*10 + int(c-'0')
	}
	if v >= 100 && v <= 599 {
		*s = envStatus(v)
	}
	return nil
}

var errNotObject = errors.New("body is not a JSON object")

// decodeEnvelope decodes a response body. It fails unless the body is a JSON object.
func decodeEnvelope(body []byte) (envelope, error) {
	var env envelope
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return env, errNotObject
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// decodeObject decodes a result that must be a JSON object into a T: in one go, or, when
// that fails, leniently (see decodeLenient), reporting drift to d. check, when not nil,
// rejects a result that lacks a field fulfil needs.
func decodeObject[T any](raw json.RawMessage, d driftSink, check func(T) error) (T, error) {
	var v T
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return v, errors.New("decode result: not a JSON object")
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return v, fmt.Errorf("decode result: %w", err)
		}
		v = *new(T)
		if err := decodeLenient(raw, reflect.ValueOf(&v).Elem(), "", d); err != nil {
			return v, fmt.Errorf("decode result: %w", err)
		}
	}
	if check != nil {
		if err := check(v); err != nil {
			return v, fmt.Errorf("decode result: %w", err)
		}
	}
	return v, nil
}

// listKeys are the names under which an object-wrapped list is looked for.
var listKeys = []string{"results", "list", "records", "items", "data", "rows"}

// decodeList decodes a list result: a JSON array, an object wrapping one (under one of
// listKeys, or as its only field), a single object (one item), or null (no items). Items
// are decoded as decodeObject does; check, when not nil, rejects an item that lacks a field
// fulfil needs — so an object that is neither a wrapped list nor an item fails.
func decodeList[T any](raw json.RawMessage, d driftSink, check func(T) error) ([]T, error) {
	return decodeListAt(raw, "", d, check)
}

func decodeListAt[T any](raw json.RawMessage, path string, d driftSink, check func(T) error) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return []T{}, nil
	}
	switch raw[0] {
	case '[':
		var items []T
		if err := json.Unmarshal(raw, &items); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				return nil, fmt.Errorf("decode result list: %w", err)
			}
			items = nil
			if err := decodeLenient(raw, reflect.ValueOf(&items).Elem(), path, d); err != nil {
				return nil, fmt.Errorf("decode result list: %w", err)
			}
		}
		if items == nil {
			items = []T{}
		}
		if check != nil {
			for i := range items {
				if err := check(items[i]); err != nil {
					return nil, fmt.Errorf("decode result list: %s[%d]: %w", path, i, err)
				}
			}
		}
		return items, nil
	case '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("decode result list: %w", err)
		}
		if key, inner, ok := wrappedList(fields); ok {
			return decodeListAt(inner, joinPath(path, key), d, check)
		}
		item, err := decodeObject(raw, d, check)
		if err != nil {
			return nil, err
		}
		return []T{item}, nil
	}
	return nil, errors.New("decode result list: neither a list nor an object")
}

// wrappedList finds the list inside an object that wraps one, and its key.
func wrappedList(fields map[string]json.RawMessage) (string, json.RawMessage, bool) {
	isList := func(v json.RawMessage) bool {
		v = bytes.TrimSpace(v)
		return len(v) > 0 && (v[0] == '[' || bytes.Equal(v, []byte("null")))
	}
	for _, k := range listKeys {
		if v, ok := fields[k]; ok && isList(v) {
			return k, v, true
		}
	}
	if len(fields) == 1 {
		for k, v := range fields {
			if isList(v) {
				return k, v, true
			}
		}
	}
	return "", nil, false
}

// pageWire is Page with counters that may be strings. The saga pages with them.
type pageWire struct {
	Count     ID              `json:"count" partner:"strict"`
	PageNo    ID              `json:"pageNo" partner:"strict"`
	PageSize  ID              `json:"pageSize" partner:"strict"`
	Results   json.RawMessage `json:"results" partner:"strict"`
	Total     ID              `json:"total" partner:"strict"`
	TotalPage ID              `json:"totalPage" partner:"strict"`
}

// decodePage decodes the paging wrapper of the list endpoints; its items as decodeList
// does.
func decodePage[T any](raw json.RawMessage, d driftSink, check func(T) error) (Page[T], error) {
	w, err := decodeObject[pageWire](raw, d, nil)
	if err != nil {
		return Page[T]{}, err
	}
	items, err := decodeListAt(w.Results, "results", d, check)
	if err != nil {
		return Page[T]{}, err
	}
	return Page[T]{
		Count:     int(w.Count),
		PageNo:    int(w.PageNo),
		PageSize:  int(w.PageSize),
		Results:   items,
		Total:     int(w.Total),
		TotalPage: int(w.TotalPage),
	}, nil
}

// decodeBool decodes a Boolean result: true/false, "true"/"false", 1/0, or an object with
// a single Boolean field under key (e.g. {"autoRenew": true}).
func decodeBool(raw json.RawMessage, key string) (bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return false, fmt.Errorf("decode result: %w", err)
		}
		v, ok := fields[key]
		if !ok {
			return false, fmt.Errorf("decode result: no %q field", key)
		}
		raw = bytes.TrimSpace(v)
	}
	var s FlexString
	if err := json.Unmarshal(raw, &s); err != nil || isNull(raw) {
		return false, fmt.Errorf("decode result: %s is not a Boolean", truncate(raw))
	}
	b, err := strconv.ParseBool(strings.TrimSpace(string(s)))
	if err != nil {
		return false, fmt.Errorf("decode result: %s is not a Boolean", truncate(raw))
	}
	return b, nil
}

// truncate shortens a raw value for an error message.
func truncate(raw []byte) string {
	const n = 64
	if len(raw) > n {
		return string(raw[:n]) + "…"
	}
	return string(raw)
}

// tokenWire is Token with an expiresIn that may be a number.
type tokenWire struct {
	AccessToken  string     `json:"token" partner:"strict"`
	RefreshToken string     `json:"refreshToken"`
	TokenHead    string     `json:"tokenHead"`
	ExpiresIn    FlexString `json:"expiresIn"`
}

// decodeToken decodes the result of both token calls. A missing or unreadable expiresIn
// falls back to the documented 30 minutes.
func decodeToken(raw json.RawMessage, d driftSink) (Token, time.Duration, error) {
	w, err := decodeObject[tokenWire](raw, d, nil)
	if err != nil {
		return Token{}, 0, err
	}
	if strings.TrimSpace(w.AccessToken) == "" {
		return Token{}, 0, errors.New("decode result: no access token")
	}
	t := Token{AccessToken: w.AccessToken, RefreshToken: w.RefreshToken, TokenHead: w.TokenHead, ExpiresIn: string(w.ExpiresIn)}
	const documented = 30 * time.Minute
	ttl := documented
	if secs, err := strconv.ParseInt(strings.TrimSpace(t.ExpiresIn), 10, 64); err == nil && secs > 0 {
		ttl = time.Duration(min(secs, int64(maxTokenTTL/time.Second))) * time.Second
	}
	return t, ttl, nil
}

// maxTokenTTL caps expiresIn.
const maxTokenTTL = 365 * 24 * time.Hour

// Per-endpoint decoders of the result. Each checks the fields the saga relies on (see the
// validate methods in types.go); an answer without them is an undecodable answer.
var (
	decodeProductPage      = pageDecoder(Product.validate)
	decodeProduct          = objectDecoder(Product.validate)
	decodePurchaseInfo     = objectDecoder(PurchaseInfo.validate)
	decodeBillingContacts  = listDecoder(BillingContact.validate)
	decodeSubordinateUsers = listDecoder(SubordinateUser.validate)
	// A create-order result without orderNo is not refused: the order may exist, and the
	// caller must find it (see CreateOrder).
	decodeOrderResult    = objectDecoder[OrderResult](nil)
	decodeOrderPage      = pageDecoder(OrderSummary.validate)
	decodeOrderDetails   = objectDecoder(OrderDetails.validate)
	decodeActivationCode = objectDecoder[ActivationCode](nil) // the caller waits for a code
)

func objectDecoder[T any](check func(T) error) func(json.RawMessage, driftSink) (T, error) {
	return func(raw json.RawMessage, d driftSink) (T, error) { return decodeObject(raw, d, check) }
}

func listDecoder[T any](check func(T) error) func(json.RawMessage, driftSink) ([]T, error) {
	return func(raw json.RawMessage, d driftSink) ([]T, error) { return decodeList(raw, d, check) }
}

func pageDecoder[T any](check func(T) error) func(json.RawMessage, driftSink) (Page[T], error) {
	return func(raw json.RawMessage, d driftSink) (Page[T], error) { return decodePage(raw, d, check) }
}

func decodeAutoRenewStatus(raw json.RawMessage, _ driftSink) (bool, error) {
	return decodeBool(raw, "autoRenew")
}

// decodeEnableAutoRenewal reads a Boolean result (an object is read under "result").
func decodeEnableAutoRenewal(raw json.RawMessage, _ driftSink) (bool, error) {
	return decodeBool(raw, "result")
}
