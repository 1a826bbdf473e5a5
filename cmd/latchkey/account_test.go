package main

import (
	"context"
	"encoding/base32"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// The account pages: a relying party of our own OP, with an identity
// reconfirmation before every change.

// account opens an account page, signing in (or reconfirming) on the way.
func (b *browser) account(path, email string, o signInOpts) response {
	b.e.t.Helper()
	return b.drive(b.get(b.e.issuer+path), email, o)
}

// reconfirmed opens a change page: the identity is confirmed on the way
// (password and a code), and the browser comes back to path.
func (b *browser) reconfirmed(path, email string, o signInOpts) response {
	b.e.t.Helper()
	p := b.get(b.e.issuer + path)
	if !p.at(path) {
		if !p.at("/login/password") {
			b.e.t.Fatalf("%s: expected the reconfirmation to ask for the password, got %s (%d):\n%s", path, p.url, p.status, p.body)
		}
		p = b.drive(p, email, o)
	}
	if !p.at(path) {
		b.e.t.Fatalf("expected to come back to %s, got %s (%d):\n%s", path, p.url, p.status, p.body)
	}
	return p
}

var (
	csrfRe       = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	totpKeyRe    = regexp.MustCompile(`<code id="totp-key">((?:<span class="group">[A-Z2-7]+</span> ?)+)</code>`)
	tagRe        = regexp.MustCompile(`<[^>]+>`)
	backupCodeRe = regexp.MustCompile(`<code id="backup-code">([0-9A-Z-]+)</code>`)
)

// csrf is the CSRF token on a page.
func (p response) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf token on %s:\n%s", p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

// totpSeed reads the key shown for manual entry, as an app would.
func totpSeed(t *testing.T, p response) []byte {
	t.Helper()
	m := totpKeyRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no key on the set-up page:\n%s", p.body)
	}
	key := tagRe.ReplaceAllString(m[1], "")
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(key, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// totpAt is the code of seed k steps from the test clock's now.
func (e *testEnv) totpAt(seed []byte, k int64) string {
	return factor.TOTPCode(seed, factor.TOTPStep(e.clock.Now())+k)
}

func backupCodeOn(t *testing.T, p response) string {
	t.Helper()
	m := backupCodeRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no backup code on %s:\n%s", p.url, p.body)
	}
	return m[1]
}

// lastSubject is the subject of the newest mail to addr.
func (e *testEnv) lastSubject(addr string) string {
	e.deliver()
	m, ok := e.sink.Last(addr)
	if !ok {
		return ""
	}
	return m.Subject
}

// auditEvents lists the user's audit event names, oldest first.
func (e *testEnv) auditEvents(userID string) []string {
	e.t.Helper()
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: userID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Event)
	}
	return out
}

func (e *testEnv) user(id string) storage.User {
	e.t.Helper()
	u, err := e.store.GetUser(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *testEnv) activeTOTP(userID string) (storage.TOTPCredential, bool) {
	e.t.Helper()
	creds, err := e.store.ListTOTP(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range creds {
		if c.Status == storage.TOTPActive {
			return c, true
		}
	}
	return storage.TOTPCredential{}, false
}

// signInRP signs a browser in to a relying party and returns the tokens'
// claims; the second step is answered by o.
func (b *browser) signInRP(app *rp, email string, o signInOpts, extra ...string) (string, map[string]any) {
	b.e.t.Helper()
	authURL, verifier, state, nonce := app.authorizeURL()
	for i := 0; i+1 < len(extra); i += 2 {
		authURL += "&" + url.QueryEscape(extra[i]) + "=" + url.QueryEscape(extra[i+1])
	}
	p := b.drive(b.get(authURL), email, o)
	tok, _, claims := app.exchange(p.code(b.e.t.(*testing.T), state), verifier, nonce)
	return tok.RefreshToken, claims
}

// promptNone reports the RP's answer to a silent sign-in in this browser
// ("" when it succeeded).
func (b *browser) promptNone(app *rp) string {
	authURL, _, _, _ := app.authorizeURL()
	p := b.get(authURL + "&prompt=none")
	if p.location == "" {
		b.e.t.Fatalf("prompt=none showed a page: %s", p.url)
	}
	return p.rpError()
}

// TestAccountSignIn: the account page is an OIDC sign-in of the built-in
// account client; the account session dies with the browser session.
func TestAccountSignIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("acct@example.com")

		b := e.newBrowser()
		p := b.get(e.issuer + "/account")
		if !p.at("/login/identify") || !strings.Contains(p.body, "Your account") {
			t.Fatalf("/account without a session should start a sign-in of the account client, got %s:\n%s", p.url, p.body)
		}
		p = b.drive(p, u.Email, signInOpts{})
		if !p.at("/account/security") {
			t.Fatalf("after sign-in: %s (%d):\n%s", p.url, p.status, p.body)
		}
		for _, want := range []string{u.Email, "Set up", "Generate", "Last generated never", "Sign out", `href="/account/devices"`, `href="/account/privacy"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("security page lacks %q", want)
			}
		}
		// The client is a confidential web client, code + PKCE only.
		c, err := e.store.GetClient(context.Background(), "account")
		if err != nil || c.Public || len(c.SecretHash) == 0 || !slices.Equal(c.GrantTypes, []string{"authorization_code"}) ||
			!slices.Equal(c.RedirectURIs, []string{e.issuer + "/account/callback"}) {
			t.Fatalf("account client = %+v, %v", c, err)
		}
		// Pages open without asking again.
		for _, path := range []string{"/account/devices", "/account/privacy", "/account/security"} {
			if p = b.get(e.issuer + path); !p.at(path) {
				t.Fatalf("%s: %s", path, p.url)
			}
		}

		// Sign out from the account page: the account session is gone too.
		p = b.submit(p, "/logout", nil)
		if !p.at("/logout/done") {
			t.Fatalf("sign out ended at %s", p.url)
		}
		if p = b.get(e.issuer + "/account/security"); !p.at("/login/identify") {
			t.Fatalf("after sign-out the account page must sign in again, got %s", p.url)
		}

		// Another browser signs in; removing its session from the first
		// ends its account session at once.
		b.drive(p, u.Email, signInOpts{})
		b2 := e.newBrowser()
		if p = b2.account("/account/security", u.Email, signInOpts{}); !p.at("/account/security") {
			t.Fatalf("second browser: %s", p.url)
		}
		sessions, _ := e.store.ListSessions(context.Background(), u.ID)
		if len(sessions) != 2 {
			t.Fatalf("sessions = %d, want 2", len(sessions))
		}
		var other string
		for _, s := range sessions {
			if p := b.get(e.issuer + "/account/devices"); strings.Contains(p.body, `value="`+s.ID+`"`) {
				other = s.ID // only other sessions have a remove form
			}
		}
		p = b.get(e.issuer + "/account/devices")
		p = b.post(e.issuer+"/account/devices/remove", url.Values{"csrf": {p.csrf(t)}, "kind": {"session"}, "id": {other}})
		if !p.at("/account/devices") || !strings.Contains(p.body, "The session is signed out.") {
			t.Fatalf("remove session: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if p = b2.get(e.issuer + "/account/security"); !p.at("/login/identify") {
			t.Fatalf("the removed browser's account session must be dead, got %s", p.url)
		}
	})
}

// TestAccountCallbackBadInput: a forged or replayed callback, a bad
// return address, a dead session: a clear page, never a 500.
func TestAccountCallbackBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("cb@example.com")
	b := e.newBrowser()
	for _, q := range []string{"", "?code=x", "?code=x&state=y", "?error=access_denied&error_description=no", "?state=" + strings.Repeat("a", 5000)} {
		p := b.get(e.issuer + "/account/callback" + q)
		if p.status != http.StatusBadRequest {
			t.Errorf("callback%s: status %d", q, p.status)
		}
	}
	// Start a sign-in, then come back with a wrong state: refused; the
	// right flow still works afterwards.
	p := b.get(e.issuer + "/account/security")
	if p = b.get(e.issuer + "/account/callback?code=forged&state=forged"); p.status != http.StatusBadRequest {
		t.Fatalf("forged state: %d", p.status)
	}
	p = b.drive(b.get(e.issuer+"/account/security"), u.Email, signInOpts{})
	if !p.at("/account/security") {
		t.Fatalf("sign-in after a forged callback: %s", p.url)
	}
	// A return address outside the account pages is ignored.
	p = b.get(e.issuer + "/account/reconfirm?return=https://evil.example/")
	p = b.drive(p, u.Email, signInOpts{})
	if !p.at("/account/security") {
		t.Fatalf("reconfirm with a foreign return address ended at %s", p.url)
	}
	// A change posted without an account session is not applied.
	b3 := e.newBrowser()
	b3.get(e.issuer + "/")
	before := e.user(u.ID).PasswordHash
	p = b3.post(e.issuer+"/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
	if p.at("/account/security/password") || e.user(u.ID).PasswordHash != before {
		t.Fatalf("a change without an account session: %s", p.url)
	}
	// Garbage account cookie.
	jarURL, _ := url.Parse(e.issuer)
	b3.client.Jar.SetCookies(jarURL, []*http.Cookie{{Name: "lk_account", Value: "garbage"}})
	if p = b3.get(e.issuer + "/account/security"); !p.at("/login/identify") {
		t.Fatalf("garbage account cookie: %s (%d)", p.url, p.status)
	}
}

// TestTOTPThroughAccountPage: set up with codes computed from the key the
// page shows (±1 step accepted, ±2 refused), the confirming code cannot be
// replayed, the next sign-in asks the app (and "Get code by email" still
// works), update (the old seed works until the new one is confirmed, not
// after), turn off. Each change reconfirms, mails and audits.
func TestTOTPThroughAccountPage(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) { c.TOTP.Issuer = "Example Cloud" })
		u := e.createUser("totp@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		if p := b.account("/account/security", u.Email, signInOpts{}); !p.at("/account/security") {
			t.Fatalf("sign-in: %s", p.url)
		}

		// Set up: reconfirmation first, even right after signing in.
		p := b.reconfirmed("/account/security/totp", u.Email, signInOpts{})
		for _, want := range []string{`src="data:image/png;base64,`, `<label for="code">Code</label>`, `autocomplete="one-time-code"`,
			`inputmode="numeric"`, "Turn on", "Example Cloud (totp@example.com)"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("set-up page lacks %q", want)
			}
		}
		seed := totpSeed(t, p)
		if again := b.get(e.issuer + "/account/security/totp"); !slices.Equal(totpSeed(t, again), seed) {
			t.Fatal("a reload shows another seed")
		}
		setup := p
		for _, k := range []int64{2, -2} {
			p = b.submit(setup, "/account/security/totp", url.Values{"code": {e.totpAt(seed, k)}})
			if p.status != http.StatusUnprocessableEntity {
				t.Fatalf("code %+d steps: status %d", k, p.status)
			}
		}
		if _, on := e.activeTOTP(u.ID); on {
			t.Fatal("turned on by a wrong code")
		}
		confirm := e.totpAt(seed, 1) // +1 step of skew is accepted
		p = b.submit(setup, "/account/security/totp", url.Values{"code": {confirm}})
		if !p.at("/account/security") || !strings.Contains(p.body, "Your authenticator app is turned on.") || !strings.Contains(p.body, "Manage") {
			t.Fatalf("turn on: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Authenticator app turned on") {
			t.Errorf("notice mail subject = %q", s)
		}

		// The next sign-in asks the app. The confirming code (and anything
		// up to its step) is refused: a step is accepted once.
		b2 := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		p = b2.toCodePage(authURL, u.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, `name="method" value="totp"`) || !strings.Contains(p.body, "Get code by email") {
			t.Fatalf("expected the authenticator page:\n%s", p.body)
		}
		codePage := p
		for _, code := range []string{confirm, e.totpAt(seed, 0), e.totpAt(seed, -1)} {
			if p = b2.submit(codePage, "/login/code", url.Values{"code": {code}}); p.status != http.StatusUnauthorized {
				t.Fatalf("replayed or old code accepted: %d", p.status)
			}
		}
		e.clock.Advance(30 * time.Second)
		if p = b2.submit(codePage, "/login/code", url.Values{"code": {e.totpAt(seed, 1)}}); !p.at("/login/remember") {
			t.Fatalf("a fresh code: %s (%d)\n%s", p.url, p.status, p.body)
		}
		p = b2.submit(p, "/login/remember", url.Values{"choice": {"no"}})
		_, _, claims := app.exchange(p.code(t, state), verifier, nonce)
		if amr := toStrings(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Errorf("amr = %v", amr)
		}

		// "Get code by email" works while the app is primary (lost phone).
		b3 := e.newBrowser()
		authURL, _, state, _ = app.authorizeURL()
		p = b3.toCodePage(authURL, u.Email)
		p = b3.submit(p, "/login/code/send", nil)
		if !strings.Contains(p.body, `name="method" value="email"`) {
			t.Fatalf("after Get code by email:\n%s", p.body)
		}
		p = b3.drive(b3.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}}), u.Email, signInOpts{})
		p.code(t, state)

		// Update: a new seed; the old one works until the new one is
		// confirmed. The reconfirmation (5 minutes) still holds.
		p = b.get(e.issuer + "/account/security/totp/manage")
		if !strings.Contains(p.body, "Update") || !strings.Contains(p.body, "Turn off") {
			t.Fatalf("manage page:\n%s", p.body)
		}
		p = b.get(e.issuer + "/account/security/totp")
		if !p.at("/account/security/totp") || !strings.Contains(p.body, "Update authenticator app") {
			t.Fatalf("update page: %s\n%s", p.url, p.body)
		}
		seed2 := totpSeed(t, p)
		if slices.Equal(seed2, seed) {
			t.Fatal("update shows the old seed")
		}
		e.clock.Advance(30 * time.Second)
		oldWorks := e.newBrowser()
		oldWorks.signInRP(app, u.Email, signInOpts{totp: func() string { return e.totpAt(seed, 1) }})
		p = b.submit(p, "/account/security/totp", url.Values{"code": {e.totpAt(seed2, 0)}})
		if !strings.Contains(p.body, "Your authenticator app is updated") {
			t.Fatalf("update: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Authenticator app updated") {
			t.Errorf("notice mail subject = %q", s)
		}
		// The old seed is gone; the new one signs in.
		e.clock.Advance(30 * time.Second)
		b4 := e.newBrowser()
		authURL, _, _, _ = app.authorizeURL()
		p = b4.toCodePage(authURL, u.Email)
		if p = b4.submit(p, "/login/code", url.Values{"code": {e.totpAt(seed, 0)}}); p.status != http.StatusUnauthorized {
			t.Fatalf("old seed after the update: %d", p.status)
		}
		e.clock.Advance(time.Minute) // the wrong codes above count against this address: let the back-off pass
		if p = b4.submit(p, "/login/code", url.Values{"code": {e.totpAt(seed2, 0)}}); !p.at("/login/remember") {
			t.Fatalf("new seed: %s (%d)", p.url, p.status)
		}

		// Turn off: a confirmation page, then email codes again.
		p = b.get(e.issuer + "/account/security/totp/off")
		if !p.at("/account/security/totp/off") {
			t.Fatalf("turn-off page: %s", p.url)
		}
		p = b.submit(p, "/account/security/totp/off", nil)
		if !strings.Contains(p.body, "Your authenticator app is turned off") || !strings.Contains(p.body, "Set up") {
			t.Fatalf("turn off: %s\n%s", p.url, p.body)
		}
		if _, on := e.activeTOTP(u.ID); on {
			t.Fatal("still on")
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Authenticator app turned off") {
			t.Errorf("notice mail subject = %q", s)
		}
		b5 := e.newBrowser()
		b5.signInRP(app, u.Email, signInOpts{}) // email code: drive fails on an authenticator page

		evs := e.auditEvents(u.ID)
		for _, want := range []string{"account.reconfirmed", "totp.enabled", "totp.updated", "totp.disabled"} {
			if !slices.Contains(evs, want) {
				t.Errorf("audit lacks %s: %v", want, evs)
			}
		}
	})
}

// TestReconfirmationRequired: the plain sign-in to the account page does
// not count; a reconfirmation holds exactly 5 minutes; a change posted
// after that is refused, changes nothing, and offers "Confirm it's you",
// which comes back to the page.
func TestReconfirmationRequired(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("stale@example.com")
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})

		// Right after signing in, every change page asks again.
		for _, path := range []string{"/account/security/totp", "/account/security/backup-code", "/account/security/password"} {
			p := b.get(e.issuer + path)
			if !p.at("/login/password") || !strings.Contains(p.body, "To reconfirm your identity, enter your password.") ||
				strings.Contains(p.body, "this product asks you to sign in again") {
				t.Fatalf("%s right after sign-in: %s\n%s", path, p.url, p.body)
			}
		}

		// A reconfirmation asks the password and a fresh code, and holds
		// through 5 minutes.
		p := b.reconfirmed("/account/security/totp", u.Email, signInOpts{})
		seed := totpSeed(t, p)
		setup := p
		e.clock.Advance(5 * time.Minute)
		pw := b.get(e.issuer + "/account/security/password")
		if !pw.at("/account/security/password") {
			t.Fatalf("at 5 minutes the reconfirmation still holds: %s", pw.url)
		}

		// At 5 minutes and 1 second, nothing is applied.
		e.clock.Advance(time.Second)
		hash := e.user(u.ID).PasswordHash
		for _, c := range []struct {
			page   response
			action string
			form   url.Values
		}{
			{setup, "/account/security/totp", url.Values{"code": {e.totpAt(seed, 0)}}},
			{pw, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}}},
			{pw, "/account/security/backup-code", url.Values{"csrf": {pw.csrf(t)}}},
		} {
			var p response
			if c.action == "/account/security/backup-code" {
				p = b.post(e.issuer+c.action, c.form)
			} else {
				p = b.submit(c.page, c.action, c.form)
			}
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "Confirm it&#39;s you") {
				t.Fatalf("%s with a stale reconfirmation: %d\n%s", c.action, p.status, p.body)
			}
		}
		if _, on := e.activeTOTP(u.ID); on {
			t.Error("turned on with a stale reconfirmation")
		}
		if e.user(u.ID).PasswordHash != hash {
			t.Error("password changed with a stale reconfirmation")
		}
		if _, err := e.store.GetBackupCode(context.Background(), u.ID); err == nil {
			t.Error("backup code generated with a stale reconfirmation")
		}

		// "Confirm it's you" reconfirms and comes back.
		p = b.post(e.issuer+"/account/security/password", url.Values{"csrf": {pw.csrf(t)}, "password": {testPassword}, "new_password": {"a brand new password"}})
		link := regexp.MustCompile(`href="(/account/reconfirm\?return=[^"]+)"`).FindStringSubmatch(p.body)
		if link == nil {
			t.Fatalf("no Confirm it's you link:\n%s", p.body)
		}
		p = b.drive(b.get(e.issuer+html.UnescapeString(link[1])), u.Email, signInOpts{})
		if !p.at("/account/security/password") {
			t.Fatalf("after Confirm it's you: %s", p.url)
		}
		p = b.submit(p, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
		if !strings.Contains(p.body, "Your password is changed.") {
			t.Fatalf("change after reconfirming: %d\n%s", p.status, p.body)
		}
		if !slices.Contains(e.auditEvents(u.ID), "password.changed") {
			t.Error("no password.changed audit event")
		}
	})
}

// TestReconfirmationNeedsFreshFactor: a reconfirmation must come with the
// password and a fresh second factor; a trusted browser does not skip it.
func TestReconfirmationNeedsFreshFactor(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("trusted@example.com")
	b := e.newBrowser()
	b.account("/account/security", u.Email, signInOpts{remember: "trust"})
	p := b.get(e.issuer + "/account/security/totp")
	p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
	if !p.at("/login/code") || !strings.Contains(p.body, "To reconfirm your identity, enter a code.") {
		t.Fatalf("a trusted browser must still give a fresh code: %s\n%s", p.url, p.body)
	}
}

// TestBackupCodeLifecycle: the first sign-in shows a backup code; using
// it signs in and shows a new one; the used one is refused; "Generate" on
// the account page replaces it and needs "I saved my backup code".
func TestBackupCodeLifecycle(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("backup@example.com", func(u *storage.User) { u.NeedsBackupCode = true })
		app := e.newRP("app")

		// First sign-in: the first backup code.
		b := e.newBrowser()
		authURL, _, state, _ := app.authorizeURL()
		p := b.toCodePage(authURL, u.Email)
		p = b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
		p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
		if !p.at("/login/backup-code") {
			t.Fatalf("first sign-in: %s", p.url)
		}
		first := backupCodeOn(t, p)
		if q := b.submit(p, "/login/backup-code", nil); q.status != http.StatusUnprocessableEntity {
			t.Fatalf("closing without ticking: %d", q.status)
		}
		b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}}).code(t, state)
		if e.user(u.ID).NeedsBackupCode {
			t.Fatal("NeedsBackupCode still set")
		}

		// Using it signs in and shows a new one.
		useBackup := func(code string) response {
			b := e.newBrowser()
			authURL, _, _, _ := app.authorizeURL()
			p := b.toCodePage(authURL, u.Email)
			p = b.get(e.issuer + "/login/code?id=" + url.QueryEscape(p.url.Query().Get("id")) + "&method=backup")
			if !strings.Contains(p.body, `<label for="code">Backup code</label>`) {
				t.Fatalf("backup code page:\n%s", p.body)
			}
			return b.submit(p, "/login/code", url.Values{"code": {strings.ToLower(strings.ReplaceAll(code, "-", ""))}})
		}
		p = useBackup(first)
		if !p.at("/login/backup-code") || !strings.Contains(p.body, "You used your backup code") {
			t.Fatalf("after the backup code: %s\n%s", p.url, p.body)
		}
		second := backupCodeOn(t, p)
		if second == first {
			t.Fatal("the replacement is the used code")
		}
		// The used one is refused.
		if p = useBackup(first); p.status != http.StatusUnauthorized {
			t.Fatalf("used backup code: %d", p.status)
		}

		// Generate on the account page: reconfirm, replace, show once.
		e.clock.Advance(time.Minute)
		acct := e.newBrowser()
		p = acct.account("/account/security", u.Email, signInOpts{})
		if !strings.Contains(p.body, "Last generated on") {
			t.Errorf("security page lacks when the code was generated:\n%s", p.body)
		}
		p = acct.reconfirmed("/account/security/backup-code", u.Email, signInOpts{})
		p = acct.submit(p, "/account/security/backup-code", nil)
		if !p.at("/account/security/backup-code/show") {
			t.Fatalf("generate: %s (%d)\n%s", p.url, p.status, p.body)
		}
		third := backupCodeOn(t, p)
		for _, want := range []string{"Copy", "Download (.txt)", `href="data:text/plain;charset=utf-8,`, "I saved my backup code", "required"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("backup code page lacks %q", want)
			}
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Backup code generated") {
			t.Errorf("notice mail subject = %q", s)
		}
		show := p
		if p = acct.submit(show, "/account/security/backup-code/saved", nil); p.status != http.StatusUnprocessableEntity || backupCodeOn(t, p) != third {
			t.Fatalf("closing without ticking: %d", p.status)
		}
		if p = acct.submit(show, "/account/security/backup-code/saved", url.Values{"saved": {"yes"}}); !strings.Contains(p.body, "Your new backup code is saved") {
			t.Fatalf("saved: %s\n%s", p.url, p.body)
		}
		// Shown once: the page does not come back.
		if p = acct.get(e.issuer + "/account/security/backup-code/show"); !p.at("/account/security") {
			t.Fatalf("the code is shown again: %s", p.url)
		}
		e.clock.Advance(time.Minute)
		if p = useBackup(second); p.status != http.StatusUnauthorized {
			t.Fatalf("replaced backup code: %d", p.status)
		}
		if p = useBackup(third); !p.at("/login/backup-code") {
			t.Fatalf("new backup code: %s (%d)", p.url, p.status)
		}
		if !slices.Contains(e.auditEvents(u.ID), "backupcode.generated") {
			t.Error("no backupcode.generated audit event")
		}
	})
}

// TestPasswordChange: the current password, rules with specific messages;
// the change revokes the other sessions, their products' refresh tokens
// and every trusted device, but keeps this browser and its products.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("pw@example.com")
		app := e.newRP("app")
		ctx := context.Background()

		other := e.newBrowser()
		otherRT, _ := other.signInRP(app, u.Email, signInOpts{remember: "trust"})
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})
		p := b.reconfirmed("/account/security/password", u.Email, signInOpts{})
		for _, want := range []string{`autocomplete="current-password"`, `autocomplete="new-password"`, `<label for="new_password">New password</label>`, `<label for="password">Password</label>`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("password page lacks %q", want)
			}
		}
		// A product signed in through this browser after the reconfirmation.
		mineRT, _ := b.signInRP(app, u.Email, signInOpts{})

		form := p
		for _, c := range []struct {
			current, next, msg string
			status             int
		}{
			{"wrong password", "a brand new password", "Your current password is not right.", http.StatusUnauthorized},
			{testPassword, "short", "at least 8 characters", http.StatusUnprocessableEntity},
			{testPassword, "pässwö", "at least 8 characters", http.StatusUnprocessableEntity},
			{testPassword, "baseball", "too common", http.StatusUnprocessableEntity},
			{testPassword, "Pw@Example.com", "email address", http.StatusUnprocessableEntity},
			{testPassword, testPassword, "different from your current one", http.StatusUnprocessableEntity},
		} {
			p = b.submit(form, "/account/security/password", url.Values{"password": {c.current}, "new_password": {c.next}})
			if p.status != c.status || !strings.Contains(p.body, c.msg) {
				t.Fatalf("%q → %q: %d, want %d with %q\n%s", c.current, c.next, p.status, c.status, c.msg, p.body)
			}
		}
		p = b.submit(form, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
		if !strings.Contains(p.body, "Your password is changed. We signed you out everywhere else.") {
			t.Fatalf("change: %s\n%s", p.url, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Password changed") {
			t.Errorf("notice mail subject = %q", s)
		}
		// The other browser: signed out, its product's token dead, its trust gone.
		if got := other.promptNone(app); got != "login_required" {
			t.Errorf("other browser after the change: %q, want login_required", got)
		}
		if got := refreshErr(t, app, otherRT); got != "invalid_grant" {
			t.Errorf("other product's refresh token: %q", got)
		}
		if devs, _ := e.store.ListTrustedDevices(ctx, u.ID); len(devs) != 0 {
			t.Errorf("trusted devices left: %d", len(devs))
		}
		// This browser and its product stay.
		if p = b.get(e.issuer + "/account/security"); !p.at("/account/security") {
			t.Errorf("this browser was signed out: %s", p.url)
		}
		if got := refreshErr(t, app, mineRT); got != "" {
			t.Errorf("this browser's product lost its refresh token: %q", got)
		}
		// The new password signs in; the old one does not.
		nb := e.newBrowser()
		authURL, _, state, _ := app.authorizeURL()
		p = nb.get(authURL)
		p = nb.submit(p, "/login/identify", url.Values{"email": {u.Email}})
		if q := nb.submit(p, "/login/password", url.Values{"password": {testPassword}}); q.status != http.StatusUnauthorized {
			t.Errorf("old password: %d", q.status)
		}
		nb.drive(p, u.Email, signInOpts{password: "a brand new password"}).code(t, state)
	})
}

// TestDevicesPage: trusted browsers, sessions and products are listed;
// removing one takes effect at once; "Sign out everywhere else".
func TestDevicesPage(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		// Sessions survive the night, so that "last used yesterday" shows.
		e := newTestEnv(t, d, func(c *config.Config) { c.Policy.SessionIdle = config.Duration(72 * time.Hour) })
		u := e.createUser("devices@example.com")
		app := e.newRP("app")
		ctx := context.Background()

		trusted := e.newBrowser() // trusted browser with a product
		trusted.ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
		trustedRT, _ := trusted.signInRP(app, u.Email, signInOpts{remember: "trust"})
		other := e.newBrowser() // another session with a product
		other.ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
		otherRT, _ := other.signInRP(app, u.Email, signInOpts{})

		// The next day, one minute after midnight.
		now := e.clock.Now().UTC()
		e.clock.Advance(now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute).Sub(now))
		b := e.newBrowser()
		p := b.account("/account/devices", u.Email, signInOpts{})
		if !p.at("/account/devices") {
			t.Fatalf("devices page: %s", p.url)
		}
		devs, _ := e.store.ListTrustedDevices(ctx, u.ID)
		if len(devs) != 1 {
			t.Fatalf("trusted devices = %d", len(devs))
		}
		want := "Firefox on Windows, trusted until " + devs[0].ExpiresAt.UTC().Format("2 Jan")
		for _, w := range []string{want, "last used yesterday", "Safari on macOS", "(this browser)", "App app", "Sign out everywhere else"} {
			if !strings.Contains(p.body, w) && !strings.Contains(p.body, strings.Replace(w, "2 Jan", "2 Jan 2006", 1)) {
				t.Errorf("devices page lacks %q:\n%s", w, p.body)
			}
		}
		remove := func(kind, id string) response {
			p := b.get(e.issuer + "/account/devices")
			return b.post(e.issuer+"/account/devices/remove", url.Values{"csrf": {p.csrf(t)}, "kind": {kind}, "id": {id}})
		}

		// Remove the trusted browser: its next sign-in asks for the code.
		if p = remove("device", devs[0].ID); !strings.Contains(p.body, "The browser is no longer trusted") {
			t.Fatalf("remove device: %d\n%s", p.status, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Trusted browser removed") {
			t.Errorf("notice mail subject = %q", s)
		}
		authURL, _, _, _ := app.authorizeURL()
		p = trusted.get(authURL + "&prompt=login")
		p = trusted.submit(p, "/login/password", url.Values{"password": {testPassword}})
		if !p.at("/login/code") {
			t.Fatalf("a removed trusted browser must be asked for a code: %s", p.url)
		}

		// Remove the other session: its cookie no longer signs in, and its
		// product's refresh token is revoked.
		sessions, _ := e.store.ListSessions(ctx, u.ID)
		var otherSID string
		for _, s := range sessions {
			if strings.Contains(s.UserAgent, "Safari") {
				otherSID = s.ID
			}
		}
		if p = remove("session", otherSID); !strings.Contains(p.body, "The session is signed out.") {
			t.Fatalf("remove session: %d\n%s", p.status, p.body)
		}
		if got := other.promptNone(app); got != "login_required" {
			t.Errorf("removed session: prompt=none gives %q", got)
		}
		if got := refreshErr(t, app, otherRT); got != "invalid_grant" {
			t.Errorf("removed session's product: %q", got)
		}

		// Remove the product: its refresh token is dead at once.
		fams, _ := e.store.ListRefreshFamilies(ctx, u.ID)
		if len(fams) != 1 {
			t.Fatalf("refresh families = %d", len(fams))
		}
		if p = remove("product", fams[0].FamilyID); !strings.Contains(p.body, "access is removed") {
			t.Fatalf("remove product: %d\n%s", p.status, p.body)
		}
		if got := refreshErr(t, app, trustedRT); got != "invalid_grant" {
			t.Errorf("removed product: %q", got)
		}

		// Bad removals: a clear 400, nothing removed.
		for _, c := range [][2]string{{"session", "nope"}, {"device", "nope"}, {"product", "nope"}, {"gadget", "x"}, {"session", ""},
			{"session", strings.Repeat("x", 100)}} {
			if p = remove(c[0], c[1]); p.status != http.StatusBadRequest {
				t.Errorf("remove %v: %d", c, p.status)
			}
		}
		var mine string
		for _, s := range sessionsOf(t, e, u.ID) {
			if !strings.Contains(s.UserAgent, "Safari") && !strings.Contains(s.UserAgent, "Windows") {
				mine = s.ID
			}
		}
		if p = remove("session", mine); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Sign out") {
			t.Errorf("removing this browser's session: %d", p.status)
		}
		p = b.get(e.issuer + "/account/devices")
		if q := b.post(e.issuer+"/account/devices/remove", url.Values{"kind": {"session"}, "id": {mine}}); q.status != http.StatusForbidden {
			t.Errorf("no CSRF token: %d", q.status)
		}

		// Sign out everywhere else: other sessions, other browsers' trust
		// and other products go; this browser stays.
		third := e.newBrowser()
		thirdRT, _ := third.signInRP(app, u.Email, signInOpts{remember: "trust"})
		p = b.get(e.issuer + "/account/devices")
		p = b.submit(p, "/account/devices/signout-others", nil)
		if !strings.Contains(p.body, "You are signed out everywhere else.") {
			t.Fatalf("sign out everywhere else: %d\n%s", p.status, p.body)
		}
		if got := third.promptNone(app); got != "login_required" {
			t.Errorf("third browser: %q", got)
		}
		if got := refreshErr(t, app, thirdRT); got != "invalid_grant" {
			t.Errorf("third browser's product: %q", got)
		}
		if devs, _ := e.store.ListTrustedDevices(ctx, u.ID); len(devs) != 0 {
			t.Errorf("trusted devices left: %d", len(devs))
		}
		if ss := sessionsOf(t, e, u.ID); len(ss) != 1 || ss[0].ID != mine {
			t.Errorf("sessions left: %d", len(ss))
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Signed out of other sessions") {
			t.Errorf("notice mail subject = %q", s)
		}
		evs := e.auditEvents(u.ID)
		for _, w := range []string{"device.removed", "session.removed", "grant.removed", "sessions.revoked"} {
			if !slices.Contains(evs, w) {
				t.Errorf("audit lacks %s", w)
			}
		}
	})
}

func sessionsOf(t *testing.T, e *testEnv, userID string) []storage.Session {
	t.Helper()
	ss, err := e.store.ListSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestSSOUserSecurityPage: an organisation's user sees no 2-step or
// password settings, and cannot reach them.
func TestSSOUserSecurityPage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("sso@corp.example")
	b := e.newBrowser()
	b.account("/account/security", u.Email, signInOpts{})
	if _, err := e.store.UpdateUser(context.Background(), u.ID, func(x *storage.User) error { x.OrgID = "org1"; return nil }); err != nil {
		t.Fatal(err)
	}
	p := b.get(e.issuer + "/account/security")
	if !strings.Contains(p.body, "Your organisation confirms your identity.") || strings.Contains(p.body, "Set up") || strings.Contains(p.body, "Generate") {
		t.Fatalf("SSO security page:\n%s", p.body)
	}
	for _, path := range []string{"/account/security/totp", "/account/security/password", "/account/security/backup-code"} {
		if p = b.get(e.issuer + path); p.status != http.StatusForbidden {
			t.Errorf("%s: %d", path, p.status)
		}
	}
	if p = b.get(e.issuer + "/account/privacy"); !p.at("/account/privacy") {
		t.Errorf("privacy page for an SSO user: %s", p.url)
	}
}

// TestNoticeMailWhileServerDown: with the mail server down a change
// stands at once (the page waits for no mail server) and its notice
// waits in the outbox, retried, until the server is back: then it goes
// out, once (giving up after a day is login/mail/outbox's test).
func TestNoticeMailWhileServerDown(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("nomail@example.com")
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})
		p := b.reconfirmed("/account/security/backup-code", u.Email, signInOpts{})
		addr := e.sink.Addr()
		e.sink.Close() // the mail server is down from here on
		p = b.submit(p, "/account/security/backup-code", nil)
		if !p.at("/account/security/backup-code/show") {
			t.Fatalf("generate with the mail server down: %s (%d)\n%s", p.url, p.status, p.body)
		}
		backupCodeOn(t, p)
		if _, err := e.store.GetBackupCode(context.Background(), u.ID); err != nil {
			t.Fatalf("the change did not stand: %v", err)
		}
		for range 3 {
			e.deliver()
			e.clock.Advance(6 * time.Minute) // past any back-off
		}
		waiting, err := e.store.ListOutbox(context.Background(), storage.OutboxFilter{States: []string{storage.OutboxPending}})
		if err != nil || len(waiting) != 1 || waiting[0].Kind != "notice" || waiting[0].Attempts < 3 || waiting[0].LastError == "" {
			t.Fatalf("the notice is not waiting for the server: %+v %v", waiting, err)
		}
		back, err := mailsink.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		e.deliver()
		if m, ok := back.Last(u.Email); !ok || !strings.Contains(m.Subject, "Backup code generated") {
			t.Fatalf("the notice did not go out when the server came back: %+v", m)
		}
		e.deliver()
		if n := back.Count(u.Email); n != 1 {
			t.Fatalf("%d notices, want 1", n)
		}

	})
}

// TestDemoRelyingParty: serve --demo's /demo still signs in through the
// shared self-RP code (code + PKCE, ID token verified, userinfo).
func TestDemoRelyingParty(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("demo-user@example.com")
	// A second server on the same database, with --demo.
	hs := httptest.NewUnstartedServer(nil)
	cfg := *e.app.cfg
	cfg.Issuer = "http://" + hs.Listener.Addr().String()
	a := &app{cfg: &cfg, log: e.app.log, store: e.store, kr: e.kr, demo: true, closer: func() {}}
	srv, err := newServer(context.Background(), a, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.handler
	hs.Start()
	t.Cleanup(hs.Close)

	demo := &testEnv{t: t, app: a, srv: srv, http: hs, issuer: cfg.Issuer, clock: e.clock, sink: e.sink, store: e.store, kr: e.kr}
	b := demo.newBrowser()
	p := b.drive(b.get(cfg.Issuer+"/demo"), u.Email, signInOpts{})
	if !p.at("/demo/callback") || !strings.Contains(p.body, "You are signed in") || !strings.Contains(p.body, u.ID) ||
		!strings.Contains(p.body, "&#34;privacy&#34;") {
		t.Fatalf("demo: %s (%d)\n%s", p.url, p.status, p.body)
	}
	// A replayed callback is refused (the state cookie is single use).
	if q := b.get(p.url.String()); q.status != http.StatusBadRequest {
		t.Fatalf("replayed demo callback: %d", q.status)
	}
}

// TestSecurityFormsBadInput: forged, garbage and stale posts to the
// security page change nothing and never get a 500.
func TestSecurityFormsBadInput(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("forms@example.com")
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})
		p := b.reconfirmed("/account/security/totp", u.Email, signInOpts{})
		seed := totpSeed(t, p)
		setup := p
		csrf := p.csrf(t)
		post := func(path string, form url.Values) response {
			return b.post(e.issuer+path, form)
		}
		for _, c := range []struct {
			path   string
			form   url.Values
			status int
		}{
			{"/account/security/totp", url.Values{"code": {e.totpAt(seed, 0)}}, http.StatusForbidden},                                       // no CSRF
			{"/account/security/totp", url.Values{"csrf": {"00"}, "code": {e.totpAt(seed, 0)}}, http.StatusForbidden},                       // bad CSRF
			{"/account/security/totp", url.Values{"csrf": {csrf}, "totp_id": {"nope"}, "code": {e.totpAt(seed, 0)}}, http.StatusBadRequest}, // unknown seed
			{"/account/security/totp", url.Values{"csrf": {csrf}, "totp_id": {strings.Repeat("x", 5000)}}, http.StatusBadRequest},           // oversized
			{"/account/security/totp/off", url.Values{"csrf": {csrf}}, http.StatusSeeOther},                                                 // nothing to turn off
			{"/account/security/password", url.Values{"csrf": {csrf}, "password": {strings.Repeat("p", 5000)}}, http.StatusSeeOther},        // oversized: refused, back to the page (redirect after POST)
			{"/account/security/backup-code/saved", url.Values{"csrf": {csrf}, "saved": {"yes"}}, http.StatusSeeOther},                      // nothing shown
			{"/account/security/backup-code", url.Values{}, http.StatusForbidden},                                                           // no CSRF
		} {
			b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			q := post(c.path, c.form)
			b.client.CheckRedirect = e.newBrowser().client.CheckRedirect
			if q.status != c.status {
				t.Errorf("POST %s %v: %d, want %d", c.path, c.form, q.status, c.status)
			}
		}
		for _, code := range []string{"", "abcdef", "1234567", strings.Repeat("1", 200)} {
			if q := b.submit(setup, "/account/security/totp", url.Values{"code": {code}}); q.status != http.StatusUnprocessableEntity {
				t.Errorf("code %.10q: %d", code, q.status)
			}
		}
		if _, on := e.activeTOTP(u.ID); on {
			t.Fatal("turned on by bad input")
		}
		// Turn on, then let the reconfirmation go stale: turning off is refused.
		e.clock.Advance(time.Minute) // the wrong codes' back-off
		if q := b.submit(setup, "/account/security/totp", url.Values{"code": {e.totpAt(seed, 0)}}); !strings.Contains(q.body, "turned on") {
			t.Fatalf("turn on: %d\n%s", q.status, q.body)
		}
		e.clock.Advance(5*time.Minute + time.Second)
		if q := post("/account/security/totp/off", url.Values{"csrf": {csrf}}); q.status != http.StatusForbidden {
			t.Errorf("stale turn off: %d", q.status)
		}
		if _, on := e.activeTOTP(u.ID); !on {
			t.Fatal("turned off with a stale reconfirmation")
		}
	})
}

// TestHandleRotatesAtPrivilegeChanges (issue 10): a reconfirmation, a
// password change and a 2-step change each give the browser a new handle.
// What the old handle held dies with it: the forms (their CSRF token) of
// pages shown before the change are refused, and the old handle cookie,
// put back next to the browser's current cookies, no longer opens the
// account session (which now belongs to the new handle).
func TestHandleRotatesAtPrivilegeChanges(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("rotate@example.com")
		b := e.newBrowser()
		handle := func() string { _, v := b.browserCookie(); return v }
		b.account("/account/security", u.Email, signInOpts{})

		// formExpired: a form of a page shown under an earlier handle.
		formExpired := func(t *testing.T, what, csrf string) {
			t.Helper()
			p := b.post(e.issuer+"/account/privacy", url.Values{"csrf": {csrf}, "product_improvement": {"on"}})
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "The form has expired") {
				t.Errorf("%s: a form of the old handle: %d %s", what, p.status, p.url)
			}
		}
		// oldHandleLocked: this browser's cookies with the old handle put
		// back do not open the account page path.
		oldHandleLocked := func(t *testing.T, what, old, path string) {
			t.Helper()
			name, cur := b.browserCookie()
			if old == "" || old == cur {
				t.Errorf("%s did not rotate the browser handle", what)
				return
			}
			jar, _ := cookiejar.New(nil)
			iu, _ := url.Parse(e.issuer)
			jar.SetCookies(iu, b.client.Jar.Cookies(iu))
			jar.SetCookies(iu, []*http.Cookie{{Name: name, Value: old, Path: "/"}})
			c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(e.issuer + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s: the old handle still opens %s", what, path)
			}
			// The browser itself, with its new handle, still does.
			if p := b.get(e.issuer + path); !p.at(path) {
				t.Errorf("%s: the browser lost %s: %s", what, path, p.url)
			}
		}

		// The reconfirmation: the handle the sign-in left is replaced when
		// the account pages take the answer (/account/callback).
		before := b.get(e.issuer + "/account/privacy").csrf(t)
		orig := b.client.CheckRedirect
		var atCallback string
		b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/account/callback" {
				atCallback = handle()
			}
			return orig(req, via)
		}
		pw := b.reconfirmed("/account/security/password", u.Email, signInOpts{})
		b.client.CheckRedirect = orig
		formExpired(t, "reconfirmation", before)
		oldHandleLocked(t, "the reconfirmation", atCallback, "/account/security/password")

		// A password change.
		h := handle()
		p := b.submit(pw, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
		if !strings.Contains(p.body, "Your password is changed.") {
			t.Fatalf("password change: %d\n%s", p.status, p.body)
		}
		formExpired(t, "password change", pw.csrf(t))
		oldHandleLocked(t, "the password change", h, "/account/security")

		// A 2-step change (the authenticator app turned on).
		setup := b.get(e.issuer + "/account/security/totp")
		if !setup.at("/account/security/totp") {
			t.Fatalf("totp set-up: %s", setup.url)
		}
		h = handle()
		p = b.submit(setup, "/account/security/totp", url.Values{"code": {e.totpAt(totpSeed(t, setup), 0)}})
		if !strings.Contains(p.body, "Your authenticator app is turned on.") {
			t.Fatalf("totp: %d\n%s", p.status, p.body)
		}
		formExpired(t, "2-step change", setup.csrf(t))
		oldHandleLocked(t, "the 2-step change", h, "/account/security")
	})
}
