package messages

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidRequest matches every *ValidationError (errors.Is).
var ErrInvalidRequest = errors.New("invalid purchase request")

// Limits of the request fields beyond those in messages.go (see the note there: these
// constants are the only place the numbers are written).
const (
	MaxNameLength      = 128 // plan and service names, in characters
	MaxProductNoLength = 64
	MaxPONumberLength  = 64
	MaxEmailLength     = 254
)

// msgUTF8 is the problem of a string that is not valid UTF-8.
const msgUTF8 = "must be valid UTF-8 text"

// Problem is one thing wrong with a request. Field is a path such as "quantity",
// "plan.name" or "services[1].id"; it is empty for a problem with the whole message.
type Problem struct {
	Field   string
	Message string
}

// ValidationError lists everything wrong with a purchase request. A worker reports it as
// reason invalid_request.
type ValidationError struct {
	Problems []Problem
}

// Error names every wrong field, e.g.
// "invalid purchase request: quantity: must be between 1 and 100000; plan: required".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidRequest.Error())
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is reports whether target is ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// problems collects Problems; err returns nil when there are none.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Validate checks every rule of the contract and returns a *ValidationError listing all
// problems, or nil. Rules are applied to the normalized request (so "years" absent or 0 means
// 1, names and e-mails are trimmed) except the idempotency key, which is taken verbatim:
//
//   - idempotencyKey: 1 to MaxKeyLength printable ASCII characters (0x20–0x7E), not
//     beginning or ending with a space, because a key that differs only by surrounding blanks
//     is a different key to a producer but not to a reader;
//   - productId: positive (absent or 0 means 12);
//   - productNo: 1 to MaxProductNoLength letters, digits or hyphens;
//   - customerEmail and billingContact.email: a plausible e-mail address of at most
//     MaxEmailLength bytes;
//   - plan: required, with exactly one of id and name;
//   - services: each with exactly one of id and name, quantity 0 to MaxQuantity, no service twice
//     (names compared case-insensitively);
//   - quantity: MinQuantity to MaxQuantity; years: MinYears to MaxYears;
//   - billingContact: exactly one of id and email;
//   - poNumber: at most MaxPONumberLength printable ASCII characters;
//   - every id: a positive decimal integer that fits in 64 bits; every name: at most
//     MaxNameLength characters without control characters;
//   - every string: valid UTF-8 (a broken byte is never passed on as U+FFFD).
func (r PurchaseRequest) Validate() error {
	var ps problems
	if msg := keyProblem(r.IdempotencyKey); msg != "" {
		ps.add("idempotencyKey", "%s", msg)
	}
	n := r.Normalize()
	if n.ProductID <= 0 {
		ps.add("productId", "must be a positive integer")
	}
	if !utf8.ValidString(r.ProductNo) {
		ps.add("productNo", "%s", msgUTF8)
	} else if n.ProductNo != "" && !validProductNo(n.ProductNo) {
		ps.add("productNo", "must be 1 to %d letters, digits or hyphens", MaxProductNoLength)
	}
	// E-mails are checked for UTF-8 before normalization, which lower-cases them (and so
	// would turn a broken byte into U+FFFD).
	if !utf8.ValidString(r.CustomerEmail) {
		ps.add("customerEmail", "%s", msgUTF8)
	} else if n.CustomerEmail != "" && !validEmail(n.CustomerEmail) {
		ps.add("customerEmail", "must be an e-mail address")
	}
	if n.Plan == nil {
		ps.add("plan", "required")
	} else {
		ps.ref("plan", "name", n.Plan.ID, n.Plan.Name)
	}
	seen := make(map[string]int, len(n.Services))
	for i, s := range n.Services {
		path := fmt.Sprintf("services[%d]", i)
		ps.ref(path, "name", s.ID, s.Name)
		if s.Quantity < 0 || s.Quantity > MaxQuantity {
			ps.add(path+".quantity", "must be between 0 and %d", MaxQuantity)
		}
		id := "name:" + strings.ToLower(s.Name)
		if s.ID != "" {
			id = "id:" + string(s.ID)
		}
		if j, dup := seen[id]; dup {
			ps.add(path, "duplicates services[%d]", j)
		} else {
			seen[id] = i
		}
	}
	if n.Quantity < MinQuantity || n.Quantity > MaxQuantity {
		ps.add("quantity", "must be between %d and %d", MinQuantity, MaxQuantity)
	}
	if n.Years < MinYears || n.Years > MaxYears {
		ps.add("years", "must be between %d and %d", MinYears, MaxYears)
	}
	if c := n.BillingContact; c != nil {
		switch {
		case (c.ID == "") == (c.Email == ""):
			ps.add("billingContact", "give exactly one of id and email")
		case !utf8.ValidString(string(c.ID)):
			ps.add("billingContact.id", "%s", msgUTF8)
		case !utf8.ValidString(r.BillingContact.Email):
			ps.add("billingContact.email", "%s", msgUTF8)
		case c.ID != "" && !validID(c.ID):
			ps.add("billingContact.id", "must be a positive integer ID")
		case c.Email != "" && !validEmail(c.Email):
			ps.add("billingContact.email", "must be an e-mail address")
		}
	}
	if !utf8.ValidString(n.PONumber) {
		ps.add("poNumber", "%s", msgUTF8)
	} else if len(n.PONumber) > MaxPONumberLength || !printableASCII(n.PONumber) {
		ps.add("poNumber", "must be at most %d printable ASCII characters", MaxPONumberLength)
	}
	return ps.err()
}

// ref checks a reference that needs exactly one of an ID and a name.
func (ps *problems) ref(path, nameField string, id ID, name string) {
	switch {
	case (id == "") == (name == ""):
		ps.add(path, "give exactly one of id and %s", nameField)
	case !utf8.ValidString(string(id)):
		ps.add(path+".id", "%s", msgUTF8)
	case id != "" && !validID(id):
		ps.add(path+".id", "must be a positive integer ID")
	case name != "":
		if msg := nameProblem(name); msg != "" {
			ps.add(path+"."+nameField, "%s", msg)
		}
	}
}

// keyProblem says what is wrong with an idempotency key, or "".
func keyProblem(k string) string {
	switch {
	case k == "":
		return "required"
	case !utf8.ValidString(k):
		return msgUTF8
	case len(k) > MaxKeyLength:
		return fmt.Sprintf("must be at most %d characters", MaxKeyLength)
	case !printableASCII(k):
		return "must contain only printable ASCII characters"
	case k[0] == ' ' || k[len(k)-1] == ' ':
		return "must not begin or end with a space"
	}
	return ""
}

func nameProblem(s string) string {
	if !utf8.ValidString(s) {
		return msgUTF8
	}
	if utf8.RuneCountInString(s) > MaxNameLength {
		return fmt.Sprintf("must be at most %d characters", MaxNameLength)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must not contain control characters"
	}
	return ""
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validID reports whether id is a positive decimal integer that fits in an int64.
func validID(id ID) bool {
	if !isDigits(string(id)) {
		return false
	}
	v, err := strconv.ParseUint(string(id), 10, 64)
	return err == nil && v > 0 && v <= math.MaxInt64
}

func validProductNo(s string) bool {
	if len(s) > MaxProductNoLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

// validEmail is a plausibility check, not RFC 5322: one "@", a local part of printable ASCII
// without spaces, and a domain of at least two dot-separated labels of letters, digits and
// hyphens.
func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || len(s) > MaxEmailLength || local == "" || len(local) > 64 || strings.ContainsAny(local, " @") ||
		!printableASCII(local) {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || !validLabel(l) {
			return false
		}
	}
	return true
}

func validLabel(l string) bool {
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
