package idempotency_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
)

// TestWriteErrRemembersFailedWrites: a write the bucket refuses is remembered until a write
// succeeds again, a probe notices both, and List never shows the probe's record.
func TestWriteErrRemembersFailedWrites(t *testing.T) {
	e := newEnv(t)
	if err := e.store.CheckWrites(ctx(t), time.Minute); err != nil {
		t.Fatalf("CheckWrites on a fresh bucket: %v", err)
	}
	e.acquire(t, testKey, "w1")
	recs, err := e.store.List(ctx(t))
	if err != nil || len(recs) != 1 || recs[0].Key != testKey {
		t.Fatalf("List = %+v, %v; want only %s (not the probe)", recs, err, testKey)
	}

	// A bucket whose stream refuses every write.
	setMaxMsgSize := func(n int32) {
		t.Helper()
		kv, err := e.js.KeyValue(ctx(t), idempotency.DefaultBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
		cfg.MaxMsgSize = n
		if _, err := e.js.UpdateStream(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	setMaxMsgSize(8)
	if _, err := e.store.Acquire(ctx(t), "second-key", testSID, testFP, testReq, "w1"); err == nil {
		t.Fatal("Acquire succeeded on a bucket that refuses writes")
	}
	err = e.store.WriteErr()
	var werr *idempotency.WriteError
	if !errors.As(err, &werr) || werr.Bucket != idempotency.DefaultBucket || werr.Since.IsZero() || werr.Err == nil {
		t.Fatalf("WriteErr = %v (%T), want a *WriteError on %s", err, err, idempotency.DefaultBucket)
	}
	if err := e.store.CheckWrites(ctx(t), time.Hour); err == nil {
		t.Error("CheckWrites = nil on a bucket that refuses writes: a failed last write must be probed again")
	}
	if err := e.store.WriteErr(); !errors.As(err, &werr) || werr.At.Before(werr.Since) {
		t.Errorf("after the probe: %v", err)
	}

	setMaxMsgSize(-1)
	if err := e.store.CheckWrites(ctx(t), time.Hour); err != nil {
		t.Errorf("CheckWrites after space came back: %v", err)
	}
	if err := e.store.WriteErr(); err != nil {
		t.Errorf("WriteErr after a successful write: %v", err)
	}
}
