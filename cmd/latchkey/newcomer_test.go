package main

// Issue 14 §3: the pages as a newcomer finds them — entry points that
// work when linked to, and no page without a way onward.

import (
	"context"
	"encoding/base32"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// follow opens the link on p whose text is text (failing the test when
// there is none): what a person does who clicks it.
func (b *browser) follow(p response, text string) response {
	b.e.t.Helper()
	re := regexp.MustCompile(`<a [^>]*href="([^"]+)"[^>]*>` + regexp.QuoteMeta(html.EscapeString(text)) + `</a>`)
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		b.e.t.Fatalf("no link %q on %s (%d):\n%s", text, p.url, p.status, p.body)
	}
	ref, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.get(ref.String())
}

// demoEnv is a second server of e's database with serve --demo.
func demoEnv(t *testing.T, e *testEnv) *testEnv {
	t.Helper()
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
	return &testEnv{t: t, app: a, srv: srv, http: hs, issuer: cfg.Issuer, clock: e.clock, sink: e.sink, store: e.store, kr: e.kr}
}

// TestNoDeadEnds: the demo page says when one signed in; the pages that
// end something offer a way onward — the
// demo's "Signed out" page links to where one signs in again, and
// /logout/done to the account pages, which sign in.
func TestNoDeadEnds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("newcomer@example.com")

	demo := demoEnv(t, e)
	b := demo.newBrowser()
	p := b.drive(b.get(demo.issuer+"/demo"), u.Email, signInOpts{})
	if !p.at("/demo/callback") {
		t.Fatalf("demo sign-in: %s (%d)", p.url, p.status)
	}
	// The demo says auth_time as a date as well as the number.
	at := e.clock.Now().UTC()
	if want := fmt.Sprintf("You signed in on %d %s %d, %02d:%02d UTC (auth_time %d).", at.Day(), at.Format("Jan"), at.Year(),
		at.Hour(), at.Minute(), at.Unix()); !strings.Contains(p.body, want) {
		t.Errorf("demo page lacks %q:\n%s", want, p.body)
	}
	p = b.follow(p, "Sign out")
	if !p.at("/demo") || !strings.Contains(p.body, "Signed out") || strings.Contains(p.body, "Open /demo") {
		t.Fatalf("demo sign-out: %s (%d)\n%s", p.url, p.status, p.body)
	}
	if p = b.follow(p, "Sign in to the demo again"); !p.at("/login/identify") {
		t.Fatalf("the signed-out page's link: %s (%d)", p.url, p.status)
	}
	if p = b.drive(p, u.Email, signInOpts{}); !p.at("/demo/callback") {
		t.Fatalf("signing in again from the signed-out page: %s (%d)", p.url, p.status)
	}

	// (The demo server re-registered the account client for its issuer.)
	e = newTestEnv(t, storagetest.Dialects(t)[0])
	u = e.createUser("newcomer@example.com")
	b = e.newBrowser()
	p = b.account("/account/security", u.Email, signInOpts{})
	if p = b.submit(p, "/logout", nil); !p.at("/logout/done") {
		t.Fatalf("sign out ended at %s", p.url)
	}
	if p = b.follow(p, "Sign in to your account"); !p.at("/login/identify") {
		t.Fatalf("/logout/done's link: %s (%d)", p.url, p.status)
	}
	if p = b.drive(p, u.Email, signInOpts{}); !p.at("/account/security") {
		t.Fatalf("signing in again from /logout/done: %s (%d)", p.url, p.status)
	}
}

// TestTOTPSetUpOnThisPhone: the set-up page offers the otpauth:// link
// (a phone cannot scan its own screen) holding the key it shows, and the
// key for manual entry comes in groups that never break inside: each an
// unbreakable box, and nothing in the style sheet breaks words apart (a
// 320 px screen wraps between groups only).
func TestTOTPSetUpOnThisPhone(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("phone@example.com")
	b := e.newBrowser()
	b.account("/account/security", u.Email, signInOpts{})
	p := b.reconfirmed("/account/security/totp", u.Email, signInOpts{})

	m := regexp.MustCompile(`<a [^>]*href="(otpauth://[^"]+)"[^>]*>On this phone\? Open it in your authenticator app</a>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no otpauth:// link on the set-up page:\n%s", p.body)
	}
	link, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || link.Scheme != "otpauth" || link.Host != "totp" {
		t.Fatalf("link %q: %v", m[1], err)
	}
	seed := totpSeed(t, p)
	if got := link.Query().Get("secret"); got != base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed) {
		t.Errorf("the link's secret %q is not the key shown", got)
	}

	key := regexp.MustCompile(`<code id="totp-key">(.*?)</code>`).FindStringSubmatch(p.body)[1]
	groups := regexp.MustCompile(`<span class="group">([A-Z2-7]{1,4})</span>`).FindAllStringSubmatch(key, -1)
	if len(groups) < 8 || strings.Count(key, "<span") != len(groups) {
		t.Errorf("key not in groups of four: %s", key)
	}
	css := b.get(e.issuer + "/static/style.css").body
	if !regexp.MustCompile(`\.key \.group \{[^}]*white-space: nowrap`).MatchString(css) ||
		!regexp.MustCompile(`\.key \.group \{[^}]*display: inline-block`).MatchString(css) {
		t.Error("the key's groups may break: no inline-block, nowrap rule for .key .group")
	}
	if strings.Contains(css, "break-all") || strings.Contains(css, "break-word") || strings.Contains(css, "anywhere") {
		t.Error("the style sheet breaks words apart")
	}
}

// TestSecurityPageStructure: the security page follows the seeds: a
// "Sign-in confirmation" section listing Email OTP (the default),
// Authenticator app ("Set up", then "Manage") and Backup code ("Generate",
// and when it was last generated); the passkeys keep their own section.
func TestSecurityPageStructure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("seeds@example.com")
	b := e.newBrowser()
	p := b.account("/account/security", u.Email, signInOpts{})

	section := func(p response) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<section id="sign-in-confirmation">(.*?)</section>`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no sign-in confirmation section:\n%s", p.body)
		}
		return m[1]
	}
	s := section(p)
	heads := regexp.MustCompile(`<h[23]>([^<]+)</h[23]>`).FindAllStringSubmatch(s, -1)
	var got []string
	for _, h := range heads {
		got = append(got, h[1])
	}
	if strings.Join(got, " | ") != "Sign-in confirmation | Email OTP | Authenticator app | Backup code" {
		t.Errorf("section headings: %q", got)
	}
	for _, want := range []string{"<strong>Default.</strong> We send the code to <strong>" + u.Email + "</strong>.",
		`<a class="button" href="/account/security/totp">Set up</a>`,
		`<a class="button" href="/account/security/backup-code">Generate</a>`, "Last generated never."} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Passkeys") { // (this issuer, an IP address, cannot have passkeys: TestPasskeys…)
		t.Errorf("the passkeys are not a section of their own:\n%s", p.body)
	}

	// A backup code generated: when, in the section.
	p = b.reconfirmed("/account/security/backup-code", u.Email, signInOpts{})
	p = b.submit(p, "/account/security/backup-code", nil)
	p = b.submit(p, "/account/security/backup-code/saved", url.Values{"saved": {"yes"}})
	if s = section(p); !strings.Contains(s, "Last generated on "+fmt.Sprint(e.clock.Now().UTC().Day())) {
		t.Errorf("no last generated date:\n%s", s)
	}
	// An authenticator app: "Manage"; email codes stay the fallback.
	e.enrolTOTP(u)
	s = section(b.get(e.issuer + "/account/security"))
	if !strings.Contains(s, `href="/account/security/totp/manage">Manage</a>`) || !strings.Contains(s, "Get code by email") ||
		strings.Contains(s, "Default.") {
		t.Errorf("with an authenticator app:\n%s", s)
	}
}

// TestSignupAndForgotAsEntryPoints: /signup and /forgot opened directly —
// a link in a mail or on a web site, no sign-in in progress — work, and
// end on the account pages, signed in.
func TestSignupAndForgotAsEntryPoints(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)

		b := e.newBrowser()
		p := b.get(e.issuer + "/signup")
		if !p.at("/signup") || !strings.Contains(p.body, `<label for="name">Name</label>`) {
			t.Fatalf("/signup opened directly: %s (%d)\n%s", p.url, p.status, p.body)
		}
		p = b.submit(p, "/signup", url.Values{"email": {"ada@example.com"}, "name": {"Ada"}, "password": {"a long enough password"}})
		if !p.at("/signup/code") {
			t.Fatalf("after the sign-up form: %s (%d)\n%s", p.url, p.status, p.body)
		}
		p = b.submit(p, "/signup/code", url.Values{"code": {e.mailCode("ada@example.com")}})
		if p = b.drive(p, "ada@example.com", signInOpts{}); !p.at("/account/security") || !strings.Contains(p.body, "ada@example.com") {
			t.Fatalf("sign-up from /signup ended at %s (%d)\n%s", p.url, p.status, p.body)
		}

		u := e.createUser("forgetful@example.com")
		b = e.newBrowser()
		p = b.get(e.issuer + "/forgot")
		if !p.at("/forgot") || !strings.Contains(p.body, "Enter the email address of your account") {
			t.Fatalf("/forgot opened directly: %s (%d)\n%s", p.url, p.status, p.body)
		}
		p = b.submit(p, "/forgot", url.Values{"email": {u.Email}})
		p = b.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(u.Email)}})
		p = b.submit(p, "/forgot/password", url.Values{"new_password": {"a brand new password"}})
		if p = b.follow(p, "Continue to sign in"); !p.at("/login/password") && !p.at("/login/identify") {
			t.Fatalf("after the reset: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if p = b.drive(p, u.Email, signInOpts{password: "a brand new password"}); !p.at("/account/security") {
			t.Fatalf("reset from /forgot ended at %s (%d)\n%s", p.url, p.status, p.body)
		}

		// The way in is used once: the next sign-in of the account pages
		// in the first browser, after signing out, asks who you are.
		b.signOut()
		if p = b.get(e.issuer + "/account/security"); !p.at("/login/identify") {
			t.Fatalf("a later account sign-in: %s", p.url)
		}
	})
}

// TestPlantedEntryCookieChangesNothing: the entry cookie is a plain
// value, so a browser may hold any: one naming sign-up on a product's
// sign-in, or garbage on the account pages' own, still asks who you are —
// the cookie only ever picks a public page for the account pages'
// sign-in.
func TestPlantedEntryCookieChangesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	issuer, err := url.Parse(e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	plant := func(b *browser, v string) {
		b.client.Jar.SetCookies(issuer, []*http.Cookie{{Name: "lk_entry", Value: v, Path: "/"}})
	}
	rp := e.newRP("planted-entry")
	for _, v := range []string{"signup", "forgot"} {
		b := e.newBrowser()
		plant(b, v)
		authURL, _, _, _ := rp.authorizeURL()
		if p := b.get(authURL); !p.at("/login/identify") {
			t.Errorf("a product's sign-in with lk_entry=%s went to %s (%d)", v, p.url, p.status)
		}
	}
	for _, v := range []string{"admin", "../forgot", "SIGNUP", "signup2", strings.Repeat("x", 2000)} {
		b := e.newBrowser()
		plant(b, v)
		if p := b.get(e.issuer + "/account/security"); !p.at("/login/identify") || p.status != http.StatusOK {
			t.Errorf("the account sign-in with lk_entry=%q: %s (%d)", v, p.url, p.status)
		}
	}
}

// TestAccountRedirectAfterPost: a change on the account pages that fails
// (a wrong current password, a wrong authenticator code) answers 303 to
// the page's GET, which shows the error once; a reload shows it plain.
func TestAccountRedirectAfterPost(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("reload-account@example.com")
	b := e.newBrowser()
	b.account("/account/security", u.Email, signInOpts{})
	noFollow := *b.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, c := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/account/security/password", url.Values{"password": {"not my password"}, "new_password": {"a brand new password"}}, "Your current password is not right."},
		{"/account/security/totp", url.Values{"code": {"000000"}}, "That code is not right."},
	} {
		p := b.reconfirmed(c.path, u.Email, signInOpts{})
		form := url.Values{"csrf": {p.csrf(t)}}
		for _, m := range regexp.MustCompile(`<input type="hidden" name="(totp_id)" value="([^"]*)">`).FindAllStringSubmatch(p.body, -1) {
			form.Set(m[1], m[2])
		}
		for k, v := range c.form {
			form[k] = v
		}
		req, _ := http.NewRequest(http.MethodPost, e.issuer+c.path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", b.ua)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != c.path {
			t.Fatalf("POST %s: %d → %q, want 303 → the page", c.path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if q := b.get(e.issuer + c.path); !q.at(c.path) || q.status/100 != 4 || !strings.Contains(q.body, c.want) {
			t.Fatalf("GET %s after the POST: %d\n%s", c.path, q.status, q.body)
		}
		if q := b.get(e.issuer + c.path); q.status != http.StatusOK || strings.Contains(q.body, c.want) {
			t.Fatalf("reload of %s: %d\n%s", c.path, q.status, q.body)
		}
	}
}
