package idempotency_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
)

func TestAcquireNewKey(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")

	want := idempotency.Record{
		Key:         testKey,
		SagaID:      testSID,
		Fingerprint: testFP,
		Request:     testReq,
		Status:      idempotency.StatusRunning,
		Lease:       idempotency.Lease{Owner: "worker-a", Epoch: 1, Expires: e.clock.Now().Add(idempotency.DefaultLeaseTTL)},
		Deliveries:  1,
		CreatedAt:   e.clock.Now(),
		UpdatedAt:   e.clock.Now(),
	}
	if got := h.Record(); !reflect.DeepEqual(got, want) {
		t.Errorf("handle record = %+v\nwant %+v", got, want)
	}
	if got := e.get(t, testKey); !reflect.DeepEqual(got, want) {
		t.Errorf("stored record = %+v\nwant %+v", got, want)
	}
	if h.Epoch() != 1 {
		t.Errorf("Epoch = %d, want 1", h.Epoch())
	}
}

// TestAcquireRefused checks each reason Acquire refuses an existing key, and that a refusal
// leaves the record untouched.
func TestAcquireRefused(t *testing.T) {
	tests := []struct {
		name      string
		finish    bool
		advance   time.Duration
		giveFP    string
		giveOwner string
		want      error
	}{
		{name: "live lease of another owner", giveFP: testFP, giveOwner: "worker-b", want: idempotency.ErrLeased},
		{name: "lease one tick before expiry", advance: idempotency.DefaultLeaseTTL - time.Nanosecond, giveFP: testFP, giveOwner: "worker-b", want: idempotency.ErrLeased},
		{name: "different fingerprint while running", advance: time.Hour, giveFP: "fp-2", giveOwner: "worker-b", want: idempotency.ErrConflict},
		{name: "finished", finish: true, giveFP: testFP, giveOwner: "worker-b", want: idempotency.ErrFinished},
		{name: "finished, same owner", finish: true, giveFP: testFP, giveOwner: "worker-a", want: idempotency.ErrFinished},
		{name: "different fingerprint after finish", finish: true, giveFP: "fp-2", giveOwner: "worker-b", want: idempotency.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := e.acquire(t, testKey, "worker-a")
			if tt.finish {
				if err := h.Finish(ctx(t), idempotency.StatusCompleted, "purchase.completed", []byte(`{"orderNo":"ZC1"}`), 7); err != nil {
					t.Fatalf("Finish: %v", err)
				}
			}
			e.clock.Advance(tt.advance)
			before, rev := e.get(t, testKey), e.revision(t, testKey)

			_, err := e.store.Acquire(ctx(t), testKey, "other-saga", tt.giveFP, []byte(`{}`), tt.giveOwner)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Acquire error = %v, want %v", err, tt.want)
			}
			if after := e.get(t, testKey); !reflect.DeepEqual(after, before) {
				t.Errorf("record changed:\n got %+v\nwant %+v", after, before)
			}
			if got := e.revision(t, testKey); got != rev {
				t.Errorf("revision = %d, want %d (nothing written)", got, rev)
			}
		})
	}
}

func TestAcquireFinishedReturnsOutcome(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	outcome := json.RawMessage(`{"type":"purchase.completed","orderNo":"ZC3206258125675945984"}`)
	if err := h.Finish(ctx(t), idempotency.StatusCompleted, "purchase.completed", outcome, 42); err != nil {
		t.Fatalf("Finish: %v", err)
	}

	_, err := e.store.Acquire(ctx(t), testKey, testSID, testFP, testReq, "worker-b")
	var fin *idempotency.FinishedError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &fin) {
		t.Fatalf("Acquire error = %v, want *FinishedError", err)
	}
	rec := fin.Record
	if rec.Status != idempotency.StatusCompleted || rec.OutcomeType != "purchase.completed" || rec.OutcomeSeq != 42 || string(rec.Outcome) != string(outcome) {
		t.Errorf("finished record = status %q type %q seq %d outcome %s", rec.Status, rec.OutcomeType, rec.OutcomeSeq, rec.Outcome)
	}
	if !rec.Finished() {
		t.Error("Finished() = false, want true")
	}
}

func TestAcquireLeasedError(t *testing.T) {
	e := newEnv(t)
	e.acquire(t, testKey, "worker-a")
	_, err := e.store.Acquire(ctx(t), testKey, testSID, testFP, testReq, "worker-b")
	var leased *idempotency.LeasedError
	if !errors.As(err, &leased) {
		t.Fatalf("Acquire error = %v, want *LeasedError", err)
	}
	want := idempotency.LeasedError{Key: testKey, Owner: "worker-a", Expires: e.clock.Now().Add(idempotency.DefaultLeaseTTL)}
	if !reflect.DeepEqual(*leased, want) {
		t.Errorf("LeasedError = %+v, want %+v", *leased, want)
	}
}

func TestAcquireConflictError(t *testing.T) {
	e := newEnv(t)
	e.acquire(t, testKey, "worker-a")
	_, err := e.store.Acquire(ctx(t), testKey, "other-saga", "fp-2", []byte(`{}`), "worker-b")
	var conflict *idempotency.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("Acquire error = %v, want *ConflictError", err)
	}
	if conflict.Record.SagaID != testSID || conflict.Record.Fingerprint != testFP {
		t.Errorf("conflict record = saga %q fingerprint %q, want the first request's", conflict.Record.SagaID, conflict.Record.Fingerprint)
	}
}

func TestTakeover(t *testing.T) {
	tests := []struct {
		name      string
		advance   time.Duration
		giveOwner string
	}{
		{name: "expired lease", advance: idempotency.DefaultLeaseTTL + time.Second, giveOwner: "worker-b"},
		{name: "exactly at expiry", advance: idempotency.DefaultLeaseTTL, giveOwner: "worker-b"},
		{name: "live lease of the same owner", giveOwner: "worker-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			first := e.acquire(t, testKey, "worker-a")
			if err := first.SaveState(ctx(t), []byte(`{"step":1}`)); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tt.advance)

			h := e.acquire(t, testKey, tt.giveOwner)
			rec := h.Record()
			if h.Epoch() != 2 || rec.Deliveries != 2 || rec.Lease.Owner != tt.giveOwner {
				t.Errorf("after takeover: epoch %d deliveries %d owner %q, want 2, 2, %q", h.Epoch(), rec.Deliveries, rec.Lease.Owner, tt.giveOwner)
			}
			if string(rec.State) != `{"step":1}` || rec.SagaID != testSID {
				t.Errorf("takeover lost the checkpoint: state %s saga %q", rec.State, rec.SagaID)
			}
			if want := e.clock.Now().Add(idempotency.DefaultLeaseTTL); !rec.Lease.Expires.Equal(want) {
				t.Errorf("lease expires %v, want %v", rec.Lease.Expires, want)
			}
		})
	}
}

// TestFencing checks that a stale handle cannot write after another owner took over, whatever
// it tries, and that the successor's data stays intact.
func TestFencing(t *testing.T) {
	tests := []struct {
		name string
		give func(*idempotency.Handle, context.Context) error
	}{
		{name: "Update", give: func(h *idempotency.Handle, ctx context.Context) error {
			return h.Update(ctx, func(r *idempotency.Record) error { r.State = []byte(`"stale"`); return nil })
		}},
		{name: "SaveState", give: func(h *idempotency.Handle, ctx context.Context) error { return h.SaveState(ctx, []byte(`"stale"`)) }},
		{name: "Renew", give: (*idempotency.Handle).Renew},
		{name: "Release", give: (*idempotency.Handle).Release},
		{name: "Finish", give: func(h *idempotency.Handle, ctx context.Context) error {
			return h.Finish(ctx, idempotency.StatusFailed, "purchase.failed", []byte(`{"stale":true}`), 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			stale := e.acquire(t, testKey, "worker-a")
			e.clock.Advance(idempotency.DefaultLeaseTTL + time.Second) // worker-a paused
			successor := e.acquire(t, testKey, "worker-b")
			if err := successor.SaveState(ctx(t), []byte(`{"step":"successor"}`)); err != nil {
				t.Fatal(err)
			}
			want := e.get(t, testKey)

			if err := tt.give(stale, ctx(t)); !errors.Is(err, idempotency.ErrLeaseLost) {
				t.Fatalf("stale write error = %v, want ErrLeaseLost", err)
			}
			if got := e.get(t, testKey); !reflect.DeepEqual(got, want) {
				t.Errorf("successor's record changed:\n got %+v\nwant %+v", got, want)
			}
			if err := successor.Renew(ctx(t)); err != nil {
				t.Errorf("successor Renew after the stale write: %v", err)
			}
		})
	}
}

func TestConcurrentAcquireOneWinner(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, e env)
		want    uint64 // epoch of the winner
	}{
		{name: "new key", prepare: func(*testing.T, env) {}, want: 1},
		{name: "expired lease", prepare: func(t *testing.T, e env) {
			e.acquire(t, testKey, "crashed")
			e.clock.Advance(time.Hour)
		}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.prepare(t, e)
			const n = 20
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []*idempotency.Handle
				others  []error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					h, err := e.store.Acquire(t.Context(), testKey, testSID, testFP, testReq, fmt.Sprintf("worker-%d", i))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						others = append(others, err)
						return
					}
					winners = append(winners, h)
				})
			}
			close(start)
			wg.Wait()

			if len(winners) != 1 {
				t.Fatalf("%d winners, want 1 (errors: %v)", len(winners), others)
			}
			for _, err := range others {
				if !errors.Is(err, idempotency.ErrLeased) {
					t.Errorf("loser error = %v, want ErrLeased", err)
				}
			}
			if winners[0].Epoch() != tt.want {
				t.Errorf("winner epoch = %d, want %d", winners[0].Epoch(), tt.want)
			}
			if got := e.get(t, testKey).Lease; got.Owner != winners[0].Record().Lease.Owner || got.Epoch != tt.want {
				t.Errorf("stored lease = %+v, want the winner's", got)
			}
		})
	}
}

// TestUpdateRetriesBenignRace moves the revision without changing the lease, as a write of
// our own whose reply was lost does, and expects Update to re-read and succeed.
func TestUpdateRetriesBenignRace(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	kv, err := e.js.KeyValue(ctx(t), e.store.Config().Bucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx(t), idempotency.EncodeKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx(t), entry.Key(), entry.Value()); err != nil {
		t.Fatal(err)
	}

	calls := 0
	err = h.Update(ctx(t), func(r *idempotency.Record) error {
		calls++
		r.State = []byte(`{"step":2}`)
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2 (once per attempt)", calls)
	}
	if got := e.get(t, testKey); string(got.State) != `{"step":2}` || got.Lease.Epoch != 1 {
		t.Errorf("stored state %s epoch %d, want {\"step\":2} and 1", got.State, got.Lease.Epoch)
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	e.clock.Advance(20 * time.Second)

	err := h.Update(ctx(t), func(r *idempotency.Record) error {
		r.State = []byte(`{"step":3}`)
		r.Lease = idempotency.Lease{Owner: "intruder", Epoch: 99} // ignored: the store owns the lease
		r.Key = "other"                                           // ignored too
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := h.Record()
	if want.Key != testKey || string(want.State) != `{"step":3}` || !want.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("record = key %q state %s updated %v", want.Key, want.State, want.UpdatedAt)
	}
	if wantLease := (idempotency.Lease{Owner: "worker-a", Epoch: 1, Expires: e.clock.Now().Add(idempotency.DefaultLeaseTTL)}); want.Lease != wantLease {
		t.Errorf("lease = %+v, want %+v (extended)", want.Lease, wantLease)
	}
	if got := e.get(t, testKey); !reflect.DeepEqual(got, want) {
		t.Errorf("stored %+v\nhandle %+v", got, want)
	}
}

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	rev := e.revision(t, testKey)
	errBoom := errors.New("boom")
	if err := h.Update(ctx(t), func(*idempotency.Record) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v, want %v", err, errBoom)
	}
	if got := e.revision(t, testKey); got != rev {
		t.Errorf("revision = %d, want %d", got, rev)
	}
}

func TestRecordIsACopy(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	if err := h.SaveState(ctx(t), []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	rec := h.Record()
	rec.State[2] = 'X'
	if got := string(h.Record().State); got != `{"a":1}` {
		t.Errorf("handle state = %s after mutating a copy", got)
	}
}

func TestFinishRejectsNonTerminalStatus(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	if err := h.Finish(ctx(t), idempotency.StatusRunning, "x", []byte(`{}`), 1); err == nil {
		t.Fatal("Finish(StatusRunning) succeeded, want error")
	}
	if e.get(t, testKey).Finished() {
		t.Error("record finished after a refused Finish")
	}
}

func TestFinishTwiceIsHarmless(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	for range 2 {
		if err := h.Finish(ctx(t), idempotency.StatusFailed, "purchase.failed", []byte(`{"reason":"rejected"}`), 3); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	if got := e.get(t, testKey); got.Status != idempotency.StatusFailed || string(got.Outcome) != `{"reason":"rejected"}` {
		t.Errorf("record = status %q outcome %s", got.Status, got.Outcome)
	}
}

func TestReleaseLetsAnotherOwnerAcquireAtOnce(t *testing.T) {
	e := newEnv(t)
	h := e.acquire(t, testKey, "worker-a")
	if err := h.Release(ctx(t)); err != nil {
		t.Fatalf("Release: %v", err)
	}
	next := e.acquire(t, testKey, "worker-b") // same instant: no expiry needed
	if next.Epoch() != 2 {
		t.Errorf("epoch = %d, want 2", next.Epoch())
	}
	if err := h.Renew(ctx(t)); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("released handle Renew = %v, want ErrLeaseLost", err)
	}
}

// TestUnusualKeys runs keys with characters that KV keys and NATS subjects reject through the
// store.
func TestUnusualKeys(t *testing.T) {
	e := newEnv(t)
	keys := []string{"a.b", "*", ">", "a b", "x/y", " ", "~!@#$%^&*()", strings.Repeat("k", 128), printableASCII()}
	for _, key := range keys {
		e.acquire(t, key, "worker-a")
		if got := e.get(t, key).Key; got != key {
			t.Errorf("stored key %q, want %q", got, key)
		}
	}
	recs, err := e.store.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(recs) != len(keys) {
		t.Errorf("List returned %d records, want %d", len(recs), len(keys))
	}
}

func TestInvalidKey(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		give string
	}{
		{name: "empty", give: ""},
		{name: "too long", give: strings.Repeat("k", 129)},
		{name: "newline", give: "a\nb"},
		{name: "tab", give: "a\tb"},
		{name: "DEL", give: "a\x7f"},
		{name: "non-ASCII", give: "caf\u00e9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.store.Acquire(ctx(t), tt.give, testSID, testFP, testReq, "worker-a"); !errors.Is(err, idempotency.ErrInvalidKey) {
				t.Errorf("Acquire error = %v, want ErrInvalidKey", err)
			}
			if _, err := e.store.Get(ctx(t), tt.give); !errors.Is(err, idempotency.ErrInvalidKey) {
				t.Errorf("Get error = %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestGetNotFound(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.Get(ctx(t), "never-seen"); !errors.Is(err, idempotency.ErrNotFound) {
		t.Errorf("Get error = %v, want ErrNotFound", err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	recs, err := e.store.List(ctx(t))
	if err != nil || len(recs) != 0 {
		t.Fatalf("List on an empty bucket = %v, %v; want none", recs, err)
	}
	for _, key := range []string{"b", "c", "a"} {
		e.acquire(t, key, "worker-a")
	}
	recs, err = e.store.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Key)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List keys = %q, want %q", got, want)
	}
}

func TestOpenConfiguresBucket(t *testing.T) {
	e := newEnv(t)
	kv, err := e.js.KeyValue(ctx(t), idempotency.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != idempotency.DefaultTTL || st.History() != 1 || st.BackingStore() != "JetStream" {
		t.Errorf("bucket TTL %s history %d store %s, want %s, 1, JetStream", st.TTL(), st.History(), st.BackingStore(), idempotency.DefaultTTL)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	if info.Config.MaxAge != idempotency.DefaultTTL || info.Config.Storage != jetstream.FileStorage {
		t.Errorf("stream MaxAge %s storage %s, want %s, file", info.Config.MaxAge, info.Config.Storage, idempotency.DefaultTTL)
	}
}

func TestOpenTwiceIsIdempotent(t *testing.T) {
	e := newEnv(t)
	e.acquire(t, testKey, "worker-a")

	again, err := idempotency.Open(ctx(t), e.js, idempotency.Config{Now: e.clock.Now})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := again.Get(ctx(t), testKey); err != nil {
		t.Errorf("record lost by the second Open: %v", err)
	}

	changed, err := idempotency.Open(ctx(t), e.js, idempotency.Config{TTL: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatalf("Open with a new TTL: %v", err)
	}
	bound, err := idempotency.Bind(ctx(t), e.js, idempotency.Config{})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if got, want := bound.Config().TTL, changed.Config().TTL; got != want {
		t.Errorf("bucket TTL after reopening = %s, want %s", got, want)
	}
}

func TestBindMissingBucket(t *testing.T) {
	e := newEnv(t)
	_, err := idempotency.Bind(ctx(t), e.js, idempotency.Config{Bucket: "NOPE"})
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("Bind error = %v, want ErrBucketNotFound", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    idempotency.Config
		wantErr bool
	}{
		{name: "zero takes defaults", give: idempotency.Config{}},
		{name: "explicit", give: idempotency.Config{Bucket: "my-sagas_1", TTL: time.Hour, Replicas: 3, Storage: jetstream.MemoryStorage, LeaseTTL: time.Minute}},
		{name: "bucket with dot", give: idempotency.Config{Bucket: "a.b"}, wantErr: true},
		{name: "negative TTL", give: idempotency.Config{TTL: -time.Second}, wantErr: true},
		{name: "six replicas", give: idempotency.Config{Replicas: 6}, wantErr: true},
		{name: "negative replicas", give: idempotency.Config{Replicas: -1}, wantErr: true},
		{name: "unknown storage", give: idempotency.Config{Storage: 7}, wantErr: true},
		{name: "negative lease", give: idempotency.Config{LeaseTTL: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.give.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	tests := []struct {
		name    string
		give    idempotency.Status
		wantErr error
	}{
		{name: "failed key runs again", give: idempotency.StatusFailed},
		{name: "completed key never runs again", give: idempotency.StatusCompleted, wantErr: idempotency.ErrFinished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := e.acquire(t, testKey, "w1")
			if err := h.SaveState(ctx(t), []byte(`{"step":"x"}`)); err != nil {
				t.Fatal(err)
			}
			if err := h.Finish(ctx(t), tt.give, "purchase.x", []byte(`{"type":"purchase.x"}`), 7); err != nil {
				t.Fatal(err)
			}
			h2, err := e.store.Reopen(ctx(t), testKey, testSID, testFP, testReq, "w2")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Reopen err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := e.get(t, testKey)
			if rec.Status != idempotency.StatusRunning || rec.Outcome != nil || rec.Reopened != 1 || rec.Lease.Owner != "w2" ||
				string(rec.State) != `{"step":"x"}` || h2.Epoch() != 2 {
				t.Errorf("reopened record = %+v", rec)
			}
			if _, err := e.store.Reopen(ctx(t), testKey, testSID, "other-fp", testReq, "w3"); !errors.Is(err, idempotency.ErrConflict) {
				t.Errorf("Reopen with another fingerprint: %v, want ErrConflict", err)
			}
		})
	}
}
