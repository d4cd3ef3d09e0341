package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSumCounter(t *testing.T) {
	text := `# HELP fulfil_sagas_finished_total Sagas finished.
# TYPE fulfil_sagas_finished_total counter
fulfil_sagas_finished_total{outcome="completed",reason=""} 12
fulfil_sagas_finished_total{outcome="failed",reason="not_found"} 3
fulfil_sagas_finished_total{outcome="completed",reason="replay"} 2
fulfil_sagas_finished_total_other{outcome="completed"} 100
`
	if n := sumCounter(text, "fulfil_sagas_finished_total", `outcome="completed"`); n != 14 {
		t.Errorf("completed %d, want 14", n)
	}
	if n := sumCounter(text, "fulfil_sagas_finished_total", `outcome="failed"`); n != 3 {
		t.Errorf("failed %d, want 3", n)
	}
}

func TestWriteBudget(t *testing.T) {
	rows := []BudgetRow{
		{Workers: 1, Budget: 20, Purchases: 32, Completed: 32, PerWorker: []int{32}, Calls: 170, MaxPerWindow: 21, Busy: 9 * time.Second},
		{Workers: 2, Budget: 20, Purchases: 32, Completed: 32, PerWorker: []int{15, 17}, Calls: 170, MaxPerWindow: 22, Busy: 9 * time.Second},
	}
	var b bytes.Buffer
	if err := WriteBudget(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "max in 1 s") ||
		!strings.Contains(lines[1], "105%") || !strings.Contains(lines[2], "110%") || !strings.Contains(lines[2], "15 17") ||
		!strings.Contains(lines[1], "18.9") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestBudgetConfigValidate(t *testing.T) {
	if err := (BudgetConfig{WorkerExe: "fulfil"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, c := range []BudgetConfig{{}, {WorkerExe: "f", Budget: -1}, {WorkerExe: "f", Workers: []int{0}}, {WorkerExe: "f", Purchases: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := BudgetConfig{Budget: 20}.withDefaults()
	if c.Purchases != 32 || len(c.Workers) != 3 || c.Concurrency != 4 {
		t.Errorf("defaults %+v", c)
	}
}

// fulfilExe builds the fulfil executable for the budget runs (or takes $FULFIL_WORKER_EXE).
func fulfilExe(t *testing.T) string {
	t.Helper()
	if exe := os.Getenv("FULFIL_WORKER_EXE"); exe != "" {
		return exe
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build fulfil with")
	}
	exe := filepath.Join(t.TempDir(), "fulfil")
	out, err := exec.Command(gobin, "build", "-o", exe, "github.com/fulfil/fulfil/cmd/fulfil").CombinedOutput()
	if err != nil {
		t.Skipf("cannot build fulfil: %v\n%s", err, out)
	}
	return exe
}

// TestRunBudget: one and two `fulfil worker` processes with a budget of 30 calls per second:
// the simulator never sees more than 110% of it in a second (and a call for the jitter
// between a limiter and the simulator), and every process completes purchases.
func TestRunBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts fulfil")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const budget = 30
	rows, err := RunBudget(ctx, BudgetConfig{WorkerExe: fulfilExe(t), Budget: budget, Workers: []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = WriteBudget(&b, rows)
	t.Logf("\n%s", b.String())
	for _, r := range rows {
		if r.MaxPerWindow > budget*11/10+1 {
			t.Errorf("%d workers: %d calls in a second, budget %d/s", r.Workers, r.MaxPerWindow, budget)
		}
		if r.Completed != r.Purchases || len(r.PerWorker) != r.Workers {
			t.Errorf("%d workers: %d of %d completed, per worker %v", r.Workers, r.Completed, r.Purchases, r.PerWorker)
		}
		for i, n := range r.PerWorker {
			if n == 0 {
				t.Errorf("%d workers: worker %d completed nothing (%v)", r.Workers, i+1, r.PerWorker)
			}
		}
		if r.MaxPerWindow < budget/2 {
			t.Errorf("%d workers: at most %d calls in a second: the budget was never binding", r.Workers, r.MaxPerWindow)
		}
	}
}
