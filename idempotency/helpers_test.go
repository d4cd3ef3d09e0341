package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/clocktest"
	"github.com/fulfil/fulfil/internal/natsembed/natstest"
)

type env struct {
	js    jetstream.JetStream
	store *idempotency.Store
	clock *clock
}

// newEnv starts a JetStream server and opens a store on it with a manual clock.
func newEnv(t *testing.T) env {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	clk := newClock()
	store, err := idempotency.Open(ctx(t), js, idempotency.Config{Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return env{js: js, store: store, clock: clk}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

const (
	testKey = "shop-eu-order-100231"
	testFP  = "fp-1"
	testSID = "6f1c0c9e-5b0e-4b8f-9a43-3f1f3b0d2a11"
)

var testReq = []byte(`{"idempotencyKey":"shop-eu-order-100231","quantity":100}`)

func (e env) acquire(t *testing.T, key, owner string) *idempotency.Handle {
	t.Helper()
	h, err := e.store.Acquire(ctx(t), key, testSID, testFP, testReq, owner)
	if err != nil {
		t.Fatalf("Acquire(%q, %q): %v", key, owner, err)
	}
	return h
}

func (e env) get(t *testing.T, key string) idempotency.Record {
	t.Helper()
	rec, err := e.store.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return rec
}

// revision returns the KV revision of key's record.
func (e env) revision(t *testing.T, key string) uint64 {
	t.Helper()
	kv, err := e.js.KeyValue(ctx(t), e.store.Config().Bucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx(t), idempotency.EncodeKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return entry.Revision()
}

// clock is a manual clock.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) }
