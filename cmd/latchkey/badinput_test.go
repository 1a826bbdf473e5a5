package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// Bad input gets a clear page or the right OAuth error, never a 500, and
// changes nothing.

// authRequestID returns the id of the sign-in a page belongs to.
func authRequestID(t *testing.T, p response) string {
	t.Helper()
	id := p.url.Query().Get("id")
	if id == "" {
		if m := hiddenRe.FindAllStringSubmatch(p.body, -1); m != nil {
			for _, h := range m {
				if h[1] == "id" {
					id = h[2]
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no auth request id on %s", p.url)
	}
	return id
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("known@example.com")
		app := e.newRP("app")

		try := func(email, password string) response {
			b := e.newBrowser()
			authURL, _, _, _ := app.authorizeURL()
			p := b.get(authURL)
			p = b.submit(p, "/login/identify", url.Values{"email": {email}})
			if !p.at("/login/password") {
				t.Fatalf("%s: expected the password page for every email, got %s", email, p.url)
			}
			return b.submit(p, "/login/password", url.Values{"password": {password}})
		}
		wrong := try(u.Email, "not the password")
		unknown := try("nobody@example.com", "not the password")
		for _, p := range []response{wrong, unknown} {
			if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "The email or password is incorrect.") {
				t.Fatalf("status %d, body lacks the generic message:\n%s", p.status, p.body)
			}
		}
		if strip(wrong.body, u.Email) != strip(unknown.body, "nobody@example.com") {
			t.Error("wrong password and unknown user pages differ")
		}
		// Nothing was recorded on the auth request but who tried.
		ar, err := e.store.GetAuthRequest(context.Background(), authRequestID(t, wrong))
		if err != nil || !ar.PasswordAt.IsZero() || ar.Done {
			t.Fatalf("auth request changed: %+v %v", ar, err)
		}
	})
}

// strip removes what legitimately differs between two renderings: the
// email, the request id and the CSRF token.
func strip(body, email string) string {
	body = strings.ReplaceAll(body, email, "EMAIL")
	for _, re := range []string{`name="id" value="`, `name="csrf" value="`, `?id=`} {
		for {
			i := strings.Index(body, re)
			if i < 0 {
				break
			}
			j := i + len(re)
			k := j
			for k < len(body) && body[k] != '"' && body[k] != '&' {
				k++
			}
			body = body[:i] + "X" + body[k:]
		}
	}
	return body
}

func TestPasswordThrottle(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("throttled@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _, _, _ := app.authorizeURL()
	p := b.get(authURL)
	p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
	page := p
	for i := 0; i < 5; i++ {
		p = b.submit(page, "/login/password", url.Values{"password": {"wrong"}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, p.status)
		}
	}
	// The 6th attempt (even the right password) waits.
	p = b.submit(page, "/login/password", url.Values{"password": {testPassword}})
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many attempts. Try again in") {
		t.Fatalf("6th attempt: %d\n%s", p.status, p.body)
	}
	e.clock.Advance(2 * time.Second)
	p = b.submit(page, "/login/password", url.Values{"password": {testPassword}})
	if !p.at("/login/code") {
		t.Fatalf("after the back-off the right password works; got %s (%d)", p.url, p.status)
	}
}

func TestCSRF(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("csrf@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, _, _, _ := app.authorizeURL()
		p := b.get(authURL)
		id := authRequestID(t, p)
		for name, csrf := range map[string]string{"missing": "", "forged": strings.Repeat("ab", 16), "garbage": "<script>"} {
			form := url.Values{"id": {id}, "email": {u.Email}}
			if csrf != "" {
				form.Set("csrf", csrf)
			}
			r := b.post(e.issuer+"/login/identify", form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "The form has expired") {
				t.Errorf("%s csrf: status %d", name, r.status)
			}
		}
		ar, _ := e.store.GetAuthRequest(context.Background(), id)
		if ar.UserID != "" {
			t.Fatal("a forged form changed the sign-in")
		}
	})
}

// TestCSRFOnEveryForm: each form of the sign-in, device, sign-out,
// sign-up and devices pages refuses a post without this browser's CSRF
// token — missing, or the valid token of another browser (what an
// attacker's page can hold) — even with every other field right, and
// nothing moves.
func TestCSRFOnEveryForm(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("forms@example.com", func(u *storage.User) { u.NeedsBackupCode = true })
	app := e.newRP("app")
	cli := e.newRP("cli", func(c *storage.Client) {
		c.Public, c.AppType, c.GrantTypes = true, storage.AppTypeNative, []string{op.GrantDeviceCode}
	})
	attacker := e.newBrowser().start(app).csrf(t)
	b := e.newBrowser()
	forged := func(b *browser, p response, action string, fields url.Values) {
		t.Helper()
		for name, tok := range map[string]string{"no": "", "another browser's": attacker} {
			f := url.Values{"csrf": {tok}}
			for k, v := range fields {
				f[k] = v
			}
			if r := b.submit(p, action, f); r.status != http.StatusForbidden || !strings.Contains(r.body, "The form has expired") {
				t.Errorf("%s with %s CSRF token: status %d, on %s, location %q", action, name, r.status, r.url, r.location)
			}
		}
	}

	// The sign-in, step by step: each forged step, then the real one.
	authURL, _, state, _ := app.authorizeURL()
	p := b.submit(b.get(authURL), "/login/identify", url.Values{"email": {u.Email}})
	forged(b, p, "/login/password", url.Values{"password": {testPassword}})
	forged(b, p, "/login/restart", nil)
	p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
	if !p.at("/login/code") {
		t.Fatalf("after the forged posts the password page must still lead to the code: %s", p.url)
	}
	code := e.mailCode(u.Email)
	forged(b, p, "/login/code", url.Values{"code": {code}})
	e.clock.Advance(time.Minute) // past the 30 s between sends: a forged resend that got through would mail a code
	forged(b, p, "/login/code/send", nil)
	if e.mailCode(u.Email) != code {
		t.Fatal("a forged resend mailed a new code")
	}
	p = b.submit(p, "/login/code", url.Values{"code": {code}})
	forged(b, p, "/login/remember", url.Values{"choice": {"trust"}})
	p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
	forged(b, p, "/login/backup-code", url.Values{"saved": {"yes"}})
	if devs, _ := e.store.ListTrustedDevices(context.Background(), u.ID); len(devs) != 0 {
		t.Fatal("a forged remember trusted the browser")
	}
	b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}}).code(t, state)

	// A device connected by a forged approval would be the attacker's.
	da, err := cli.oauth.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p = b.get(e.issuer + "/device")
	forged(b, p, "/device", url.Values{"user_code": {da.UserCode}})
	p = b.submit(p, "/device", url.Values{"user_code": {da.UserCode}})
	if !p.at("/device/confirm") {
		t.Fatalf("device: %s (%d)", p.url, p.status)
	}
	forged(b, p, "/device/confirm", url.Values{"choice": {"approve"}})
	if got, _ := devicePoll(t, cli, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("device after a forged approval: %q, want authorization_pending", got)
	}

	// Sign-out and "Sign out everywhere else".
	other := e.newBrowser()
	authURL, _, _, _ = app.authorizeURL()
	other.signIn(authURL, u.Email, signInOpts{})
	p = b.account("/account/devices", u.Email, signInOpts{})
	forged(b, p, "/account/devices/signout-others", nil)
	forged(b, b.get(e.issuer+"/logout"), "/logout", nil)
	if got := b.promptNone(app); got != "" {
		t.Errorf("a forged sign-out signed this browser out: %q", got)
	}
	if got := other.promptNone(app); got != "" {
		t.Errorf("a forged sign-out-everywhere-else signed the other browser out: %q", got)
	}

	// The sign-up code page.
	s := e.newBrowser()
	p, _ = s.signupForm(app)
	p = s.submit(p, "/signup", url.Values{"email": {"new@example.com"}, "name": {"New"}, "password": {"a long enough password"}})
	forged(s, p, "/signup/code", url.Values{"code": {e.mailCode("new@example.com")}})
	forged(s, p, "/signup/code/send", nil)
	if _, err := e.store.GetUserByEmail(context.Background(), "new@example.com"); err == nil {
		t.Fatal("a forged code form created the account")
	}
}

func TestAuthorizeErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		e.newRP("native", func(c *storage.Client) {
			c.Public, c.AppType, c.RedirectURIs = true, storage.AppTypeNative, []string{"http://127.0.0.1/callback"}
		})
		b := e.newBrowser()
		base := app.provider.Endpoint().AuthURL

		// Errors that must not be redirected: an error page.
		for name, q := range map[string]url.Values{
			"unknown client":        {"client_id": {"nope"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}},
			"unregistered redirect": {"client_id": {"app"}, "redirect_uri": {"http://evil.test/cb"}, "response_type": {"code"}, "scope": {"openid"}},
			"no redirect":           {"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}},
		} {
			p := b.get(base + "?" + q.Encode())
			if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "invalid sign-in request") {
				t.Errorf("%s: status %d location %q", name, p.status, p.location)
			}
		}
		// Errors that are redirected to the client with state.
		ch := s256("verifier-verifier-verifier-verifier-verifier-01")
		for name, tc := range map[string]struct {
			q    url.Values
			want string
		}{
			"public client without PKCE": {url.Values{"client_id": {"native"}, "redirect_uri": {"http://127.0.0.1:51000/callback"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}, "invalid_request"},
			"plain PKCE":                 {url.Values{"client_id": {"app"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "code_challenge": {"abc"}, "code_challenge_method": {"plain"}}, "invalid_request"},
			"prompt none and login":      {url.Values{"client_id": {"app"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "prompt": {"none login"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}, "invalid_request"},
			// Issue 12 item 5: a valid client asking for the implicit flow.
			"implicit flow": {url.Values{"client_id": {"app"}, "redirect_uri": {rpRedirect}, "response_type": {"token"}, "scope": {"openid"}, "state": {"s1"}}, "unsupported_response_type"},
		} {
			p := b.get(base + "?" + tc.q.Encode())
			if got := p.rpError(); got != tc.want {
				t.Errorf("%s: RP error %q, want %q (status %d, %s)", name, got, tc.want, p.status, p.body)
			}
			if u, _ := url.Parse(p.location); u != nil && u.Query().Get("state") != "s1" {
				t.Errorf("%s: state not returned", name)
			}
		}
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("codes@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		code := b.signIn(authURL, u.Email, signInOpts{}).code(t, state)

		exchange := func(c *rp, code, verifier string) (string, int) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}, "code_verifier": {verifier}}
			body, status := c.tokenPost(t, form)
			var out struct{ Error string }
			_ = json.Unmarshal(body, &out)
			return out.Error, status
		}
		if got, st := exchange(app, code, "wrong-verifier-wrong-verifier-wrong-verifier-000"); got != "invalid_grant" || st != http.StatusBadRequest {
			t.Fatalf("wrong verifier: %q %d", got, st)
		}
		wrongSecret := *app
		wrongSecret.secret = "not-the-secret-not-the-secret-not-the-secret"
		if got, st := exchange(&wrongSecret, code, verifier); got != "invalid_client" || st != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %q %d", got, st)
		}
		// A failed attempt does not burn the code for the real client.
		tok, _, _ := app.exchange(code, verifier, nonce)
		// Used twice: refused, and what the first use issued is revoked.
		if got, _ := exchange(app, code, verifier); got != "invalid_grant" {
			t.Fatalf("code reuse: %q", got)
		}
		if got := refreshErr(t, app, tok.RefreshToken); got != "invalid_grant" {
			t.Fatalf("refresh token of a reused code: %q", got)
		}
		if got := introspect(t, app, tok.AccessToken); got["active"] != false {
			t.Fatalf("access token of a reused code is still active: %v", got)
		}

		// Expired code: 60 s + 1 s after issue.
		authURL, verifier, state, _ = app.authorizeURL()
		code = b.get(authURL).code(t, state)
		e.clock.Advance(61 * time.Second)
		if got, _ := exchange(app, code, verifier); got != "invalid_grant" {
			t.Fatalf("expired code: %q", got)
		}

		// Garbage and unknown grants.
		for name, form := range map[string]url.Values{
			"unknown grant":    {"grant_type": {"password"}, "username": {"x"}, "password": {"y"}},
			"jwt bearer grant": {"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"a.b.c"}},
			"no grant":         {},
			"garbage code":     {"grant_type": {"authorization_code"}, "code": {"%%%\x00"}, "redirect_uri": {rpRedirect}},
			"garbage refresh":  {"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("z", 5000)}},
		} {
			body, status := app.tokenPost(t, form)
			if status < 400 || status >= 500 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: status %d body %s", name, status, body)
			}
		}
	})
}

func TestOversizedBodies(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	app := e.newRP("app")
	big := url.Values{"x": {strings.Repeat("a", 200<<10)}, "grant_type": {"client_credentials"}}
	body, status := app.tokenPost(t, big)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "invalid_request") {
		t.Fatalf("token endpoint: %d %s", status, body)
	}
	b := e.newBrowser()
	authURL, _, _, _ := app.authorizeURL()
	p := b.get(authURL)
	id := authRequestID(t, p)
	r := b.post(e.issuer+"/login/identify", url.Values{"id": {id}, "email": {strings.Repeat("a", 200<<10)}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("login form: %d", r.status)
	}
	r = b.post(e.issuer+"/end_session", big)
	if r.status != http.StatusRequestEntityTooLarge || strings.Contains(r.body, "panic") {
		t.Fatalf("end_session: %d", r.status)
	}
	// A sign-in request may be posted too (OIDC Core 3.1.2.1): the same bound.
	r = b.post(e.issuer+"/authorize", big)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "could not be read") {
		t.Fatalf("authorize: %d\n%s", r.status, r.body)
	}
}

// TestEndSessionBadInput: a sign-out link without the signed-in user's ID
// token signs nobody out until they confirm, and end_session never sends
// the browser to an address the product did not register.
func TestEndSessionBadInput(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("bye@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, verifier, state, nonce := app.authorizeURL()
	tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
	rawID, _ := tok.Extra("id_token").(string)
	endSession := func(q url.Values) response { return b.get(e.issuer + "/end_session?" + q.Encode()) }

	if p := endSession(url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"http://rp.test/signed-out"}}); !p.at("/logout") {
		t.Fatalf("a sign-out link without an ID token must ask: %s (%d) location %q", p.url, p.status, p.location)
	}
	if got := b.promptNone(app); got != "" {
		t.Fatalf("the unconfirmed sign-out link signed the browser out: %q", got)
	}
	for _, q := range []url.Values{
		{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"http://evil.test/signed-out"}},
		{"client_id": {"app"}, "post_logout_redirect_uri": {"http://evil.test/signed-out"}},
		{"post_logout_redirect_uri": {"http://evil.test/signed-out"}},
		{"id_token_hint": {"garbage"}, "post_logout_redirect_uri": {"http://rp.test/signed-out"}},
	} {
		if p := endSession(q); p.location != "" || p.status >= 500 {
			t.Errorf("%v: status %d, redirected to %q", q, p.status, p.location)
		}
	}
}

// TestGarbageInForms posts nonsense into every field of every sign-in form.
func TestGarbageInForms(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("garbage@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, _, _, _ := app.authorizeURL()
		start := b.get(authURL)
		garbage := []string{"", " ", "\x00\x01", strings.Repeat("é", 3000), "<script>alert(1)</script>", "' OR 1=1 --", "%00", "\r\nSet-Cookie: x=y"}
		check := func(what string, p response) {
			t.Helper()
			if p.status >= 500 {
				t.Fatalf("%s: status %d", what, p.status)
			}
			if strings.Contains(p.body, "<script>alert(1)") {
				t.Fatalf("%s: input reflected unescaped", what)
			}
		}
		for _, g := range garbage {
			check("identify email", b.submit(start, "/login/identify", url.Values{"email": {g}}))
			check("identify id", b.post(e.issuer+"/login/identify", url.Values{"id": {g}, "email": {u.Email}}))
		}
		pw := b.submit(start, "/login/identify", url.Values{"email": {u.Email}})
		for _, g := range garbage {
			check("password", b.submit(pw, "/login/password", url.Values{"password": {g}}))
		}
		e.clock.Advance(time.Minute) // past the back-off the nonsense earned
		code := b.submit(pw, "/login/password", url.Values{"password": {testPassword}})
		if !code.at("/login/code") {
			t.Fatalf("expected the code page, got %s %d\n%s", code.url, code.status, code.body)
		}
		for _, g := range garbage {
			check("code", b.submit(code, "/login/code", url.Values{"code": {g}}))
			check("method", b.submit(code, "/login/code", url.Values{"code": {"123456"}, "method": {g}}))
			check("backup code", b.submit(code, "/login/code", url.Values{"code": {g}, "method": {"backup"}}))
		}
		for _, path := range []string{"/login", "/login/identify", "/login/password", "/login/code", "/login/remember", "/login/backup-code", "/logout"} {
			for _, g := range []string{"", "x", strings.Repeat("9", 500), "../../etc/passwd"} {
				check("GET "+path, b.get(e.issuer+path+"?id="+url.QueryEscape(g)+"&authRequestID="+url.QueryEscape(g)))
			}
		}
		// The sign-in still works after all that, once the back-off (at
		// most 15 minutes, never a permanent lock) has passed; the
		// nonsense used up the first code's five tries, so ask for another.
		e.clock.Advance(15*time.Minute + time.Second)
		p := b.submit(code, "/login/code/send", nil)
		p = b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !p.at("/login/remember") {
			t.Fatalf("sign-in did not recover: %s %d", p.url, p.status)
		}
	})
}

func TestOtherBrowserCannotContinue(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	app := e.newRP("app")
	b1, b2 := e.newBrowser(), e.newBrowser()
	authURL, _, _, _ := app.authorizeURL()
	p := b1.get(authURL)
	id := authRequestID(t, p)
	r := b2.get(e.issuer + "/login?authRequestID=" + id)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "started in another browser") {
		t.Fatalf("other browser: %d", r.status)
	}
}

// TestNativeLoopbackAnyPort: a desktop app registered with
// http://127.0.0.1/callback may use any port, on IPv4 and IPv6 loopback
// (RFC 8252 §7.3), with PKCE and no secret.
func TestNativeLoopbackAnyPort(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("desktop@example.com")
		native := e.newRP("cad", func(c *storage.Client) {
			c.Public, c.AppType = true, storage.AppTypeNative
			c.RedirectURIs = []string{"http://127.0.0.1/callback", "http://[::1]/callback"}
		})
		b := e.newBrowser()
		for i, redirect := range []string{"http://127.0.0.1:49152/callback", "http://[::1]:61000/callback"} {
			native.oauth.RedirectURL = redirect
			native.redirect = redirect
			authURL, verifier, state, nonce := native.authorizeURL()
			var p response
			if i == 0 {
				p = b.signIn(authURL, u.Email, signInOpts{})
			} else {
				p = b.get(authURL) // the second start reuses the browser session
			}
			if !strings.HasPrefix(p.location, redirect+"?") {
				t.Fatalf("redirected to %q, want %s", p.location, redirect)
			}
			tok, _, _ := native.exchange(p.code(t, state), verifier, nonce)
			if tok.RefreshToken == "" {
				t.Fatal("native app got no refresh token")
			}
		}
		// A non-loopback redirect is not accepted for the native client.
		native.oauth.RedirectURL = "http://evil.test:49152/callback"
		authURL, _, _, _ := native.authorizeURL()
		if p := b.get(authURL); p.location != "" {
			t.Fatalf("non-loopback redirect accepted: %s", p.location)
		}
	})
}

// TestRS256Default: the default algorithm is RS256, which every OIDC
// client must accept.
func TestRS256Default(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) { c.Keys.Algorithm = config.Default().Keys.Algorithm })
	u := e.createUser("rsa@example.com")
	app := e.newRP("app")
	authURL, verifier, state, nonce := app.authorizeURL()
	p := e.newBrowser().signIn(authURL, u.Email, signInOpts{})
	tok, _, _ := app.exchange(p.code(t, state), verifier, nonce)
	raw, _ := tok.Extra("id_token").(string)
	if !strings.Contains(decodeSegment(t, raw), `"alg":"RS256"`) {
		t.Fatalf("id token header: %s", decodeSegment(t, raw))
	}
	if _, err := app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatal(err)
	}
}

func decodeSegment(t *testing.T, jwt string) string {
	t.Helper()
	seg, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
