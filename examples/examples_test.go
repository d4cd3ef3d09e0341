package examples

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// sample is what the simulator's seed data makes of one file in requests/.
type sample struct {
	productNo   string // the PBX bought for; "" for a new license (the simulator makes up an SN)
	autoRenewal bool
}

// samples lists every file in requests/; TestSampleRequestsValidate fails on a file missing here.
var samples = map[string]sample{
	"new-licence.json":               {autoRenewal: true},
	"existing-pbx-with-service.json": {productNo: partnertest.ExistingSN, autoRenewal: true},
	"subordinate-customer.json":      {autoRenewal: true},
	"with-po-number.json":            {autoRenewal: true},
	"without-auto-renewal.json":      {autoRenewal: false},
}

// runTimeout bounds every process the tests run to completion.
const runTimeout = 90 * time.Second

func sampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("requests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample requests in requests/: %v", err)
	}
	slices.Sort(files)
	for i, f := range files {
		if files[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func readRequest(t *testing.T, path string) ([]byte, messages.PurchaseRequest) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	req, err := messages.DecodeRequest(body)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return body, req
}

func TestSampleRequestsValidate(t *testing.T) {
	keys := map[string]string{}
	var names []string
	for _, path := range sampleFiles(t) {
		name := filepath.Base(path)
		names = append(names, name)
		_, req := readRequest(t, path)
		if _, ok := samples[name]; !ok {
			t.Errorf("%s has no expected outcome in samples", name)
		}
		if other, dup := keys[req.IdempotencyKey]; dup {
			t.Errorf("%s and %s share the idempotency key %q", name, other, req.IdempotencyKey)
		}
		keys[req.IdempotencyKey] = name
	}
	for name := range samples {
		if !slices.Contains(names, name) {
			t.Errorf("samples lists %s, which is not in requests/", name)
		}
	}
	// The set covers what the README promises.
	var newLicence, existing, customer, po, noRenew bool
	for _, path := range sampleFiles(t) {
		_, req := readRequest(t, path)
		newLicence = newLicence || (req.ProductNo == "" && req.CustomerEmail == "")
		existing = existing || (req.ProductNo != "" && len(req.Services) > 0)
		customer = customer || (req.ProductNo == "" && req.CustomerEmail != "")
		po = po || req.PONumber != ""
		noRenew = noRenew || (req.AutoRenew != nil && !*req.AutoRenew)
	}
	if !newLicence || !existing || !customer || !po || !noRenew {
		t.Errorf("samples cover: new licence %v, existing PBX with a service %v, subordinate customer %v, poNumber %v, no auto-renewal %v",
			newLicence, existing, customer, po, noRenew)
	}
}

// TestSubmitSampleRequests submits every sample with `fulfil submit -f FILE` to a
// `fulfil worker --partner-sim`.
func TestSubmitSampleRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	bin := buildBinaries(t)
	w := startWorker(t, bin.fulfil)
	for _, path := range sampleFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, req := readRequest(t, path)
			res := runProcess(t, "", bin.fulfil, "submit", "--nats-listen", w.natsAddr, "--timeout", "60s", "--json", "-f", path)
			if res.code != 0 {
				t.Fatalf("fulfil submit -f %s: %s", path, res)
			}
			c := decodeCompleted(t, []byte(res.stdout), res)
			checkCompleted(t, filepath.Base(path), req.IdempotencyKey, c, false)
		})
	}
}

// TestGoExample runs examples/go/publish-and-wait against a worker with the simulator.
func TestGoExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	bin := buildBinaries(t)
	w := startWorker(t, bin.fulfil)
	exerciseExample(t, w, func(t *testing.T, args ...string) result {
		return runProcess(t, "", bin.example, append([]string{"--nats-url", w.natsURL(), "--timeout", "60s"}, args...)...)
	})
}

// TestNodeExample runs examples/node/publish-and-wait.mjs with node against a worker with the
// simulator. Without node, npm or examples/node/node_modules it is skipped, unless CI is set.
func TestNodeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	node := nodeOrSkip(t)
	t.Parallel()
	bin := buildBinaries(t)
	w := startWorker(t, bin.fulfil)
	script, err := filepath.Abs(filepath.Join("node", "publish-and-wait.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	exerciseExample(t, w, func(t *testing.T, args ...string) result {
		return runProcess(t, "node", node, append([]string{script, "--nats-url", w.natsURL(), "--timeout", "60"}, args...)...)
	})
}

// nodeOrSkip returns the path of node, or skips the test (fails it when CI is set) when node
// (18 or later), npm or the installed npm packages are missing.
func nodeOrSkip(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI is set, so the Node example must run (.ci/run installs Node.js and npm and runs npm ci in examples/node)", what)
		}
		t.Skipf("skipping the Node example: %s (install Node.js 18+ and npm, then run `npm ci` in examples/node)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing("npm is not installed")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing(fmt.Sprintf("node --version: %v", err))
	}
	version := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < 18 {
		missing(fmt.Sprintf("node %s is older than 18", version))
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "nats", "package.json")); err != nil {
		missing("examples/node/node_modules has no nats package")
	}
	t.Logf("node %s", version)
	return node
}

// exerciseExample runs one of the example programs through every sample, then an exact
// re-send, the same purchase in other bytes, and another purchase under a used key.
func exerciseExample(t *testing.T, w *worker, run func(t *testing.T, args ...string) result) {
	t.Helper()
	orders := map[string]string{} // file name -> order number
	files := sampleFiles(t)
	for _, path := range files {
		name := filepath.Base(path)
		body, req := readRequest(t, path)
		res := run(t, path)
		if res.code != 0 {
			t.Fatalf("%s: %s", name, res)
		}
		if want := "published " + req.IdempotencyKey + " as " + wantMsgID(req.IdempotencyKey, body); !strings.Contains(res.stderr, want) {
			t.Errorf("%s: stderr lacks %q: %s", name, want, res)
		}
		c := decodeCompleted(t, lastLine(res.stdout), res)
		checkCompleted(t, name, req.IdempotencyKey, c, false)
		orders[name] = c.OrderNo
	}

	const again = "new-licence.json"
	path, err := filepath.Abs(filepath.Join("requests", again))
	if err != nil {
		t.Fatal(err)
	}
	body, req := readRequest(t, path)

	// The same bytes again, within the duplicate window: the stream drops the publish and the
	// program reads the first request's outcome.
	res := run(t, path)
	if res.code != 0 || !strings.Contains(res.stderr, "duplicate") {
		t.Fatalf("exact re-send: want exit 0 and a word of the duplicate: %s", res)
	}
	if c := decodeCompleted(t, lastLine(res.stdout), res); c.OrderNo != orders[again] || c.Replayed {
		t.Errorf("exact re-send: order %s replayed %v, want the first outcome (order %s, not replayed)", c.OrderNo, c.Replayed, orders[again])
	}

	// The same purchase in other bytes: another Nats-Msg-Id, so a message of its own, answered
	// with the stored outcome.
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	compact, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(compact, body) {
		t.Fatal("the re-encoded body equals the file's bytes")
	}
	res = run(t, writeTemp(t, "same-purchase.json", compact))
	if res.code != 0 || strings.Contains(res.stderr, "duplicate") {
		t.Fatalf("same purchase, other bytes: want exit 0 without a duplicate: %s", res)
	}
	if !strings.Contains(res.stderr, wantMsgID(req.IdempotencyKey, compact)) {
		t.Errorf("same purchase, other bytes: stderr lacks its Nats-Msg-Id: %s", res)
	}
	if c := decodeCompleted(t, lastLine(res.stdout), res); c.OrderNo != orders[again] || !c.Replayed {
		t.Errorf("same purchase, other bytes: order %s replayed %v, want order %s replayed", c.OrderNo, c.Replayed, orders[again])
	}

	// Another purchase under the same key: conflict, exit 1.
	fields["quantity"] = json.Number(strconv.Itoa(req.Quantity + 1))
	other, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, writeTemp(t, "other-purchase.json", other))
	if res.code != 1 {
		t.Fatalf("other purchase, same key: want exit 1: %s", res)
	}
	ev, err := messages.DecodeEvent(lastLine(res.stdout))
	if f, ok := ev.(*messages.Failed); err != nil || !ok || f.Reason != messages.ReasonConflict || f.Key() != req.IdempotencyKey {
		t.Errorf("other purchase, same key: want a failed / conflict event for %s, got %#v (%v): %s", req.IdempotencyKey, ev, err, res)
	}

	// One order per purchase, and the durable consumer is left with nothing to deliver.
	if want := fmt.Sprintf(`fulfil_partner_calls_total{endpoint="create_order",outcome="ok"} %d`, len(files)); !strings.Contains(w.metrics(t), want) {
		t.Errorf("/metrics lacks %q", want)
	}
	checkConsumer(t, w.natsURL(), "example-shop-outcomes")
}

// checkConsumer checks the example's durable consumer: only outcomes, all acknowledged.
func checkConsumer(t *testing.T, url, durable string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, messages.StreamEvents, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info := c.CachedInfo()
	subjects := messages.SubjectsFor("")
	if want := []string{subjects.Completed, subjects.Failed}; !slices.Equal(info.Config.FilterSubjects, want) {
		t.Errorf("consumer %s filters %q, want %q", durable, info.Config.FilterSubjects, want)
	}
	if info.Config.Durable != durable || info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer %s: durable %q ack policy %s", durable, info.Config.Durable, info.Config.AckPolicy)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Errorf("consumer %s: %d pending, %d unacknowledged, want none", durable, info.NumPending, info.NumAckPending)
	}
}

// wantMsgID is the contract's Nats-Msg-Id of a request, computed independently of the examples.
func wantMsgID(key string, body []byte) string {
	sum := sha256.Sum256(body)
	return key + ":" + hex.EncodeToString(sum[:])[:32]
}

func decodeCompleted(t *testing.T, data []byte, res result) *messages.Completed {
	t.Helper()
	ev, err := messages.DecodeEvent(data)
	if err != nil {
		t.Fatalf("outcome does not decode: %v: %s", err, res)
	}
	c, ok := ev.(*messages.Completed)
	if !ok {
		t.Fatalf("outcome is %s, want %s: %s", ev.EventType(), messages.TypeCompleted, res)
	}
	return c
}

func checkCompleted(t *testing.T, name, key string, c *messages.Completed, replayed bool) {
	t.Helper()
	want := samples[name]
	switch {
	case c.Key() != key:
		t.Errorf("%s: outcome of %q, want %q", name, c.Key(), key)
	case c.Replayed != replayed:
		t.Errorf("%s: replayed %v, want %v", name, c.Replayed, replayed)
	case !strings.HasPrefix(c.OrderNo, "ZC") || c.ActivationCode == "" || c.ProductNo == "":
		t.Errorf("%s: order %q, activation code %q, PBX %q: want all three", name, c.OrderNo, c.ActivationCode, c.ProductNo)
	case want.productNo != "" && c.ProductNo != want.productNo:
		t.Errorf("%s: PBX %s, want %s", name, c.ProductNo, want.productNo)
	case c.AutoRenewal != want.autoRenewal:
		t.Errorf("%s: auto-renewal %v, want %v", name, c.AutoRenewal, want.autoRenewal)
	}
}

func lastLine(s string) []byte {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return []byte(lines[len(lines)-1])
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// binaries are built once for all tests.
type binaries struct{ fulfil, example string }

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
		os.Exit(code)
	}))
}

// buildBinaries builds cmd/fulfil and examples/go/publish-and-wait (with the race detector when
// the tests have it).
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "fulfil-examples-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/fulfil/fulfil/cmd/fulfil", "github.com/fulfil/fulfil/examples/go/publish-and-wait")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		built = binaries{fulfil: filepath.Join(buildDir, "fulfil"), example: filepath.Join(buildDir, "publish-and-wait")}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// result is how a process ended.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cleanEnv is the test's environment without settings that would redirect the programs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FULFIL_") && !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return env
}

// runProcess runs exe with args in dir to completion, within runTimeout.
func runProcess(t *testing.T, dir, exe string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{args: append([]string{filepath.Base(exe)}, args...), code: -1, stdout: stdout.String(), stderr: stderr.String()}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("did not end within %s: %s", runTimeout, res)
	}
	if err != nil && res.code < 0 {
		t.Fatalf("%v: %s", err, res)
	}
	return res
}

// worker is a `fulfil worker --partner-sim` process with its embedded NATS server.
type worker struct {
	natsAddr, httpAddr string
}

func (w *worker) natsURL() string { return "nats://" + w.natsAddr }

func (w *worker) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + w.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// startWorker starts a worker with the built-in partner simulator on free ports, and stops it
// (SIGINT, as Ctrl-C) when the test ends. A port taken between choosing and binding it is
// retried with new ones.
func startWorker(t *testing.T, bin string) *worker {
	t.Helper()
	for attempt := 1; ; attempt++ {
		w := &worker{natsAddr: freePort(t), httpAddr: freePort(t)}
		out, ok := w.start(t, bin)
		if ok {
			return w
		}
		if attempt == 3 || !strings.Contains(out, "address already in use") {
			t.Fatalf("worker did not become ready:\n%s", out)
		}
	}
}

func (w *worker) start(t *testing.T, bin string) (string, bool) {
	t.Helper()
	cmd := exec.Command(bin, "worker", "--partner-sim", "--data-dir", t.TempDir(),
		"--nats-listen", w.natsAddr, "--http-addr", w.httpAddr, "--log-level", "warn")
	cmd.Env = cleanEnv()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("worker did not stop within 40s of SIGINT")
		}
	}
	exited := false
	ready := testutil.Poll(60*time.Second, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		resp, err := http.Get("http://" + w.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	switch {
	case exited:
		return out.String(), false
	case !ready:
		stop()
		return out.String() + "\n(not ready after 60s)", false
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("worker output:\n%s", out.String())
		}
	})
	return "", true
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is the shared test buffer, safe for a writer and a reader at once.
type syncBuffer = testutil.Buffer
