package messages

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSchemaLimits checks that the request's JSON Schema states the limits of the Go constants.
func TestSchemaLimits(t *testing.T) {
	root := loadSchema(t, SchemaRequest)
	props := root["properties"].(map[string]any)
	defs := root["$defs"].(map[string]any)
	service := defs["serviceRef"].(map[string]any)["properties"].(map[string]any)
	tests := []struct {
		where   string
		schema  any
		keyword string
		want    int
	}{
		{"idempotencyKey", props["idempotencyKey"], "minLength", 1},
		{"idempotencyKey", props["idempotencyKey"], "maxLength", MaxKeyLength},
		{"productNo", props["productNo"], "minLength", 1},
		{"productNo", props["productNo"], "maxLength", MaxProductNoLength},
		{"quantity", props["quantity"], "minimum", MinQuantity},
		{"quantity", props["quantity"], "maximum", MaxQuantity},
		{"years", props["years"], "minimum", 0}, // 0 and absent mean DefaultYears
		{"years", props["years"], "maximum", MaxYears},
		{"poNumber", props["poNumber"], "maxLength", MaxPONumberLength},
		{"$defs/name", defs["name"], "minLength", 1},
		{"$defs/name", defs["name"], "maxLength", MaxNameLength},
		{"$defs/email", defs["email"], "maxLength", MaxEmailLength},
		{"services[].quantity", service["quantity"], "minimum", 0},
		{"services[].quantity", service["quantity"], "maximum", MaxQuantity},
	}
	for _, tt := range tests {
		v, _ := tt.schema.(map[string]any)[tt.keyword].(interface{ String() string })
		if v == nil || v.String() != strconv.Itoa(tt.want) {
			t.Errorf("%s: %s = %v, want %d", tt.where, tt.keyword, v, tt.want)
		}
	}
	if MinYears != 1 || DefaultYears != MinYears {
		t.Errorf("MinYears %d, DefaultYears %d: the schema's years minimum 0 stands for the default 1", MinYears, DefaultYears)
	}
	desc := props["idempotencyKey"].(map[string]any)["description"].(string)
	if want := fmt.Sprintf("1-%d printable ASCII characters", MaxKeyLength); !strings.Contains(desc, want) {
		t.Errorf("idempotencyKey description %q lacks %q", desc, want)
	}
}

// TestContractLimits checks that docs/contract.md states the limits of the Go constants.
func TestContractLimits(t *testing.T) {
	b, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		fmt.Sprintf("At most %d KiB (%s bytes)", MaxRequestBytes>>10, thousands(MaxRequestBytes)),
		fmt.Sprintf("| `idempotencyKey` | string | yes | 1–%d printable ASCII characters", MaxKeyLength),
		fmt.Sprintf("| `productId` | ID | no | default `%d`", DefaultProductID),
		fmt.Sprintf("1–%d letters, digits or `-`", MaxProductNoLength),
		fmt.Sprintf("an e-mail address (≤ %d characters)", MaxEmailLength),
		fmt.Sprintf("`name` (≤ %d characters", MaxNameLength),
		fmt.Sprintf("optional `quantity` 0–%s", thousands(MaxQuantity)),
		fmt.Sprintf("| `quantity` | integer | yes | %d–%s", MinQuantity, thousands(MaxQuantity)),
		fmt.Sprintf("| `years` | integer | no | %d–%d; absent or `0` means %d", MinYears, MaxYears, DefaultYears),
		fmt.Sprintf("at most %d printable ASCII characters", MaxPONumberLength),
		fmt.Sprintf("quantity: must be between %d and %d", MinQuantity, MaxQuantity),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/contract.md lacks %q", want)
		}
	}
}

// thousands writes n with a comma between groups of three digits, as the contract does.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestLimitsAreTheContract pins the limits: they are part of the v1 contract, and a change to
// one is a change to the contract (and to every producer), not a refactoring. Every other test
// uses the constants.
func TestLimitsAreTheContract(t *testing.T) {
	got := []int{MaxRequestBytes, MaxKeyLength, MinQuantity, MaxQuantity, MinYears, MaxYears, DefaultYears,
		MaxNameLength, MaxProductNoLength, MaxPONumberLength, MaxEmailLength, DefaultProductID}
	want := []int{65536, 128, 1, 100000, 1, 5, 1, 128, 64, 64, 254, 12}
	if !slices.Equal(got, want) {
		t.Errorf("limits %v, want %v", got, want)
	}
}
