package login

// Issue 14 §4: the mails people expect about their sign-ins — a new
// browser, the backup code used — read from the real SMTP sink.

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

const newSignInSubject = "New sign-in to your Latchkey account"

func withNewSignInMail(c *Config) { c.NewSignInMail = true }

// mailsAbout are the mails to addr whose subject is subject.
func mailsAbout(e *testEnv, addr, subject string) []mailsink.Received {
	e.t.Helper()
	e.deliver()
	var out []mailsink.Received
	for _, m := range e.sink.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) && m.Subject == subject {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestNewSignInMail: an account that signs in from a browser it has never
// used gets a mail saying so — the browser in words, the time in the
// account's language and time zone, what to do if it wasn't them, with
// links; once per browser, whoever signs in again; not for the first
// sign-in of an account made by signing up; not when the operator turned
// it off.
func TestNewSignInMail(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, withNewSignInMail)
		app := e.newRP("app")
		u := e.createUser("traveller@example.com")
		e.clock.Advance(time.Minute)

		b := e.newBrowser()
		b.signIn(mustAuthURL(app), u.Email, signInOpts{})
		got := mailsAbout(e, u.Email, newSignInSubject)
		if len(got) != 1 {
			t.Fatalf("%d new sign-in mails after the first sign-in in a browser, want 1", len(got))
		}
		m := got[0]
		for _, want := range []string{"Hello Test traveller@example.com,", "from a browser it has not been used with before",
			"When: 1 Jun 2026, 09:01 UTC", "Browser: Firefox on Linux (IP address 127.0.0.1)",
			"If this wasn't you, someone else may be signed in to your account:",
			"Change your password now: " + e.issuer + "/account/security/password",
			"Review your security settings and devices: " + e.issuer + "/account"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("mail text lacks %q:\n%s", want, m.Text)
			}
		}
		if strings.Contains(m.Text, "Place:") {
			t.Errorf("a place nobody knows is shown:\n%s", m.Text)
		}
		if !strings.Contains(m.HTML, `<a href="`+e.issuer+`/account/security/password">Change your password now</a>.`) {
			t.Errorf("mail HTML has no link to change the password:\n%s", m.HTML)
		}

		// The same browser again: nothing new.
		b.signOut()
		e.clock.Advance(time.Hour)
		b.signIn(mustAuthURL(app), u.Email, signInOpts{})
		if n := len(mailsAbout(e, u.Email, newSignInSubject)); n != 1 {
			t.Fatalf("%d new sign-in mails after signing in again in the same browser, want 1", n)
		}

		// Another browser, for an account in German in Berlin.
		if _, err := e.store.UpdateUser(context.Background(), u.ID, func(x *storage.User) error {
			x.Language, x.TimeZone = "de", "Europe/Berlin"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		b2 := e.newBrowser()
		b2.ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
		b2.signIn(mustAuthURL(app), u.Email, signInOpts{})
		de := mailsAbout(e, u.Email, "Neue Anmeldung bei Ihrem Konto bei Latchkey")
		if len(de) != 1 || !strings.Contains(de[0].Text, "1. Juni 2026, 12:01 Uhr CEST") || !strings.Contains(de[0].Text, "Chrome") ||
			!strings.Contains(de[0].HTML, `<a href="`+e.issuer+`/account/security/password">Ändern Sie jetzt Ihr Passwort</a>.`) {
			t.Fatalf("the second browser's mail (German, Berlin time): %d %+v", len(de), de)
		}

		// Signing up: the account's first sign-in tells nobody anything.
		b3 := e.newBrowser()
		p, state := b3.signupForm(app)
		p = b3.submit(p, "/signup", url.Values{"email": {"newcomer@example.com"}, "name": {"New"}, "password": {"a long enough password"}})
		p = b3.submit(p, "/signup/code", url.Values{"code": {e.mailCode("newcomer@example.com")}})
		if p = b3.drive(p, "newcomer@example.com", signInOpts{}); p.location == "" {
			t.Fatalf("sign-up did not finish: %s", p.url)
		}
		p.code(t, state)
		if n := len(mailsAbout(e, "newcomer@example.com", newSignInSubject)); n != 0 {
			t.Errorf("%d new sign-in mails for the sign-up's own sign-in", n)
		}
	})
}

// TestNewSignInMailOff: notifications.new_sign_in false sends nothing.
func TestNewSignInMailOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	u := e.createUser("quiet@example.com")
	e.clock.Advance(time.Minute)
	e.newBrowser().signIn(mustAuthURL(app), u.Email, signInOpts{})
	if n := len(mailsAbout(e, u.Email, newSignInSubject)); n != 0 {
		t.Errorf("%d new sign-in mails with the mail turned off", n)
	}
}

// TestBackupCodeUsedMail: signing in with the backup code mails its
// owner: the code is spent, a new one was made, see the security page.
func TestBackupCodeUsedMail(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		u := e.createUser("backup@example.com")
		code := factor.NewBackupCode()
		canon, _ := factor.NormalizeBackupCode(code)
		if err := e.store.SetBackupCode(context.Background(), storage.BackupCode{UserID: u.ID,
			CodeHash: e.kr.MACString(keyring.PurposeBackupCode, canon), CreatedAt: e.clock.Now()}, storage.BackupCodeShow{}); err != nil {
			t.Fatal(err)
		}
		b := e.newBrowser()
		p := b.toCodePage(mustAuthURL(app), u.Email)
		p = b.get(e.issuer + "/login/code?id=" + url.QueryEscape(p.url.Query().Get("id")) + "&method=backup")
		p = b.submit(p, "/login/code", url.Values{"code": {code}})
		if p.at("/login/code") {
			t.Fatalf("backup code refused:\n%s", p.body)
		}
		got := mailsAbout(e, u.Email, "Your Latchkey backup code was used to sign in")
		if len(got) != 1 {
			t.Fatalf("%d backup code mails, want 1", len(got))
		}
		for _, want := range []string{"so it no longer works", "A new backup code was made and shown at that sign-in.",
			"generate another one on your security page: " + e.issuer + "/account", "Browser: Firefox on Linux",
			"Change your password now: " + e.issuer + "/account/security/password"} {
			if !strings.Contains(got[0].Text, want) {
				t.Errorf("mail text lacks %q:\n%s", want, got[0].Text)
			}
		}
		if !strings.Contains(got[0].HTML, `<a href="`+e.issuer+`/account">security page</a>`) {
			t.Errorf("no link to the security page:\n%s", got[0].HTML)
		}
	})
}
