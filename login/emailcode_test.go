package login

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// wrongCode is a well-formed code that is not c.
func wrongCode(c string) string {
	last := c[len(c)-1]
	return c[:len(c)-1] + string('0'+(last-'0'+1)%10)
}

// refused asserts the code page answered "not right or expired" and did
// not move on.
func refused(t *testing.T, what string, p response) {
	t.Helper()
	if !p.at("/login/code") || p.status != http.StatusUnauthorized || !strings.Contains(p.body, "not right, or it has expired") {
		t.Fatalf("%s: want the code refused on /login/code, got %s (%d) location=%q", what, p.url, p.status, p.location)
	}
}

// accepted asserts the code finished the second step.
func accepted(t *testing.T, what string, p response) {
	t.Helper()
	if p.location == "" && !p.at("/login/remember") {
		t.Fatalf("%s: want the code accepted, still on %s (%d):\n%s", what, p.url, p.status, p.body)
	}
}

// TestEmailCodeLifetime: a code lives 10 minutes by the injected clock —
// accepted at 10 min − 1 s, refused at 10 min + 1 s — and a fresh one can
// then be asked for and used.
func TestEmailCodeLifetime(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("ttl@example.com")
		app := e.newRP("app")

		t.Run("accepted just before expiry", func(t *testing.T) {
			b := e.newBrowser()
			authURL, _ := app.authorizeURL()
			p := b.toCodePage(authURL, u.Email)
			code := e.mailCode(u.Email)
			e.clock.Advance(10*time.Minute - time.Second)
			accepted(t, "at 10m-1s", b.submit(p, "/login/code", url.Values{"code": {code}}))
		})

		t.Run("refused just after expiry", func(t *testing.T) {
			e.clock.Advance(time.Hour) // a fresh send budget
			b := e.newBrowser()
			authURL, _ := app.authorizeURL()
			p := b.toCodePage(authURL, u.Email)
			code := e.mailCode(u.Email)
			e.clock.Advance(10*time.Minute + time.Second)
			p = b.submit(p, "/login/code", url.Values{"code": {code}})
			refused(t, "at 10m+1s", p)
			p = b.submit(p, "/login/code/send", nil)
			if p.status != http.StatusOK || !strings.Contains(p.body, "We are sending you a new code") {
				t.Fatalf("resend after expiry: %d", p.status)
			}
			fresh := e.mailCode(u.Email)
			if fresh == code {
				t.Fatal("resend mailed the same code")
			}
			accepted(t, "fresh code", b.submit(p, "/login/code", url.Values{"code": {fresh}}))
		})
	})
}

// TestEmailCodeAttempts: five wrong codes kill the live code — the right
// one is refused after them — and a new code works.
func TestEmailCodeAttempts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("tries@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b.toCodePage(authURL, u.Email)
	code := e.mailCode(u.Email)
	for i := range 5 {
		p = b.submit(p, "/login/code", url.Values{"code": {wrongCode(code)}})
		refused(t, "wrong code "+string(rune('1'+i)), p)
	}
	// Past any throttle delay, so only the dead code can refuse it.
	e.clock.Advance(time.Minute)
	refused(t, "right code after 5 wrong", b.submit(p, "/login/code", url.Values{"code": {code}}))

	e.clock.Advance(time.Minute)
	p = b.submit(p, "/login/code/send", nil)
	fresh := e.mailCode(u.Email)
	accepted(t, "new code", b.submit(p, "/login/code", url.Values{"code": {fresh}}))
}

// TestEmailCodeResend: only the newest code of a sign-in is live, and
// resends are at least 30 s apart and at most 5 per 15 minutes per account.
func TestEmailCodeResend(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("resend@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b.toCodePage(authURL, u.Email)
	older := e.mailCode(u.Email)

	p = b.submit(p, "/login/code/send", nil)
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "We just sent a code") {
		t.Fatalf("immediate resend: %d, want 429 with a wait", p.status)
	}
	if e.mailCode(u.Email) != older {
		t.Fatal("a throttled resend mailed a code")
	}
	e.clock.Advance(29 * time.Second)
	if p = b.submit(p, "/login/code/send", nil); p.status != http.StatusTooManyRequests {
		t.Fatalf("resend at 29 s: %d, want 429", p.status)
	}
	e.clock.Advance(time.Second)
	if p = b.submit(p, "/login/code/send", nil); p.status != http.StatusOK {
		t.Fatalf("resend at 30 s: %d", p.status)
	}
	newer := e.mailCode(u.Email)
	if newer == older {
		t.Fatal("resend mailed the same code")
	}
	p = b.submit(p, "/login/code", url.Values{"code": {older}})
	refused(t, "older code after resend", p)

	// Three more sends reach the budget of five per 15 minutes (each
	// delivered, as the worker does at once: a code replaced before its
	// mail left would not count).
	for range 3 {
		e.clock.Advance(31 * time.Second)
		if p = b.submit(p, "/login/code/send", nil); p.status != http.StatusOK {
			t.Fatalf("resend within budget: %d", p.status)
		}
		e.deliver()
	}
	latest := e.mailCode(u.Email)
	e.clock.Advance(31 * time.Second)
	p = b.submit(p, "/login/code/send", nil)
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many codes") {
		t.Fatalf("sixth code in 15 min: %d, want 429", p.status)
	}
	if e.mailCode(u.Email) != latest {
		t.Fatal("a code over budget was mailed")
	}
	accepted(t, "newest code", b.submit(p, "/login/code", url.Values{"code": {latest}}))
}

// TestEmailCodeBoundToSignIn: a code finishes only the sign-in (auth
// request) and browser it was mailed for.
func TestEmailCodeBoundToSignIn(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("bound@example.com")
	app := e.newRP("app")

	t.Run("another auth request in the same browser", func(t *testing.T) {
		b := e.newBrowser()
		urlA, _ := app.authorizeURL()
		b.toCodePage(urlA, u.Email)
		codeA := e.mailCode(u.Email)
		e.clock.Advance(31 * time.Second)
		urlB, _ := app.authorizeURL()
		pB := b.toCodePage(urlB, u.Email)
		codeB := e.mailCode(u.Email)
		if codeA == codeB {
			t.Fatal("two sign-ins got the same code")
		}
		pB = b.submit(pB, "/login/code", url.Values{"code": {codeA}})
		refused(t, "code of sign-in A on sign-in B", pB)
		accepted(t, "own code", b.submit(pB, "/login/code", url.Values{"code": {codeB}}))
	})

	t.Run("another browser", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		b1, b2 := e.newBrowser(), e.newBrowser()
		authURL, _ := app.authorizeURL()
		p1 := b1.toCodePage(authURL, u.Email)
		code := e.mailCode(u.Email)
		// b2 replays b1's form, hidden fields and all, with the mailed code.
		r := b2.submit(p1, "/login/code", url.Values{"code": {code}})
		if r.location != "" || r.status < 400 {
			t.Fatalf("another browser finished the sign-in: %d %q", r.status, r.location)
		}
		// b2's own sign-in of the same account does not take b1's code.
		authURL2, _ := app.authorizeURL()
		e.clock.Advance(31 * time.Second)
		p2 := b2.toCodePage(authURL2, u.Email)
		refused(t, "b1's code in b2's sign-in", b2.submit(p2, "/login/code", url.Values{"code": {code}}))
		// The code is still b1's to use.
		accepted(t, "b1's own code", b1.submit(p1, "/login/code", url.Values{"code": {code}}))
	})
}

// TestMailSaysCodeAndBrowser: the code mail tells the code, its validity and
// the browser that asked.
func TestMailSaysCodeAndBrowser(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("mail@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b.toCodePage(authURL, u.Email)
	m, ok := e.sent().Last(u.Email)
	if !ok {
		t.Fatal("no mail")
	}
	code := e.mailCode(u.Email)
	for _, want := range []string{code, "10 minutes", "Firefox on Linux"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("mail text lacks %q:\n%s", want, m.Text)
		}
	}
	if m.HTML == "" || !strings.Contains(m.HTML, code) {
		t.Error("mail has no HTML part with the code")
	}
	for _, want := range []string{`autocomplete="one-time-code"`, `inputmode="numeric"`, "Send a new code", "Use a backup code", "this browser is new"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("code page lacks %q", want)
		}
	}
	// Email is the method in use: its button sends a new code, and says so.
	if strings.Contains(p.body, "Get code by email") {
		t.Error(`the email code page offers "Get code by email" rather than "Send a new code"`)
	}
}
