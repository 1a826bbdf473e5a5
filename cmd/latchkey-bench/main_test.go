package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// cli runs one command line against environ and returns the exit code,
// stdout and stderr.
func cli(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb, environ)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"no command", nil, exitUsage, "", "latchkey-bench bench"},
		{"help", []string{"help"}, exitOK, "latchkey-bench seed --users N", ""},
		{"--help", []string{"--help"}, exitOK, "latchkey-bench bench --issuer URL", ""},
		{"unknown command", []string{"serve"}, exitUsage, "", `unknown command "serve"`},
		{"bench --help", []string{"bench", "--help"}, exitOK, "", "-refresh-token-file"},
		{"bench without issuer", []string{"bench", "--scenario", "discovery"}, exitUsage, "", "--issuer is required"},
		{"bench bad flag", []string{"bench", "--bogus"}, exitUsage, "", "run 'latchkey-bench help'"},
		{"bench bad rate", []string{"bench", "--issuer", "http://127.0.0.1:1", "--scenario", "discovery", "--rate", "-1"}, exitUsage, "", "--rate"},
		{"bench unreachable provider", []string{"bench", "--issuer", "http://127.0.0.1:1", "--scenario", "discovery"}, exitFailure, "", "discovery"},
		{"seed --help", []string{"seed", "--help"}, exitOK, "", "-tokens-out"},
		{"seed without users", []string{"seed"}, exitUsage, "", "--users is required"},
		{"seed bad pattern", []string{"seed", "--users", "1", "--user-pattern", "bench@example.com"}, exitUsage, "", "%d"},
		{"seed tokens without client", []string{"seed", "--users", "1", "--refresh-tokens", "1"}, exitUsage, "", "--client"},
		{"seed extra argument", []string{"seed", "--users", "1", "extra"}, exitUsage, "", `"extra"`},
		{"soak --help", []string{"soak", "--help"}, exitOK, "", "-families"},
		{"soak without issuer", []string{"soak", "--client", "c"}, exitUsage, "", "--issuer and --client are required"},
		{"ceiling --help", []string{"ceiling", "--help"}, exitOK, "", "-checks"},
		{"ceiling bad checks", []string{"ceiling", "--checks", "0"}, exitUsage, "", "--checks must be positive"},
		{"ceiling extra argument", []string{"ceiling", "extra"}, exitUsage, "", `"extra"`},
		{"ceiling", []string{"ceiling", "--checks", "2"}, exitOK, "argon2id m=19456 KiB t=2 p=1: 2 checks", ""},
		{"soak bad duration", []string{"soak", "--issuer", "http://127.0.0.1:1", "--client", "c", "--duration", "0s"}, exitUsage, "", "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
		})
	}
}

// TestBenchJSON runs the discovery scenario through the command line
// against a provider that serves only its discovery document, and reads
// the JSON result.
func TestBenchJSON(t *testing.T) {
	var hits atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
	}))
	defer srv.Close()
	code, out, errOut := cli(t, nil, "bench", "--issuer", srv.URL, "--scenario", "discovery",
		"--concurrency", "1", "--duration", "100ms", "--warmup", "0", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var res struct {
		Scenario    string  `json:"scenario"`
		Issuer      string  `json:"issuer"`
		Requests    int     `json:"requests"`
		Errors      int     `json:"errors"`
		Concurrency int     `json:"concurrency"`
		DurationS   float64 `json:"duration_s"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Scenario != "discovery" || res.Issuer != srv.URL || res.Requests == 0 || res.Errors != 0 ||
		res.Concurrency != 1 || res.DurationS != 0.1 {
		t.Fatalf("result %+v", res)
	}
	if served := hits.Load(); int64(res.Requests) > served-1 { // the setup fetch is not counted
		t.Fatalf("%d requests counted, %d served", res.Requests, served)
	}
}

// TestCeilingJSON: ceiling --json reports the checks it timed with the
// default parameters and a CPU time per check that agrees with its rate.
func TestCeilingJSON(t *testing.T) {
	code, out, errOut := cli(t, nil, "ceiling", "--checks", "2", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r ceilingResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Checks != 2 || r.MemoryKiB != 19456 || r.Time != 2 || r.Threads != 1 || r.CPUMsPerCheck <= 0 {
		t.Fatalf("result %+v", r)
	}
	if got := 1000 / r.CPUMsPerCheck; got < r.ChecksPerCPUSec*0.99 || got > r.ChecksPerCPUSec*1.01 {
		t.Fatalf("%.2f ms per check but %.1f checks per CPU-second", r.CPUMsPerCheck, r.ChecksPerCPUSec)
	}
}
