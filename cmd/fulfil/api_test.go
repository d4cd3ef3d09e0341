package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/api"
	"github.com/fulfil/fulfil/internal/api/apitest"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

const apiTestKey = "test-api-key-7f3c9a1e5b2d"

// writeKeys writes an API keys file with apiTestKey and returns its path.
func writeKeys(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(path, []byte("# the test shop\n"+apiTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiClient sends requests to an intake and checks every answer against the OpenAPI document.
type apiClient struct {
	t       *testing.T
	base    string
	client  *http.Client
	checker *apitest.Checker
}

func (c *apiClient) do(method, path, body string, headers ...string) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+apiTestKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := c.client.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.checker.Check(c.t, resp, b)
	return resp, b
}

func (c *apiClient) want(resp *http.Response, body []byte, code int) {
	c.t.Helper()
	if resp.StatusCode != code {
		c.t.Fatalf("%s %s: %d, want %d: %s", resp.Request.Method, resp.Request.URL.RequestURI(), resp.StatusCode, code, body)
	}
}

type apiPurchase struct {
	IdempotencyKey string
	Status         string
	ActivationCode string
	Order          *struct{ OrderNo string }
}

func decodePurchase(t *testing.T, b []byte) apiPurchase {
	t.Helper()
	var p apiPurchase
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return p
}

const apiBody = `{"plan":{"name":"Ultimate Plan"},"services":[{"name":"Disaster Recovery"}],"quantity":10,"years":2}`

// TestWorkerServesTheHTTPIntake runs `fulfil worker` in-process against the partner simulator
// with the intake on its own address and API keys: a purchase over HTTP completes with its
// order and activation code, the same POST again is the same answer and no second order, a
// different purchase under the key is a 422, and every error answer is a problem; every answer
// matches the OpenAPI document. `fulfil status --json` prints what GET answers, and /metrics
// counts the requests.
func TestWorkerServesTheHTTPIntake(t *testing.T) {
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	natsAddr, httpAddr, apiAddr := freePort(t), freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--http-addr", httpAddr,
			"--api-addr", apiAddr, "--api-keys-file", writeKeys(t), "--log-level", "warn",
			"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret}, io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)
	c := &apiClient{t: t, base: "http://" + apiAddr, client: http.DefaultClient, checker: apitest.New(t)}

	resp, body := c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "web-1001")
	c.want(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	resp, body = c.do("GET", loc+"?wait=30s", "")
	c.want(resp, body, http.StatusOK)
	done1 := decodePurchase(t, body)
	if done1.Status != "completed" || done1.ActivationCode == "" || done1.Order == nil || done1.Order.OrderNo == "" {
		t.Fatalf("after ?wait=30s: %s", body)
	}
	getBody := body

	for range 2 {
		resp, body = c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "web-1001")
		c.want(resp, body, http.StatusAccepted)
		if resp.Header.Get("Location") != loc || decodePurchase(t, body).Order.OrderNo != done1.Order.OrderNo {
			t.Errorf("the repeat's answer differs: %s %s", resp.Header.Get("Location"), body)
		}
	}
	if n := len(sim.Orders()); n != 1 {
		t.Errorf("%d orders at the simulator, want 1", n)
	}
	resp, body = c.do("POST", "/v1/purchases", strings.Replace(apiBody, `"years":2`, `"years":3`, 1), "Idempotency-Key", "web-1001")
	c.want(resp, body, http.StatusUnprocessableEntity)
	resp, body = c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "web-1002", "Authorization", "Bearer wrong-key-wrong-key")
	c.want(resp, body, http.StatusUnauthorized)
	resp, body = c.do("POST", "/v1/purchases", `{"plan":{"name":"`+strings.Repeat("P", 70_000)+`"},"quantity":1}`, "Idempotency-Key", "web-1002")
	c.want(resp, body, http.StatusRequestEntityTooLarge)
	resp, body = c.do("POST", "/v1/purchases", `{"plan":{"name":"Ultimate Plan"},"quantity":1,}`, "Idempotency-Key", "web-1002")
	c.want(resp, body, http.StatusBadRequest)
	if !strings.Contains(string(body), "not valid JSON at byte") {
		t.Errorf("malformed JSON: %s", body)
	}
	resp, body = c.do("POST", "/v1/purchases", apiBody)
	c.want(resp, body, http.StatusBadRequest)
	if n := len(sim.Orders()); n != 1 {
		t.Errorf("%d orders at the simulator after the refusals, want 1", n)
	}

	// fulfil status --json prints the document GET answers.
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"status", "--nats-listen", natsAddr, "--json", "web-1001"}, &out, &errb); code != exitOK {
		t.Fatalf("status --json: exit %d: %s", code, errb.String())
	}
	var fromCLI, fromHTTP any
	if err := json.Unmarshal([]byte(out.String()), &fromCLI); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(getBody, &fromHTTP)
	if !reflect.DeepEqual(fromCLI, fromHTTP) {
		t.Errorf("status --json differs from GET:\n%s\n%s", out.String(), getBody)
	}
	if err := c.checker.Validate("Purchase", []byte(out.String())); err != nil {
		t.Errorf("status --json does not match the document: %v", err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"status", "--nats-listen", natsAddr, "--json", "--raw", "web-1001"}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), `"fingerprint"`) {
		t.Errorf("status --json --raw: exit %d: %s", code, out.String())
	}

	resp2, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	for _, want := range []string{
		`fulfil_api_requests_total{code="202",method="POST",route="/v1/purchases"} 3`,
		`fulfil_api_requests_total{code="422",method="POST",route="/v1/purchases"} 1`,
		`fulfil_api_requests_total{code="200",method="GET",route="/v1/purchases/{key}"} 1`,
		`fulfil_api_request_duration_seconds_count{route="/v1/purchases"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("worker exit %d:\n%s", code, werr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop")
	}
	if conn, err := net.DialTimeout("tcp", apiAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("the intake still listens after the worker stopped")
	}
}

// TestAPISettingsAreChecked: the intake's settings are checked with the worker's, before
// anything starts; a non-loopback address without API keys is refused with exit 2.
func TestAPISettingsAreChecked(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(short, []byte("# comment\nabc\n"), 0o600)
	_ = os.WriteFile(empty, []byte("# only a comment\n\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"worker on every interface without keys", []string{"worker", "--partner-sim", "--api-addr", "0.0.0.0:8081"},
			[]string{"FULFIL_API_ADDR (--api-addr) \"0.0.0.0:8081\" is not a loopback address", "FULFIL_API_KEYS_FILE"}},
		{"worker on a host name without keys", []string{"worker", "--partner-sim", "--api-addr", "shop.example:8081"},
			[]string{"is not a loopback address"}},
		{"worker on :8081 without keys", []string{"worker", "--partner-sim", "--api-addr", ":8081"}, []string{"is not a loopback address"}},
		{"keys file missing", []string{"worker", "--partner-sim", "--api-keys-file", filepath.Join(dir, "nope")},
			[]string{"FULFIL_API_KEYS_FILE (--api-keys-file)", "no such file"}},
		{"key too short", []string{"worker", "--partner-sim", "--api-keys-file", short}, []string{"line 2: a key must be at least 16 characters"}},
		{"no key in the file", []string{"worker", "--partner-sim", "--api-addr", "0.0.0.0:0", "--api-keys-file", empty}, []string{"holds no API key"}},
		{"half TLS", []string{"worker", "--partner-sim", "--api-tls-cert", filepath.Join(dir, "cert.pem")}, []string{"HTTPS needs both"}},
		{"bad address", []string{"worker", "--partner-sim", "--api-addr", "8081"}, []string{"FULFIL_API_ADDR (--api-addr) \"8081\": not a host:port address"}},
		{"api without address", []string{"api", "--api-addr", ""}, []string{"must not be empty"}},
		{"api on every interface without keys", []string{"api", "--api-addr", "[::]:8081"}, []string{"is not a loopback address"}},
		{"api, bad TLS files", []string{"api", "--api-tls-cert", short, "--api-tls-key", short}, []string{"FULFIL_API_TLS_CERT (--api-tls-cert) and FULFIL_API_TLS_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			args := tt.args
			if args[0] == "worker" { // only the worker has an embedded server, and so a data dir
				args = append(args, "--data-dir", filepath.Join(dir, "data"))
			}
			if code := run(context.Background(), args, io.Discard, &stderr); code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, stderr.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "abc") {
				t.Errorf("a key is shown:\n%s", stderr.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data dir was created: something started")
	}
}

// TestAPIDefaultAddressInUse: a worker whose intake address is the default one, taken by
// another worker on the host, runs without the intake; a chosen address must be free.
func TestAPIDefaultAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url := startTestNATS(t)
	c := natsFlags(t, "--nats-url", url)
	env, err := connectNATS(c, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	a := &apiConfig{addr: ln.Addr().String()}
	stop, addr, err := startAPI(context.Background(), a, env.js, "fulfil", 1, time.Hour, nil, zap.NewNop(), true)
	if err != nil || addr != "" {
		t.Fatalf("default address in use: %q, %v; want no intake and no error", addr, err)
	}
	stop()
	a.explicit = true
	if _, _, err := startAPI(context.Background(), a, env.js, "fulfil", 1, time.Hour, nil, zap.NewNop(), true); err == nil {
		t.Fatal("a chosen address in use is not an error")
	}
}

// natsFlags returns the NATS settings of the worker given args (the others at their defaults).
func natsFlags(t *testing.T, args ...string) *config {
	t.Helper()
	var c config
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	c.natsFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if errs := applyEnv(fs); len(errs) > 0 {
		t.Fatal(errs)
	}
	return &c
}

// startTestNATS starts an embedded JetStream server as the worker does and returns its URL.
func startTestNATS(t *testing.T) string {
	t.Helper()
	c := natsFlags(t, "--nats-listen", freePort(t), "--data-dir", t.TempDir())
	env, err := connectNATS(c, true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.close)
	return env.url
}

// TestHTTPIntakeBlackBox drives the binary only: `fulfil worker --partner-sim` with the intake,
// and `fulfil api` (HTTPS) as a second instance on the same NATS server, both with API keys,
// asked with net/http as a shop would. The purchase is posted to one instance and awaited on
// the other; a repeat gets the same answer and makes no second order; a different purchase
// under the key is refused by either instance. The worker refuses a non-loopback intake
// without keys with exit 2.
func TestHTTPIntakeBlackBox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := fulfilCmd(ctx, t, "worker", "--partner-sim", "--data-dir", t.TempDir(), "--api-addr", "0.0.0.0:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage || !strings.Contains(stderr.String(), "not a loopback address") {
		t.Fatalf("worker on 0.0.0.0 without keys: %v\n%s", err, stderr.String())
	}

	keys := writeKeys(t)
	natsAddr, httpAddr, apiAddr := freePort(t), freePort(t), freePort(t)
	_, workerDone := startProcess(t, "worker", "worker", "--partner-sim", "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--http-addr", httpAddr, "--api-addr", apiAddr, "--api-keys-file", keys, "--log-level", "warn")
	waitFor(t, "worker", workerDone, nil, func() bool { return httpOK("http://" + httpAddr + "/readyz") })

	cert, key, pool := selfSigned(t)
	apiHTTP, api2Addr := freePort(t), freePort(t)
	apiOut, apiDone := startProcess(t, "api", "api", "--nats-url", "nats://"+natsAddr, "--http-addr", apiHTTP, "--api-addr", api2Addr,
		"--api-keys-file", keys, "--api-tls-cert", cert, "--api-tls-key", key)
	waitFor(t, "api", apiDone, apiOut, func() bool { return httpOK("http://" + apiHTTP + "/readyz") })

	checker := apitest.New(t)
	plain := &apiClient{t: t, base: "http://" + apiAddr, client: http.DefaultClient, checker: checker}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	secure := &apiClient{t: t, base: "https://" + api2Addr, client: tlsClient, checker: checker}

	resp, body := secure.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", `"bb-order-1"`, "Authorization", "", "X-API-Key", apiTestKey)
	secure.want(resp, body, http.StatusAccepted)
	resp, body = plain.do("GET", resp.Header.Get("Location")+"?wait=30s", "")
	plain.want(resp, body, http.StatusOK)
	first := decodePurchase(t, body)
	if first.Status != "completed" || first.ActivationCode == "" || first.Order == nil {
		t.Fatalf("after the wait: %s", body)
	}
	for _, c := range []*apiClient{plain, secure} {
		resp, body = c.do("POST", "/v1/purchases", apiBody, "Idempotency-Key", "bb-order-1")
		c.want(resp, body, http.StatusAccepted)
		if again := decodePurchase(t, body); again.Order == nil || again.Order.OrderNo != first.Order.OrderNo || resp.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: the repeat's answer differs: %s", c.base, body)
		}
		resp, body = c.do("POST", "/v1/purchases", strings.Replace(apiBody, "10", "11", 1), "Idempotency-Key", "bb-order-1")
		c.want(resp, body, http.StatusUnprocessableEntity)
		resp, body = c.do("GET", "/v1/purchases/bb-order-1", "", "Authorization", "Bearer not-the-key-at-all")
		c.want(resp, body, http.StatusUnauthorized)
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		resp, body = c.do("POST", "/v1/purchases", strings.Repeat(" ", api.MaxBody+1)+apiBody, "Idempotency-Key", "bb-order-2")
		c.want(resp, body, http.StatusRequestEntityTooLarge)
		resp, body = c.do("POST", "/v1/purchases", `{"plan":`, "Idempotency-Key", "bb-order-2")
		c.want(resp, body, http.StatusBadRequest)
		resp, body = c.do("POST", "/v1/purchases", apiBody)
		c.want(resp, body, http.StatusBadRequest)
	}
	// One order: the purchase has one completed event (a repeat publishes nothing).
	code, out, errOut := cli(t, natsAddr, "events", "--follow=false", "--key", "bb-order-1", "--type", "completed")
	if code != exitOK || strings.Count(out, "completed") != 1 {
		t.Errorf("events of bb-order-1 (exit %d): %s %s", code, out, errOut)
	}
	code, out, _ = cli(t, natsAddr, "status", "--json", "bb-order-1")
	if code != exitOK || decodePurchase(t, []byte(out)).Order.OrderNo != first.Order.OrderNo {
		t.Errorf("status --json: exit %d: %s", code, out)
	}
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths and a pool
// that trusts it.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fulfil test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certPath, keyPath, pool
}
