package main

// Operating Latchkey, end to end: the metrics a sign-in moves, request
// ids on responses, log lines and error pages, the access log, health
// and readiness.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// syncBuffer is a log sink the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scrape reads the metrics as Prometheus would.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	ms := httptest.NewServer(h)
	defer ms.Close()
	resp, err := http.Get(ms.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

// metric returns the value of the sample whose line starts with prefix
// (name and labels as exposed, labels in alphabetical order), or "".
func metric(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			return rest
		}
	}
	return ""
}

// TestMetricsScrape: a wrong password, a sign-in with an email code, a
// code exchange and a replayed refresh token each move their counters,
// and the runtime, process, database and key gauges are there.
func TestMetricsScrape(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		r := e.newRP("shop")
		e.createUser("ada@example.com")
		b := e.newBrowser()
		authURL, verifier, state, nonce := r.authorizeURL()
		p := b.get(authURL)
		p = b.submit(p, "/login/identify", url.Values{"email": {"ada@example.com"}})
		if p = b.submit(p, "/login/password", url.Values{"password": {"wrong password entirely"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", p.status)
		}
		p = b.drive(p, "ada@example.com", signInOpts{})
		tok, _, claims := r.exchange(p.code(t, state), verifier, nonce)
		acr, _ := claims["acr"].(string)

		// A refresh token used twice, past the reuse grace: the second is
		// reuse.
		ctx := context.Background()
		if _, err := r.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(e.app.cfg.Tokens.RefreshReuseGrace.Std() + time.Second)
		if _, err := r.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("a used refresh token was accepted")
		}

		text := scrape(t, e.srv.metrics.Handler())
		for prefix, want := range map[string]string{
			`latchkey_signins_total{acr="",outcome="wrong_password",second_step=""}`:                           "1",
			`latchkey_signins_total{acr="` + acr + `",outcome="success",second_step="email"}`:                  "1",
			`latchkey_email_codes_total{purpose="signin",stage="queued"}`:                                      "1",
			`latchkey_email_codes_total{purpose="signin",stage="sent"}`:                                        "1",
			`latchkey_token_grants_total{grant="authorization_code",result="ok"}`:                              "1",
			`latchkey_token_grants_total{grant="refresh_token",result="ok"}`:                                   "1",
			`latchkey_token_grants_total{grant="refresh_token",result="refused"}`:                              "1",
			`latchkey_refresh_token_reuse_total`:                                                               "1",
			`latchkey_http_request_duration_seconds_count{method="POST",route="/login/password",status="3xx"}`: "2", // redirect after POST: wrong, then right
			`latchkey_http_request_duration_seconds_count{method="GET",route="/login/password",status="4xx"}`:  "1", // the wrong password's page
			`latchkey_http_request_duration_seconds_count{method="POST",route="/oauth/token",status="2xx"}`:    "2",
		} {
			if got := metric(text, prefix); got != want {
				t.Errorf("%s = %q, want %q", prefix, got, want)
			}
		}
		if acr == "" {
			t.Fatal("no acr in the ID token")
		}
		// argon2id runs, with their CPU time (Linux): the wrong password,
		// the right one, and the rehash of the test's weak stored hash.
		if runtime.GOOS == "linux" {
			if got := metric(text, "latchkey_password_hash_cpu_seconds_count"); got != "3" {
				t.Errorf("latchkey_password_hash_cpu_seconds_count = %q, want 3", got)
			}
			if sum, err := strconv.ParseFloat(metric(text, "latchkey_password_hash_cpu_seconds_sum"), 64); err != nil || sum <= 0 {
				t.Errorf("latchkey_password_hash_cpu_seconds_sum = %v, %v", sum, err)
			}
		}
		for _, name := range []string{"latchkey_signing_key_age_seconds", "go_goroutines", "latchkey_process_resident_memory_bytes",
			`latchkey_db_connections_max{pool=`} {
			if !strings.Contains(text, "\n"+name) {
				t.Errorf("no %s in the scrape", name)
			}
		}
		// The mail outbox reports its backlog; without a webhook there is
		// no events queue.
		if !strings.Contains(text, "\n"+`latchkey_outbox_pending{queue="mail"}`) || !strings.Contains(text, "\n"+`latchkey_outbox_oldest_age_seconds{queue="mail"}`) {
			t.Error("no mail outbox metrics in the scrape")
		}
		if strings.Contains(text, `queue="events"`) {
			t.Error("events queue metrics without a webhook")
		}
		// Never on the public port.
		if resp := e.newBrowser().get(e.issuer + "/metrics"); resp.status != http.StatusNotFound {
			t.Errorf("/metrics on the public port: %d", resp.status)
		}
	})
}

// TestRequestIDs: every response has an id, which is on the error page
// and on the request's log lines; a client's X-Request-Id is not taken
// (no proxy is trusted); the access log has the route, the path of an
// unrouted request and never a query string.
func TestRequestIDs(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnvLog(t, storagetest.Dialects(t)[0], logs)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/no/such/page?token=s3cret-query-value", nil)
	req.Header.Set("X-Request-Id", "forged-by-the-client")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusNotFound || id == "" || id == "forged-by-the-client" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, id)
	}
	if !strings.Contains(string(body), "Request id: <code>"+id+"</code>") {
		t.Fatalf("the error page does not show the request id %s:\n%s", id, body)
	}
	var access, notFound string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "request_id="+id) && strings.Contains(line, "msg=request ") {
			access = line
		}
		if strings.Contains(line, "request_id="+id) && strings.Contains(line, "msg=\"not found\"") {
			notFound = line
		}
	}
	for _, want := range []string{"method=GET", "route=unmatched", "status=404", "path=/no/such/page", "bytes=", "client=127.0.0.1", "duration="} {
		if !strings.Contains(access, want) {
			t.Errorf("access log line lacks %q: %s", want, access)
		}
	}
	if notFound == "" || !strings.Contains(notFound, "level=INFO") {
		t.Errorf("the 404 is not logged at INFO with its request id:\n%s", logs)
	}
	if strings.Contains(logs.String(), "s3cret-query-value") {
		t.Error("a query string reached the log")
	}

	// A routed request logs its pattern; a bad client secret at the
	// token endpoint is a WARN line without the secret.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"not-the-secret-0123456789"}}
	e.newRP("svc")
	resp, err = http.PostForm(e.issuer+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id = resp.Header.Get("X-Request-Id")
	out := logs.String()
	if !regexp.MustCompile(`level=WARN msg="client authentication failed" client_id=svc endpoint=/oauth/token method=client_secret_post reason="wrong or missing secret" request_id=` + id).MatchString(out) {
		t.Errorf("no WARN line for the failed client authentication:\n%s", out)
	}
	if !strings.Contains(out, "route=/oauth/token status=401") {
		t.Errorf("the token request's access line lacks its route:\n%s", out)
	}
	if strings.Contains(out, "not-the-secret") {
		t.Error("a client secret reached the log")
	}
}

// TestHealthAndReady: /healthz answers while the process runs; /ready
// only while the database answers and the keys are loaded.
func TestHealthAndReady(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	b := e.newBrowser()
	if p := b.get(e.issuer + "/healthz"); p.status != http.StatusOK {
		t.Fatalf("/healthz: %d", p.status)
	}
	p := b.get(e.issuer + "/ready")
	if p.status != http.StatusOK || !strings.Contains(p.body, `"migrations":"ok"`) || !strings.Contains(p.body, `"keys":"ok"`) {
		t.Fatalf("/ready: %d %s", p.status, p.body)
	}
	if err := checkHealth(context.Background(), e.issuer+"/ready"); err != nil {
		t.Fatalf("checkHealth: %v", err)
	}
	e.store.Close()
	p = b.get(e.issuer + "/ready")
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, `"database":"unreachable"`) {
		t.Fatalf("/ready with the database gone: %d %s", p.status, p.body)
	}
	if err := checkHealth(context.Background(), e.issuer+"/ready"); err == nil {
		t.Fatal("checkHealth passed with the database gone")
	}
	if p := b.get(e.issuer + "/healthz"); p.status != http.StatusOK {
		t.Fatalf("/healthz: %d", p.status)
	}
}

// TestLockoutAudited: the failure that starts the throttle's waits is
// audited once as signin.locked (a security event for the webhook), and
// the throttled attempts after it are counted.
func TestLockoutAudited(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("ada@example.com")
	b := e.newBrowser()
	p := b.start(e.newRP("app"))
	p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
	for range 7 {
		b.submit(p, "/login/password", url.Values{"password": {"wrong wrong wrong"}})
	}
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: u.ID, Events: []string{"signin.locked"}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("signin.locked events: %d, %v", len(evs), err)
	}
	text := scrape(t, e.srv.metrics.Handler())
	if metric(text, `latchkey_throttle_hits_total{scope="pwd"}`) != "2" || metric(text, `latchkey_signins_total{acr="",outcome="throttled",second_step=""}`) != "2" {
		t.Fatalf("throttle metrics:\n%s", text)
	}
}

// TestMetricsListener: serve with metrics.addr opens the metrics
// listener of its own, where Prometheus scrapes what the public port
// served; the public port has no /metrics, the metrics port nothing
// else; both close when serve stops.
func TestMetricsListener(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnvLog(t, storagetest.Dialects(t)[0], logs, func(c *config.Config) { c.Metrics.Addr = "127.0.0.1:0" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	defer stop()
	public := "http://" + ln.Addr().String()
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The public port answers once serve runs; the metrics listener was
	// opened before it.
	if st, _ := get(public + "/healthz"); st != http.StatusOK {
		t.Fatalf("public /healthz: %d", st)
	}
	m := regexp.MustCompile(`msg="metrics listening" addr=(\S+) path=/metrics`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", logs)
	}
	metricsURL := "http://" + m[1]
	if st, _ := get(public + "/metrics"); st != http.StatusNotFound {
		t.Errorf("/metrics on the public port: %d", st)
	}
	if st, _ := get(public + "/login/no-such-page"); st != http.StatusNotFound {
		t.Errorf("public 404: %d", st)
	}
	st, text := get(metricsURL + "/metrics")
	if st != http.StatusOK {
		t.Fatalf("scrape: %d", st)
	}
	// The public port's requests (two unmatched 404s) are counted.
	if got := metric(text, `latchkey_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"}`); got != "2" {
		t.Errorf("unmatched 4xx count = %q, want 2\n%s", got, text)
	}
	for _, name := range []string{"go_goroutines", "latchkey_signing_key_age_seconds"} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("no %s in the scrape", name)
		}
	}
	for _, path := range []string{"/healthz", "/login", "/.well-known/openid-configuration"} {
		if st, _ := get(metricsURL + path); st != http.StatusNotFound {
			t.Errorf("%s on the metrics port: %d", path, st)
		}
	}
	stop()
	if resp, err := http.Get(metricsURL + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("the metrics listener outlived serve")
	}
}

// TestLogLevels: a client's mistake at /authorize (an unknown client, a
// redirect_uri not registered) is an INFO line that says which, with the
// request's id; a server fault (the clients table gone) is an ERROR
// line with the cause, the error id shown on the page and the request's
// id. Neither is logged at the other level.
func TestLogLevels(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		logs := &syncBuffer{}
		u := d.URL(t)
		store := storagetest.OpenURL(t, u)
		e := newTestEnvStore(t, d, logs, store)
		e.newRP("shop")
		authorize := func(q url.Values) (int, string, string) {
			t.Helper()
			resp, err := http.Get(e.issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("X-Request-Id"), string(b)
		}
		lineOf := func(id string) []string {
			var out []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "request_id="+id) && !strings.Contains(l, "msg=request ") {
					out = append(out, l)
				}
			}
			return out
		}
		q := url.Values{"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"http://rp.test/callback"}}
		for _, c := range []struct {
			name, client, redirect, detail string
		}{
			{"unknown client", "nobody", "http://rp.test/callback", `client_id \"nobody\" is not a registered application.`},
			{"bad redirect_uri", "shop", "http://evil.test/cb", `redirect_uri \"http://evil.test/cb\" is not registered for \"shop\".`},
		} {
			q.Set("client_id", c.client)
			q.Set("redirect_uri", c.redirect)
			st, id, _ := authorize(q)
			lines := lineOf(id)
			if st != http.StatusBadRequest || len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") ||
				!strings.Contains(lines[0], `msg="request refused"`) || !strings.Contains(lines[0], c.detail) {
				t.Errorf("%s: %d, log lines for %s:\n%s\n(all:\n%s)", c.name, st, id, strings.Join(lines, "\n"), logs)
			}
		}

		// A server fault: the table of clients is gone.
		db := storagetest.RawDB(t, u)
		if _, err := db.Exec("ALTER TABLE clients RENAME TO clients_gone"); err != nil {
			t.Fatal(err)
		}
		defer db.Exec("ALTER TABLE clients_gone RENAME TO clients")
		q.Set("client_id", "not-yet-looked-up")
		st, id, body := authorize(q)
		lines := lineOf(id)
		errorID := regexp.MustCompile(`error_id=(\w+)`)
		var pageLine, causeLine string
		for _, l := range lines {
			if strings.Contains(l, `msg="request failed"`) {
				pageLine = l
			}
			if strings.Contains(l, `msg="authorize: client lookup"`) {
				causeLine = l
			}
			if !strings.Contains(l, "level=ERROR") {
				t.Errorf("a server fault logged below ERROR: %s", l)
			}
		}
		if st != http.StatusInternalServerError || pageLine == "" || causeLine == "" || !strings.Contains(causeLine, "clients") {
			t.Fatalf("server fault: %d, log lines for %s:\n%s", st, id, strings.Join(lines, "\n"))
		}
		if m := errorID.FindStringSubmatch(pageLine); m == nil || !strings.Contains(body, m[1]) {
			t.Errorf("the page does not show the logged error id:\n%s\n%s", pageLine, body)
		}
	})
}
