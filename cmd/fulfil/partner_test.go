package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// partner check -o json prints the report as data: one object per endpoint with its HTTP
// status, envelope code, request ID and findings. Against a simulator that sends
// planAutoRenewal as a Boolean (--auto-renewal-as-bool) the drift is in the JSON and the check
// still passes; with a wrong secret it fails, and the JSON says where and why.
func TestPartnerCheckJSON(t *testing.T) {
	type result struct {
		OK         bool  `json:"ok"`
		ProductID  int64 `json:"productId"`
		Failed     int   `json:"failed"`
		Mismatches int   `json:"mismatches"`
		Drift      int   `json:"drift"`
		Endpoints  []struct {
			Endpoint   string `json:"endpoint"`
			Status     string `json:"status"`
			Skipped    string `json:"skipped"`
			HTTPStatus int    `json:"httpStatus"`
			Code       string `json:"code"`
			RequestID  string `json:"requestId"`
			Error      string `json:"error"`
			Fixture    string `json:"fixture"`
			Findings   []struct {
				Kind, Path, Want, Got string
			} `json:"findings"`
		} `json:"endpoints"`
	}
	check := func(t *testing.T, sim *partnertest.Server, secret string, wantCode int) (result, string) {
		t.Helper()
		var out, errb syncBuffer
		args := []string{"partner", "check", "--partner-sim=false", "--partner-url", sim.URL, "--product-id", "12",
			"--partner-client-id", partnertest.DefaultClientID, "--partner-client-secret", secret, "--log-level", "error", "-o", "json"}
		if code := run(context.Background(), args, &out, &errb); code != wantCode {
			t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out.String(), errb.String())
		}
		var r result
		dec := json.NewDecoder(strings.NewReader(out.String()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%v:\n%s", err, out.String())
		}
		for _, s := range append(sim.IssuedTokens(), partnertest.DefaultClientSecret) {
			if strings.Contains(out.String(), s) {
				t.Fatalf("the JSON contains a secret:\n%s", out.String())
			}
		}
		return r, out.String()
	}

	t.Run("drift", func(t *testing.T) {
		sim := partnertest.NewServer(partnertest.WithHostile(partnertest.Hostile{AutoRenewalAsBool: true}))
		t.Cleanup(sim.Close)
		r, out := check(t, sim, partnertest.DefaultClientSecret, exitOK)
		if !r.OK || r.ProductID != 12 || r.Failed != 0 || r.Drift < 2 || len(r.Endpoints) != len(partnerclient.AllEndpoints) {
			t.Fatalf("ok %v, productId %d, failed %d, drift %d, %d endpoints:\n%s", r.OK, r.ProductID, r.Failed, r.Drift, len(r.Endpoints), out)
		}
		var sawDrift bool
		for i, e := range r.Endpoints {
			if e.Endpoint != string(partnerclient.AllEndpoints[i]) {
				t.Errorf("endpoint %d is %s, want %s", i, e.Endpoint, partnerclient.AllEndpoints[i])
			}
			if partnerclient.AllEndpoints[i].SideEffect() || partnerclient.AllEndpoints[i] == partnerclient.EndpointOrderDetails {
				// The simulator has no order to read the details of.
				if e.Status != "skipped" || e.Skipped == "" || e.HTTPStatus != 0 || e.RequestID != "" {
					t.Errorf("%s: %+v, want skipped", e.Endpoint, e)
				}
				continue
			}
			if e.Status != "ok" || e.HTTPStatus != http.StatusOK || e.Code != partnerclient.CodeSuccess || e.RequestID == "" || e.Error != "" {
				t.Errorf("%s: %+v, want ok, 200, success and a request ID", e.Endpoint, e)
			}
			for _, f := range e.Findings {
				if e.Endpoint == string(partnerclient.EndpointProductList) && f.Kind == "drift" &&
					f.Path == "results[].planAutoRenewal" && f.Want == "number" && f.Got == "boolean" {
					sawDrift = true
				}
			}
		}
		if !sawDrift {
			t.Errorf("no drift of product_list results[].planAutoRenewal in:\n%s", out)
		}
	})

	t.Run("failure", func(t *testing.T) {
		sim := partnertest.NewServer()
		t.Cleanup(sim.Close)
		r, out := check(t, sim, "wrong", exitFailed)
		if r.OK || r.Failed == 0 || r.Mismatches != 0 || len(r.Endpoints) != len(partnerclient.AllEndpoints) {
			t.Fatalf("ok %v, failed %d, mismatches %d, %d endpoints:\n%s", r.OK, r.Failed, r.Mismatches, len(r.Endpoints), out)
		}
		failed := 0
		for _, e := range r.Endpoints {
			switch e.Status {
			case "failed":
				failed++
				// Every call fails at its login; only the token call has an answer of its own.
				wantHTTP, wantCode := 0, ""
				if e.Endpoint == string(partnerclient.EndpointToken) {
					wantHTTP, wantCode = http.StatusUnauthorized, "invalid_client"
				}
				if e.HTTPStatus != wantHTTP || e.Code != wantCode || (e.RequestID != "") != (wantCode != "") ||
					!strings.Contains(e.Error, "invalid_client") {
					t.Errorf("%s: %+v, want failed: HTTP %d, code %q, the error", e.Endpoint, e, wantHTTP, wantCode)
				}
			case "skipped":
				if e.Skipped == "" || e.HTTPStatus != 0 {
					t.Errorf("%s: %+v, want a reason only", e.Endpoint, e)
				}
			default:
				t.Errorf("%s: status %s, want failed or skipped", e.Endpoint, e.Status)
			}
		}
		if failed != r.Failed || r.Endpoints[0].Status != "failed" {
			t.Errorf("%d endpoints failed, failed says %d, token %s:\n%s", failed, r.Failed, r.Endpoints[0].Status, out)
		}
	})
}
