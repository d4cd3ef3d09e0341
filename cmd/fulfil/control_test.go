package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/internal/audit"
	"github.com/fulfil/fulfil/internal/testutil"
	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
	"github.com/fulfil/fulfil/workflow"
)

// Every new setting refuses a bad value with a message naming it, before anything starts.
func TestGuardSettingsAreChecked(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "resend flag", args: []string{"--resend-after-unknown", "sometimes"}, want: "FULFIL_RESEND_AFTER_UNKNOWN (--resend-after-unknown): resend policy \"sometimes\""},
		{name: "resend env", env: map[string]string{"FULFIL_RESEND_AFTER_UNKNOWN": "always"}, want: "want auto or never"},
		{name: "negative hourly cap", args: []string{"--max-orders-per-hour", "-1"}, want: "FULFIL_MAX_ORDERS_PER_HOUR (--max-orders-per-hour) must be 0 (no cap) or positive"},
		{name: "daily cap not a number", env: map[string]string{"FULFIL_MAX_ORDERS_PER_DAY": "lots"}, want: "FULFIL_MAX_ORDERS_PER_DAY=\"lots\": not an integer"},
		{name: "audit interval too short", env: map[string]string{"FULFIL_AUDIT_INTERVAL": "5ms"}, want: "FULFIL_AUDIT_INTERVAL (--audit-interval) must be 0 (off) or at least 1s"},
		{name: "audit interval not a duration", env: map[string]string{"FULFIL_AUDIT_INTERVAL": "hourly"}, want: "FULFIL_AUDIT_INTERVAL=\"hourly\": not a duration"},
		{name: "audit window", args: []string{"--audit-window", "0s"}, want: "FULFIL_AUDIT_WINDOW (--audit-window) must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var errb syncBuffer
			code := run(context.Background(), append([]string{"worker", "--partner-sim", "--http-addr", ""}, tt.args...), io.Discard, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d (want %d), stderr %q, want it to contain %q", code, exitUsage, errb.String(), tt.want)
			}
		})
	}
	for _, args := range [][]string{{"audit", "-o", "yaml"}, {"audit", "--since", "-1h"}, {"audit", "extra"}, {"pause", "extra"}, {"status", "a", "b"}} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("fulfil %v: exit %d, want %d", args, code, exitUsage)
		}
	}
	var out syncBuffer
	run(context.Background(), []string{"worker", "-h"}, &out, io.Discard)
	for _, flag := range []string{"-max-orders-per-hour", "-max-orders-per-day", "-resend-after-unknown", "-audit-interval", "-audit-window"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("worker -h lacks %s", flag)
		}
	}
}

// The kill switch and the audit, black-box: a worker against a partner simulator of the
// test's own, driven by pause, status, submit, resume and audit as an operator would.
func TestPauseResumeAndAuditThroughTheCLI(t *testing.T) {
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	natsAddr, httpAddr := freePort(t), freePort(t)
	common := []string{"--nats-listen", natsAddr}
	partnerFlags := []string{"--partner-url", sim.URL, "--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"worker", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--log-level", "warn", "--audit-interval", "1s", "--resend-after-unknown", "never"}, common...)
		done <- run(ctx, append(args, partnerFlags...), io.Discard, &werr)
	}()
	waitReady(t, "http://"+httpAddr+"/readyz", done, &werr)
	cli := func(args ...string) (int, string) {
		t.Helper()
		var out, errb syncBuffer
		if args[0] == "audit" {
			args = append(args, partnerFlags...)
		}
		full := append(append([]string{args[0]}, common...), args[1:]...) // flags before the key
		code := run(context.Background(), full, &out, &errb)
		return code, out.String() + errb.String()
	}

	if code, out := cli("pause", "--reason", "card expired", "--by", "tester"); code != exitOK || !strings.Contains(out, "paused") {
		t.Fatalf("pause: exit %d: %s", code, out)
	}
	if code, out := cli("status"); code != exitOK || !strings.Contains(out, "account: PAUSED by tester") || !strings.Contains(out, "card expired") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}
	waitMetric(t, httpAddr, "fulfil_paused 1")
	if code, out := cli("submit", "--key", "pause-1", "--plan", "Ultimate Plan", "--quantity", "5", "--timeout", "3s"); code != exitTimeout || !strings.Contains(out, "waiting before create order") {
		t.Errorf("submit while paused: exit %d (want %d, no result):\n%s", code, exitTimeout, out)
	}
	if n := sim.Calls(partnerclient.EndpointCreateOrder); n != 0 {
		t.Fatalf("%d create_order calls while paused", n)
	}
	if code, out := cli("status", "pause-1"); code != exitOK || !strings.Contains(out, "account: PAUSED by tester") || !strings.Contains(out, "sends no create order") {
		t.Errorf("status pause-1: exit %d:\n%s", code, out)
	}
	if code, out := cli("resume", "--by", "tester"); code != exitOK || !strings.Contains(out, "resumed") {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		code, out := cli("status", "pause-1")
		return code == exitOK && strings.Contains(out, "status      completed")
	}, "pause-1 to complete after the resume")
	if code, out := cli("audit"); code != exitOK || !strings.Contains(out, "no findings") {
		t.Errorf("audit of a clean account: exit %d:\n%s", code, out)
	}

	// Behind fulfil's back: a second order for pause-1, and one with a poNumber of fulfil's
	// that no purchase has.
	placed := sim.OrdersByPONumber(workflow.DefaultPONumber("pause-1"))
	if len(placed) != 1 {
		t.Fatalf("%d orders for pause-1, want 1", len(placed))
	}
	var body partnerclient.OrderRequest
	if err := json.Unmarshal(placed[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	client, err := partnerclient.New(sim.URL, partnerclient.WithCredentials(partnertest.DefaultClientID, partnertest.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	dup, err := client.CreateOrder(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	body.PONumber = workflow.DefaultPONumber("nobody-bought-this")
	orphan, err := client.CreateOrder(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}

	code, out := cli("audit", "--since", "1h")
	if code != exitFailed {
		t.Errorf("audit with findings: exit %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"2 finding(s): 1 orphan, 1 duplicate", orphan.OrderNo, dup.OrderNo, placed[0].OrderNo, "pause-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit table lacks %q:\n%s", want, out)
		}
	}
	code, out = cli("audit", "-o", "json")
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailed {
		t.Fatalf("audit -o json: exit %d, %v:\n%s", code, err, out)
	}
	kinds := map[audit.Kind]string{}
	for _, f := range rep.Findings {
		kinds[f.Kind] = f.Key + "|" + f.PONumber
	}
	if len(rep.Findings) != 2 || kinds[audit.Duplicate] != "pause-1|"+workflow.DefaultPONumber("pause-1") ||
		kinds[audit.Orphan] != "|"+workflow.DefaultPONumber("nobody-bought-this") {
		t.Errorf("audit findings %+v", rep.Findings)
	}

	// The worker's own sweep (every second here) reports the same in its metrics and summary.
	waitMetric(t, httpAddr, `fulfil_audit_findings{kind="orphan"} 1`)
	waitMetric(t, httpAddr, `fulfil_audit_findings{kind="duplicate"} 1`)
	if code, out := cli("status"); code != exitOK || !strings.Contains(out, "1 orphan, 1 duplicate, 0 missing") || !strings.Contains(out, "account: running") {
		t.Errorf("status:\n%s", out)
	}
	if strings.Contains(werr.String(), partnertest.DefaultClientSecret) {
		t.Error("the worker's log holds the client secret")
	}
	if !strings.Contains(werr.String(), `"audit finding"`) {
		t.Errorf("the worker logged no audit finding:\n%s", werr.String())
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
}

func waitMetric(t *testing.T, httpAddr, want string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), want)
	}, "/metrics to show %q", want)
}
