package login

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// Self-service sign-up (SPEC 3b): the email code proves the address, then
// the first sign-in shows the first backup code. No enumeration.

// signupForm opens the sign-up page from the identifier page of a new
// sign-in to app.
func (b *browser) signupForm(app *rp) (response, string) {
	b.e.t.Helper()
	authURL, state := app.authorizeURL()
	p := b.get(authURL)
	if !p.at("/login/identify") || !strings.Contains(p.body, "Create account") {
		b.e.t.Fatalf("identifier page without Create account: %s\n%s", p.url, p.body)
	}
	p = b.get(b.e.issuer + "/signup?id=" + url.QueryEscape(p.url.Query().Get("id")))
	if !p.at("/signup") {
		b.e.t.Fatalf("sign-up page: %s (%d)", p.url, p.status)
	}
	return p, state
}

func TestSignupEndToEnd(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, state := app.authorizeURL()
		p := b.get(authURL)
		p = b.get(e.issuer + "/signup?id=" + url.QueryEscape(p.url.Query().Get("id")))
		for _, want := range []string{`<label for="email">Email</label>`, `<label for="name">Name</label>`, `<label for="password">Password</label>`,
			`autocomplete="new-password"`, "Create account"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("sign-up page lacks %q", want)
			}
		}
		form := p
		// Rules, with a specific message each; nothing is created or sent.
		for _, c := range []struct{ email, name, password, msg string }{
			{"grace@example.com", "Grace Hopper", "baseball", "too common"},
			{"grace@example.com", "Grace Hopper", "short", "at least 8 characters"},
			{"grace@example.com", "Grace Hopper", "grace@example.com", "email address"},
			{"not an email", "Grace Hopper", "a long enough password", "valid email"},
			{"grace@example.com", "", "a long enough password", "Enter your name"},
			{"grace@example.com", strings.Repeat("n", 101), "a long enough password", "at most 100 characters"},
			// (A NUL never reaches the rule: web.RejectInvalidText refuses
			// the whole form first; TestBadBytesNeverServerError.)
			{"grace@example.com", "Grace\x01Hopper", "a long enough password", "control characters"},
		} {
			p = b.submit(form, "/signup", url.Values{"email": {c.email}, "name": {c.name}, "password": {c.password}})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, c.msg) {
				t.Fatalf("%+v: %d\n%s", c, p.status, p.body)
			}
		}
		if e.sent().Count("grace@example.com") != 0 {
			t.Fatal("mail sent for a refused form")
		}

		p = b.submit(form, "/signup", url.Values{"email": {"grace@example.com"}, "name": {"Grace Hopper"}, "password": {"a long enough password"}})
		if !p.at("/signup/code") || !strings.Contains(p.body, "We sent a code") {
			t.Fatalf("after the form: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if _, err := e.store.GetUserByEmail(context.Background(), "grace@example.com"); err == nil {
			t.Fatal("the account exists before the address is proven")
		}
		if s := e.lastSubject("grace@example.com"); !strings.Contains(s, "Confirm your email address") {
			t.Errorf("code mail subject = %q", s)
		}
		if q := b.submit(p, "/signup/code", url.Values{"code": {"000000"}}); q.status != http.StatusUnauthorized {
			t.Fatalf("wrong code: %d", q.status)
		}
		p = b.submit(p, "/signup/code", url.Values{"code": {e.mailCode("grace@example.com")}})
		// Signed in: trust this device, then the first backup code.
		if !p.at("/login/remember") {
			t.Fatalf("after the code: %s\n%s", p.url, p.body)
		}
		p = b.submit(p, "/login/remember", url.Values{"choice": {"trust"}})
		if !p.at("/login/backup-code") {
			t.Fatalf("the first sign-in must show a backup code: %s", p.url)
		}
		backupCodeOn(t, p)
		p = b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}})
		claims := app.claims(p.code(t, state))
		u, err := e.store.GetUserByEmail(context.Background(), "grace@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if claims["sub"] != u.ID || u.Name != "Grace Hopper" {
			t.Errorf("claims = %v, user %+v", claims, u)
		}
		if amr := amrOf(claims); amr != "pwd otp mfa" {
			t.Errorf("amr = %v", amr)
		}
		if !u.EmailVerified || u.NeedsBackupCode || u.PasswordHash == "" {
			t.Errorf("user = %+v", u)
		}
		if !slices.Contains(e.auditEvents(u.ID), "signup") {
			t.Error("no signup audit event")
		}
		// The password works at the next sign-in.
		e.clock.Advance(time.Minute)
		nb := e.newBrowser()
		nb.signInRP(app, u.Email, signInOpts{password: "a long enough password"})
	})
}

// TestSignupExistingEmailNotRevealed: the same pages for an address with
// an account; its owner is told by mail; no code exists, nothing changes.
func TestSignupExistingEmailNotRevealed(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		owner := e.createUser("taken@example.com")
		app := e.newRP("app")

		try := func(email string) response {
			b := e.newBrowser()
			p, _ := b.signupForm(app)
			return b.submit(p, "/signup", url.Values{"email": {email}, "name": {"Mallory"}, "password": {"a long enough password"}})
		}
		taken := try(owner.Email)
		fresh := try("free@example.com")
		if !taken.at("/signup/code") || taken.status != fresh.status || strip(taken.body, owner.Email) != strip(fresh.body, "free@example.com") {
			t.Fatalf("the pages differ:\n%s\n----\n%s", taken.body, fresh.body)
		}
		m, ok := e.sent().Last(owner.Email)
		if !ok || !strings.Contains(m.Subject, "Someone tried to create") || !strings.Contains(m.Text, "Forgot password?") {
			t.Fatalf("owner's mail = %+v", m)
		}
		// It links where it tells the owner to go ("Forgot password?", an
		// entry point of its own).
		if !strings.Contains(m.Text, "Forgot your password? Reset it here: "+e.issuer+"/forgot") ||
			!strings.Contains(m.HTML, `<a href="`+e.issuer+`/forgot">Reset it here</a>`) {
			t.Errorf("owner's mail has no link to reset the password:\n%s\n%s", m.Text, m.HTML)
		}
		// No code was sent, so no code works.
		if q := e.newBrowser().post(e.issuer+"/signup/code", nil); q.status == http.StatusOK || q.status >= 500 {
			t.Errorf("a code form without a sign-up: %d", q.status)
		}
		b := e.newBrowser()
		p, _ := b.signupForm(app)
		p = b.submit(p, "/signup", url.Values{"email": {owner.Email}, "name": {"Mallory"}, "password": {"a long enough password"}})
		for _, code := range []string{"000000", "123456"} {
			if q := b.submit(p, "/signup/code", url.Values{"code": {code}}); q.status != http.StatusUnauthorized {
				t.Fatalf("code %s: %d", code, q.status)
			}
		}
		// The resend looks the same too, and the owner is not mail-bombed.
		before := e.sent().Count(owner.Email)
		e.clock.Advance(31 * time.Second)
		if q := b.submit(p, "/signup/code/send", nil); q.status != http.StatusOK || !strings.Contains(q.body, "We sent you a new code.") {
			t.Fatalf("resend: %d", q.status)
		}
		if e.sent().Count(owner.Email) != before {
			t.Error("the owner got another mail within the hour")
		}
		got := e.user(owner.ID)
		if got.Name != owner.Name || got.PasswordHash != owner.PasswordHash {
			t.Fatal("the existing account changed")
		}
	})
}

// TestSignupReplacesStaleUnverifiedAccount: an account whose address was
// never proven does not block its owner after 24 hours (but does before).
func TestSignupReplacesStaleUnverifiedAccount(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	ctx := context.Background()
	stale := e.createUser("stale@example.com", func(u *storage.User) { u.EmailVerified = false; u.Region = "EU" })
	if err := e.store.SetBackupCode(ctx, storage.BackupCode{UserID: stale.ID, CodeHash: []byte("x"), CreatedAt: e.clock.Now()}, storage.BackupCodeShow{}); err != nil {
		t.Fatal(err)
	}

	// Within 24 hours: the "exists" path.
	b := e.newBrowser()
	p, _ := b.signupForm(app)
	b.submit(p, "/signup", url.Values{"email": {stale.Email}, "name": {"Owner"}, "password": {"the owner's password"}})
	if s := e.lastSubject(stale.Email); !strings.Contains(s, "Someone tried to create") {
		t.Fatalf("within the grace period: mail %q", s)
	}

	e.clock.Advance(24*time.Hour + time.Second)
	b = e.newBrowser()
	p, state := b.signupForm(app)
	p = b.submit(p, "/signup", url.Values{"email": {stale.Email}, "name": {"Owner"}, "password": {"the owner's password"}})
	if s := e.lastSubject(stale.Email); !strings.Contains(s, "Confirm your email address") {
		t.Fatalf("after the grace period: mail %q", s)
	}
	if e.user(stale.ID).Name != stale.Name {
		t.Fatal("replaced before the address was proven")
	}
	p = b.drive(b.submit(p, "/signup/code", url.Values{"code": {e.mailCode(stale.Email)}}), stale.Email, signInOpts{})
	p.code(t, state)
	got := e.user(stale.ID)
	if got.Name != "Owner" || !got.EmailVerified || got.Region != "EU" || got.PasswordHash == stale.PasswordHash {
		t.Fatalf("replaced account = %+v", got)
	}
	if bc, err := e.store.GetBackupCode(ctx, stale.ID); err != nil || string(bc.CodeHash) == "x" {
		t.Errorf("the old backup code survived: %v", err)
	}
}

func TestSignupDisabled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t), func(c *Config) { c.SignupEnabled = false })
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b.get(authURL)
	if strings.Contains(p.body, "Create account") || strings.Contains(p.body, "/signup") {
		t.Error("the identifier page links to sign-up")
	}
	id := url.QueryEscape(p.url.Query().Get("id"))
	if q := b.get(e.issuer + "/signup?id=" + id); q.status != http.StatusNotFound {
		t.Errorf("GET /signup: %d", q.status)
	}
	if q := b.post(e.issuer+"/signup", url.Values{"csrf": {p.csrf(t)}, "id": {p.url.Query().Get("id")}, "email": {"x@example.com"}}); q.status != http.StatusNotFound {
		t.Errorf("POST /signup: %d", q.status)
	}
}

// TestSignupBadInput: garbage, forged and out-of-order requests.
func TestSignupBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	if _, err := e.store.CreateOrganization(context.Background(), storage.Organization{Name: "Corp", Domains: []string{"corp.example"},
		Issuer: "https://idp.corp.example", ClientID: "latchkey", Source: "cli"}); err != nil {
		t.Fatal(err)
	}
	b := e.newBrowser()
	p, _ := b.signupForm(app)
	id := p.url.Query().Get("id")
	// Without a sign-in, /signup is an entry point: it starts the account
	// pages' sign-in (not served by this harness; cmd's
	// TestSignupAndForgotAsEntryPoints follows it through).
	for _, path := range []string{"/signup", "/signup?id="} {
		if q := b.get(e.issuer + path); q.url.Path != "/account" {
			t.Errorf("GET %s: %s (%d)", path, q.url, q.status)
		}
	}
	for _, path := range []string{"/signup?id=nope", "/signup?id=" + strings.Repeat("x", 100), "/signup/code?id=nope"} {
		if q := b.get(e.issuer + path); q.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d", path, q.status)
		}
	}
	if q := b.post(e.issuer+"/signup", url.Values{"id": {id}, "email": {"x@example.com"}, "name": {"X"}, "password": {"a long enough password"}}); q.status != http.StatusForbidden {
		t.Errorf("no CSRF: %d", q.status)
	}
	// Another browser cannot use this sign-in.
	if q := e.newBrowser().get(e.issuer + "/signup?id=" + id); q.status != http.StatusForbidden {
		t.Errorf("another browser: %d", q.status)
	}
	// The code page without a sign-up in this browser goes back to the form.
	if q := b.get(e.issuer + "/signup/code?id=" + id); !q.at("/signup") {
		t.Errorf("code page without a sign-up: %s", q.url)
	}
	if q := b.post(e.issuer+"/signup/code", url.Values{"csrf": {p.csrf(t)}, "id": {id}, "code": {"123456"}}); !q.at("/signup") {
		t.Errorf("code form without a sign-up: %s (%d)", q.url, q.status)
	}
	// A garbage sign-up cookie is ignored.
	u, _ := url.Parse(e.issuer)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "lk_signup", Value: strings.Repeat("A", 4000)}})
	if q := b.get(e.issuer + "/signup/code?id=" + id); !q.at("/signup") {
		t.Errorf("garbage cookie: %s (%d)", q.url, q.status)
	}
	// A domain with single sign-on: its people sign in there.
	q := b.submit(p, "/signup", url.Values{"email": {"ann@corp.example"}, "name": {"Ann"}, "password": {"a long enough password"}})
	if q.status != http.StatusUnprocessableEntity || !strings.Contains(q.body, "managed by Corp") {
		t.Errorf("SSO domain: %d\n%s", q.status, q.body)
	}
	// Oversized fields: a clear answer, not a 500.
	q = b.submit(p, "/signup", url.Values{"email": {strings.Repeat("a", 300) + "@example.com"}, "name": {"X"}, "password": {strings.Repeat("p", 2000)}})
	if q.status != http.StatusUnprocessableEntity {
		t.Errorf("oversized: %d", q.status)
	}
	if e.sent().Total() != 0 {
		t.Errorf("%d mails sent by bad input", e.sent().Total())
	}
}
