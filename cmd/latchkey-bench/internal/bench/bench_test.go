package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// quick are short runs: the tests check counts and classification, never
// timing.
func quick(f *fakeOP, scenario string, mut ...func(*Options)) Options {
	o := Options{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: f.secret, Scenario: scenario,
		Concurrency: 4, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond}
	for _, m := range mut {
		m(&o)
	}
	return o
}

func run(t *testing.T, o Options) Result {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), o, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if out.Len() > 0 {
		t.Logf("output:\n%s", out.String())
	}
	return res
}

// checkShape: the invariants of every result.
func checkShape(t *testing.T, r Result) {
	t.Helper()
	sum := 0
	for _, n := range r.ErrorsByStatus {
		sum += n
	}
	if sum != r.Errors {
		t.Errorf("errors by status add up to %d, Errors = %d", sum, r.Errors)
	}
	if want := float64(r.Requests) / r.Duration.Seconds(); r.RPS != want {
		t.Errorf("RPS = %v, want Requests/Duration = %v", r.RPS, want)
	}
	if r.Requests > 0 && !(r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: %v %v %v %v", r.P50, r.P90, r.P99, r.Max)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioDiscovery, func(o *Options) { o.ClientID, o.ClientSecret = "", "" }))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("discovery: %d ok, %d errors %v", r.Requests, r.Errors, r.ErrorsByStatus)
	}
	// The server saw the setup fetch, the warmup and the cut-off requests too.
	if got := f.count("discovery"); got < int64(r.Requests)+1 {
		t.Errorf("server served %d discovery documents, bench counted %d (+1 setup)", got, r.Requests)
	}
	r = run(t, quick(f, ScenarioJWKS))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 || f.count("jwks") < int64(r.Requests) {
		t.Fatalf("jwks: %d ok, %d errors, server %d", r.Requests, r.Errors, f.count("jwks"))
	}
}

func TestClientCredentials(t *testing.T) {
	for _, method := range []string{AuthBasic, AuthPost} {
		t.Run(method, func(t *testing.T) {
			f := newFakeOP(t, func(f *fakeOP) { f.authMethod = method })
			r := run(t, quick(f, ScenarioClientCredentials, func(o *Options) { o.Scope = "api"; o.AuthMethod = method }))
			checkShape(t, r)
			if r.Requests == 0 || r.Errors != 0 {
				t.Fatalf("%d ok, %d errors %v", r.Requests, r.Errors, r.ErrorsByStatus)
			}
			if got := f.count("cc"); got < int64(r.Requests) {
				t.Errorf("server issued %d tokens, bench counted %d", got, r.Requests)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.badAuth != 0 || len(f.scopes) != 1 || f.scopes["api"] == 0 {
				t.Errorf("bad auth %d, scopes %v", f.badAuth, f.scopes)
			}
		})
	}
}

func TestErrorsByStatus(t *testing.T) {
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioClientCredentials, func(o *Options) { o.ClientSecret = "wrong" }))
	checkShape(t, r)
	if r.Requests != 0 || r.Errors == 0 || r.ErrorsByStatus["status 401"] != r.Errors {
		t.Fatalf("wrong secret: %d ok, errors %v", r.Requests, r.ErrorsByStatus)
	}
	if r.P50 != 0 || r.Max != 0 {
		t.Errorf("latency over failures: %v %v (want only 2xx)", r.P50, r.Max)
	}

	f = newFakeOP(t, func(f *fakeOP) { f.dropToken = true })
	r = run(t, quick(f, ScenarioClientCredentials))
	checkShape(t, r)
	if r.Requests != 0 || r.Errors == 0 || r.ErrorsByStatus["transport error"] != r.Errors {
		t.Fatalf("dropped connections: %d ok, errors %v", r.Requests, r.ErrorsByStatus)
	}
}

func writeTokens(t *testing.T, toks []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rt.txt")
	if err := os.WriteFile(p, []byte(strings.Join(toks, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefreshFollowsRotatingChains(t *testing.T) {
	f := newFakeOP(t)
	var toks []string
	for i := range 4 {
		toks = append(toks, f.mintRefresh(i))
	}
	r := run(t, quick(f, ScenarioRefresh, func(o *Options) { o.RefreshTokenFile = writeTokens(t, toks) }))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 || r.ChainsBroken != 0 {
		t.Fatalf("%d ok, errors %v, chains broken %d", r.Requests, r.ErrorsByStatus, r.ChainsBroken)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reuse != 0 {
		t.Errorf("the bench presented %d rotated-away tokens", f.reuse)
	}
	for c := range 4 {
		if f.chainLen[c] < 2 {
			t.Errorf("chain %d advanced %d times: workers must follow their own chain", c, f.chainLen[c])
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
}

func TestRefreshBrokenChainsStop(t *testing.T) {
	f := newFakeOP(t)
	toks := []string{f.mintRefresh(0), "bogus-1", f.mintRefresh(2), "bogus-3"}
	r := run(t, quick(f, ScenarioRefresh, func(o *Options) {
		o.RefreshTokenFile = writeTokens(t, toks)
		o.Warmup = -1 // the breaks land in the window and are counted
	}))
	checkShape(t, r)
	if r.ChainsBroken != 2 || r.ErrorsByStatus["status 400"] != 2 || r.Requests == 0 {
		t.Fatalf("chains broken %d, errors %v, %d ok", r.ChainsBroken, r.ErrorsByStatus, r.Requests)
	}
	var out bytes.Buffer
	if err := WriteText(&out, r); err != nil || !regexp.MustCompile(`chains broken +2 of 4`).MatchString(out.String()) {
		t.Errorf("text output lacks the broken chains:\n%s", out.String())
	}
}

func TestRefreshSharedToken(t *testing.T) {
	// Not rotating: one token serves every worker, with a warning.
	f := newFakeOP(t, func(f *fakeOP) { f.rotate = false })
	r := run(t, quick(f, ScenarioRefresh, func(o *Options) { o.RefreshTokenFile = writeTokens(t, []string{f.mintRefresh(0)}) }))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 || r.ChainsBroken != 0 {
		t.Fatalf("%d ok, errors %v, broken %d", r.Requests, r.ErrorsByStatus, r.ChainsBroken)
	}
	if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "share") {
		t.Errorf("no warning about shared tokens: %v", r.Warnings)
	}
	// Rotating: the first worker to use the shared token wins, the others break.
	f = newFakeOP(t)
	r = run(t, quick(f, ScenarioRefresh, func(o *Options) { o.RefreshTokenFile = writeTokens(t, []string{f.mintRefresh(0)}) }))
	if r.ChainsBroken != 3 || r.Requests == 0 {
		t.Fatalf("rotating shared token: broken %d, %d ok", r.ChainsBroken, r.Requests)
	}
}

func TestUserinfo(t *testing.T) {
	f := newFakeOP(t)
	toks := []string{f.mintRefresh(0), f.mintRefresh(1)}
	r := run(t, quick(f, ScenarioUserinfo, func(o *Options) { o.RefreshTokenFile = writeTokens(t, toks) }))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 || f.count("userinfo-denied") != 0 || f.count("userinfo") < int64(r.Requests) {
		t.Fatalf("%d ok, errors %v, server %d/%d denied", r.Requests, r.ErrorsByStatus, f.count("userinfo"), f.count("userinfo-denied"))
	}
	if got := f.count("refresh"); got != 2 {
		t.Errorf("setup redeemed %d refresh tokens, want one per distinct token (2)", got)
	}
}

func TestIntrospect(t *testing.T) {
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioIntrospect, func(o *Options) { o.Scope = "api" }))
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 || f.count("introspect-denied") != 0 {
		t.Fatalf("%d ok, errors %v", r.Requests, r.ErrorsByStatus)
	}
	// Every introspection was of a live token the client got itself.
	if f.count("introspect-active") != f.count("introspect") {
		t.Errorf("%d of %d introspections were of an active token", f.count("introspect-active"), f.count("introspect"))
	}
	if got := f.count("cc"); got != 4 {
		t.Errorf("setup got %d tokens, want one per worker (4)", got)
	}

	f = newFakeOP(t, func(f *fakeOP) { f.noIntrospection = true })
	if _, err := Run(context.Background(), quick(f, ScenarioIntrospect), nil); err == nil || !strings.Contains(err.Error(), "introspection_endpoint") {
		t.Fatalf("no introspection endpoint: %v", err)
	}
}

func TestRunSamplesServerProcess(t *testing.T) {
	// The fake OP runs in this process: sample ourselves.
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioClientCredentials, func(o *Options) { o.PID = os.Getpid() }))
	checkShape(t, r)
	if r.RSSBeforeKiB <= 0 || r.RSSAfterKiB <= 0 || r.RSSHWMKiB < r.RSSAfterKiB {
		t.Errorf("RSS before %d after %d HWM %d", r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSHWMKiB)
	}
	if r.RSSPeakKiB < r.RSSBeforeKiB || r.RSSPeakKiB < r.RSSAfterKiB {
		t.Errorf("peak %d below before %d / after %d", r.RSSPeakKiB, r.RSSBeforeKiB, r.RSSAfterKiB)
	}
	if r.ServerCPUms < 0 {
		t.Errorf("server CPU %v ms", r.ServerCPUms)
	}
	if r.CPUmsPerReq > 0 {
		if got := r.ServerCPUms / float64(r.Requests); got != r.CPUmsPerReq {
			t.Errorf("CPU ms/req = %v, want %v", r.CPUmsPerReq, got)
		}
		if got := 1000 / r.CPUmsPerReq; got != r.RPSPerCore {
			t.Errorf("rps per core = %v, want %v", r.RPSPerCore, got)
		}
	}
	if _, err := Run(context.Background(), quick(f, ScenarioDiscovery, func(o *Options) { o.PID = 1 << 30 }), nil); err == nil {
		t.Error("a missing process was accepted")
	}
}

func TestMainJSONAndText(t *testing.T) {
	f := newFakeOP(t)
	var out, errOut bytes.Buffer
	args := []string{"--issuer", f.issuer + "/", "--scenario", "client-credentials", "--client-id", f.clientID,
		"--client-secret", f.secret, "--scope", "api", "--concurrency", "3", "--duration", "200ms", "--warmup", "0",
		"--pid", fmt.Sprint(os.Getpid()), "--json"}
	if err := Main(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("Main: %v\n%s", err, errOut.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"scenario", "requests", "errors", "errors_by_status", "rps", "p50_ms", "p90_ms", "p99_ms",
		"max_ms", "server_cpu_ms", "cpu_ms_per_req", "rps_per_core", "rss_before_kib", "rss_after_kib", "rss_peak_kib",
		"concurrency", "duration_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q:\n%s", k, out.String())
		}
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Concurrency != 3 || r.Duration != 200*time.Millisecond || r.Warmup != 0 || r.Requests == 0 || r.Issuer != f.issuer {
		t.Errorf("round trip: %+v", r)
	}

	out.Reset()
	args = args[:len(args)-1]
	if err := Main(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("Main: %v", err)
	}
	for _, want := range []string{"requests", "errors", "req/s", "p50", "p90", "p99", "max", "ms per request", "per server core", "server RSS", "MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"--scenario", "discovery"}, // no issuer
		{"--issuer", "http://127.0.0.1:1", "--scenario", "sideways"},                                            // unknown scenario
		{"--issuer", "http://127.0.0.1:1", "--scenario", "refresh", "--client-id", "a", "--client-secret", "b"}, // no token file
		{"--issuer", "http://127.0.0.1:1", "--scenario", "client-credentials"},                                  // no client
		{"--issuer", "http://127.0.0.1:1", "--scenario", "discovery", "extra"},
		{"--issuer", "http://127.0.0.1:1", "--scenario", "discovery", "--concurrency", "0"},
		{"--issuer", "http://127.0.0.1:1", "--scenario", "client-credentials", "--client-id", "a", "--client-secret", "b", "--auth-method", "tls"},
	} {
		err := Main(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if !IsUsage(err) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	var stderr bytes.Buffer
	if err := Main(context.Background(), []string{"--help"}, &bytes.Buffer{}, &stderr); err != nil || !strings.Contains(stderr.String(), "--refresh-token-file") && !strings.Contains(stderr.String(), "-refresh-token-file") {
		t.Errorf("--help: %v\n%s", err, stderr.String())
	}
	// A provider that is not there is a failure, not a usage error.
	err := Main(context.Background(), []string{"--issuer", "http://127.0.0.1:1", "--scenario", "discovery"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || IsUsage(err) {
		t.Errorf("unreachable issuer: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	ten := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, c := range []struct {
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ten, 50, 5 * time.Millisecond},
		{ten, 90, 9 * time.Millisecond}, // 0.9·10 must not round up to 10
		{ten, 91, 10 * time.Millisecond},
		{ten, 99, 10 * time.Millisecond},
		{ten, 100, 10 * time.Millisecond},
		{ten, 0, 1 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 99.5, 100 * time.Millisecond},
	} {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("p%v of %d samples = %v, want %v", c.p, len(c.xs), got, c.want)
		}
	}
	// summarize merges unsorted per-worker samples.
	s := summarize([][]time.Duration{ms(10, 1, 5), {}, ms(3, 8, 2, 9, 4, 7, 6)})
	if s.P50 != 5*time.Millisecond || s.P90 != 9*time.Millisecond || s.P99 != 10*time.Millisecond || s.Max != 10*time.Millisecond {
		t.Errorf("summary = %+v", s)
	}
}

func TestParseStat(t *testing.T) {
	b, err := os.ReadFile("testdata/stat")
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := parseStat(b)
	if err != nil || ticks != 1234+567 {
		t.Fatalf("fixture: %d, %v; want 1801", ticks, err)
	}
	for _, bad := range []string{"", "1 (x) R 1 2", "1 (x) R 1 1 1 0 -1 0 0 0 0 0 nine 5 0 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	f, err := os.Open("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rss, hwm, err := parseStatus(f)
	if err != nil || rss != 75012 || hwm != 171220 {
		t.Fatalf("status fixture: rss %d hwm %d, %v", rss, hwm, err)
	}
	if _, _, err := parseStatus(strings.NewReader("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Error("a kernel thread's status (no VmRSS) was accepted")
	}
}

func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	a, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU; the count may only grow.
	x := 0
	for i := range 20_000_000 {
		x ^= i * i
	}
	_ = x
	b, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.RSSKiB <= 0 || a.HWMKiB < a.RSSKiB || b.Ticks < a.Ticks || a.Ticks < 0 {
		t.Errorf("before %+v after %+v", a, b)
	}
	if clockTicks() <= 0 {
		t.Errorf("CLK_TCK = %d", clockTicks())
	}
	if _, err := readProc(1 << 30); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing pid: %v", err)
	}
}

// TestRatePacing: with --rate the workers send on a schedule, not as fast
// as the server answers.
func TestRatePacing(t *testing.T) {
	op := newFakeOP(t)
	res := run(t, Options{Issuer: op.issuer, Scenario: ScenarioDiscovery, Concurrency: 4, Rate: 200,
		Duration: 500 * time.Millisecond, Warmup: -1})
	// 200/s for 0.5 s is about 100 requests; a closed loop would do
	// thousands against the in-process fake.
	if res.Requests < 50 || res.Requests > 150 {
		t.Fatalf("%d requests at 200/s over 0.5 s", res.Requests)
	}
}

// TestRunSamplesDatabaseProcesses: --db-match sums the CPU of the processes
// whose command line matches (here a shell spinning in a loop, standing in
// for the PostgreSQL backends), and divides it per request.
func TestRunSamplesDatabaseProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	marker := fmt.Sprintf("dbmatch-%d", os.Getpid())
	spin := exec.Command("sh", "-c", "while :; do :; done", marker)
	if err := spin.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	t.Cleanup(func() { _ = spin.Process.Kill(); _ = spin.Wait() })
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioClientCredentials, func(o *Options) {
		o.DBMatch = marker
		o.Duration = 500 * time.Millisecond
	}))
	if r.DBProcs != 1 {
		t.Fatalf("matched %d processes, want 1 (warnings %v)", r.DBProcs, r.Warnings)
	}
	if r.DBCPUms <= 0 || r.DBCPUmsPerReq != r.DBCPUms/float64(r.Requests) {
		t.Errorf("database CPU %v ms, %v ms per request over %d requests", r.DBCPUms, r.DBCPUmsPerReq, r.Requests)
	}
	r = run(t, quick(f, ScenarioDiscovery, func(o *Options) { o.DBMatch = marker + "-nothing" }))
	if r.DBProcs != 0 || len(r.Warnings) == 0 {
		t.Errorf("no match: %d processes, warnings %v", r.DBProcs, r.Warnings)
	}
}

func TestTicksDelta(t *testing.T) {
	before := map[int]int64{1: 100, 2: 50, 3: 7}
	after := map[int]int64{1: 130, 2: 50, 4: 9} // 3 exited, 4 started
	if got := ticksDelta(before, after); got != 30+0+9 {
		t.Errorf("ticksDelta = %d, want 39", got)
	}
}

// TestRunScrapesPasswordHashes: --metrics-url takes the server's argon2id
// histogram at both ends of the window — the runs in between and their
// CPU, and the server's CPU per request besides them — and a scrape
// without the histogram is a warning, not figures.
func TestRunScrapesPasswordHashes(t *testing.T) {
	var scrapes atomic.Int64
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1) // 10 runs of 21 ms before the window, 30 (20 more) after
		fmt.Fprintf(w, `# HELP latchkey_password_hash_cpu_seconds CPU time of each argon2id run.
# TYPE latchkey_password_hash_cpu_seconds histogram
latchkey_password_hash_cpu_seconds_bucket{le="0.02"} 0
latchkey_password_hash_cpu_seconds_bucket{le="+Inf"} %d
latchkey_password_hash_cpu_seconds_sum %g
latchkey_password_hash_cpu_seconds_count %d
latchkey_password_hash_cpu_seconds_total_not_this 99
`, n*20-10, float64(n*20-10)*0.021, n*20-10)
	}))
	defer metrics.Close()
	f := newFakeOP(t)
	r := run(t, quick(f, ScenarioDiscovery, func(o *Options) { o.MetricsURL = metrics.URL; o.PID = os.Getpid() }))
	if r.HashRuns != 20 || math.Abs(r.HashCPUms-420) > 1e-6 || math.Abs(r.HashCPUmsPerRun-21) > 1e-6 {
		t.Fatalf("hashes %d, %v ms, %v ms each; want 20, 420, 21", r.HashRuns, r.HashCPUms, r.HashCPUmsPerRun)
	}
	if want := (r.ServerCPUms - r.HashCPUms) / float64(r.Requests); r.Requests == 0 || r.OtherCPUmsPerReq != want {
		t.Errorf("besides the hashes %v ms per request, want %v", r.OtherCPUmsPerReq, want)
	}
	var out bytes.Buffer
	if err := WriteText(&out, r); err != nil || !strings.Contains(out.String(), "20 in the window, 21.00 ms CPU each") {
		t.Errorf("text output:\n%s", out.String())
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "go_goroutines 7") }))
	defer plain.Close()
	r = run(t, quick(f, ScenarioDiscovery, func(o *Options) { o.MetricsURL = plain.URL }))
	if r.HashRuns != 0 || len(r.Warnings) == 0 {
		t.Errorf("no histogram: %d hashes, warnings %v", r.HashRuns, r.Warnings)
	}
}
