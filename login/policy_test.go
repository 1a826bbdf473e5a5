package login

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestTrustedDevice: "Trust this device" skips the email code on this
// browser for 30 days, not one second more; "Don't trust" asks every time;
// another browser asks; signing out keeps the trust (password only).
func TestTrustedDevice(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("trust@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, state := app.authorizeURL()
		b.signIn(authURL, u.Email, signInOpts{remember: "trust"}).code(t, state)

		// Signed out: the next sign-in asks the password only.
		b.signOut()
		e.clock.Advance(30*day - 2*time.Second)
		authURL, state = app.authorizeURL()
		p := b.identifyAndPassword(b.get(authURL), u.Email)
		if p.location == "" {
			t.Fatalf("trusted browser was asked for more than the password: %s", p.url)
		}
		if claims := app.claims(p.code(t, state)); claims["acr"] != flow.ACRMFA || amrOf(claims) != "pwd" {
			t.Fatalf("trusted sign-in acr/amr = %v %v", claims["acr"], claims["amr"])
		}
		// 30 d + 1 s after the code: trust over.
		b.signOut()
		e.clock.Advance(3 * time.Second)
		p = b.identifyAndPassword(b.start(app), u.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, "trust (30 days) has ended") {
			t.Fatalf("after 30 d the code must be asked (and why): %s\n%s", p.url, p.body)
		}

		// Another browser asks; "Don't trust" asks every time.
		b2 := e.newBrowser()
		authURL, state = app.authorizeURL()
		b2.signIn(authURL, u.Email, signInOpts{remember: "no"}).code(t, state)
		b2.signOut()
		p = b2.identifyAndPassword(b2.start(app), u.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, "this browser is not trusted") {
			t.Fatalf("untrusted browser: %s\n%s", p.url, p.body)
		}
		b3 := e.newBrowser()
		p = b3.identifyAndPassword(b3.start(app), u.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, "this browser is new") {
			t.Fatalf("new browser: %s", p.url)
		}
	})
}

// TestIdleAndStaySignedIn: a browser session ends after 24 h of
// inactivity (exactly 24 h still works); "Stay signed in" (after an
// authenticator code) survives 24 h but not 30 d.
func TestIdleAndStaySignedIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("idle@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, state := app.authorizeURL()
		b.signIn(authURL, u.Email, signInOpts{}).code(t, state)
		silent := oauth2.SetAuthURLParam("prompt", "none")

		e.clock.Advance(24 * time.Hour)
		if p := b.start(app, silent); p.rpError() != "" || p.location == "" {
			t.Fatalf("idle exactly 24h: %q", p.rpError())
		}
		e.clock.Advance(24*time.Hour + time.Second) // the silent sign-in above touched the session
		if got := b.start(app, silent).rpError(); got != "login_required" {
			t.Fatalf("idle 24h+1s: %q, want login_required", got)
		}

		// Stay signed in, after an authenticator code.
		v := e.createUser("stay@example.com")
		seed := e.enrolTOTP(v)
		b2 := e.newBrowser()
		p := b2.identifyAndPassword(b2.start(app), v.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, "authenticator app") {
			t.Fatalf("TOTP user: %s", p.url)
		}
		p = b2.submit(p, "/login/code", url.Values{"code": {totpNow(e, seed)}})
		if !p.at("/login/remember") || !strings.Contains(p.body, "Stay signed in for 30 days") {
			t.Fatalf("stay signed in not offered: %s\n%s", p.url, p.body)
		}
		p = b2.submit(p, "/login/remember", url.Values{"choice": {"stay"}})
		if p.location == "" {
			t.Fatalf("sign-in did not finish: %s", p.url)
		}
		e.clock.Advance(2 * day)
		if p := b2.start(app, silent); p.rpError() != "" {
			t.Fatalf("stay signed in, 2 days idle: %q", p.rpError())
		}
		e.clock.Advance(30*day + time.Second)
		if got := b2.start(app, silent).rpError(); got != "login_required" {
			t.Fatalf("stay signed in, 30d+1s idle: %q", got)
		}
	})
}

// TestReverify: a second factor at least every 30 days, whatever else
// holds — even on a browser trusted longer (trusted_device: 90d).
func TestReverify(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t), func(c *Config) { c.Policy.TrustedDevice = 90 * day })
	u := e.createUser("reverify@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, state := app.authorizeURL()
	b.signIn(authURL, u.Email, signInOpts{remember: "trust"}).code(t, state)
	b.signOut()
	e.clock.Advance(30 * day)
	if p := b.identifyAndPassword(b.start(app), u.Email); p.location == "" {
		t.Fatalf("within 30 d the trusted browser needs no code: %s", p.url)
	}
	b.signOut()
	e.clock.Advance(time.Second)
	p := b.identifyAndPassword(b.start(app), u.Email)
	if !p.at("/login/code") || !strings.Contains(p.body, "it has been 30 days since your last code") {
		t.Fatalf("after 30 d + 1 s the code is due: %s\n%s", p.url, p.body)
	}
}

// TestStepUpAndPrompt: acr_values step up, prompt=none never shows a page,
// prompt=login and max_age force the password, two products share the
// browser session, login_hint skips the identifier page.
func TestStepUpAndPrompt(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("stepup@example.com")
		app := e.newRP("app")
		other := e.newRP("other")
		b := e.newBrowser()

		if got := b.start(app, oauth2.SetAuthURLParam("prompt", "none")).rpError(); got != "login_required" {
			t.Fatalf("prompt=none without a session: %q", got)
		}
		// login_hint: straight to the password page.
		if p := b.start(app, oauth2.SetAuthURLParam("login_hint", u.Email)); !p.at("/login/password") || !strings.Contains(p.body, u.Email) {
			t.Fatalf("login_hint: %s", p.url)
		}
		authURL, state := app.authorizeURL()
		b.signIn(authURL, u.Email, signInOpts{}).code(t, state)

		// Another product on the same browser: no page at all, acr mfa.
		authURL, state = other.authorizeURL()
		p := b.get(authURL)
		claims := other.claims(p.code(t, state))
		if claims["acr"] != flow.ACRMFA {
			t.Fatalf("shared session acr = %v", claims["acr"])
		}

		// Step up: mfa:fresh asks the code now (not the password).
		fresh := oauth2.SetAuthURLParam("acr_values", flow.ACRMFAFresh)
		if got := b.start(app, fresh, oauth2.SetAuthURLParam("prompt", "none")).rpError(); got != "interaction_required" {
			t.Fatalf("step-up with prompt=none: %q", got)
		}
		authURL, state = app.authorizeURL(fresh)
		p = b.get(authURL)
		if !p.at("/login/code") || !strings.Contains(p.body, "this product asks for a fresh code") {
			t.Fatalf("step-up: %s\n%s", p.url, p.body)
		}
		p = b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
		p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
		claims = app.claims(p.code(t, state))
		if claims["acr"] != flow.ACRMFAFresh {
			t.Fatalf("after step-up acr = %v", claims["acr"])
		}
		// An sso-only request cannot be met by a local user.
		if got := b.start(app, oauth2.SetAuthURLParam("acr_values", flow.ACRSSO)).rpError(); got != "access_denied" {
			t.Fatalf("acr sso for a local user: %q", got)
		}

		// prompt=login and max_age=0 ask the password again.
		for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
			if p := b.start(app, opt); !p.at("/login/password") {
				t.Fatalf("forced re-authentication: %s %d %s", p.url, p.status, p.body)
			}
		}
		e.clock.Advance(time.Minute)
		if p := b.start(app, oauth2.SetAuthURLParam("max_age", "3600")); p.location == "" {
			t.Fatalf("max_age not exceeded: %s", p.url)
		}
	})
}

// TestRegionalRollout: before the user's region date, a user without an
// authenticator signs in with the password alone (acr pwd); from the date
// on, the email code is required.
func TestRegionalRollout(t *testing.T) {
	t.Parallel()
	// The EU date is the second midnight from the test clock's start.
	day1 := time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC)
	e := newTestEnv(t, sqlite(t), func(c *Config) {
		c.Policy.RolloutRegions = map[string]time.Time{"EU": day1}
	})
	u := e.createUser("eu@example.com", func(x *storage.User) { x.Region = "EU" })
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, state := app.authorizeURL()
	p := b.identifyAndPassword(b.get(authURL), u.Email)
	claims := app.claims(p.code(t, state))
	if claims["acr"] != flow.ACRPwd || amrOf(claims) != "pwd" {
		t.Fatalf("before the rollout: acr %v amr %v", claims["acr"], claims["amr"])
	}
	e.clock.Advance(day1.Sub(e.clock.Now()))
	p = b.identifyAndPassword(b.start(app, oauth2.SetAuthURLParam("prompt", "login")), u.Email)
	if !p.at("/login/code") {
		t.Fatalf("on the rollout date: %s", p.url)
	}
}
