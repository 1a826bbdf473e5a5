package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// Fuzz tests of the wired binary: the token endpoint, the authorize
// endpoint and the account pages' forms. Whatever arrives, no answer is a
// 5xx (nor an OAuth server_error) and nothing panics. The seed corpora are
// in code (f.Add) and run in plain `go test` on SQLite and, when
// LATCHKEY_TEST_DATABASE_URL is set (CI), PostgreSQL.

// fuzzEnv is one wired server with a client, a user and what a real
// sign-in left behind (a code, a refresh token), shared by the inputs.
type fuzzEnv struct {
	e        *testEnv
	app      *rp
	user     storage.User
	code     string
	verifier string
	refresh  string
	b        *browser // signed in, account pages included
}

func newFuzzEnvs(f *testing.F, account bool) []*fuzzEnv {
	var out []*fuzzEnv
	for _, d := range storagetest.Dialects(f) {
		e := newTestEnv(f, d, localhostIssuer) // passkeys need a domain
		fe := &fuzzEnv{e: e, app: e.newRP("app"), user: e.createUser("fuzz@example.com")}
		e.newRP("tv", func(c *storage.Client) {
			c.GrantTypes = append(c.GrantTypes, "urn:ietf:params:oauth:grant-type:device_code")
		})
		fe.b = e.newBrowser()
		authURL, verifier, state, nonce := fe.app.authorizeURL()
		code := fe.b.signIn(authURL, fe.user.Email, signInOpts{remember: "trust"}).code(f, state)
		tok, _, _ := fe.app.exchange(code, verifier, nonce)
		fe.refresh = tok.RefreshToken
		// A second code, not yet exchanged, for the inputs to try.
		authURL, fe.verifier, state, _ = fe.app.authorizeURL()
		fe.code = fe.b.get(authURL).code(f, state)
		if account {
			fe.b.reconfirmed("/account/security/password", fe.user.Email, signInOpts{})
		}
		out = append(out, fe)
	}
	return out
}

// send does one request with t as the test (not the env's).
func send(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

var fuzzGrants = []string{"authorization_code", "refresh_token", "client_credentials",
	"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "password", ""}

func FuzzTokenEndpoint(f *testing.F) {
	// grant (index, or the raw value when rawGrant is set), client id and
	// secret (REAL: the registered ones; basic: HTTP Basic, else the
	// form), code (REAL: an unexchanged code), refresh token (REAL), scope,
	// redirect_uri, code_verifier (REAL).
	type seed struct {
		grant                          uint8
		rawGrant                       string
		id, secret                     string
		basic                          bool
		code, refresh, scope, redirect string
		verifier                       string
	}
	for _, s := range []seed{
		{0, "", "REAL", "REAL", true, "REAL", "", "", rpRedirect, "REAL"},
		{0, "", "REAL", "REAL", false, "REAL", "", "", rpRedirect, "wrong"},
		{0, "", "REAL", "REAL", true, "\x00", "", "", rpRedirect, "REAL"},
		{0, "", "REAL", "REAL", true, "REAL", "", "", rpRedirect + "\xff", "REAL"},
		{1, "", "REAL", "REAL", true, "", "REAL", "openid", "", ""},
		{1, "", "REAL", "REAL", true, "", "REAL", "openid admin", "", ""},
		{1, "", "REAL", "REAL", true, "", "\xff", "", "", ""},
		{1, "", "REAL", "REAL", true, "", "\xff.\x00", "", "", ""},
		{1, "", "REAL", "REAL", true, "", "a\x00b.c", "", "", ""},
		{1, "", "REAL", "REAL", true, "", strings.Repeat("z", 5000), "", "", ""},
		{2, "", "REAL", "REAL", true, "", "", "admin superuser", "", ""},
		{2, "", "REAL", "REAL", true, "", "", "\x00\"<>", "", ""},
		{2, "", "\xff", "x", false, "", "", "", "", ""},
		{2, "", "a\x00b", "x", true, "", "", "", "", ""},
		{2, "", "REAL", "", false, "", "", "", "", ""},
		{3, "", "tv", "", false, "\x00", "", "", "", ""},
		{4, "", "REAL", "REAL", true, "a.b.c", "", "", "", ""},
		{5, "", "REAL", "REAL", true, "", "", "", "", ""},
		{6, "caf\xc3", "REAL", "REAL", true, "", "", "", "", ""},
		{6, "", "", "", false, "", "", "", "", ""},
	} {
		f.Add(s.grant, s.rawGrant, s.id, s.secret, s.basic, s.code, s.refresh, s.scope, s.redirect, s.verifier)
	}
	envs := newFuzzEnvs(f, false)
	f.Fuzz(func(t *testing.T, grant uint8, rawGrant, id, secret string, basic bool, code, refresh, scope, redirect, verifier string) {
		for _, fe := range envs {
			fe.e.t = t
			real := func(v, r string) string {
				if v == "REAL" {
					return r
				}
				return v
			}
			g := fuzzGrants[int(grant)%len(fuzzGrants)]
			if rawGrant != "" {
				g = rawGrant
			}
			form := url.Values{"grant_type": {g}}
			for k, v := range map[string]string{"code": real(code, fe.code), "refresh_token": real(refresh, fe.refresh),
				"device_code": code, "assertion": code, "scope": scope, "redirect_uri": redirect,
				"code_verifier": real(verifier, fe.verifier)} {
				if v != "" {
					form.Set(k, v)
				}
			}
			id, secret = real(id, fe.app.id), real(secret, fe.app.secret)
			if !basic && id != "" {
				form.Set("client_id", id)
				form.Set("client_secret", secret)
			}
			req, _ := http.NewRequest(http.MethodPost, fe.e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if basic {
				req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
			}
			status, body, _ := send(t, req)
			if status >= 500 || strings.Contains(body, "server_error") {
				t.Fatalf("%s: POST /oauth/token %q (basic %v): %d %s", fe.e.store.Dialect(), form, basic, status, body)
			}
		}
	})
}

func FuzzAuthorizeEndpoint(f *testing.F) {
	// Each value replaces the parameter of a valid request of the client
	// "app" (KEEP keeps the valid one; "" drops it).
	for _, s := range [][11]string{
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "\xff", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "a\x00b", "KEEP", "KEEP"},
		{"\xff", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "http://rp.test/callback\x00", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "token", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "code id_token", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "openid \xff", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "profile", "KEEP", "KEEP", "", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "none", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "none login", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "login", "0", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "-1", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "99999999999999999999", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "select_account\x00", "", "", "KEEP", "KEEP"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "", ""},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "abc", "plain"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "", "", "", "KEEP", "S256\xff"},
		{"KEEP", "KEEP", "KEEP", "KEEP", "KEEP", "\x00", "", "", "", "KEEP", "KEEP"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10])
	}
	envs := newFuzzEnvs(f, false)
	f.Fuzz(func(t *testing.T, clientID, redirect, responseType, scope, state, nonce, prompt, maxAge, loginHint, challenge, method string) {
		for _, fe := range envs {
			fe.e.t = t
			authURL, _, _, _ := fe.app.authorizeURL()
			u, _ := url.Parse(authURL)
			q := u.Query()
			for k, v := range map[string]string{"client_id": clientID, "redirect_uri": redirect, "response_type": responseType,
				"scope": scope, "state": state, "nonce": nonce, "prompt": prompt, "max_age": maxAge, "login_hint": loginHint,
				"code_challenge": challenge, "code_challenge_method": method} {
				switch v {
				case "KEEP":
				case "":
					q.Del(k)
				default:
					q.Set(k, v)
				}
			}
			u.RawQuery = q.Encode()
			// A browser with a session (the silent path) and one without.
			for _, b := range []*browser{fe.b, fe.e.newBrowser()} {
				p := b.get(u.String())
				if p.status >= 500 || p.rpError() == "server_error" {
					t.Fatalf("%s: GET %s: %d %q\n%s", fe.e.store.Dialect(), u, p.status, p.location, p.body)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, fe.e.issuer+"/authorize", strings.NewReader(q.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			status, body, loc := send(t, req)
			if status >= 500 || strings.Contains(loc, "error=server_error") {
				t.Fatalf("%s: POST /authorize %q: %d %q %s", fe.e.store.Dialect(), q, status, loc, body)
			}
		}
	})
}

// accountFuzzForms are the account pages' forms and their fields.
var accountFuzzForms = []struct {
	action string
	fields []string
}{
	{"/account/devices/remove", []string{"kind", "id"}},
	{"/account/devices/signout-others", nil},
	{"/account/privacy", []string{"product_improvement", "personalised_offers"}},
	{"/account/security/password", []string{"password", "new_password"}},
	{"/account/security/totp", []string{"totp_id", "code"}},
	{"/account/security/totp/off", nil},
	{"/account/security/backup-code", nil},
	{"/account/security/backup-code/saved", []string{"saved"}},
	{"/account/security/passkeys", []string{"name", "credential"}},
	{"/account/security/passkeys/remove", []string{"id"}},
	{"/account/language", []string{"language", "time_zone"}},
}

func FuzzAccountForms(f *testing.F) {
	for i := range accountFuzzForms {
		f.Add(uint8(i), "", "", false)
	}
	for _, s := range []struct {
		form    uint8
		a, b    string
		badCSRF bool
	}{
		{0, "device", "\x00", false},
		{0, "session", "\xff", false},
		{0, "product", strings.Repeat("x", 65), false},
		{0, "\x00", "", false},
		{2, "on", "off", false},
		{2, "yes", "\xff", false},
		{2, "on", "on", true},
		{3, testPassword, "short", false},
		{3, testPassword, "caf\xc3 new password", false},
		{3, "wrong", "a brand new password 123", false},
		{4, "\x00", "123456", false},
		{4, "", "\xff\xfe", false},
		{7, "yes", "", false},
		{7, "\x00", "", false},
		{8, "My key", "{", false},
		{8, "\x00", `{"id":"AA","rawId":"AA","type":"public-key","response":{}}`, false},
		{8, strings.Repeat("n", 500), "\xff", false},
		{8, "Key", strings.Repeat("{", 70000), false},
		{9, "", "", false},
		{9, strings.Repeat("9", 65), "", false},
		{9, "\xed\xa0\x80", "", false},
		{10, "de", "Europe/Berlin", false},
		{10, "xx", "Mars/Olympus", false},
		{10, "\x00", "\xff", false},
		{10, "fr", "Europe/Paris", true},
	} {
		f.Add(s.form, s.a, s.b, s.badCSRF)
	}
	envs := newFuzzEnvs(f, true)
	f.Fuzz(func(t *testing.T, form uint8, a, b string, badCSRF bool) {
		af := accountFuzzForms[int(form)%len(accountFuzzForms)]
		for _, fe := range envs {
			fe.e.t = t
			// A fresh page for a fresh CSRF token (a change rotates the
			// browser handle); sign in again if an input ended the session.
			p := fe.b.get(fe.e.issuer + "/account/devices")
			if !p.at("/account/devices") {
				p = fe.b.drive(p, fe.user.Email, signInOpts{})
			}
			if p.status >= 500 {
				t.Fatalf("%s: devices page: %d", fe.e.store.Dialect(), p.status)
			}
			values := url.Values{}
			if m := csrfRe.FindStringSubmatch(p.body); m != nil && !badCSRF {
				values.Set("csrf", m[1])
			} else {
				values.Set("csrf", a)
			}
			vals := []string{a, b}
			for i, name := range af.fields {
				values.Set(name, vals[i%2])
			}
			if r := fe.b.post(fe.e.issuer+af.action, values); r.status >= 500 {
				t.Fatalf("%s: POST %s %q: %d\n%s", fe.e.store.Dialect(), af.action, values, r.status, r.body)
			}
			q := url.Values{"return": {a}, "done": {b}, "mail": {a}, "state": {a}, "code": {b}}
			for _, path := range []string{"/account/security", "/account/devices", "/account/privacy", "/account/reconfirm", "/account/callback"} {
				if r := fe.b.get(fe.e.issuer + path + "?" + q.Encode()); r.status >= 500 {
					t.Fatalf("%s: GET %s?%s: %d", fe.e.store.Dialect(), path, q.Encode(), r.status)
				}
			}
		}
	})
}
