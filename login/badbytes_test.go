package login

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
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
				"/login/code?id=", "/login/remember?id=", "/login/consent?id=", "/login/backup-code?id=", "/logout?id=", "/device?user_code=",
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
				"/login/passkey":        {"credential": {bad}, "kind": {bad}},
				"/login/consent":        {"choice": {bad}},
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

// TestBadFormsChangeNothing: a consent answer or a passkey answer that
// comes with text no browser sends (NUL, invalid UTF-8) or in a body
// over the form limit is a clear bad-request page before the handler
// runs: no consent granted, no passkey challenge used up, no passkey
// used; the same good answer sent properly afterwards still works.
func TestBadFormsChangeNothing(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		ctx := context.Background()
		u := e.createUser("forms@example.com")
		e.enrolPasskey(u, a)
		tp := e.newRP("third", func(c *storage.Client) { c.ThirdParty = true })
		badRequest := i18n.MustLoad().Localizer(i18n.English).Msg(web.MsgBadText)
		oversized := strings.Repeat("a", 10<<20+1) // past net/http's form limit
		bads := append(append([]string{}, badBytes...), oversized)
		refused := func(t *testing.T, what string, p response) {
			t.Helper()
			if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, html.EscapeString(badRequest)) {
				t.Fatalf("%s: want a bad-request page, got %d %s %s:\n%.2000s", what, p.status, p.url, p.location, p.body)
			}
		}

		t.Run("consent", func(t *testing.T) {
			c := e.createUser("consent@example.com") // no passkey: the email code
			b := e.newBrowser()
			authURL, state := tp.authorizeURL()
			p := b.drive(b.get(authURL), c.Email, signInOpts{})
			if !p.at("/login/consent") {
				t.Fatalf("not at consent: %s (%d)", p.url, p.status)
			}
			for _, bad := range bads {
				refused(t, "allow with a bad field", b.submit(p, "/login/consent", url.Values{"choice": {"allow"}, "note": {bad}}))
				refused(t, "a bad choice", b.submit(p, "/login/consent", url.Values{"choice": {"allow" + bad}}))
			}
			if _, err := e.store.GetConsent(ctx, c.ID, "third"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a refused form granted consent: %v", err)
			}
			q := b.submit(p, "/login/consent", url.Values{"choice": {"allow"}})
			if q.code(t, state) == "" {
				t.Fatal("no code after allowing")
			}
			if g, err := e.store.GetConsent(ctx, c.ID, "third"); err != nil || len(g.Scopes) == 0 {
				t.Fatalf("consent after allowing: %+v %v", g, err)
			}
		})

		t.Run("passkey", func(t *testing.T) {
			r := e.newRP("app")
			b := e.newBrowser()
			authURL, state := r.authorizeURL()
			p := b.get(authURL)
			answer, err := a.Get(passkeyOptions(t, p))
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range bads {
				refused(t, "a good answer with a bad field", b.submit(p, "/login/passkey", url.Values{"credential": {answer}, "note": {bad}}))
			}
			if pks, _ := e.store.ListPasskeys(ctx, u.ID); len(pks) != 1 || pks[0].SignCount != 0 || !pks[0].LastUsedAt.IsZero() {
				t.Fatalf("a refused form used the passkey: %+v", pks)
			}
			// The challenge was not used up: the same answer signs in.
			if q := b.submit(p, "/login/passkey", url.Values{"credential": {answer}}); q.code(t, state) == "" {
				t.Fatal("no code for the answer sent properly")
			}
		})
	})
}
