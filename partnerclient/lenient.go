package partnerclient

// Lenient decoding. A result is first decoded in one go (json.Unmarshal, the fast path). Only
// when that fails is it decoded again field by field, so that one value of an unexpected type
// in a field fulfil does not rely on cannot fail every answer: such a value is left zero and
// recorded as Drift. The fields the saga relies on carry the struct tag `partner:"strict"`;
// a value there that does not fit still fails the decode. Fields tagged `partner:"flag"` are
// documented Integer 0/1 switches, also taken as true/false or "1"/"0".

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Drift is a value in a partner answer whose JSON type differs from the one fulfil
// decodes, in a field fulfil does not rely on. The decoder tolerated it: it left the field
// zero, or converted it (a Boolean for an Integer 0/1 flag).
type Drift struct {
	Endpoint Endpoint
	// Path locates the field in the result, e.g. "results[].planAutoRenewal"; "[]" stands
	// for every item of a list.
	Path  string
	Want  string // the JSON type fulfil expects, e.g. "number"
	Got   string // the JSON type found, e.g. "boolean"
	Count int64  // times seen, once per list item (Client.Drift only)
}

// String formats d as "product_list: results[].planAutoRenewal: want number, got boolean".
func (d Drift) String() string {
	return fmt.Sprintf("%s: %s: want %s, got %s", d.Endpoint, d.Path, d.Want, d.Got)
}

// Drift returns the drift the client's decoders have tolerated since New, one entry per
// endpoint, field and type, sorted. Each new entry is also logged once at warn level.
// `fulfil partner check` reports drift too, by comparing each answer with the decoders.
func (c *Client) Drift() []Drift { return c.drift.list() }

// driftKey identifies one kind of drift.
type driftKey struct {
	ep              Endpoint
	path, want, got string
}

// driftRecorder counts the drift seen by one Client. It is only touched when an answer
// needed the lenient decoder.
type driftRecorder struct {
	log *zap.Logger // nil: no log

	mu   sync.Mutex
	seen map[driftKey]int64
}

func (r *driftRecorder) add(k driftKey) {
	r.mu.Lock()
	if r.seen == nil {
		r.seen = make(map[driftKey]int64)
	}
	r.seen[k]++
	first := r.seen[k] == 1
	r.mu.Unlock()
	if first && r.log != nil {
		r.log.Warn("partner answer has a value of an unexpected type; tolerated",
			zap.String("endpoint", string(k.ep)), zap.String("path", k.path),
			zap.String("want", k.want), zap.String("got", k.got))
	}
}

func (r *driftRecorder) list() []Drift {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Drift, 0, len(r.seen))
	for k, n := range r.seen {
		out = append(out, Drift{Endpoint: k.ep, Path: k.path, Want: k.want, Got: k.got, Count: n})
	}
	slices.SortFunc(out, func(a, b Drift) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Want, b.Want), cmp.Compare(a.Got, b.Got))
	})
	return out
}

// driftSink receives the drift found while decoding one answer of ep. It is passed by value
// so that the fast path allocates nothing for it; the zero value drops what it gets.
type driftSink struct {
	ep  Endpoint
	rec *driftRecorder
}

func (s driftSink) add(path, want, got string) {
	if s.rec != nil {
		s.rec.add(driftKey{ep: s.ep, path: path, want: want, got: got})
	}
}

// fieldTag is what the lenient decoder (and internal/partnercheck) know of one struct field.
type fieldTag struct {
	name   string // JSON name
	index  int
	strict bool // the saga relies on it: a value that does not fit fails the decode
	flag   bool // an Integer 0/1 switch that may come as a Boolean or a string
	omit   bool // omitempty
}

var fieldTags sync.Map // reflect.Type -> []fieldTag

// fieldsOf returns the JSON fields of struct type t (exported, tagged or not; embedded
// structs are not flattened: the decoded types have none).
func fieldsOf(t reflect.Type) []fieldTag {
	if v, ok := fieldTags.Load(t); ok {
		return v.([]fieldTag)
	}
	var out []fieldTag
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		p := strings.Split(f.Tag.Get("partner"), ",")
		out = append(out, fieldTag{
			name:   name,
			index:  i,
			strict: slices.Contains(p, "strict"),
			flag:   slices.Contains(p, "flag"),
			omit:   slices.Contains(strings.Split(opts, ","), "omitempty"),
		})
	}
	fieldTags.Store(t, out)
	return out
}

// decodeLenient decodes raw into v (addressable) after json.Unmarshal refused it: struct
// fields one by one, list items one by one. A field whose value does not fit is left zero
// and reported to d, unless it is strict: then the decode fails, naming the field.
func decodeLenient(raw json.RawMessage, v reflect.Value, path string, d driftSink) error {
	t := v.Type()
	switch {
	case isNull(raw):
		v.SetZero()
		return nil
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalerType):
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return kindError(path, "object", raw)
		}
		v.SetZero()
		for _, f := range fieldsOf(t) {
			fr, ok := lookup(obj, f.name)
			if !ok {
				continue
			}
			fv := v.Field(f.index)
			fp := joinPath(path, f.name)
			if err := json.Unmarshal(fr, fv.Addr().Interface()); err == nil {
				continue
			}
			fv.SetZero()
			if f.flag && fv.CanInt() {
				if n, ok := flagValue(fr); ok {
					fv.SetInt(n)
					d.add(fp, "number", rawKind(fr))
					continue
				}
			}
			err := decodeLenient(fr, fv, fp, d)
			if err == nil {
				continue
			}
			fv.SetZero()
			if f.strict {
				return err
			}
			d.add(fp, wantOf(fv.Type(), f.flag), rawKind(fr))
		}
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return kindError(path, "array", raw)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if err := json.Unmarshal(it, s.Index(i).Addr().Interface()); err == nil {
				continue
			}
			if err := decodeLenient(it, s.Index(i), path+"[]", d); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
		return kindError(path, wantOf(t, false), raw)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// lookup finds key in obj as encoding/json does: exactly, else case-insensitively.
func lookup(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// FlagValue reads an Integer 0/1 switch as fulfil decodes it: a number, a numeric string, or
// a Boolean; ok is false for anything else. `fulfil partner check` uses it too.
func FlagValue(raw json.RawMessage) (n int64, ok bool) { return flagValue(raw) }

func flagValue(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	switch s {
	case "true":
		return 1, true
	case "false":
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// fieldError is a strict field whose value does not fit.
type fieldError struct {
	path, want, got string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%s: want %s, got %s", cmp.Or(e.path, "(result)"), e.want, e.got)
}

func kindError(path, want string, raw json.RawMessage) error {
	return &fieldError{path: path, want: want, got: rawKind(raw)}
}

// rawKind names the JSON kind of a raw value, as `fulfil partner check` does.
func rawKind(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "invalid JSON"
	}
	return jsonKind(v)
}

// wantOf names the JSON kinds a Go type takes, in the words of `fulfil partner check`'s findings.
func wantOf(t reflect.Type, flag bool) string {
	switch t {
	case typeID, typeMillis:
		return "integer or numeric string"
	case typeFlexString:
		return "string or number"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if flag {
			return "number"
		}
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// Types whose decoding is more tolerant than their kind.
var (
	typeID         = reflect.TypeFor[ID]()
	typeMillis     = reflect.TypeFor[Millis]()
	typeFlexString = reflect.TypeFor[FlexString]()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// JSONKind names the kind of a JSON value decoded with UseNumber ("integer", "float",
// "numeric string", "boolean", ...), telling integers from other numbers: the words of a drift
// report, also used by `fulfil partner check`.
func JSONKind(v any) string { return jsonKind(v) }

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		if _, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return "numeric string"
		}
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			return "float"
		}
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return "integer out of range"
		}
		if strings.HasPrefix(s, "-") {
			return "negative integer"
		}
		return "integer"
	}
	return fmt.Sprintf("%T", v)
}
