package login

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// badBytes are what no form a browser sends contains and PostgreSQL cannot
// store: NUL and invalid UTF-8 (a lone byte, a cut sequence, a surrogate).
var badBytes = []string{"\x00", "a\x00b", "\xff", "caf\xc3", "\xed\xa0\x80"}

// TestBadBytesNeverServerError sends NUL and invalid UTF-8 in every id a
// sign-in page looks up and in every field of every form (with a good
// CSRF token, so that the handler itself runs): a 4xx, never a 5xx, on
// SQLite and PostgreSQL (which used to answer 500: "invalid byte sequence
// for encoding UTF8").
func TestBadBytesNeverServerError(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("bytes@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		start := b.start(app)
		csrf := start.csrf(t)
		id := authRequestID(t, start)
		check := func(what string, p response) {
			t.Helper()
			if p.status >= 500 {
				t.Errorf("%s: status %d\n%s", what, p.status, p.body)
			}
		}
		for _, bad := range badBytes {
			q := url.QueryEscape(bad)
			for _, path := range []string{"/login?authRequestID=", "/login?id=", "/login/identify?id=", "/login/password?id=",
				"/login/code?id=", "/login/remember?id=", "/login/backup-code?id=", "/logout?id=", "/device?user_code=",
				"/device/confirm?id=", "/signup?id=", "/signup/code?id=", "/forgot?id=", "/account/set-password?token=",
				"/federation/start?id=", "/federation/callback?code=x&state="} {
				check("GET "+path+q, b.get(e.issuer+path+q))
			}
			forms := map[string]url.Values{
				"/login/identify":       {"email": {bad}},
				"/login/restart":        {},
				"/login/password":       {"password": {bad}},
				"/login/code":           {"code": {bad}, "method": {bad}},
				"/login/code/send":      {},
				"/login/remember":       {"choice": {bad}},
				"/login/backup-code":    {"saved": {bad}},
				"/logout":               {},
				"/device":               {"user_code": {bad}},
				"/device/confirm":       {"choice": {bad}},
				"/signup":               {"email": {"new" + bad + "@example.com"}, "name": {bad}, "password": {bad + testPassword}},
				"/signup/code":          {"code": {bad}},
				"/signup/code/send":     {},
				"/forgot":               {"email": {bad}},
				"/forgot/code":          {"code": {bad}},
				"/forgot/code/send":     {},
				"/forgot/second":        {"code": {bad}, "method": {bad}},
				"/forgot/password":      {"password": {bad}},
				"/account/set-password": {"token": {bad}, "password": {bad}},
			}
			for path, f := range forms {
				// The bad value as the sign-in's id, then in each field of
				// a form about the real sign-in.
				bf := url.Values{"csrf": {csrf}, "id": {bad}}
				for k, v := range f {
					bf[k] = v
				}
				check("POST "+path+" id", b.post(e.issuer+path, bf))
				gf := url.Values{"csrf": {csrf}, "id": {id}}
				for k, v := range f {
					gf[k] = v
				}
				check("POST "+path, b.post(e.issuer+path, gf))
			}
			// A name with invalid text is refused like any other bad name.
			p := b.post(e.issuer+"/signup", url.Values{"csrf": {csrf}, "id": {id}, "email": {"fresh@example.com"},
				"name": {"Zoë" + bad}, "password": {testPassword}})
			check("signup name", p)
		}
		// Nothing was half-written: the sign-in still works.
		b2 := e.newBrowser()
		p := b2.signIn(mustAuthURL(app), u.Email, signInOpts{})
		if p.rpError() != "" {
			t.Fatalf("sign-in after the bad bytes: %s", p.location)
		}
	})
}

func mustAuthURL(r *rp) string {
	u, _ := r.authorizeURL()
	return u
}

// TestTrustThisDeviceWithCutUserAgent: a User-Agent longer than what is
// kept, cut in the middle of a character, still signs in with "Trust this
// device" and with "Don't trust" (it used to give a 500 on PostgreSQL,
// every time, for that browser).
func TestTrustThisDeviceWithCutUserAgent(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("agent@example.com")
		app := e.newRP("app")
		for _, choice := range []string{"trust", "no"} {
			b := e.newBrowser()
			// 299 bytes, then "é" (2 bytes) across the 300-byte cut.
			b.ua = "Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("x", 299-32) + "é and more"
			authURL, state := app.authorizeURL()
			p := b.signIn(authURL, u.Email, signInOpts{remember: choice})
			code := p.code(t, state)
			if code == "" {
				t.Fatalf("%s: no code", choice)
			}
		}
		devs, err := e.store.ListTrustedDevices(t.Context(), u.ID)
		if err != nil || len(devs) != 1 {
			t.Fatalf("trusted devices: %v %v", devs, err)
		}
		if !strings.HasSuffix(devs[0].UserAgent, "x") || len(devs[0].UserAgent) > 300 {
			t.Fatalf("user agent kept as %q", devs[0].UserAgent)
		}
	})
}

func TestBadBytesStatus(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	b := e.newBrowser()
	// Text no browser sends is a bad request, said on a page.
	p := b.get(e.issuer + "/login?authRequestID=%00")
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Something went wrong") {
		t.Fatalf("status %d:\n%s", p.status, p.body)
	}
}

func TestMaskEmailByCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"ab@example.com":    "a…@example.com",
		"alice@example.com": "al…@example.com",
		"éa@example.com":    "é…@example.com",
		"ößx@example.com":   "öß…@example.com",
		"名前です@example.com":  "名前…@example.com",
	} {
		if got := maskEmail(in); got != want {
			t.Errorf("maskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
