package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// partner check --partner-sim checks the built-in simulator, prints the table, exits 0
// and saves fixtures without the secret or a token. Not parallel: it replaces
// startPartnerSim.
func TestPartnerCheckSimulator(t *testing.T) {
	var sim *partnertest.Server
	orig := startPartnerSim
	startPartnerSim = func() *partnertest.Server { sim = orig(); return sim }
	t.Cleanup(func() { startPartnerSim = orig })

	dir := t.TempDir()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, []string{"partner", "check", "--partner-sim", "--save", dir, "--log-level", "warn"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"ENDPOINT", "STATUS", "REQUEST_ID", "UNEXPECTED FIELDS", "MISSING FIELDS",
		"product_list ", "create_order ", "skipped", "\nOK: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if sim == nil {
		t.Fatal("the simulator was not started")
	}
	secrets := append(sim.IssuedTokens(), partnertest.DefaultClientSecret)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) < 8 || len(secrets) < 3 {
		t.Fatalf("%d fixtures (%v), %d secrets", len(files), err, len(secrets))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret", filepath.Base(f))
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(out.String()+errb.String(), s) {
			t.Error("output contains a secret")
		}
	}
}

func TestPartnerUsage(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want int
	}{
		{"no subcommand", []string{"partner"}, exitUsage},
		{"unknown subcommand", []string{"partner", "nope"}, exitUsage},
		{"help", []string{"partner", "-h"}, exitOK},
		{"check help", []string{"partner", "check", "-h"}, exitOK},
		{"negative product", []string{"partner", "check", "--partner-sim", "--product-id", "-1"}, exitUsage},
		{"extra argument", []string{"partner", "check", "--partner-sim", "now"}, exitUsage},
		{"no credentials", []string{"partner", "check", "--partner-sim=false", "--partner-client-id", "", "--partner-client-secret", ""}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb syncBuffer
			if got := run(context.Background(), tt.give, &out, &errb); got != tt.want {
				t.Errorf("exit %d, want %d\nstderr:\n%s", got, tt.want, errb.String())
			}
			if tt.want != exitOK && out.String() != "" {
				t.Errorf("stdout: %s", out.String())
			}
		})
	}
}

// A check that fails exits 1 and says so.
func TestPartnerCheckFails(t *testing.T) {
	sim := partnertest.NewServer()
	t.Cleanup(sim.Close)
	var out, errb syncBuffer
	args := []string{"partner", "check", "--partner-sim=false", "--partner-url", sim.URL,
		"--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", "wrong", "--log-level", "warn"}
	if code := run(context.Background(), args, &out, &errb); code != exitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "NOT OK") || !strings.Contains(out.String(), "invalid_client") ||
		!strings.Contains(out.String(), "skipped: the product list was not read") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A product list whose planAutoRenewal is a Boolean still passes the check (the decoders
// tolerate it), but the report names the drift; a productNo of the wrong type fails it.
func TestPartnerCheckReportsDrift(t *testing.T) {
	tests := []struct {
		name     string
		item     string
		wantCode int
		want     []string
	}{
		{"flag as a Boolean", `{"productNo":"` + partnertest.ExistingSN + `","planAutoRenewal":true,"planId":"1","planName":"P"}`, exitOK,
			[]string{"product_list: results[].planAutoRenewal: want number, got boolean (drift: tolerated)", "\nOK: ", "DRIFT: 1 value(s)"}},
		{"productNo as a number", `{"productNo":3651,"planAutoRenewal":1}`, exitFailed,
			[]string{"product_list: kind mismatch results[].productNo: want string, got integer", "NOT OK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := partnertest.NewServer()
			t.Cleanup(sim.Close)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != partnerclient.PathProductList {
					sim.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"code":"success","detailMessage":"","requestId":"drift-1","status":200,"result":` +
					`{"count":1,"pageNo":1,"pageSize":25,"total":1,"totalPage":1,"results":[` + tt.item + `]}}`))
			}))
			t.Cleanup(srv.Close)
			var out, errb syncBuffer
			args := []string{"partner", "check", "--partner-sim=false", "--partner-url", srv.URL,
				"--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", partnertest.DefaultClientSecret, "--log-level", "error"}
			if code := run(context.Background(), args, &out, &errb); code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
