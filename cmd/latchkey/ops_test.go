package main

// Operating Latchkey, end to end: the metrics a sign-in moves, request
// ids on responses, log lines and error pages, the access log, health
// and readiness.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

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
			`latchkey_http_request_duration_seconds_count{method="GET",route="/login/password",status="4xx"}`:  "1", // the wrong password, after its redirect
			`latchkey_http_request_duration_seconds_count{method="POST",route="/login/password",status="3xx"}`: "2",
			`latchkey_http_request_duration_seconds_count{method="POST",route="/oauth/token",status="2xx"}`:    "2",
		} {
			if got := metric(text, prefix); got != want {
				t.Errorf("%s = %q, want %q", prefix, got, want)
			}
		}
		if acr == "" {
			t.Fatal("no acr in the ID token")
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
