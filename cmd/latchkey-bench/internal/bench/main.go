package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

const usageText = `Usage: latchkey-bench bench --issuer URL --scenario S [flags]

A closed-loop load generator for any OpenID provider (found through its
discovery document). Scenarios: %s.

`

// Main is "latchkey-bench bench": it parses args (the flags below), runs the
// scenario and prints the result as a text block or, with --json, as
// JSON. A bad command line is returned as a *UsageError (see IsUsage);
// --help prints the flags and returns nil.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o Options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usageText, strings.Join(Scenarios, ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Issuer, "issuer", "", "issuer URL; discovery at ISSUER/.well-known/openid-configuration (required)")
	fs.StringVar(&o.ClientID, "client-id", "", "client id (all scenarios but discovery and jwks)")
	fs.StringVar(&o.ClientSecret, "client-secret", "", "client secret")
	fs.StringVar(&o.Scenario, "scenario", "", "one of: "+strings.Join(Scenarios, ", ")+" (required)")
	fs.IntVar(&o.Concurrency, "concurrency", DefaultConcurrency, "workers, each sending its next request when the previous one returns")
	fs.DurationVar(&o.Duration, "duration", DefaultDuration, "measured window")
	warmup := fs.Duration("warmup", DefaultWarmup, "load before the measured window, not counted (0: none)")
	fs.Float64Var(&o.Rate, "rate", 0, "requests per second in total, paced (open loop; latency from the schedule); 0: closed loop")
	fs.IntVar(&o.PID, "pid", 0, "server process id: CPU time and RSS from /proc (Linux)")
	fs.StringVar(&o.DBMatch, "db-match", "", "also sample the CPU time of the processes whose command line contains this (e.g. the PostgreSQL backends: \"postgres: 15/main: postgres DBNAME\")")
	fs.StringVar(&o.MetricsURL, "metrics-url", "", "a Latchkey server's Prometheus endpoint (metrics.addr + /metrics): its argon2id runs and their CPU in the window, and with --pid the server's CPU per request besides them")
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&o.Scope, "scope", "", "scope for client-credentials and introspect (e.g. api)")
	fs.StringVar(&o.RefreshTokenFile, "refresh-token-file", "", "refresh tokens, one a line: one per worker follows rotating chains (refresh, userinfo)")
	fs.StringVar(&o.AuthMethod, "auth-method", "", "client authentication: client_secret_basic (default), client_secret_post or none")
	fs.StringVar(&o.Users, "users", "", "signin: file of email:password lines, or a pattern like bench%d@example.com:PASSWORD")
	fs.IntVar(&o.UsersCount, "users-count", 0, "signin: how many users the --users pattern names (bench0 … benchN-1)")
	fs.BoolVar(&o.KeepBrowser, "keep-browser", false, "signin: each user keeps its browser (cookies) from one sign-in to the next, as returning users do (default: a new browser each time)")
	fs.StringVar(&o.SMTPListen, "smtp-listen", DefaultSMTPListen, "signin: address of the SMTP sink the bench starts (the server's smtp_url must point at it)")
	fs.StringVar(&o.RedirectURI, "redirect-uri", "", "signin: a redirect URI registered for the client (never fetched)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &UsageError{msg: "bench: " + err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	if *warmup == 0 {
		o.Warmup = -1 // explicitly none (zero in Options means the default)
	} else {
		o.Warmup = *warmup
	}
	if o.Concurrency <= 0 {
		return usagef("bench: --concurrency %d: want ≥ 1", o.Concurrency)
	}
	if o.Duration <= 0 {
		return usagef("bench: --duration %v: want > 0", o.Duration)
	}
	if o.Rate < 0 {
		return usagef("bench: --rate %v: want ≥ 0", o.Rate)
	}
	res, err := Run(ctx, o, stdout)
	if err != nil {
		if IsUsage(err) {
			return &UsageError{msg: "bench: " + err.Error()}
		}
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return WriteText(stdout, res)
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// WriteText prints a result as the human-readable block.
func WriteText(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	unit := "req/s"
	what := "requests"
	if r.Scenario == ScenarioSignin {
		unit, what = "sign-ins/s", "sign-ins"
	}
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	fmt.Fprintf(tw, "issuer\t%s\n", r.Issuer)
	loop := "closed loop"
	if r.Rate > 0 {
		loop = fmt.Sprintf("paced at %.0f req/s, latency from the schedule", r.Rate)
	}
	fmt.Fprintf(tw, "load\tconcurrency %d, %v measured after %v warmup (%s)\n", r.Concurrency, r.Duration, r.Warmup, loop)
	fmt.Fprintf(tw, "%s\t%d ok, %d errors\n", what, r.Requests, r.Errors)
	if len(r.ErrorsByStatus) > 0 {
		ks := slices.Sorted(maps.Keys(r.ErrorsByStatus))
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = fmt.Sprintf("%s: %d", k, r.ErrorsByStatus[k])
		}
		fmt.Fprintf(tw, "errors by status\t%s\n", strings.Join(parts, ", "))
	}
	if r.Scenario == ScenarioRefresh {
		fmt.Fprintf(tw, "chains broken\t%d of %d\n", r.ChainsBroken, r.Concurrency)
	}
	fmt.Fprintf(tw, "throughput\t%.1f %s\n", r.RPS, unit)
	fmt.Fprintf(tw, "latency (2xx)\tp50 %s, p90 %s, p99 %s, max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	switch {
	case r.PID == 0:
		fmt.Fprintf(tw, "server\tnot sampled (no --pid)\n")
	case r.CPUmsPerReq == 0:
		fmt.Fprintf(tw, "server CPU\t%.0f ms over the window (too little to divide)\n", r.ServerCPUms)
	default:
		fmt.Fprintf(tw, "server CPU\t%.0f ms over the window, %.3f ms per %s → %.0f %s per server core\n",
			r.ServerCPUms, r.CPUmsPerReq, strings.TrimSuffix(what, "s"), r.RPSPerCore, unit)
	}
	if r.DBProcs > 0 {
		fmt.Fprintf(tw, "database CPU\t%.0f ms over the window in %d processes, %.3f ms per %s\n",
			r.DBCPUms, r.DBProcs, r.DBCPUmsPerReq, strings.TrimSuffix(what, "s"))
	}
	if r.HashRuns > 0 {
		fmt.Fprintf(tw, "password hashes\t%d in the window, %.2f ms CPU each (the server's own measure)\n", r.HashRuns, r.HashCPUmsPerRun)
		if r.OtherCPUmsPerReq != 0 {
			fmt.Fprintf(tw, "server CPU besides\t%.3f ms per %s\n", r.OtherCPUmsPerReq, strings.TrimSuffix(what, "s"))
		}
	}
	if r.PID != 0 && r.RSSAfterKiB > 0 {
		fmt.Fprintf(tw, "server RSS\tbefore %s, after %s, peak %s (VmHWM %s)\n",
			mib(r.RSSBeforeKiB), mib(r.RSSAfterKiB), mib(r.RSSPeakKiB), mib(r.RSSHWMKiB))
	}
	return tw.Flush()
}

// resultJSON is Result on the wire: snake_case keys, times in
// milliseconds (durations of the run in seconds).
type resultJSON struct {
	Scenario       string         `json:"scenario"`
	Issuer         string         `json:"issuer"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	RPS            float64        `json:"rps"`
	P50ms          float64        `json:"p50_ms"`
	P90ms          float64        `json:"p90_ms"`
	P99ms          float64        `json:"p99_ms"`
	MaxMs          float64        `json:"max_ms"`
	PID            int            `json:"pid,omitempty"`
	ServerCPUms    float64        `json:"server_cpu_ms"`
	CPUmsPerReq    float64        `json:"cpu_ms_per_req"`
	RPSPerCore     float64        `json:"rps_per_core"`
	DBProcs        int            `json:"db_procs,omitempty"`
	DBCPUms        float64        `json:"db_cpu_ms,omitempty"`
	DBCPUmsPerReq  float64        `json:"db_cpu_ms_per_req,omitempty"`
	HashRuns       int            `json:"password_hashes,omitempty"`
	HashCPUms      float64        `json:"password_hash_cpu_ms,omitempty"`
	HashCPUmsPer   float64        `json:"password_hash_cpu_ms_each,omitempty"`
	OtherCPUms     float64        `json:"cpu_ms_per_req_besides_hashes,omitempty"`
	RSSBeforeKiB   int64          `json:"rss_before_kib"`
	RSSAfterKiB    int64          `json:"rss_after_kib"`
	RSSPeakKiB     int64          `json:"rss_peak_kib"`
	RSSHWMKiB      int64          `json:"rss_hwm_kib"`
	Concurrency    int            `json:"concurrency"`
	Rate           float64        `json:"rate,omitempty"`
	DurationS      float64        `json:"duration_s"`
	WarmupS        float64        `json:"warmup_s"`
	ChainsBroken   int            `json:"chains_broken"`
	Warnings       []string       `json:"warnings,omitempty"`
}

func toMs(d time.Duration) float64   { return float64(d) / float64(time.Millisecond) }
func fromMs(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// MarshalJSON writes snake_case keys with latencies in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	ebs := r.ErrorsByStatus
	if ebs == nil {
		ebs = map[string]int{}
	}
	return json.Marshal(resultJSON{
		Scenario: r.Scenario, Issuer: r.Issuer, Requests: r.Requests, Errors: r.Errors, ErrorsByStatus: ebs,
		RPS: r.RPS, P50ms: toMs(r.P50), P90ms: toMs(r.P90), P99ms: toMs(r.P99), MaxMs: toMs(r.Max),
		PID: r.PID, ServerCPUms: r.ServerCPUms, CPUmsPerReq: r.CPUmsPerReq, RPSPerCore: r.RPSPerCore,
		DBProcs: r.DBProcs, DBCPUms: r.DBCPUms, DBCPUmsPerReq: r.DBCPUmsPerReq,
		HashRuns: r.HashRuns, HashCPUms: r.HashCPUms, HashCPUmsPer: r.HashCPUmsPerRun, OtherCPUms: r.OtherCPUmsPerReq,
		RSSBeforeKiB: r.RSSBeforeKiB, RSSAfterKiB: r.RSSAfterKiB, RSSPeakKiB: r.RSSPeakKiB, RSSHWMKiB: r.RSSHWMKiB,
		Concurrency: r.Concurrency, Rate: r.Rate, DurationS: r.Duration.Seconds(), WarmupS: r.Warmup.Seconds(),
		ChainsBroken: r.ChainsBroken, Warnings: r.Warnings,
	})
}

// UnmarshalJSON reads what MarshalJSON writes (to compare runs).
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{
		Scenario: j.Scenario, Issuer: j.Issuer, Requests: j.Requests, Errors: j.Errors, ErrorsByStatus: j.ErrorsByStatus,
		RPS: j.RPS, P50: fromMs(j.P50ms), P90: fromMs(j.P90ms), P99: fromMs(j.P99ms), Max: fromMs(j.MaxMs),
		PID: j.PID, ServerCPUms: j.ServerCPUms, CPUmsPerReq: j.CPUmsPerReq, RPSPerCore: j.RPSPerCore,
		DBProcs: j.DBProcs, DBCPUms: j.DBCPUms, DBCPUmsPerReq: j.DBCPUmsPerReq,
		HashRuns: j.HashRuns, HashCPUms: j.HashCPUms, HashCPUmsPerRun: j.HashCPUmsPer, OtherCPUmsPerReq: j.OtherCPUms,
		RSSBeforeKiB: j.RSSBeforeKiB, RSSAfterKiB: j.RSSAfterKiB, RSSPeakKiB: j.RSSPeakKiB, RSSHWMKiB: j.RSSHWMKiB,
		Concurrency: j.Concurrency, Rate: j.Rate, Duration: time.Duration(j.DurationS * float64(time.Second)),
		Warmup: time.Duration(j.WarmupS * float64(time.Second)), ChainsBroken: j.ChainsBroken, Warnings: j.Warnings,
	}
	return nil
}
