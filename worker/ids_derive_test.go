package worker

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestDeriveIsUUIDv5 checks derive against uuid.NewSHA1 over the parts joined with NUL, for
// parts short and long (past derive's stack buffer), and pins the progress and message IDs,
// which TestIDsGolden does not reach.
func TestDeriveIsUUIDv5(t *testing.T) {
	long := strings.Repeat("k", 300)
	for _, parts := range [][]string{{"saga", "k"}, {"progress", "shop-eu-order-100231", "create_order", "done"}, {""}, {"", ""},
		{"progress", long, "create_order", "retrying", "2", "3"}, {"unicode", "ünï©ødé 日本", "\x00"}} {
		want := uuid.NewSHA1(namespace, []byte(strings.Join(parts, "\x00"))).String()
		if got := derive(parts...); got != want {
			t.Errorf("derive(%q) = %s, want %s", parts, got, want)
		}
	}
	golden := []struct{ name, got, want string }{
		{"progress done", progressMsgID("shop-eu-order-100231", "create_order", "done", 1, 1), "f691ddf1-2dcf-55c1-835e-b82951159183"},
		{"progress retrying", progressMsgID("shop-eu-order-100231", "create_order", "retrying", 2, 3), "9f1a0693-ac12-598e-b088-d5681b6777a5"},
		{"conflict", messageMsgID("conflict", "k", 7), "9930d6ab-480a-58e4-ae60-bfe0c25c7cfb"},
	}
	for _, g := range golden {
		if g.got != g.want {
			t.Errorf("%s = %s, want %s", g.name, g.got, g.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = derive("progress", "shop-eu-order-100231", "create_order", "done") }); n > 1 {
		t.Errorf("derive allocates %v times, want 1 (the string)", n)
	}
}
