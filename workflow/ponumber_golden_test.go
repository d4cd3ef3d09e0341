package workflow_test

import (
	"testing"

	"github.com/fulfil/fulfil/workflow"
)

// TestDefaultPONumberGolden pins the poNumber derived from a key. It is how the saga finds its
// order in the partner's order list after a lost reply: a change would make an upgraded worker
// miss an order placed by the previous version and buy again. docs/contract.md shows the first
// value. Never update the values here to make the test pass; see worker/ids.go.
func TestDefaultPONumberGolden(t *testing.T) {
	for key, want := range map[string]string{
		"shop-eu-order-100231": "FUL-B7BD28870BAFF7C87A2DBA68",
		"k":                    "FUL-8254C329A92850F6D539DD37",
		" spaced key ~":        "FUL-4DD31D4B8ABF7D75A6C889B5",
	} {
		if got := workflow.DefaultPONumber(key); got != want {
			t.Errorf("DefaultPONumber(%q) = %s, want %s", key, got, want)
		}
	}
}
