package login

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// "Forgot password?" (SPEC 3b) and the set-password link.

const newPassword = "a completely new password"

// forgotStart opens "Forgot password?" from the password page of a new
// sign-in to app and submits email.
func (b *browser) forgotStart(app *rp, email string) (response, string, string) {
	b.e.t.Helper()
	authURL, state := app.authorizeURL()
	p := b.get(authURL)
	p = b.submit(p, "/login/identify", url.Values{"email": {email}})
	if !p.at("/login/password") || !strings.Contains(p.body, "Forgot password?") {
		b.e.t.Fatalf("password page: %s", p.url)
	}
	id := p.url.Query().Get("id")
	p = b.get(b.e.issuer + "/forgot?id=" + url.QueryEscape(id))
	if !p.at("/forgot") || !strings.Contains(p.body, `<label for="email">Email</label>`) {
		b.e.t.Fatalf("forgot page: %s\n%s", p.url, p.body)
	}
	p = b.submit(p, "/forgot", url.Values{"email": {email}})
	return p, id, state
}

// victim is a user signed in elsewhere: a trusted browser with a product
// holding a refresh token.
func victim(e *testEnv, app *rp, email string, mut ...func(*storage.User)) (storage.User, *browser, string) {
	u := e.createUser(email, mut...)
	b := e.newBrowser()
	rt, _ := b.signInRP(app, email, signInOpts{remember: "trust"})
	return u, b, rt
}

// checkAllRevoked: after a reset nothing of the old sign-ins is left.
func checkAllRevoked(t *testing.T, e *testEnv, app *rp, u storage.User, old *browser, rt string) {
	t.Helper()
	if got := old.promptNone(app); got != "login_required" {
		t.Errorf("old session after the reset: %q", got)
	}
	if got := refreshErr(t, app, rt); got != "invalid_grant" {
		t.Errorf("old refresh token after the reset: %q", got)
	}
	if devs, _ := e.store.ListTrustedDevices(context.Background(), u.ID); len(devs) != 0 {
		t.Errorf("trusted devices after the reset: %d", len(devs))
	}
	if ss := sessionsOf(t, e, u.ID); len(ss) != 0 {
		t.Errorf("sessions after the reset: %d", len(ss))
	}
}

func TestForgotPasswordEmailUser(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		u, old, rt := victim(e, app, "forgetful@example.com")
		e.clock.Advance(time.Minute)

		b := e.newBrowser()
		p, id, state := b.forgotStart(app, u.Email)
		if !p.at("/forgot") || !strings.Contains(p.body, "If an account exists for this address, we sent it a code") {
			t.Fatalf("after the email: %s\n%s", p.url, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "password reset code") {
			t.Fatalf("code mail subject = %q", s)
		}
		if q := b.submit(p, "/forgot/code", url.Values{"code": {"000000"}}); q.status != http.StatusUnauthorized {
			t.Fatalf("wrong code: %d", q.status)
		}
		// Jumping ahead does nothing.
		if q := b.post(e.issuer+"/forgot/password", url.Values{"csrf": {p.csrf(t)}, "id": {id}, "new_password": {newPassword}}); !q.at("/forgot") || strings.Contains(q.body, "Your password is changed") {
			t.Fatalf("skipping the code: %s\n%s", q.url, q.body)
		}
		p = b.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !strings.Contains(p.body, `<label for="new_password">New password</label>`) || !strings.Contains(p.body, `autocomplete="new-password"`) {
			t.Fatalf("new password page:\n%s", p.body)
		}
		if q := b.submit(p, "/forgot/password", url.Values{"new_password": {"baseball"}}); q.status != http.StatusUnprocessableEntity || !strings.Contains(q.body, "too common") {
			t.Fatalf("common password: %d", q.status)
		}
		pwPage := p
		p = b.submit(p, "/forgot/password", url.Values{"new_password": {newPassword}})
		if !strings.Contains(p.body, "Your password is changed") {
			t.Fatalf("reset: %d\n%s", p.status, p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "Password reset") {
			t.Errorf("notice mail subject = %q", s)
		}
		if !slices.Contains(e.auditEvents(u.ID), "password.reset") {
			t.Error("no password.reset audit event")
		}
		checkAllRevoked(t, e, app, u, old, rt)

		// The form again (back button): the reset is over, nothing changes
		// (its CSRF token died with the browser handle the password change
		// replaced).
		hash := e.user(u.ID).PasswordHash
		if q := b.submit(pwPage, "/forgot/password", url.Values{"new_password": {"yet another password"}}); q.status != http.StatusForbidden ||
			!strings.Contains(q.body, "The form has expired") || e.user(u.ID).PasswordHash != hash {
			t.Fatalf("replayed reset: %s %d\n%s", q.url, q.status, q.body)
		}

		// The sign-in continues from the password step with the new one.
		p = b.get(e.issuer + "/login?authRequestID=" + url.QueryEscape(id))
		if !p.at("/login/password") {
			t.Fatalf("continue: %s", p.url)
		}
		if q := b.submit(p, "/login/password", url.Values{"password": {testPassword}}); q.status != http.StatusUnauthorized {
			t.Fatalf("old password: %d", q.status)
		}
		b.drive(p, u.Email, signInOpts{password: newPassword}).code(t, state)
	})
}

// TestForgotPasswordAuthenticatorUser: the mailbox alone is not enough.
func TestForgotPasswordAuthenticatorUser(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		ctx := context.Background()
		seed := factor.NewTOTPSeed()
		u := e.createUser("phone@example.com")
		id := storage.NewID()
		if _, err := e.store.CreateTOTP(ctx, storage.TOTPCredential{ID: id, UserID: u.ID, SeedSealed: e.kr.Seal(seed, []byte("totp-seed:"+id)),
			Status: storage.TOTPPending, CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.ActivateTOTP(ctx, u.ID, id, factor.TOTPStep(e.clock.Now())-5, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		old := e.newBrowser()
		rt, _ := old.signInRP(app, u.Email, signInOpts{totp: func() string { return e.totpAt(seed, 0) }})
		e.clock.Advance(time.Minute)

		b := e.newBrowser()
		p, arID, _ := b.forgotStart(app, u.Email)
		p = b.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !strings.Contains(p.body, "a code by email is not enough") || !strings.Contains(p.body, "Use a backup code") {
			t.Fatalf("after the email code an authenticator user must give the app's code:\n%s", p.body)
		}
		second := p
		// The new password cannot be set yet.
		if q := b.post(e.issuer+"/forgot/password", url.Values{"csrf": {p.csrf(t)}, "id": {arID}, "new_password": {newPassword}}); strings.Contains(q.body, "Your password is changed") {
			t.Fatal("the mailbox alone reset the password")
		}
		if q := b.submit(second, "/forgot/second", url.Values{"code": {e.totpAt(seed, 3)}}); q.status != http.StatusUnauthorized {
			t.Fatalf("wrong app code: %d", q.status)
		}
		if q := b.submit(second, "/forgot/second", url.Values{"code": {"K7QF-9M2C-XW4P-T8NB"}, "method": {"backup"}}); q.status != http.StatusUnauthorized {
			t.Fatalf("wrong backup code: %d", q.status)
		}
		p = b.submit(second, "/forgot/second", url.Values{"code": {e.totpAt(seed, 1)}})
		if !strings.Contains(p.body, `<label for="new_password">New password</label>`) {
			t.Fatalf("after the app code:\n%s", p.body)
		}
		p = b.submit(p, "/forgot/password", url.Values{"new_password": {newPassword}})
		if !strings.Contains(p.body, "Your password is changed") {
			t.Fatalf("reset: %d\n%s", p.status, p.body)
		}
		checkAllRevoked(t, e, app, u, old, rt)
		if _, on := e.activeTOTP(u.ID); !on {
			t.Error("the reset turned the authenticator app off")
		}
	})
}

// TestForgotPasswordBackupCode: the backup code instead of the app; the
// next sign-in shows a new one.
func TestForgotPasswordBackupCode(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	ctx := context.Background()
	u := e.createUser("lostphone@example.com")
	id := storage.NewID()
	seed := factor.NewTOTPSeed()
	e.store.CreateTOTP(ctx, storage.TOTPCredential{ID: id, UserID: u.ID, SeedSealed: e.kr.Seal(seed, []byte("totp-seed:"+id)), Status: storage.TOTPPending, CreatedAt: e.clock.Now()})
	if err := e.store.ActivateTOTP(ctx, u.ID, id, 0, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	code := factor.NewBackupCode()
	canon, _ := factor.NormalizeBackupCode(code)
	if err := e.store.SetBackupCode(ctx, storage.BackupCode{UserID: u.ID, CodeHash: e.kr.MACString(keyring.PurposeBackupCode, canon), CreatedAt: e.clock.Now()}, storage.BackupCodeShow{}); err != nil {
		t.Fatal(err)
	}
	b := e.newBrowser()
	p, arID, state := b.forgotStart(app, u.Email)
	p = b.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(u.Email)}})
	p = b.get(e.issuer + "/forgot?id=" + url.QueryEscape(arID) + "&method=backup")
	if !strings.Contains(p.body, `<label for="code">Backup code</label>`) {
		t.Fatalf("backup code form:\n%s", p.body)
	}
	p = b.submit(p, "/forgot/second", url.Values{"code": {code}})
	p = b.submit(p, "/forgot/password", url.Values{"new_password": {newPassword}})
	if !strings.Contains(p.body, "Your password is changed") {
		t.Fatalf("reset: %d\n%s", p.status, p.body)
	}
	// Continue: password, the app's code, then a new backup code.
	p = b.get(e.issuer + "/login?authRequestID=" + url.QueryEscape(arID))
	p = b.submit(p, "/login/password", url.Values{"password": {newPassword}})
	p = b.submit(p, "/login/code", url.Values{"code": {e.totpAt(seed, 0)}})
	p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
	if !p.at("/login/backup-code") {
		t.Fatalf("the spent backup code must be replaced at the next sign-in: %s", p.url)
	}
	b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}}).code(t, state)
}

// TestForgotPasswordResetExpires: after the code, the new password must
// come within 30 minutes; later the reset is over (back to the email
// form) and the password stays.
func TestForgotPasswordResetExpires(t *testing.T) {
	t.Parallel()
	// The sign-in outlives the reset: only the reset's own lifetime ends it.
	e := newTestEnv(t, sqlite(t))
	e.arLifetime = 2 * time.Hour
	app := e.newRP("app")
	codeAccepted := func(email string) (storage.User, *browser, response) {
		u := e.createUser(email)
		b := e.newBrowser()
		p, _, _ := b.forgotStart(app, u.Email)
		p = b.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !strings.Contains(p.body, `<label for="new_password">New password</label>`) {
			t.Fatalf("new password page:\n%s", p.body)
		}
		return u, b, p
	}
	_, onTime, onTimePage := codeAccepted("ontime@example.com")
	slow, late, latePage := codeAccepted("slow@example.com")
	hash := slow.PasswordHash

	e.clock.Advance(30*time.Minute - time.Second)
	if p := onTime.submit(onTimePage, "/forgot/password", url.Values{"new_password": {newPassword}}); !strings.Contains(p.body, "Your password is changed") {
		t.Fatalf("at 30 min - 1 s: %d\n%s", p.status, p.body)
	}
	e.clock.Advance(2 * time.Second)
	p := late.submit(latePage, "/forgot/password", url.Values{"new_password": {newPassword}})
	if !p.at("/forgot") || !strings.Contains(p.body, `<label for="email">Email</label>`) || e.user(slow.ID).PasswordHash != hash {
		t.Fatalf("at 30 min + 1 s the reset must be over: %s (%d)\n%s", p.url, p.status, p.body)
	}
}

// TestForgotPasswordUnknownEmail: the same answer, no mail.
func TestForgotPasswordUnknownEmail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	u := e.createUser("known@example.com")
	known, _, _ := e.newBrowser().forgotStart(app, u.Email)
	b := e.newBrowser()
	unknown, _, _ := b.forgotStart(app, "nobody@example.com")
	if known.status != unknown.status || strip(known.body, u.Email) != strip(unknown.body, "nobody@example.com") {
		t.Fatalf("the pages differ:\n%s\n----\n%s", known.body, unknown.body)
	}
	if e.sent().Count("nobody@example.com") != 0 {
		t.Fatal("mail to an unknown address")
	}
	for _, code := range []string{"000000", "123456"} {
		if p := b.submit(unknown, "/forgot/code", url.Values{"code": {code}}); p.status != http.StatusUnauthorized {
			t.Fatalf("code for an unknown address: %d", p.status)
		}
	}
	e.clock.Advance(31 * time.Second)
	if p := b.submit(unknown, "/forgot/code/send", nil); p.status != http.StatusOK || !strings.Contains(p.body, "we sent it a new code") {
		t.Fatalf("resend: %d\n%s", p.status, p.body)
	}
}

// TestForgotPasswordBadInput: garbage, forged and out-of-order requests.
func TestForgotPasswordBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	u := e.createUser("bad@example.com")
	b := e.newBrowser()
	p, id, _ := b.forgotStart(app, u.Email)
	if q := b.get(e.issuer + "/forgot"); q.url.Path != "/account" { // an entry point (entry.go)
		t.Errorf("GET /forgot: %s (%d)", q.url, q.status)
	}
	for _, path := range []string{"/forgot?id=nope", "/forgot?id=" + strings.Repeat("x", 100)} {
		if q := b.get(e.issuer + path); q.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d", path, q.status)
		}
	}
	if q := e.newBrowser().get(e.issuer + "/forgot?id=" + id); q.status != http.StatusForbidden {
		t.Errorf("another browser: %d", q.status)
	}
	if q := b.post(e.issuer+"/forgot/code", url.Values{"id": {id}, "code": {"123456"}}); q.status != http.StatusForbidden {
		t.Errorf("no CSRF: %d", q.status)
	}
	for _, code := range []string{"", "abc", strings.Repeat("9", 5000)} {
		if q := b.submit(p, "/forgot/code", url.Values{"code": {code}}); q.status != http.StatusUnauthorized {
			t.Errorf("code %.10q: %d", code, q.status)
		}
	}
	if q := b.post(e.issuer+"/forgot/second", url.Values{"csrf": {p.csrf(t)}, "id": {id}, "code": {"123456"}}); !q.at("/forgot") || q.status != http.StatusOK {
		t.Errorf("second step out of order: %s %d", q.url, q.status)
	}
	// A garbage reset cookie is ignored: the email form again.
	jar, _ := url.Parse(e.issuer)
	b.client.Jar.SetCookies(jar, []*http.Cookie{{Name: "lk_reset", Value: "garbage"}})
	emailForm := b.get(e.issuer + "/forgot?id=" + id)
	if !strings.Contains(emailForm.body, `<label for="email">Email</label>`) {
		t.Errorf("garbage cookie:\n%s", emailForm.body)
	}
	if q := b.submit(emailForm, "/forgot", url.Values{"email": {"not an email"}}); q.status != http.StatusUnprocessableEntity {
		t.Errorf("bad email: %d", q.status)
	}
}

// TestSetPasswordLink: the link the command line prints is single use.
func TestSetPasswordLink(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		u := e.createUser("invited@example.com", func(u *storage.User) { u.PasswordHash = ""; u.EmailVerified = false })
		link := e.setPasswordLink(u)
		b := e.newBrowser()
		p := b.get(link)
		if !p.at("/account/set-password") || !strings.Contains(p.body, `<label for="new_password">New password</label>`) || !strings.Contains(p.body, u.Email) {
			t.Fatalf("set-password page: %s (%d)\n%s", p.url, p.status, p.body)
		}
		if q := b.submit(p, "/account/set-password", url.Values{"new_password": {"baseball"}}); q.status != http.StatusUnprocessableEntity || !strings.Contains(q.body, "too common") {
			t.Fatalf("common password: %d", q.status)
		}
		if q := b.post(e.issuer+"/account/set-password", url.Values{"token": {p.url.Query().Get("token")}, "new_password": {newPassword}}); q.status != http.StatusForbidden {
			t.Fatalf("no CSRF: %d", q.status)
		}
		_, handle := b.browserCookie()
		done := b.submit(p, "/account/set-password", url.Values{"new_password": {newPassword}})
		if !strings.Contains(done.body, "Your password is set. Sign in from your application.") ||
			!strings.Contains(done.body, `<a href="/account">Sign in to your account</a>`) {
			t.Fatalf("set (with a way onward): %d\n%s", done.status, done.body)
		}
		if _, h := b.browserCookie(); h == handle || h == "" {
			t.Error("setting the password did not rotate the browser handle")
		}
		got := e.user(u.ID)
		if got.PasswordHash == "" || !got.EmailVerified {
			t.Fatalf("user = %+v", got)
		}
		if !slices.Contains(e.auditEvents(u.ID), "password.set") {
			t.Error("no password.set audit event")
		}
		// Single use.
		if q := b.get(link); q.status != http.StatusGone || !strings.Contains(q.body, "expired or has already been used") {
			t.Fatalf("second use: %d\n%s", q.status, q.body)
		}
		// The form again: its CSRF token died with the browser handle the
		// password change replaced; with a fresh page the link is gone.
		if q := b.submit(p, "/account/set-password", url.Values{"new_password": {"another new password"}}); q.status != http.StatusForbidden {
			t.Fatalf("second submit: %d", q.status)
		}
		fresh := b.get(e.issuer + "/device") // a form: a token for the new handle
		if q := b.post(e.issuer+"/account/set-password", url.Values{"csrf": {fresh.csrf(t)}, "token": {p.url.Query().Get("token")},
			"new_password": {"another new password"}}); q.status != http.StatusGone {
			t.Fatalf("second submit with a fresh token: %d", q.status)
		}
		e.newBrowser().signInRP(app, u.Email, signInOpts{password: newPassword})

		// Expired after 7 days; garbage tokens.
		link2 := e.setPasswordLink(u)
		e.clock.Advance(7*24*time.Hour + time.Second)
		if q := b.get(link2); q.status != http.StatusGone {
			t.Errorf("expired link: %d", q.status)
		}
		for _, tok := range []string{"", "garbage", strings.Repeat("x", 3000)} {
			if q := b.get(e.issuer + "/account/set-password?token=" + url.QueryEscape(tok)); q.status != http.StatusGone {
				t.Errorf("token %.10q: %d", tok, q.status)
			}
		}
	})
}
