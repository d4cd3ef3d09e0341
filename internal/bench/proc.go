package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// workerProc is one `fulfil worker` child process of a process-mode phase.
type workerProc struct {
	cmd    *exec.Cmd
	pid    int
	http   string
	stderr *tailBuffer
	exited chan struct{}
}

// startWorkerProcs starts cfg.Workers `fulfil worker` processes (cfg.WorkerExe) against the
// stack's server and simulator, and waits until each reports ready.
func (st *stack) startWorkerProcs(ctx context.Context) ([]*workerProc, error) {
	cfg := st.cfg
	var procs []*workerProc
	for i := range cfg.Workers {
		addr, err := freeAddr()
		if err != nil {
			stopWorkerProcs(procs)
			return nil, err
		}
		cmd := exec.Command(cfg.WorkerExe, "worker")
		// The credentials go in the environment, not in argv.
		cmd.Env = append(os.Environ(),
			"NATS_URL="+st.clientURL(i),
			"FULFIL_PARTNER_URL="+st.sim.URL,
			"FULFIL_PARTNER_CLIENT_ID="+partnertest.DefaultClientID,
			"FULFIL_PARTNER_CLIENT_SECRET="+partnertest.DefaultClientSecret,
			"FULFIL_PARTNER_SIM=false",
			"FULFIL_PARTNER_RATE_LIMIT=0",
			"FULFIL_CONCURRENCY="+strconv.Itoa(cfg.Concurrency),
			"FULFIL_HTTP_ADDR="+addr,
			"FULFIL_LOG_LEVEL=error",
			"FULFIL_SUBJECT_PREFIX="+messages.DefaultSubjectPrefix,
		)
		if cfg.GCPercent > 0 {
			cmd.Env = append(cmd.Env, "GOGC="+strconv.Itoa(cfg.GCPercent))
		} else if cfg.GCPercent < 0 {
			cmd.Env = append(cmd.Env, "GOGC=off")
		}
		p := &workerProc{cmd: cmd, http: addr, stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
		cmd.Stderr = p.stderr
		if err := cmd.Start(); err != nil {
			stopWorkerProcs(procs)
			return nil, fmt.Errorf("bench: start worker process: %w", err)
		}
		p.pid = cmd.Process.Pid
		go func() { _ = cmd.Wait(); close(p.exited) }()
		procs = append(procs, p)
		if err := p.waitReady(ctx); err != nil {
			stopWorkerProcs(procs)
			return nil, err
		}
	}
	return procs, nil
}

// waitReady polls the process's /readyz until it answers 200.
func (p *workerProc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("bench: worker process exited before it was ready: %s", p.stderr.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: worker process not ready after 30s: %s", p.stderr.String())
		}
	}
}

// stopWorkerProcs stops the processes (SIGTERM, then SIGKILL after 10s) and waits for them.
func stopWorkerProcs(procs []*workerProc) {
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// procUsage is the CPU time and resident set of the worker processes: CPU summed, resident
// sets summed (their peaks are summed too, an upper bound when there are several).
func procUsage(procs []*workerProc) usage {
	var u usage
	for _, p := range procs {
		u.cpu += procCPU(p.pid)
		cur, peak := procRSS(p.pid)
		u.rss += cur
		u.peak += peak
	}
	return u
}

// inFlightOf returns a sampler of the sagas the worker processes have in flight: the sum of
// their fulfil_sagas_in_flight gauges, read from /metrics.
func inFlightOf(ctx context.Context, procs []*workerProc) func() int {
	return func() int {
		total := 0
		for _, p := range procs {
			total += p.gauge(ctx, "fulfil_sagas_in_flight")
		}
		return total
	}
}

// metrics reads the process's /metrics ("" when it cannot).
func (p *workerProc) metrics(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/metrics", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	return string(body)
}

// gauge reads an unlabelled gauge from the process's /metrics (0 when it cannot).
func (p *workerProc) gauge(ctx context.Context, name string) int {
	for line := range strings.Lines(p.metrics(ctx)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return int(f)
		}
	}
	return 0
}

// procRSS returns the current and peak resident set of process pid in bytes (Linux; else 0).
func procRSS(pid int) (cur, peak uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	return parseStatus(b)
}

// selfUsage is the CPU time and resident set of this process.
func selfUsage() usage {
	cur, peak := rss()
	return usage{cpu: cpuTime(), rss: cur, peak: peak}
}

// resetProcPeakRSS resets the peak resident set of process pid (Linux).
func resetProcPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux platform Go
// supports.
const clockTicks = 100

// procCPU returns the user+system CPU time of process pid (Linux; else 0).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start with field 3, so utime (14) and stime (15) are at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+stime) * time.Second / clockTicks
}

// machineTicks returns the busy and total CPU time of the whole machine, in USER_HZ ticks,
// from /proc/stat (Linux; else zeros): what every process used, not only the stack's.
func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal (guest time is counted in user).
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output)"
	}
	return s
}
