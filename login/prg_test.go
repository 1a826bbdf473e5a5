package login

// Redirect after POST (issue 14 §3): a failed or merely asking POST ends
// on a GET of its page, so that reloading does not send the form again.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestRedirectAfterPost: a wrong password, a wrong code and a new code
// each end on a GET of their page (the address bar holds no POST) showing
// what the POST said, with its status; reloading that page shows it plain
// and does nothing again: no second attempt counted, no second mail.
func TestRedirectAfterPost(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		u := e.createUser("reload@example.com")
		b := e.newBrowser()
		p := b.get(mustAuthURL(app))
		p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
		id := p.url.Query().Get("id")
		failures := func() int {
			n := 0
			for _, ev := range e.auditEvents(u.ID) {
				if ev == "signin.failure" || ev == "secondfactor.failure" {
					n++
				}
			}
			return n
		}

		// A wrong password.
		q := b.submit(p, "/login/password", url.Values{"password": {"wrong password"}})
		if !q.at("/login/password") || q.url.Query().Get("id") != id || q.status != http.StatusUnauthorized ||
			!strings.Contains(q.body, "The email or password is incorrect.") {
			t.Fatalf("wrong password ended on %s (%d):\n%s", q.url, q.status, q.body)
		}
		if failures() != 1 {
			t.Fatalf("failures = %d", failures())
		}
		r := b.get(q.url.String()) // reload
		if r.status != http.StatusOK || strings.Contains(r.body, "incorrect") || failures() != 1 {
			t.Fatalf("reload after a wrong password: %d, %d failures\n%s", r.status, failures(), r.body)
		}

		// A wrong code.
		p = b.submit(r, "/login/password", url.Values{"password": {testPassword}})
		if !p.at("/login/code") {
			t.Fatalf("code page: %s", p.url)
		}
		q = b.submit(p, "/login/code", url.Values{"code": {"000000"}})
		if !q.at("/login/code") || q.url.Query().Get("method") != "email" || q.status != http.StatusUnauthorized ||
			!strings.Contains(q.body, "That code is not right, or it has expired.") {
			t.Fatalf("wrong code ended on %s (%d):\n%s", q.url, q.status, q.body)
		}
		if r = b.get(q.url.String()); r.status != http.StatusOK || strings.Contains(r.body, "not right") || failures() != 2 {
			t.Fatalf("reload after a wrong code: %d, %d failures\n%s", r.status, failures(), r.body)
		}

		// A new code (after the wait between two).
		e.clock.Advance(2 * time.Minute)
		mails := e.sent().Count(u.Email)
		q = b.submit(r, "/login/code/send", nil)
		if !q.at("/login/code") || q.url.Query().Get("id") != id || q.status != http.StatusOK ||
			!strings.Contains(q.body, "We are sending you a new code.") || e.sent().Count(u.Email) != mails+1 {
			t.Fatalf("a new code ended on %s (%d), %d mails:\n%s", q.url, q.status, e.sent().Count(u.Email)-mails, q.body)
		}
		if r = b.get(q.url.String()); strings.Contains(r.body, "We are sending you a new code.") || e.sent().Count(u.Email) != mails+1 {
			t.Fatalf("reload after a new code: %d mails\n%s", e.sent().Count(u.Email)-mails, r.body)
		}
		// The right code still signs in.
		if p = b.drive(r, u.Email, signInOpts{}); p.location == "" {
			t.Fatalf("sign-in did not finish: %s", p.url)
		}
		if !slices.Contains(e.auditEvents(u.ID), "signin.success") {
			t.Error("no signin.success")
		}
	})
}

// TestRedirectAfterPostSignupAndReset: the code pages of a sign-up and of
// "Forgot password?" redirect after a wrong code or a new code too.
func TestRedirectAfterPostSignupAndReset(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	for _, c := range []struct {
		name, path, send string
		start            func(b *browser) response
	}{
		{"sign-up", "/signup/code", "/signup/code/send", func(b *browser) response {
			p, _ := b.signupForm(app)
			return b.submit(p, "/signup", url.Values{"email": {"fresh@example.com"}, "name": {"Fresh"}, "password": {"a long enough password"}})
		}},
		{"reset", "/forgot", "/forgot/code/send", func(b *browser) response {
			u := e.createUser("reset-prg@example.com")
			p, _, _ := b.forgotStart(app, u.Email)
			return p
		}},
	} {
		b := e.newBrowser()
		p := c.start(b)
		action := c.path
		if c.path == "/forgot" {
			action = "/forgot/code"
		}
		q := b.submit(p, action, url.Values{"code": {"000000"}})
		if !q.at(c.path) || q.url.Query().Get("id") == "" || q.status != http.StatusUnauthorized || !strings.Contains(q.body, "That code is not right") {
			t.Fatalf("%s, wrong code: ended on %s (%d)\n%s", c.name, q.url, q.status, q.body)
		}
		if r := b.get(q.url.String()); r.status != http.StatusOK || strings.Contains(r.body, "not right") {
			t.Fatalf("%s, reload after a wrong code: %d\n%s", c.name, r.status, r.body)
		}
		e.clock.Advance(2 * time.Minute)
		if q = b.submit(q, c.send, nil); !q.at(c.path) || q.url.Query().Get("id") == "" || q.status != http.StatusOK {
			t.Fatalf("%s, a new code: ended on %s (%d)\n%s", c.name, q.url, q.status, q.body)
		}
	}
}
