package worker_test

import (
	"testing"

	"github.com/fulfil/fulfil/worker"
)

// TestIDsGolden pins the derived IDs. They are on the wire and in the stores: the saga ID in
// every event and record, the outcome and replay IDs as Nats-Msg-Id in the events stream's
// duplicate window. A change makes an upgraded worker publish a second outcome for work a
// previous version finished, or tell consumers of one purchase two saga IDs. Never update the
// values here to make the test pass; see worker/ids.go.
func TestIDsGolden(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"SagaID(shop-eu-order-100231)", worker.SagaID("shop-eu-order-100231"), "6479bf3a-5fc3-5612-a86b-09de738b6a37"},
		{"SagaID(k)", worker.SagaID("k"), "3082ddfc-3401-5778-ade6-b9ce3ae89b38"},
		{"SagaID( spaced key ~)", worker.SagaID(" spaced key ~"), "84613cdc-6e76-54fd-bb32-4346dde7f0c6"},
		{"OutcomeMsgID", worker.OutcomeMsgID("shop-eu-order-100231", "completed", 42), "784efe85-31ae-5aae-b87f-cc9afc3aa05f"},
		{"ReplayMsgID", worker.ReplayMsgID("shop-eu-order-100231", 42), "31b7c60a-5ed9-5973-942d-7fccc4ca55d6"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}
