// Command receiver is what a shop or CRM runs to take fulfil's events as webhooks: an HTTP
// endpoint that verifies each request per the Standard Webhooks specification before it
// trusts the body, with nothing but the Go standard library.
//
//	WEBHOOK_SECRET=whsec_... go run ./examples/webhooks/go [--addr 127.0.0.1:8000]
//
// The secret is the worker's FULFIL_WEBHOOK_SECRET (or the file --secret-file). For every
// request it checks:
//
//   - webhook-timestamp is within 5 minutes of the clock (an old request replayed by someone
//     who recorded it is refused);
//   - webhook-signature holds, among its space-separated signatures, "v1," and the base64 of
//     HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64-decoded
//     part of the secret after "whsec_", compared in constant time.
//
// A verified event is printed as one JSON line on standard output, {"webhookId": ..., "event":
// ...}, and answered 204. Delivery is at least once: a webhook-id already seen is answered 204
// without printing it again (a real receiver stores the ids it handled, with its data). A
// request that does not verify is answered 401 and written to standard error.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tolerance is how far webhook-timestamp may be from the clock.
const tolerance = 5 * time.Minute

// maxBody bounds a request's body: fulfil's events are a few KiB.
const maxBody = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen address")
	secretFile := flag.String("secret-file", "", "file holding the secret (default: $WEBHOOK_SECRET)")
	flag.Parse()
	secret := os.Getenv("WEBHOOK_SECRET")
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "receiver: %v\n", err)
			os.Exit(2)
		}
		secret = strings.TrimSpace(string(b))
	}
	key, err := decodeSecret(secret)
	if err != nil {
		fmt.Fprintf(os.Stderr, "receiver: WEBHOOK_SECRET: %v\n", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "receiver: %v\n", err)
		os.Exit(1)
	}
	h := &handler{key: key, seen: map[string]bool{}, out: json.NewEncoder(os.Stdout)}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "receiver listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "receiver: %v\n", err)
		os.Exit(1)
	}
}

// decodeSecret returns the key of "whsec_<base64>".
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), "whsec_")
	if !ok {
		return nil, errors.New(`must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New(`the part after "whsec_" is not base64`)
	}
	return key, nil
}

type handler struct {
	key  []byte
	mu   sync.Mutex
	seen map[string]bool
	out  *json.Encoder
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	id := r.Header.Get("webhook-id")
	if err := verify(h.key, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		fmt.Fprintf(os.Stderr, "receiver: refused a request (webhook-id %q): %v\n", id, err)
		http.Error(w, "signature verification failed", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.seen[id] {
		h.seen[id] = true
		_ = h.out.Encode(struct {
			WebhookID string          `json:"webhookId"`
			Event     json.RawMessage `json:"event"`
		}{id, body})
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks one request per the Standard Webhooks specification.
func verify(key []byte, id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s from now, more than %s", d.Round(time.Second), tolerance)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, sig := range strings.Split(signatures, " ") {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return errors.New("no valid v1 signature")
}
