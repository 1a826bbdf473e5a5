package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenario names.
const (
	ScenarioDiscovery         = "discovery"
	ScenarioJWKS              = "jwks"
	ScenarioClientCredentials = "client-credentials"
	ScenarioRefresh           = "refresh"
	ScenarioUserinfo          = "userinfo"
	ScenarioIntrospect        = "introspect"
	ScenarioSignin            = "signin"
)

// Scenarios lists the scenario names Run accepts.
var Scenarios = []string{ScenarioDiscovery, ScenarioJWKS, ScenarioClientCredentials, ScenarioRefresh,
	ScenarioUserinfo, ScenarioIntrospect, ScenarioSignin}

// Client authentication methods at the token and introspection endpoints.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none" // public client: client_id in the body, no secret
)

// Defaults applied by Run to zero Options fields.
const (
	DefaultConcurrency = 50
	DefaultDuration    = 10 * time.Second
	DefaultWarmup      = 2 * time.Second
	DefaultSMTPListen  = "127.0.0.1:2525"
)

// Options configure one run. Zero fields take the defaults above; a
// negative Warmup means no warmup at all.
type Options struct {
	Issuer       string // discovery at Issuer + "/.well-known/openid-configuration"
	ClientID     string
	ClientSecret string
	Scenario     string // one of Scenarios
	Concurrency  int    // workers (default 50)
	// Rate, when > 0, paces the workers to this many requests per second in
	// total (open loop: each worker sends on a schedule, and latency counts
	// from the scheduled time, so a stalled server cannot hide its queue).
	Rate     float64
	Duration time.Duration // measured window (default 10s)
	Warmup   time.Duration // before the window, not measured (default 2s; < 0: none)
	// PID is the server process (0: not sampled). Its CPU time
	// (utime+stime of /proc/PID/stat) and VmRSS/VmHWM (/proc/PID/status)
	// are read at the start and at the end of the measured window, and
	// VmRSS every 100 ms in between (the peak).
	PID int
	// DBMatch, when set, also samples the CPU time of every process whose
	// command line contains it (e.g. "postgres: 15/main: postgres lk_bench":
	// the PostgreSQL backends serving the server's connections), at the
	// start and the end of the measured window. A process that exits inside
	// the window is not counted.
	DBMatch string
	// MetricsURL, when set, is a Latchkey server's Prometheus endpoint
	// (its metrics.addr + /metrics), scraped at the start and the end of
	// the measured window for latchkey_password_hash_cpu_seconds: the
	// argon2id runs of the window and their CPU, which with PID tells the
	// hash from the rest of a sign-in.
	MetricsURL string
	JSON       bool // Main prints JSON instead of the text block

	Scope string // client-credentials and introspect: the scope to ask for (e.g. "api")
	// RefreshTokenFile holds refresh tokens, one a line (refresh, userinfo).
	// With at least Concurrency lines each worker follows its own chain;
	// with fewer, workers share them round-robin (right only for providers
	// that do not rotate refresh tokens).
	RefreshTokenFile string
	AuthMethod       string // client_secret_basic (default) | client_secret_post | none

	// signin (Latchkey only).
	Users      string // file of "email:password" lines, or a pattern with %d and UsersCount
	UsersCount int
	// KeepBrowser keeps each signin user's cookies from one sign-in to
	// its next, as the user's own browser would (default: a new browser
	// for every sign-in).
	KeepBrowser bool
	SMTPListen  string // the SMTP sink the bench starts (default 127.0.0.1:2525)
	RedirectURI string // a redirect URI registered for ClientID; never fetched
}

// Result is one run's figures. Requests counts the successful (2xx)
// responses — for signin, the complete sign-ins — that completed inside
// the measured window; Errors the failed ones. Latencies are over the
// successful ones only.
type Result struct {
	Scenario       string
	Issuer         string
	Requests       int
	Errors         int
	ErrorsByStatus map[string]int
	RPS            float64 // Requests / Duration
	P50, P90, P99  time.Duration
	Max            time.Duration

	PID         int     // the server process sampled (0: none)
	ServerCPUms float64 // utime+stime over the measured window
	CPUmsPerReq float64 // ServerCPUms / Requests
	RPSPerCore  float64 // 1000 / CPUmsPerReq: what one fully busy server core would serve
	// The processes matched by Options.DBMatch (0 when not sampled).
	DBProcs       int     // how many matched at the end of the window
	DBCPUms       float64 // their utime+stime over the measured window
	DBCPUmsPerReq float64 // DBCPUms / Requests
	RSSBeforeKiB  int64   // VmRSS at the start of the window
	RSSAfterKiB   int64   // VmRSS at the end of the window
	RSSPeakKiB    int64   // highest VmRSS seen (sampled every 100 ms, warmup included)
	RSSHWMKiB     int64   // VmHWM at the end: the kernel's peak RSS since the process started
	// From Options.MetricsURL (0 when not scraped): the server's argon2id
	// runs inside the window, their CPU, and with PID the server's CPU per
	// request besides them.
	HashRuns         int
	HashCPUms        float64
	HashCPUmsPerRun  float64
	OtherCPUmsPerReq float64

	Concurrency  int
	Rate         float64 // 0: closed loop
	Duration     time.Duration
	Warmup       time.Duration
	ChainsBroken int      // refresh: workers whose token chain broke (4xx) and stopped
	Warnings     []string // also printed (text mode) as they arise
}

// discoveryDoc is the part of the discovery document the bench uses.
type discoveryDoc struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// outcome is what one iteration (one request, or one whole sign-in) gave.
type outcome struct {
	ok     bool   // 2xx (signin: the token endpoint returned an ID token)
	errKey string // when !ok: "status 400", "transport error", …
	stop   bool   // the worker stops after this (a broken refresh chain)
}

// iteration is one worker's loop body.
type iteration func(ctx context.Context) outcome

// env is what the scenarios share.
type env struct {
	o         Options
	transport *http.Transport
	client    *http.Client // shared keep-alive client; never follows redirects
	disc      discoveryDoc
	issuerURL *url.URL
	warn      func(format string, args ...any)
}

const maxBody = 4 << 20

func (o *Options) applyDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	} else if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.AuthMethod == "" {
		o.AuthMethod = AuthBasic
		if o.ClientSecret == "" && o.ClientID != "" {
			o.AuthMethod = AuthNone
		}
	}
	if o.SMTPListen == "" {
		o.SMTPListen = DefaultSMTPListen
	}
	o.Issuer = strings.TrimRight(o.Issuer, "/")
}

// validate reports option errors as *UsageError.
func (o *Options) validate() error {
	if o.Issuer == "" {
		return usagef("--issuer is required")
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--issuer %q: want an http(s) URL", o.Issuer)
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == o.Scenario
	}
	if !known {
		return usagef("--scenario %q: want one of %s", o.Scenario, strings.Join(Scenarios, ", "))
	}
	switch o.AuthMethod {
	case AuthBasic, AuthPost, AuthNone:
	default:
		return usagef("--auth-method %q: want %s, %s or %s", o.AuthMethod, AuthBasic, AuthPost, AuthNone)
	}
	needsClient := o.Scenario != ScenarioDiscovery && o.Scenario != ScenarioJWKS
	if needsClient && o.ClientID == "" {
		return usagef("--client-id is required for %s", o.Scenario)
	}
	if (o.AuthMethod == AuthBasic || o.AuthMethod == AuthPost) && needsClient && o.ClientSecret == "" {
		return usagef("--client-secret is required with %s", o.AuthMethod)
	}
	if o.Scenario == ScenarioIntrospect && o.AuthMethod == AuthNone {
		return usagef("introspect needs a confidential client (--client-secret)")
	}
	if (o.Scenario == ScenarioRefresh || o.Scenario == ScenarioUserinfo) && o.RefreshTokenFile == "" {
		return usagef("--refresh-token-file is required for %s", o.Scenario)
	}
	if o.Scenario == ScenarioSignin {
		if o.Users == "" {
			return usagef("--users is required for signin")
		}
		if o.RedirectURI == "" {
			return usagef("--redirect-uri is required for signin")
		}
	}
	if o.PID < 0 {
		return usagef("--pid %d: want a process id", o.PID)
	}
	return nil
}

// newTransport is a keep-alive transport sized for the workers: every
// worker keeps its connection, responses arrive as the server sends them
// (no transparent gzip), and no proxy from the environment gets between.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          2 * concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// Run measures one scenario against o.Issuer: it reads the discovery
// document, prepares the workers (tokens, users, the SMTP sink), runs the
// closed loop for Warmup then Duration, and returns the figures of the
// measured window. Warnings go to stdout as they arise (unless o.JSON) and
// into Result.Warnings.
func Run(ctx context.Context, o Options, stdout io.Writer) (Result, error) {
	o.applyDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if stdout == nil {
		stdout = io.Discard
	}
	res := Result{Scenario: o.Scenario, Issuer: o.Issuer, Concurrency: o.Concurrency, Rate: o.Rate, Duration: o.Duration,
		Warmup: o.Warmup, PID: o.PID, ErrorsByStatus: map[string]int{}}
	var warnMu sync.Mutex
	e := &env{o: o, transport: newTransport(o.Concurrency)}
	e.warn = func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		warnMu.Lock()
		defer warnMu.Unlock()
		res.Warnings = append(res.Warnings, msg)
		if !o.JSON {
			fmt.Fprintln(stdout, "warning:", msg)
		}
	}
	defer e.transport.CloseIdleConnections()
	e.client = &http.Client{Transport: e.transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.issuerURL, _ = url.Parse(o.Issuer)

	if o.PID != 0 {
		if _, err := readProc(o.PID); err != nil {
			return res, fmt.Errorf("--pid %d: %w", o.PID, err)
		}
	}

	setupCtx, cancelSetup := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelSetup()
	if err := e.discover(setupCtx); err != nil {
		return res, err
	}
	iters, cleanup, err := e.prepare(setupCtx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return res, err
	}
	cancelSetup()

	m, err := e.measure(ctx, iters)
	if err != nil {
		return res, err
	}
	res.Requests, res.Errors, res.ErrorsByStatus = m.ok, m.errors, m.errs
	res.RPS = float64(m.ok) / o.Duration.Seconds()
	res.P50, res.P90, res.P99, res.Max = m.lat.P50, m.lat.P90, m.lat.P99, m.lat.Max
	res.ChainsBroken = m.stopped
	if m.stopped > 0 {
		e.warn("chains broken: %d of %d workers stopped after a 4xx on their refresh token", m.stopped, o.Concurrency)
	}
	if o.PID != 0 {
		if m.procErr != nil {
			e.warn("server process %d: %v (no CPU figures)", o.PID, m.procErr)
		} else {
			res.ServerCPUms = ticksToMs(m.after.Ticks - m.before.Ticks)
			if res.Requests > 0 && res.ServerCPUms > 0 {
				res.CPUmsPerReq = res.ServerCPUms / float64(res.Requests)
				res.RPSPerCore = 1000 / res.CPUmsPerReq
			}
			res.RSSBeforeKiB, res.RSSAfterKiB, res.RSSHWMKiB = m.before.RSSKiB, m.after.RSSKiB, m.after.HWMKiB
			res.RSSPeakKiB = max(m.peakRSS, m.before.RSSKiB, m.after.RSSKiB)
		}
	}
	if o.DBMatch != "" {
		switch {
		case m.dbErr != nil:
			e.warn("--db-match: %v (no database CPU figures)", m.dbErr)
		case len(m.dbAfter) == 0:
			e.warn("--db-match %q: no process matched", o.DBMatch)
		default:
			res.DBProcs = len(m.dbAfter)
			res.DBCPUms = ticksToMs(ticksDelta(m.dbBefore, m.dbAfter))
			if res.Requests > 0 {
				res.DBCPUmsPerReq = res.DBCPUms / float64(res.Requests)
			}
		}
	}
	if o.MetricsURL != "" {
		if m.hashErr != nil {
			e.warn("--metrics-url: %v (no password hash figures)", m.hashErr)
		} else {
			res.HashRuns = int(m.hashAfter.count - m.hashBefore.count)
			res.HashCPUms = (m.hashAfter.sum - m.hashBefore.sum) * 1000
			if res.HashRuns > 0 {
				res.HashCPUmsPerRun = res.HashCPUms / float64(res.HashRuns)
			}
			if res.Requests > 0 && res.ServerCPUms > 0 {
				res.OtherCPUmsPerReq = (res.ServerCPUms - res.HashCPUms) / float64(res.Requests)
			}
		}
	}
	return res, nil
}

// hashSample is latchkey_password_hash_cpu_seconds at one moment.
type hashSample struct {
	sum   float64 // seconds
	count float64
}

// scrapeHash reads the server's argon2id histogram from Options.MetricsURL.
func (e *env) scrapeHash(ctx context.Context) (hashSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.o.MetricsURL, nil)
	if err != nil {
		return hashSample{}, err
	}
	status, body, err := e.do(req, true)
	if err != nil {
		return hashSample{}, err
	}
	if status != http.StatusOK {
		return hashSample{}, fmt.Errorf("%s: status %d", e.o.MetricsURL, status)
	}
	return parseHashSample(string(body))
}

// parseHashSample finds the histogram's _sum and _count in a Prometheus
// text exposition.
func parseHashSample(text string) (hashSample, error) {
	var h hashSample
	found := 0
	for line := range strings.Lines(text) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "latchkey_password_hash_cpu_seconds_sum":
			dst = &h.sum
		case "latchkey_password_hash_cpu_seconds_count":
			dst = &h.count
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return hashSample{}, fmt.Errorf("%s: %w", name, err)
		}
		*dst = v
		found++
	}
	if found != 2 {
		return hashSample{}, errors.New("no latchkey_password_hash_cpu_seconds in the scrape (a Latchkey server, Linux)")
	}
	return h, nil
}

// discover fetches and checks the discovery document.
func (e *env) discover(ctx context.Context) error {
	u := e.o.Issuer + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	status, body, err := e.do(req, true)
	if err != nil {
		return fmt.Errorf("discovery %s: %w", u, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("discovery %s: status %d", u, status)
	}
	if err := json.Unmarshal(body, &e.disc); err != nil {
		return fmt.Errorf("discovery %s: %w", u, err)
	}
	if strings.TrimRight(e.disc.Issuer, "/") != e.o.Issuer {
		e.warn("discovery says issuer %q, not %q", e.disc.Issuer, e.o.Issuer)
	}
	return nil
}

// endpoint returns a discovered endpoint or an error naming it.
func (e *env) endpoint(name, v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("the provider's discovery document has no %s", name)
	}
	return v, nil
}

// do sends req and reads the response: the body when keep, else drained
// and dropped (so the connection is reused).
func (e *env) do(req *http.Request, keep bool) (int, []byte, error) {
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if !keep {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return resp.StatusCode, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, err
}

// classify turns a status (or a transport error) into an outcome.
func classify(status int, err error) outcome {
	switch {
	case err != nil:
		return outcome{errKey: "transport error"}
	case status >= 200 && status < 300:
		return outcome{ok: true}
	default:
		return outcome{errKey: fmt.Sprintf("status %d", status)}
	}
}

// clientAuth returns the Authorization header (client_secret_basic) or
// the body parameters (client_secret_post, none) that authenticate the
// client. RFC 6749 §2.3.1: id and secret are form-encoded before base64.
func (e *env) clientAuth() (header string, form url.Values) {
	form = url.Values{}
	switch e.o.AuthMethod {
	case AuthBasic:
		header = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(e.o.ClientID)+":"+url.QueryEscape(e.o.ClientSecret)))
	case AuthPost:
		form.Set("client_id", e.o.ClientID)
		form.Set("client_secret", e.o.ClientSecret)
	default:
		form.Set("client_id", e.o.ClientID)
	}
	return header, form
}

// postForm builds a form POST with the client's authentication.
func (e *env) postForm(ctx context.Context, endpoint, authHeader, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	req.Header["Accept"] = []string{"application/json"}
	if authHeader != "" {
		req.Header["Authorization"] = []string{authHeader}
	}
	return req, nil
}

// measurement is what the closed loop gathered.
type measurement struct {
	ok, errors    int
	errs          map[string]int
	lat           latencySummary
	stopped       int
	before, after procSample
	peakRSS       int64
	procErr       error
	// The DBMatch processes: ticks per pid at the start and the end.
	dbBefore, dbAfter map[int]int64
	dbErr             error
	// The MetricsURL scrapes at the start and the end.
	hashBefore, hashAfter hashSample
	hashErr               error
}

// measure runs the closed loop: every worker sends its next request as
// soon as its previous one returns. An iteration counts when it completes
// inside the window (warmup end, warmup end + Duration]; the server is
// sampled at both ends of the window.
func (e *env) measure(parent context.Context, iters []iteration) (measurement, error) {
	var m measurement
	o := e.o
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	start := time.Now()
	ws := start.Add(o.Warmup)
	we := ws.Add(o.Duration)

	type workerStats struct {
		lat     []time.Duration
		ok      int
		errs    map[string]int
		stopped bool
	}
	stats := make([]workerStats, len(iters))
	var wg sync.WaitGroup

	// RSS sampler: every 100 ms until the window ends.
	samplerDone := make(chan struct{})
	if o.PID != 0 {
		go func() {
			defer close(samplerDone)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				if rss, err := readRSS(o.PID); err == nil && rss > m.peakRSS {
					m.peakRSS = rss
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	} else {
		close(samplerDone)
	}

	for i, it := range iters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &stats[i]
			st.errs = map[string]int{}
			st.lat = make([]time.Duration, 0, 4096)
			var interval time.Duration
			var next time.Time
			if o.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(len(iters)) / o.Rate)
				next = time.Now().Add(interval * time.Duration(i) / time.Duration(len(iters)))
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					t0 = next // latency from the schedule (no coordinated omission)
					next = next.Add(interval)
				}
				out := it(ctx)
				t1 := time.Now()
				if t1.After(ws) && !t1.After(we) {
					if out.ok {
						st.ok++
						st.lat = append(st.lat, t1.Sub(t0))
					} else {
						st.errs[out.errKey]++
					}
				}
				if out.stop {
					st.stopped = true
					return
				}
			}
		}()
	}

	var procErr error
	sleepUntil := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-parent.Done():
			return false
		}
	}
	if !sleepUntil(ws) {
		cancel()
		wg.Wait()
		<-samplerDone
		return m, parent.Err()
	}
	if o.PID != 0 {
		m.before, procErr = readProc(o.PID)
	}
	if o.DBMatch != "" {
		m.dbBefore, m.dbErr = matchTicks(o.DBMatch)
	}
	if o.MetricsURL != "" {
		m.hashBefore, m.hashErr = e.scrapeHash(parent)
	}
	if !sleepUntil(we) {
		cancel()
		wg.Wait()
		<-samplerDone
		return m, parent.Err()
	}
	if o.PID != 0 && procErr == nil {
		m.after, procErr = readProc(o.PID)
	}
	if o.DBMatch != "" && m.dbErr == nil {
		m.dbAfter, m.dbErr = matchTicks(o.DBMatch)
	}
	if o.MetricsURL != "" && m.hashErr == nil {
		m.hashAfter, m.hashErr = e.scrapeHash(parent)
	}
	cancel()
	wg.Wait()
	<-samplerDone
	m.procErr = procErr

	m.errs = map[string]int{}
	lats := make([][]time.Duration, len(stats))
	for i, st := range stats {
		m.ok += st.ok
		for k, v := range st.errs {
			m.errs[k] += v
			m.errors += v
		}
		if st.stopped {
			m.stopped++
		}
		lats[i] = st.lat
	}
	m.lat = summarize(lats)
	return m, nil
}

// UsageError is a bad command line or bad Options: the caller should
// print usage rather than blame the provider.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a *UsageError.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}
