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

// TestCSRFOnEveryForm: each form of the sign-in, device, sign-out and
// devices pages, in the wired server, refuses a post without this
// browser's CSRF token — missing, or the valid token of another browser
// (what an attacker's page can hold) — even with every other field right,
// and nothing moves. (login and login/account check every POST route of
// theirs, sign-up included, against stubs that fail when touched.)
func TestCSRFOnEveryForm(t *testing.T) {
	t.Parallel()
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
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestNativeLoopbackAnyPort: a desktop app registered with
// http://127.0.0.1/callback may use any port, on IPv4 and IPv6 loopback
// (RFC 8252 §7.3), with PKCE and no secret.
func TestNativeLoopbackAnyPort(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// browserCookie is the name and value of the browser-handle cookie in b's
// jar ("" if none).
func (b *browser) browserCookie() (name, value string) {
	u, _ := url.Parse(b.e.issuer)
	for _, ck := range b.client.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "lk_browser") {
			return ck.Name, ck.Value
		}
	}
	return "", ""
}

// plant writes a cookie into b's jar, as an attacker who can set cookies
// for the host would.
func (b *browser) plant(name, value string) {
	u, _ := url.Parse(b.e.issuer)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// TestCSRFTokenOfPlantedHandleRefused (issue 10 §4): an attacker reads a
// CSRF token under a handle H the server minted for him and plants H in
// the victim's browser; the victim signs in to her account pages. The
// token is refused on her POST /account/privacy: it died with H at her
// first sign-in step. Planting H again afterwards does not revive it: the
// account session belongs to her current handle, so with H back nothing
// is changed either.
func TestCSRFTokenOfPlantedHandleRefused(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("csrf-victim@example.com")
		attacker, victim := e.newBrowser(), e.newBrowser()

		token := attacker.get(e.issuer + "/device").csrf(t)
		name, h := attacker.browserCookie()
		if h == "" {
			t.Fatal("no browser handle")
		}
		victim.plant(name, h)

		p := victim.account("/account/privacy", u.Email, signInOpts{})
		if !p.at("/account/privacy") {
			t.Fatalf("victim's account page: %s (%d)", p.url, p.status)
		}
		forged := url.Values{"csrf": {token}, "product_improvement": {"on"}, "personalised_offers": {"on"}}
		r := victim.post(e.issuer+"/account/privacy", forged)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "The form has expired") {
			t.Fatalf("the attacker's token: %d\n%s", r.status, r.body)
		}
		// H planted again over the victim's current handle.
		victim.plant(name, h)
		r = victim.post(e.issuer+"/account/privacy", forged)
		if r.status >= 500 || strings.Contains(r.body, "Your privacy settings are saved.") {
			t.Fatalf("the attacker's token with H planted again: %d\n%s", r.status, r.body)
		}
		if got := e.user(u.ID); got.PrivacyProductImprovement || got.PrivacyPersonalisedOffers {
			t.Fatalf("the forged post changed the settings: %+v", got)
		}
		// Her own form still works (after signing in again, H being gone).
		p = victim.account("/account/privacy", u.Email, signInOpts{})
		p = victim.submit(p, "/account/privacy", url.Values{"product_improvement": {"on"}})
		if !strings.Contains(p.body, "Your privacy settings are saved.") {
			t.Fatalf("her own form: %d\n%s", p.status, p.body)
		}
	})
}
