package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/natsembed"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "idempotency-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	store, err := idempotency.Open(ctx, js, idempotency.Config{})
	if err != nil {
		panic(err)
	}
	req := []byte(`{"idempotencyKey":"order-1","quantity":100}`)

	// The first delivery takes the key and runs the saga.
	h, err := store.Acquire(ctx, "order-1", "saga-1", "fp-1", req, "worker-a")
	if err != nil {
		panic(err)
	}
	fmt.Println("acquired, epoch", h.Epoch())
	_ = h.SaveState(ctx, []byte(`{"step":"create_order"}`))

	// A duplicate delivery meanwhile finds the key leased.
	_, err = store.Acquire(ctx, "order-1", "saga-1", "fp-1", req, "worker-b")
	fmt.Println("duplicate while running:", errors.Is(err, idempotency.ErrLeased))

	_ = h.Finish(ctx, idempotency.StatusCompleted, "purchase.completed", []byte(`{"orderNo":"ZC1"}`), 1)

	// A later duplicate gets the stored outcome to publish again.
	_, err = store.Acquire(ctx, "order-1", "saga-1", "fp-1", req, "worker-b")
	var fin *idempotency.FinishedError
	if errors.As(err, &fin) {
		fmt.Println("replay:", fin.Record.OutcomeType, string(fin.Record.Outcome))
	}

	// The same key with a different request is a conflict.
	_, err = store.Acquire(ctx, "order-1", "saga-2", "fp-2", []byte(`{}`), "worker-c")
	fmt.Println("different request:", errors.Is(err, idempotency.ErrConflict))
	// Output:
	// acquired, epoch 1
	// duplicate while running: true
	// replay: purchase.completed {"orderNo":"ZC1"}
	// different request: true
}
