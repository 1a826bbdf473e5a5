package login

// Bad input gets a clear page or the right OAuth error, never a 500, and
// changes nothing.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// authRequestID returns the id of the sign-in a page belongs to.
func authRequestID(t *testing.T, p response) string {
	t.Helper()
	id := p.url.Query().Get("id")
	if id == "" {
		if m := hiddenRe.FindAllStringSubmatch(p.body, -1); m != nil {
			for _, h := range m {
				if h[1] == "id" {
					id = h[2]
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no auth request id on %s", p.url)
	}
	return id
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("known@example.com")
		app := e.newRP("app")

		try := func(email, password string) response {
			b := e.newBrowser()
			authURL, _ := app.authorizeURL()
			p := b.get(authURL)
			p = b.submit(p, "/login/identify", url.Values{"email": {email}})
			if !p.at("/login/password") {
				t.Fatalf("%s: expected the password page for every email, got %s", email, p.url)
			}
			return b.submit(p, "/login/password", url.Values{"password": {password}})
		}
		wrong := try(u.Email, "not the password")
		unknown := try("nobody@example.com", "not the password")
		for _, p := range []response{wrong, unknown} {
			if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "The email or password is incorrect.") {
				t.Fatalf("status %d, body lacks the generic message:\n%s", p.status, p.body)
			}
		}
		if strip(wrong.body, u.Email) != strip(unknown.body, "nobody@example.com") {
			t.Error("wrong password and unknown user pages differ")
		}
		// Nothing was recorded on the auth request but who tried.
		ar, err := e.store.GetAuthRequest(context.Background(), authRequestID(t, wrong))
		if err != nil || !ar.PasswordAt.IsZero() || ar.Done {
			t.Fatalf("auth request changed: %+v %v", ar, err)
		}
	})
}

// strip removes what legitimately differs between two renderings: the
// email, the request id and the CSRF token.
func strip(body, email string) string {
	body = strings.ReplaceAll(body, email, "EMAIL")
	for _, re := range []string{`name="id" value="`, `name="csrf" value="`, `?id=`} {
		for {
			i := strings.Index(body, re)
			if i < 0 {
				break
			}
			j := i + len(re)
			k := j
			for k < len(body) && body[k] != '"' && body[k] != '&' {
				k++
			}
			body = body[:i] + "X" + body[k:]
		}
	}
	return body
}

func TestPasswordThrottle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("throttled@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b.get(authURL)
	p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
	page := p
	for i := 0; i < 5; i++ {
		p = b.submit(page, "/login/password", url.Values{"password": {"wrong"}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, p.status)
		}
	}
	// The 6th attempt (even the right password) waits.
	p = b.submit(page, "/login/password", url.Values{"password": {testPassword}})
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many attempts. Try again in") {
		t.Fatalf("6th attempt: %d\n%s", p.status, p.body)
	}
	e.clock.Advance(2 * time.Second)
	p = b.submit(page, "/login/password", url.Values{"password": {testPassword}})
	if !p.at("/login/code") {
		t.Fatalf("after the back-off the right password works; got %s (%d)", p.url, p.status)
	}
}

// TestGarbageInForms posts nonsense into every field of every sign-in form.
func TestGarbageInForms(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("garbage@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, _ := app.authorizeURL()
		start := b.get(authURL)
		garbage := []string{"", " ", "\x00\x01", strings.Repeat("é", 3000), "<script>alert(1)</script>", "' OR 1=1 --", "%00", "\r\nSet-Cookie: x=y"}
		check := func(what string, p response) {
			t.Helper()
			if p.status >= 500 {
				t.Fatalf("%s: status %d", what, p.status)
			}
			if strings.Contains(p.body, "<script>alert(1)") {
				t.Fatalf("%s: input reflected unescaped", what)
			}
		}
		for _, g := range garbage {
			check("identify email", b.submit(start, "/login/identify", url.Values{"email": {g}}))
			check("identify id", b.post(e.issuer+"/login/identify", url.Values{"id": {g}, "email": {u.Email}}))
		}
		pw := b.submit(start, "/login/identify", url.Values{"email": {u.Email}})
		for _, g := range garbage {
			check("password", b.submit(pw, "/login/password", url.Values{"password": {g}}))
		}
		e.clock.Advance(time.Minute) // past the back-off the nonsense earned
		code := b.submit(pw, "/login/password", url.Values{"password": {testPassword}})
		if !code.at("/login/code") {
			t.Fatalf("expected the code page, got %s %d\n%s", code.url, code.status, code.body)
		}
		for _, g := range garbage {
			check("code", b.submit(code, "/login/code", url.Values{"code": {g}}))
			check("method", b.submit(code, "/login/code", url.Values{"code": {"123456"}, "method": {g}}))
			check("backup code", b.submit(code, "/login/code", url.Values{"code": {g}, "method": {"backup"}}))
		}
		for _, path := range []string{"/login", "/login/identify", "/login/password", "/login/code", "/login/remember", "/login/backup-code", "/logout"} {
			for _, g := range []string{"", "x", strings.Repeat("9", 500), "../../etc/passwd"} {
				check("GET "+path, b.get(e.issuer+path+"?id="+url.QueryEscape(g)+"&authRequestID="+url.QueryEscape(g)))
			}
		}
		// The sign-in still works after all that, once the back-off (at
		// most 15 minutes, never a permanent lock) has passed; the
		// nonsense used up the first code's five tries, so ask for another.
		e.clock.Advance(15*time.Minute + time.Second)
		p := b.submit(code, "/login/code/send", nil)
		p = b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !p.at("/login/remember") {
			t.Fatalf("sign-in did not recover: %s %d", p.url, p.status)
		}
	})
}

func TestOtherBrowserCannotContinue(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	b1, b2 := e.newBrowser(), e.newBrowser()
	authURL, _ := app.authorizeURL()
	p := b1.get(authURL)
	id := authRequestID(t, p)
	r := b2.get(e.issuer + "/login?authRequestID=" + id)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "started in another browser") {
		t.Fatalf("other browser: %d", r.status)
	}
}
