//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// buildFulfil builds the fulfil binary (with the race detector when the tests have it).
func buildFulfil(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fulfil")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/fulfil/fulfil/cmd/fulfil")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is one `fulfil worker` process.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	done   chan struct{}
	err    error // cmd.Wait's result once done is closed
	killed bool
}

// processPool runs worker processes, kills them with SIGKILL and starts new ones.
type processPool struct {
	t    *testing.T
	bin  string
	env  func(slot int) []string
	dir  string
	mu   sync.Mutex
	gens []int
	live []*process
	all  []*process
	// exits are the processes that ended without being killed.
	exits []string
}

func newProcessPool(t *testing.T, bin string, n int, env func(int) []string) *processPool {
	p := &processPool{t: t, bin: bin, env: env, dir: t.TempDir(), gens: make([]int, n), live: make([]*process, n)}
	for i := range n {
		p.start(i)
	}
	t.Cleanup(p.killAll)
	return p
}

func (p *processPool) start(i int) *process {
	p.t.Helper()
	p.gens[i]++
	name := fmt.Sprintf("p%d.%d", i+1, p.gens[i])
	logPath := filepath.Join(p.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "worker")
	cmd.Env = p.env(i)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", name, err)
	}
	pr := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		_ = f.Close()
		close(pr.done)
	}()
	p.mu.Lock()
	p.live[i] = pr
	p.all = append(p.all, pr)
	p.mu.Unlock()
	return pr
}

// kill sends SIGKILL to the process in slot i and waits for it.
func (p *processPool) kill(i int) string {
	pr := p.live[i]
	pr.killed = true
	_ = pr.cmd.Process.Signal(syscall.SIGKILL)
	<-pr.done
	return pr.name
}

// supervise restarts the processes that ended by themselves, and remembers them.
func (p *processPool) supervise() {
	for i, pr := range p.live {
		select {
		case <-pr.done:
		default:
			continue
		}
		if pr.killed {
			continue
		}
		msg := fmt.Sprintf("%s exited by itself (%v); its log ends:\n%s", pr.name, pr.err, tail(pr.log, 20))
		p.t.Logf("supervisor: %s", msg)
		p.exits = append(p.exits, msg)
		pr.killed = true
		p.start(i)
	}
}

func (p *processPool) killAll() {
	for i, pr := range p.live {
		if pr != nil && !pr.killed {
			p.kill(i)
		}
	}
}

// errorLines returns the log lines at level error or above, and race reports, of every process.
func (p *processPool) errorLines() []string {
	var out []string
	for _, pr := range p.all {
		b, err := os.ReadFile(pr.log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"fatal"`) ||
				strings.Contains(l, `"level":"panic"`) || strings.Contains(l, "DATA RACE") || strings.HasPrefix(l, "panic:") {
				out = append(out, pr.name+": "+l)
			}
		}
	}
	return out
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// workerEnv is the environment of a worker process: the test's own, without any NATS_ or
// FULFIL_ setting, plus set.
func workerEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NATS_") || strings.HasPrefix(kv, "FULFIL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// TestProcessChaos runs three `fulfil worker` processes against the 3-node cluster and kills
// random ones with SIGKILL while purchases arrive, restarting each soon after. Every purchase
// must end with exactly one outcome and at most one order.
func TestProcessChaos(t *testing.T) {
	const (
		purchases = 200
		interval  = 80 * time.Millisecond
	)
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, seed^0xb0b))
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}
	bin := buildFulfil(t)
	logf("built %s (race detector: %t)", bin, raceEnabled)

	c := newCluster(t, 3)
	sim := newSim(t, seed, 40*time.Millisecond)
	_, js := connect(t, c.urls(0))
	dataDir := t.TempDir()
	procs := newProcessPool(t, bin, 3, func(slot int) []string {
		return workerEnv(map[string]string{
			"NATS_URL":                     c.urls(slot),
			"FULFIL_DATA_DIR":              dataDir,
			"FULFIL_PARTNER_URL":           sim.URL,
			"FULFIL_PARTNER_CLIENT_ID":     partnertest.DefaultClientID,
			"FULFIL_PARTNER_CLIENT_SECRET": partnertest.DefaultClientSecret,
			"FULFIL_PARTNER_RATE_LIMIT":    "0",
			"FULFIL_HTTP_ADDR":             "",
			"FULFIL_LOG_LEVEL":             "warn",
			"FULFIL_CONCURRENCY":           "16",
			"FULFIL_REPLICAS":              "3",
			"FULFIL_ACK_WAIT":              "2s",
			"FULFIL_LEASE_TTL":             "2s",
			"FULFIL_MAX_DELIVER":           "50",
		})
	})
	logf("cluster and 3 worker processes started")

	prod := startProducer(t, js, fmt.Sprintf("chaos-b-%d", seed), purchases, interval, nil)

	kills := 0
	for running := true; running; {
		select {
		case <-prod.done:
			running = false
			continue
		case <-time.After(time.Duration(500+rng.IntN(1500)) * time.Millisecond):
		}
		procs.supervise()
		i := rng.IntN(3)
		logf("nemesis: SIGKILL %s", procs.kill(i))
		kills++
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		logf("nemesis: started %s", procs.start(i).name)
	}
	logf("all %d purchases published after %d kills; waiting for quiescence", purchases, kills)
	waitQuiet(t, js, 3*time.Minute, procs.supervise)
	logf("quiet")

	keys := prod.keys()
	v := collect(t, js, keys, sim.Sim)
	if v.attempts != purchases {
		t.Errorf("%d purchases submitted, want %d", v.attempts, purchases)
	}
	for _, l := range procs.errorLines() {
		t.Logf("process log: %s", l)
		if strings.Contains(l, "DATA RACE") {
			t.Errorf("a worker process reported a data race (see its log)")
		}
	}
	if len(procs.exits) > 0 {
		t.Logf("worker processes that exited by themselves (restarted):\n%s", strings.Join(procs.exits, "\n"))
	}
	taken, most := takeovers(t, js)
	logf("%d keys were acquired more than once (at most %d times)", taken, most)
	if taken == 0 {
		t.Errorf("no purchase was interrupted: the faults missed every saga, so the run proves little")
	}
	logAsyncErrors(t)
	logf("done")
}
