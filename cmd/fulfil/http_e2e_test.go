package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/api/apitest"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// TestShopOverHTTPBothWays is a shop that speaks only HTTP: it posts a purchase to the intake
// and learns the outcome from a signed webhook, then asks GET for the order. The same POST again
// is the same answer and buys nothing more; another purchase under the key is a 422.
func TestShopOverHTTPBothWays(t *testing.T) {
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	hooks := newHookReceiver(t)
	hooks.up.Store(true)
	natsAddr, httpAddr, apiAddr := freePort(t), freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--http-addr", httpAddr,
			"--api-addr", apiAddr, "--api-keys-file", writeKeys(t), "--log-level", "warn",
			"--webhook-url", hooks.srv.URL, "--webhook-secret", hookSecret,
			"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret}, io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)
	c := &apiClient{t: t, base: "http://" + apiAddr, client: http.DefaultClient, checker: apitest.New(t)}

	resp, body := c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "shop-http-1")
	c.want(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")

	// The completed event arrives as a webhook whose signature verifies (the receiver checks it
	// with the specification's algorithm and fails the test otherwise).
	var completed struct {
		Type           string `json:"type"`
		IdempotencyKey string `json:"idempotencyKey"`
		OrderNo        string `json:"orderNo"`
		ActivationCode string `json:"activationCode"`
	}
	waitUntil(t, "the completed webhook", 60*time.Second, func() bool {
		_, bodies, _ := hooks.delivered()
		for _, b := range bodies {
			if json.Unmarshal(b, &completed) == nil && completed.Type == "purchase.completed" && completed.IdempotencyKey == "shop-http-1" {
				return true
			}
		}
		return false
	})
	if completed.OrderNo == "" || completed.ActivationCode == "" {
		t.Fatalf("completed webhook without order or code: %+v", completed)
	}

	resp, body = c.do("GET", loc, "")
	c.want(resp, body, http.StatusOK)
	if p := decodePurchase(t, body); p.Status != "completed" || p.Order == nil || p.Order.OrderNo != completed.OrderNo {
		t.Errorf("GET %s: %s, want the webhook's order %s", loc, body, completed.OrderNo)
	}
	resp, body = c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "shop-http-1")
	c.want(resp, body, http.StatusAccepted)
	if resp.Header.Get("Location") != loc {
		t.Errorf("the repeat's Location %q, want %q", resp.Header.Get("Location"), loc)
	}
	resp, body = c.do("POST", "/v1/purchases", `{"plan":{"name":"Ultimate Plan"},"quantity":11}`, "Idempotency-Key", "shop-http-1")
	c.want(resp, body, http.StatusUnprocessableEntity)
	if n := len(sim.Orders()); n != 1 {
		t.Errorf("%d orders on the partner, want 1", n)
	}
	ok, _, _ := hooks.delivered()
	for id, n := range ok {
		if n != 1 {
			t.Errorf("webhook %s delivered %d times", id, n)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop")
	}
}
