package partnercheck

// Comparison of a response's result with the Go type its decoder fills, and redaction of
// response bodies.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/fulfil/fulfil/partnerclient"
)

// resultShape says how a decoder reads an endpoint's result.
type resultShape int

const (
	shapeObject  resultShape = iota // a JSON object decoded into typ
	shapePage                       // the paging wrapper, whose results items are typ
	shapeList                       // a list of typ, as the client's list decoder reads it
	shapeBoolean                    // a Boolean, or an object holding it (typ)
)

// resultSpec is what the decoder of one endpoint expects.
type resultSpec struct {
	typ   reflect.Type
	shape resultShape
}

// The wire forms partnerclient decodes before it fills its own types; they mirror the
// unexported types of partnerclient/decode.go, tags included.
type (
	// tokenWire is Token with an expiresIn that may be a number.
	tokenWire struct {
		AccessToken  string                   `json:"token" partner:"strict"`
		RefreshToken string                   `json:"refreshToken"`
		TokenHead    string                   `json:"tokenHead"`
		ExpiresIn    partnerclient.FlexString `json:"expiresIn"`
	}
	// pageWire is Page with counters that may be strings.
	pageWire struct {
		Count     partnerclient.ID `json:"count" partner:"strict"`
		PageNo    partnerclient.ID `json:"pageNo" partner:"strict"`
		PageSize  partnerclient.ID `json:"pageSize" partner:"strict"`
		Results   json.RawMessage  `json:"results" partner:"strict"`
		Total     partnerclient.ID `json:"total" partner:"strict"`
		TotalPage partnerclient.ID `json:"totalPage" partner:"strict"`
	}
	// autoRenewWire and enableWire are the object forms of the Boolean results.
	autoRenewWire struct {
		AutoRenew partnerclient.FlexString `json:"autoRenew"`
	}
	enableWire struct {
		Result partnerclient.FlexString `json:"result"`
	}
)

// resultSpecs holds every endpoint; a test checks that none is left out.
var resultSpecs = map[partnerclient.Endpoint]resultSpec{
	partnerclient.EndpointToken:             {reflect.TypeFor[tokenWire](), shapeObject},
	partnerclient.EndpointProductList:       {reflect.TypeFor[partnerclient.Product](), shapePage},
	partnerclient.EndpointProductDetails:    {reflect.TypeFor[partnerclient.Product](), shapeObject},
	partnerclient.EndpointPurchaseInfo:      {reflect.TypeFor[partnerclient.PurchaseInfo](), shapeObject},
	partnerclient.EndpointBillingContacts:   {reflect.TypeFor[partnerclient.BillingContact](), shapeList},
	partnerclient.EndpointSubordinateUsers:  {reflect.TypeFor[partnerclient.SubordinateUser](), shapeList},
	partnerclient.EndpointCreateOrder:       {reflect.TypeFor[partnerclient.OrderResult](), shapeObject},
	partnerclient.EndpointOrderList:         {reflect.TypeFor[partnerclient.OrderSummary](), shapePage},
	partnerclient.EndpointOrderDetails:      {reflect.TypeFor[partnerclient.OrderDetails](), shapeObject},
	partnerclient.EndpointAutoRenewStatus:   {reflect.TypeFor[autoRenewWire](), shapeBoolean},
	partnerclient.EndpointEnableAutoRenewal: {reflect.TypeFor[enableWire](), shapeBoolean},
	partnerclient.EndpointActivationCode:    {reflect.TypeFor[partnerclient.ActivationCode](), shapeObject},
}

// listKeys are the keys under which a list result may be wrapped, as partnerclient's list
// decoder looks for them.
var listKeys = []string{"results", "list", "records", "items", "data", "rows"}

// envelope is the part of a response body the check reads.
type envelope struct {
	Code      partnerclient.FlexString `json:"code"`
	RequestID string                   `json:"-"`
	ReqID     partnerclient.FlexString `json:"requestId"`
	Result    json.RawMessage          `json:"result"`
}

// decodeEnvelope decodes a response body. It fails unless the body is a JSON object.
func decodeEnvelope(body []byte) (envelope, error) {
	var env envelope
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return env, errors.New("body is not a JSON object")
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	env.RequestID = string(env.ReqID)
	return env, nil
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// checkBody compares the result of a whole response body of ep with the decoder's Go
// type. It fails when the body is not a success envelope.
func checkBody(ep partnerclient.Endpoint, body []byte) ([]Finding, error) {
	if _, ok := resultSpecs[ep]; !ok {
		return nil, fmt.Errorf("no decoder for endpoint %q", ep)
	}
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	if string(env.Code) != partnerclient.CodeSuccess {
		return nil, fmt.Errorf("envelope code %q, want %q", env.Code, partnerclient.CodeSuccess)
	}
	return compareResult(ep, env.Result), nil
}

// compareResult compares a result of ep with the Go type its decoder fills. Findings are
// sorted by path and appear once however many list items share them.
func compareResult(ep partnerclient.Endpoint, raw json.RawMessage) []Finding {
	spec, ok := resultSpecs[ep]
	if !ok || isNull(raw) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []Finding{{Kind: FindingMismatch, Want: "JSON", Got: "invalid JSON"}}
	}
	c := &comparer{seen: make(map[Finding]bool)}
	const strict = true // the result itself must fit
	switch spec.shape {
	case shapeObject:
		c.value("", v, spec.typ, strict)
	case shapePage:
		c.value("", v, reflect.TypeFor[pageWire](), strict)
		if obj, ok := v.(map[string]any); ok {
			c.list("results", obj["results"], spec.typ)
		}
	case shapeList:
		c.list("", v, spec.typ)
	case shapeBoolean:
		if _, ok := v.(map[string]any); ok {
			c.value("", v, spec.typ, strict)
		}
	}
	slices.SortFunc(c.found, func(a, b Finding) int {
		return strings.Compare(a.Path+"\x00"+string(a.Kind), b.Path+"\x00"+string(b.Kind))
	})
	return c.found
}

type comparer struct {
	found []Finding
	seen  map[Finding]bool
}

func (c *comparer) add(f Finding) {
	if !c.seen[f] {
		c.seen[f] = true
		c.found = append(c.found, f)
	}
}

// mismatch reports a value its Go type does not fit: a kind mismatch where the saga relies
// on the value (strict), drift elsewhere, which the lenient decoder leaves zero.
func (c *comparer) mismatch(path, want string, v any, strict bool) {
	kind := FindingDrift
	if strict {
		kind = FindingMismatch
	}
	c.add(Finding{Kind: kind, Path: path, Want: want, Got: partnerclient.JSONKind(v)})
}

// list compares the items of a list result as the client's list decoder finds them: an array, an
// object wrapping one, a single object, or null.
func (c *comparer) list(path string, v any, item reflect.Type) {
	switch x := v.(type) {
	case nil:
	case []any:
		for _, it := range x {
			c.value(path+"[]", it, item, true)
		}
	case map[string]any:
		if key, inner, ok := wrappedListValue(x); ok {
			c.list(joinPath(path, key), inner, item)
			return
		}
		c.value(path, x, item, true)
	default:
		c.mismatch(path, "array or object", v, true)
	}
}

// wrappedListValue finds a list wrapped in a decoded object, as the client does.
func wrappedListValue(obj map[string]any) (string, any, bool) {
	isList := func(v any) bool {
		_, arr := v.([]any)
		return arr || v == nil
	}
	for _, k := range listKeys {
		if v, ok := obj[k]; ok && isList(v) {
			return k, v, true
		}
	}
	if len(obj) == 1 {
		for k, v := range obj {
			if isList(v) {
				return k, v, true
			}
		}
	}
	return "", nil, false
}

// Types whose decoding is more tolerant than their kind.
var (
	typeID         = reflect.TypeFor[partnerclient.ID]()
	typeMillis     = reflect.TypeFor[partnerclient.Millis]()
	typeFlexString = reflect.TypeFor[partnerclient.FlexString]()
	typeRaw        = reflect.TypeFor[json.RawMessage]()
)

// value compares a decoded JSON value (numbers as json.Number) with the Go type t. null
// fits every type: it decodes as the zero value. strict says whether the saga relies on
// the value (partner:"strict"): a misfit there is a kind mismatch, elsewhere drift.
func (c *comparer) value(path string, v any, t reflect.Type, strict bool) {
	if v == nil || t == typeRaw {
		return
	}
	switch t {
	case typeID, typeMillis:
		if !fitsID(v) {
			c.mismatch(path, "integer or numeric string", v, strict)
		}
		return
	case typeFlexString:
		switch v.(type) {
		case map[string]any, []any:
			c.mismatch(path, "string or number", v, strict)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.value(path, v, t.Elem(), strict)
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.mismatch(path, "string", v, strict)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := v.(json.Number); !ok || !fitsInt(n, t.Bits()) {
			c.mismatch(path, "integer", v, strict)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := v.(json.Number); !ok || !fitsUint(n, t.Bits()) {
			c.mismatch(path, "non-negative integer", v, strict)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.mismatch(path, "number", v, strict)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.mismatch(path, "boolean", v, strict)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			c.mismatch(path, "array", v, strict)
			return
		}
		for _, it := range arr {
			c.value(path+"[]", it, t.Elem(), strict)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			c.mismatch(path, "object", v, strict)
			return
		}
		for _, it := range obj {
			c.value(path+".*", it, t.Elem(), strict)
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			c.mismatch(path, "object", v, strict)
			return
		}
		c.object(path, obj, t, strict)
	}
}

// flag compares the value of an Integer 0/1 switch: a Boolean or a numeric string is
// taken by the decoder but reported as drift; anything else does not fit.
func (c *comparer) flag(path string, v any, strict bool) {
	switch x := v.(type) {
	case nil:
	case json.Number:
		if !fitsInt(x, 64) {
			c.mismatch(path, "number", v, strict)
		}
	case bool:
		c.add(Finding{Kind: FindingDrift, Path: path, Want: "number", Got: partnerclient.JSONKind(v)})
	case string:
		if _, ok := partnerclient.FlagValue(json.RawMessage(strconv.Quote(x))); ok {
			c.add(Finding{Kind: FindingDrift, Path: path, Want: "number", Got: partnerclient.JSONKind(v)})
			return
		}
		c.mismatch(path, "number", v, strict)
	default:
		c.mismatch(path, "number", v, strict)
	}
}

// object reports the keys of obj that t has no field for, the fields of t (other than
// omitempty ones) that obj lacks, and compares the values of the others. A field is strict
// when its container is and its tag says so.
func (c *comparer) object(path string, obj map[string]any, t reflect.Type, strict bool) {
	fields := jsonFields(t)
	for key, v := range obj {
		f, ok := fields[key]
		if !ok {
			c.add(Finding{Kind: FindingUnexpected, Path: joinPath(path, key)})
			continue
		}
		if f.flag {
			c.flag(joinPath(path, key), v, strict && f.strict)
			continue
		}
		c.value(joinPath(path, key), v, f.typ, strict && f.strict)
	}
	for name, f := range fields {
		if _, ok := obj[name]; !ok && !f.optional {
			c.add(Finding{Kind: FindingMissing, Path: joinPath(path, name)})
		}
	}
}

type jsonField struct {
	typ      reflect.Type
	optional bool // omitempty
	strict   bool // partner:"strict": the saga relies on it
	flag     bool // partner:"flag": an Integer 0/1 switch
}

// jsonFields returns the fields of struct type t by JSON name, as encoding/json sees
// them (untagged embedded structs are flattened).
func jsonFields(t reflect.Type) map[string]jsonField {
	fields := make(map[string]jsonField)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, ef := range jsonFields(f.Type) {
				if _, ok := fields[n]; !ok {
					fields[n] = ef
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := strings.Split(f.Tag.Get("partner"), ",")
		fields[name] = jsonField{typ: f.Type, optional: slices.Contains(strings.Split(opts, ","), "omitempty"),
			strict: slices.Contains(p, "strict"), flag: slices.Contains(p, "flag")}
	}
	return fields
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fitsID reports whether ID.UnmarshalJSON takes v.
func fitsID(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return fitsInt(x, 64)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return true
		}
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	}
	return false
}

func fitsInt(n json.Number, bits int) bool {
	_, err := strconv.ParseInt(n.String(), 10, bits)
	return err == nil
}

func fitsUint(n json.Number, bits int) bool {
	_, err := strconv.ParseUint(n.String(), 10, bits)
	return err == nil
}

// redacted replaces secrets in saved bodies.
const redacted = "REDACTED"

// tokenKeys are the fields of a token response that hold a token.
var tokenKeys = []string{"token", "refreshToken", "accessToken", "access_token", "refresh_token"}

// redactBody replaces every occurrence of a secret in body by "REDACTED", and, in a
// token response, every string under a token key. A JSON body is re-encoded indented
// with sorted keys; any other body has its secrets replaced as text.
func redactBody(body []byte, tokenResponse bool, secrets []string) []byte {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return []byte(replaceSecrets(string(body), secrets))
	}
	v = redactValue(v, tokenResponse, secrets)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return []byte(replaceSecrets(string(body), secrets))
	}
	return b.Bytes()
}

func redactValue(v any, tokenResponse bool, secrets []string) any {
	switch x := v.(type) {
	case string:
		return replaceSecrets(x, secrets)
	case []any:
		for i := range x {
			x[i] = redactValue(x[i], tokenResponse, secrets)
		}
	case map[string]any:
		for k, val := range x {
			if _, isString := val.(string); isString && tokenResponse && slices.Contains(tokenKeys, k) {
				x[k] = redacted
				continue
			}
			x[k] = redactValue(val, tokenResponse, secrets)
		}
	}
	return v
}

func replaceSecrets(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}
