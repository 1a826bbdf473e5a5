package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/login/passkeytest"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// badBytes: NUL and invalid UTF-8, which PostgreSQL cannot store.
var badBytes = []string{"\x00", "a\x00b", "\xff", "caf\xc3"}

// oauthError is the "error" of a JSON OAuth answer ("" if none).
func oauthError(body []byte) string {
	var out struct{ Error string }
	_ = json.Unmarshal(body, &out)
	return out.Error
}

// TestBadBytesAtTheOP sends NUL and invalid UTF-8 to every OP endpoint that
// looks a value up or stores it: a 4xx with the OAuth error, never a 5xx,
// and /authorize redirects invalid_request (not server_error) to the
// client when only a parameter it would store is bad. On SQLite and
// PostgreSQL (which used to answer 500 or server_error).
func TestBadBytesAtTheOP(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("opbytes@example.com")
		app := e.newRP("app")
		e.newRP("tv", func(c *storage.Client) {
			c.GrantTypes = append(c.GrantTypes, "urn:ietf:params:oauth:grant-type:device_code")
		})
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)

		fourXX := func(what string, body []byte, status int) {
			t.Helper()
			if status < 400 || status >= 500 {
				t.Errorf("%s: status %d: %s", what, status, body)
			}
		}
		for _, bad := range badBytes {
			q := url.QueryEscape(bad)
			// /authorize: a value it would store → invalid_request to the
			// client; a bad client or redirect → our error page.
			// (ui_locales is parsed into language tags by zitadel: a bad
			// one is dropped, nothing is stored; it only must not fail.)
			if p := b.get(authURL + "&ui_locales=" + q); p.status >= 500 || p.rpError() == "server_error" {
				t.Errorf("authorize ui_locales=%q: status %d, location %q", bad, p.status, p.location)
			}
			for _, param := range []string{"state", "login_hint", "nonce", "acr_values", "prompt", "max_age"} {
				u, _ := url.Parse(authURL)
				v := u.Query()
				v.Set(param, "x"+bad)
				u.RawQuery = v.Encode()
				p := b.get(u.String())
				if p.status >= 500 || (p.location != "" && p.rpError() != "invalid_request") {
					t.Errorf("authorize %s=%q: status %d, location %q", param, bad, p.status, p.location)
				}
			}
			for _, param := range []string{"client_id", "redirect_uri"} {
				u, _ := url.Parse(authURL)
				v := u.Query()
				v.Set(param, v.Get(param)+bad)
				u.RawQuery = v.Encode()
				p := b.get(u.String())
				if p.status != http.StatusBadRequest || p.location != "" {
					t.Errorf("authorize %s=%q: status %d, location %q", param, bad, p.status, p.location)
				}
			}
			// The token endpoint: the client in the form or in Basic, and
			// every grant's value.
			body, status := postForm(t, e.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {bad}, "client_secret": {"x"}}, "", "")
			fourXX("token client_id in form", body, status)
			body, status = postForm(t, e.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, bad, "x")
			fourXX("token client_id in basic", body, status)
			for _, f := range []url.Values{
				{"grant_type": {"authorization_code"}, "code": {bad}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}},
				{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {rpRedirect + bad}, "code_verifier": {verifier}},
				{"grant_type": {"refresh_token"}, "refresh_token": {bad}},
				{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid" + bad}},
				{"grant_type": {"client_credentials"}, "scope": {bad}},
				{"grant_type": {bad}},
				{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {bad}},
			} {
				body, status := app.tokenPost(t, f)
				fourXX("token "+f.Encode(), body, status)
			}
			body, status = postForm(t, e.issuer+"/revoke", url.Values{"token": {bad}}, app.id, app.secret)
			if status >= 500 {
				t.Errorf("revoke token: %d %s", status, body)
			}
			body, status = postForm(t, e.issuer+"/revoke", url.Values{"token": {"x"}, "client_id": {bad}}, "", "")
			fourXX("revoke client_id", body, status)
			body, status = postForm(t, e.issuer+"/oauth/introspect", url.Values{"token": {bad}}, app.id, app.secret)
			if status >= 500 {
				t.Errorf("introspect: %d %s", status, body)
			}
			body, status = postForm(t, e.issuer+"/device_authorization", url.Values{"client_id": {bad}, "scope": {"openid"}}, "", "")
			fourXX("device_authorization client_id", body, status)
			body, status = postForm(t, e.issuer+"/device_authorization", url.Values{"client_id": {"tv"}, "scope": {"openid " + bad}}, "tv", "s3cret-tv-0123456789abcdefghijklmnop")
			if status >= 500 {
				t.Errorf("device_authorization scope: %d %s", status, body)
			}
			for _, path := range []string{"/end_session?id_token_hint=" + q, "/end_session?post_logout_redirect_uri=" + q + "&client_id=app",
				"/end_session?client_id=" + q, "/end_session?state=" + q, "/userinfo?access_token=" + q} {
				if p := b.get(e.issuer + path); p.status >= 500 {
					t.Errorf("GET %s: status %d", path, p.status)
				}
			}
		}
		// Nothing broke: the client still gets tokens.
		if got := refreshErr(t, app, tok.RefreshToken); got != "" {
			t.Fatalf("refresh after the bad bytes: %q", got)
		}
	})
}

// TestBadBytesOnAccountPages: the account pages' forms with NUL and invalid
// UTF-8 (with a good CSRF token): a 4xx, nothing changed.
func TestBadBytesOnAccountPages(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("acctbytes@example.com")
		b := e.newBrowser()
		p := b.account("/account/devices", u.Email, signInOpts{remember: "trust"})
		if !p.at("/account/devices") {
			t.Fatalf("devices page: %s %d", p.url, p.status)
		}
		csrf := p.csrf(t)
		for _, bad := range badBytes {
			for path, f := range map[string]url.Values{
				"/account/devices/remove":           {"kind": {"device"}, "id": {bad}},
				"/account/devices/remove?session":   {"kind": {"session"}, "id": {bad}},
				"/account/devices/remove?product":   {"kind": {"product"}, "id": {bad}},
				"/account/devices/signout-others":   {"x": {bad}},
				"/account/privacy":                  {"product_improvement": {bad}},
				"/account/security/password":        {"password": {bad}, "new_password": {bad}},
				"/account/security/totp":            {"totp_id": {bad}, "code": {bad}},
				"/account/security/backup-code":     {"x": {bad}},
				"/account/security/passkeys":        {"name": {bad}, "credential": {bad}},
				"/account/security/passkeys/remove": {"id": {bad}},
				"/account/language":                 {"language": {bad}, "time_zone": {bad}},
			} {
				f.Set("csrf", csrf)
				r := b.post(e.issuer+path, f)
				if r.status >= 500 {
					t.Errorf("POST %s: status %d", path, r.status)
				}
			}
			for _, path := range []string{"/account/reconfirm?return=", "/account/security?done=", "/account/callback?state=x&code="} {
				if r := b.get(e.issuer + path + url.QueryEscape(bad)); r.status >= 500 {
					t.Errorf("GET %s: status %d", path, r.status)
				}
			}
		}
		devs, err := e.store.ListTrustedDevices(context.Background(), u.ID)
		if err != nil || len(devs) != 1 {
			t.Fatalf("the trusted device: %v %v", devs, err)
		}
	})
}

// TestBadFormsOnPasskeysAndLanguage: the passkey set-up and removal and
// the language form, posted with a good CSRF token and a good answer but
// with NUL, invalid UTF-8 or a body over the server's limit, are a clear
// 4xx page and change nothing (no passkey added or removed, no set-up
// challenge used up, the language kept); sent properly afterwards, the
// same answers work.
func TestBadFormsOnPasskeysAndLanguage(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, localhostIssuer)
		ctx := context.Background()
		u := e.createUser("pkbytes@example.com")
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})
		p := b.reconfirmed("/account/security/passkeys", u.Email, signInOpts{})
		p = b.setUpPasskey(p, passkeytest.New(e.issuer), "Phone")
		pks, _ := e.store.ListPasskeys(ctx, u.ID)
		if len(pks) != 1 {
			t.Fatalf("%d passkeys", len(pks))
		}
		answer, err := passkeytest.New(e.issuer).Create(passkeyOptionsOn(t, p))
		if err != nil {
			t.Fatal(err)
		}
		csrf := p.csrf(t)
		oversized := strings.Repeat("a", 64<<10+1) // past the server's body limit
		for _, bad := range append(append([]string{}, badBytes...), oversized) {
			for path, f := range map[string]url.Values{
				"/account/security/passkeys":        {"name": {"Key"}, "credential": {answer}, "note": {bad}},
				"/account/security/passkeys?name":   {"name": {"Key" + bad}, "credential": {answer}},
				"/account/security/passkeys/remove": {"id": {pks[0].ID}, "note": {bad}},
				"/account/language":                 {"language": {"de"}, "note": {bad}},
				"/account/language?zone":            {"language": {"de"}, "time_zone": {"Europe/Berlin" + bad}},
			} {
				f.Set("csrf", csrf)
				r := b.post(e.issuer+path, f)
				want := http.StatusBadRequest
				if bad == oversized {
					want = http.StatusRequestEntityTooLarge
				}
				if r.status != want || !strings.Contains(r.body, "</html>") {
					t.Errorf("POST %s with %.10q: %d, want %d with a page:\n%.1000s", path, bad, r.status, want, r.body)
				}
			}
		}
		if after, _ := e.store.ListPasskeys(ctx, u.ID); len(after) != 1 || after[0].ID != pks[0].ID {
			t.Fatalf("a refused form changed the passkeys: %+v", after)
		}
		if got, _ := e.store.GetUser(ctx, u.ID); got.Language != u.Language || got.TimeZone != u.TimeZone {
			t.Fatalf("a refused form changed the language: %q %q", got.Language, got.TimeZone)
		}
		// Sent properly, the same answers work: the language first (the
		// set-up moves the browser's handle on, and its CSRF token).
		if q := b.post(e.issuer+"/account/language", url.Values{"csrf": {csrf}, "language": {"de"}}); !q.at("/account/language") {
			t.Fatalf("language: %s %d", q.url, q.status)
		}
		if got, _ := e.store.GetUser(ctx, u.ID); got.Language != "de" {
			t.Fatalf("language not saved: %q", got.Language)
		}
		if q := b.post(e.issuer+"/account/security/passkeys", url.Values{"csrf": {csrf}, "name": {"Key"}, "credential": {answer}}); !q.at("/account/security/passkeys") {
			t.Fatalf("set-up: %s %d\n%s", q.url, q.status, q.body)
		}
		if after, _ := e.store.ListPasskeys(ctx, u.ID); len(after) != 2 {
			t.Fatalf("%d passkeys after the proper set-up, want 2", len(after))
		}
	})
}

// TestUpstreamSubjectWithNUL: an organisation's IdP that answers with a
// NUL in sub or email (JSON can carry one as \u0000; invalid UTF-8 it
// cannot: encoding/json turns it into U+FFFD) is refused with the "could
// not verify" page, and nothing is created; a NUL in the name is dropped.
func TestUpstreamSubjectWithNUL(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f, tp := newTamperFed(t, d, nil)
		org := f.org
		for _, claims := range []map[string]any{
			{"sub": "t\x00-1", "email": tamperEmail, "name": "Tim"},
			{"sub": "t-1", "email": "tim\x00@" + tamperDomain, "name": "Tim"},
		} {
			claims["auth_time"] = f.down.clock.Now().Unix()
			tp.SetClaims(claims)
			before := f.tally()
			b := f.newBrowser(tp.Issuer)
			callback, _, _, _ := f.toCallback(b, tamperEmail)
			p := b.get(callback)
			if p.status >= 500 {
				t.Fatalf("sub %q: status %d", claims["sub"], p.status)
			}
			f.refused(b, p, http.StatusForbidden, "We could not verify the answer from your organisation's sign-in service.",
				"upstream sub or email is not valid text", before)
		}
		// A name with a NUL is a label: cleaned and kept.
		tp.SetClaims(map[string]any{"sub": "t-1", "email": tamperEmail, "name": "Ti\x00m\xff", "auth_time": f.down.clock.Now().Unix()})
		f.ssoSignIn(f.newBrowser(tp.Issuer), tamperEmail)
		tim, err := f.down.store.GetUserByEmail(context.Background(), tamperEmail)
		if err != nil || tim.OrgID != org.ID || !strings.HasPrefix(tim.Name, "Tim") {
			t.Fatalf("user: %+v %v", tim, err)
		}
	})
}

// TestAuditListCutsBetweenCharacters: `latchkey audit list` shortens a
// long User-Agent between characters, never printing half of one.
func TestAuditListCutsBetweenCharacters(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	if code, out, errOut := cli(t, env, "", "migrate"); code != exitOK {
		t.Fatalf("migrate: exit %d: %s %s", code, out, errOut)
	}
	if code, out, errOut := cli(t, env, "", "user", "create", "--email", "ua@example.com"); code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	a, err := openApp(&cmdEnv{ctx: context.Background(), stderr: &bytes.Buffer{}, environ: env}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.store.GetUserByEmail(context.Background(), "ua@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ua := strings.Repeat("x", 56) + "€uro and more"
	if err := a.store.CreateAuditEvent(context.Background(), storage.AuditEvent{UserID: u.ID, Event: "test.ua", UserAgent: ua, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a.close()
	code, out, errOut := cli(t, env, "", "audit", "list", "--user", "ua@example.com")
	if code != exitOK || !strings.Contains(out, strings.Repeat("x", 56)+"...") || !utf8.ValidString(out) {
		t.Fatalf("exit %d, valid %v:\n%s%s", code, utf8.ValidString(out), out, errOut)
	}
}
