package main

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestDatabaseOutage (#11.3): with the database out of reach every
// endpoint that needs it answers 503 with Retry-After — OAuth's
// temporarily_unavailable in JSON, a clear page in the browser — never a
// 4xx that blames the client or the token; discovery and JWKS keep
// working; /ready says not ready; the repeated error is logged a bounded
// number of times, with a count; and when the database is back everything
// works again without a restart.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		fault := &storage.Fault{}
		store := storagetest.OpenURLWith(t, d.URL(t), storage.Options{Fault: fault})
		logs := &syncBuffer{}
		e := newTestEnvStore(t, d, logs, store)
		u := e.createUser("outage@example.com")
		app := e.newRP("app", func(c *storage.Client) {
			c.GrantTypes = append(c.GrantTypes, op.GrantDeviceCode)
		})
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		admin := e.adminToken("ops", storage.AdminFull, "", op.ScopeAdmin)
		fresh := e.newBrowser()
		signInPage := fresh.start(app) // a sign-in in progress (its page URL)

		// A client this instance has not looked up yet: during the outage
		// whether it exists cannot be known, so no redirect can be trusted.
		other := e.newRP("other")
		fault.SetDown(true)
		type check struct {
			name  string
			call  func() answer
			json  bool // an OAuth-style JSON error; else a page
			retry bool // Retry-After expected
		}
		anon := e.newBrowser()
		post := func(path string, form url.Values, user, pass string) func() answer {
			return func() answer {
				req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if user != "" {
					req.SetBasicAuth(user, pass)
				}
				return do(t, req)
			}
		}
		get := func(path, bearer string) func() answer {
			return func() answer {
				req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				return do(t, req)
			}
		}
		authorize, _, _, _ := app.authorizeURL()
		authorizeOther, _, _, _ := other.authorizeURL()
		signInID := signInPage.url.Query().Get("id")
		if signInID == "" {
			signInID = signInPage.url.Query().Get("authRequestID")
		}
		checks := []check{
			{"authorize (unknown client)", func() answer { return anon.fetch(http.MethodGet, authorizeOther, nil, nil) }, false, true},
			{"sign-in page", func() answer { return fresh.fetch(http.MethodGet, signInPage.url.String(), nil, nil) }, false, true},
			{"token: refresh", post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, app.id, app.secret), true, true},
			{"token: code", post("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"whatever"}, "redirect_uri": {app.redirect}, "code_verifier": {verifier}}, app.id, app.secret), true, true},
			{"token: client_credentials", post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, app.id, app.secret), true, true},
			{"userinfo", get("/userinfo", tok.AccessToken), true, true},
			{"introspect", post("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, app.id, app.secret), true, true},
			{"revoke", post("/revoke", url.Values{"token": {tok.RefreshToken}}, app.id, app.secret), true, true},
			{"par", post("/par", url.Values{"response_type": {"code"}, "redirect_uri": {app.redirect}, "scope": {"openid"}}, app.id, app.secret), true, true},
			{"device_authorization", post("/device_authorization", url.Values{"client_id": {app.id}, "scope": {"openid"}}, app.id, app.secret), true, true},
			{"end_session", func() answer { return b.fetch(http.MethodGet, e.issuer+"/end_session?client_id=app", nil, nil) }, false, true},
			{"account page", func() answer { return b.fetch(http.MethodGet, e.issuer+"/account/security", nil, nil) }, false, true},
			{"forgot", func() answer {
				return fresh.fetch(http.MethodGet, e.issuer+"/forgot?id="+url.QueryEscape(signInID), nil, nil)
			}, false, true},
			{"admin API", get("/admin/v1/users", admin), true, true},
			{"ready", get("/ready", ""), true, false},
		}
		for _, c := range checks {
			a := c.call()
			switch {
			case a.status != http.StatusServiceUnavailable:
				t.Errorf("%s: %d, want 503:\n%s", c.name, a.status, a.body)
				continue
			}
			if c.retry && a.header.Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", c.name)
			}
			if strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("%s: blames the token: %s", c.name, a.header.Get("WWW-Authenticate"))
			}
			body := string(a.body)
			switch {
			case c.name == "ready":
				if !strings.Contains(body, `"database"`) {
					t.Errorf("ready: %s", body)
				}
			case c.json:
				if !strings.Contains(body, `"error":"temporarily_unavailable"`) {
					t.Errorf("%s: %s, want temporarily_unavailable", c.name, body)
				}
			default:
				if !strings.Contains(body, "temporarily unavailable") || strings.Contains(body, "invalid") {
					t.Errorf("%s: the page does not say plainly what is wrong:\n%s", c.name, body)
				}
			}
		}
		// A known client's sign-in cannot start: the client is told, as
		// RFC 6749 §4.1.2.1 says, and may try again.
		if a := do(t, mustRequest(t, http.MethodGet, authorize)); a.status != http.StatusFound ||
			!strings.HasPrefix(a.header.Get("Location"), app.redirect+"?") || !strings.Contains(a.header.Get("Location"), "error=temporarily_unavailable") {
			t.Errorf("authorize (known client): %d %s", a.status, a.header.Get("Location"))
		}
		// Discovery and JWKS do not need the database.
		for _, p := range []string{"/.well-known/openid-configuration", "/keys", "/healthz"} {
			if a := get(p, "")(); a.status != http.StatusOK {
				t.Errorf("%s during the outage: %d", p, a.status)
			}
		}
		// The same failure, many times: a bounded number of ERROR lines,
		// the rest counted.
		for range 50 {
			get("/userinfo", tok.AccessToken)()
		}
		errLines := regexp.MustCompile(`(?m)^.*level=ERROR.*$`).FindAllString(logs.String(), -1)
		t.Logf("%d ERROR lines for %d failing requests", len(errLines), len(checks)+50)
		if len(errLines) > 40 {
			t.Errorf("%d ERROR lines for one outage:\n%s", len(errLines), strings.Join(errLines[:40], "\n"))
		}

		// Back: the same requests work, without a restart.
		fault.SetDown(false)
		if a := get("/userinfo", tok.AccessToken)(); a.status != http.StatusOK {
			t.Errorf("userinfo after the outage: %d %s", a.status, a.body)
		}
		if body, st := app.tokenPost(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); st != http.StatusOK {
			t.Errorf("refresh after the outage: %d %s", st, body)
		}
		if a := get("/ready", "")(); a.status != http.StatusOK {
			t.Errorf("ready after the outage: %d %s", a.status, a.body)
		}
		if a := fresh.fetch(http.MethodGet, signInPage.url.String(), nil, nil); a.status != http.StatusOK {
			t.Errorf("the sign-in page after the outage: %d\n%s", a.status, a.body)
		}
	})
}

// do sends req with no cookies and no redirects followed.
func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
