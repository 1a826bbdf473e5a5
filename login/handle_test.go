package login

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// browserCookie is the value of the browser-handle cookie in b's jar
// (whatever its prefix), "" if none.
func (b *browser) browserCookie() (name, value string) {
	u, _ := url.Parse(b.e.issuer)
	for _, ck := range b.client.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "lk_browser") {
			return ck.Name, ck.Value
		}
	}
	return "", ""
}

// plant sets a cookie in b's jar as an attacker who can write cookies for
// the host would (a sibling subdomain, a plain-http network attacker).
func (b *browser) plant(name, value string) {
	u, _ := url.Parse(b.e.issuer)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// TestPlantedHandleCannotFinishVictimSignIn is the attack of issue 10 §4,
// step by step: the attacker gets a handle H from the server and plants it
// in the victim's browser, starts a sign-in with login_hint=victim, lets
// the victim's browser (holding H) type her password and code, then opens
// the same /login?authRequestID=… in his own browser and answers the trust
// question. He must get neither the code nor a session; the victim's own
// browser finishes her sign-in.
func TestPlantedHandleCannotFinishVictimSignIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		victim := e.createUser("victim@example.com")
		app := e.newRP("app")
		attacker, target := e.newBrowser(), e.newBrowser()

		// 1. A handle minted for the attacker, planted in the victim's browser.
		attacker.get(e.issuer + "/device")
		name, h := attacker.browserCookie()
		if h == "" {
			t.Fatal("the server set no browser handle")
		}
		target.plant(name, h)

		// 2. The attacker starts a sign-in for the victim.
		authURL, state := app.authorizeURL(oauth2.SetAuthURLParam("login_hint", victim.Email))
		p := attacker.get(authURL)
		if !p.at("/login/password") {
			t.Fatalf("attacker: expected the password page, got %s (%d)", p.url, p.status)
		}
		id := authRequestID(t, p)
		attackerCSRF := p.csrf(t)

		// 3. The victim's browser, holding H, types her password and code.
		v := target.get(p.url.String())
		if !v.at("/login/password") {
			t.Fatalf("victim: expected the password page, got %s (%d)", v.url, v.status)
		}
		v = target.submit(v, "/login/password", url.Values{"password": {testPassword}})
		if !v.at("/login/code") {
			t.Fatalf("victim: expected the code page, got %s (%d)", v.url, v.status)
		}
		v = target.submit(v, "/login/code", url.Values{"code": {e.mailCode(victim.Email)}})
		if !v.at("/login/remember") {
			t.Fatalf("victim: expected the trust question, got %s (%d)", v.url, v.status)
		}

		// 4. The attacker opens the same sign-in and answers the trust
		// question: refused, whichever way he tries.
		r := attacker.get(e.issuer + "/login?authRequestID=" + url.QueryEscape(id))
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "started in another browser") || r.location != "" {
			t.Fatalf("attacker at the dispatcher: %d %q\n%s", r.status, r.location, r.body)
		}
		r = attacker.get(e.issuer + "/login/remember?id=" + url.QueryEscape(id))
		if r.status != http.StatusForbidden || r.location != "" {
			t.Fatalf("attacker at the trust question: %d %q", r.status, r.location)
		}
		for _, choice := range []string{"trust", "no", "stay"} {
			r = attacker.post(e.issuer+"/login/remember", url.Values{"csrf": {attackerCSRF}, "id": {id}, "choice": {choice}})
			if r.status != http.StatusForbidden || r.location != "" {
				t.Fatalf("attacker answers %q: %d %q", choice, r.status, r.location)
			}
		}
		e.op.mu.Lock()
		_, finished := e.op.finished[id]
		e.op.mu.Unlock()
		if finished {
			t.Fatal("the attacker's answer finished the sign-in")
		}
		if sess, err := e.store.ListSessions(context.Background(), victim.ID); err != nil || len(sess) != 0 {
			t.Fatalf("sessions of the victim: %v %v", sess, err)
		}

		// The victim's browser finishes her sign-in; the code goes there.
		v = target.submit(v, "/login/remember", url.Values{"choice": {"no"}})
		if code := v.code(t, state); code != id {
			t.Fatalf("victim's code %q", code)
		}
		// And the attacker's handle is worth nothing now.
		if _, got := target.browserCookie(); got == h {
			t.Fatal("the victim's browser still holds the planted handle")
		}
	})
}

// TestUnknownHandleIsReplaced: a handle the server did not mint (any
// value, however long) is ignored and replaced; two browsers given the
// same made-up value do not share a sign-in.
func TestUnknownHandleIsReplaced(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		made := keyring.NewToken() // 43 characters, the old format
		attacker, target := e.newBrowser(), e.newBrowser()
		for _, b := range []*browser{attacker, target} {
			b.plant("lk_browser", made)
		}
		p := attacker.start(app)
		if !p.at("/login/identify") {
			t.Fatalf("start: %s", p.url)
		}
		if _, v := attacker.browserCookie(); v == made || v == "" {
			t.Fatalf("the made-up handle was kept (%q)", v)
		}
		r := target.get(p.url.String())
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "started in another browser") {
			t.Fatalf("a browser with the same made-up value: %d", r.status)
		}
		// A CSRF token computed for the made-up value is refused too.
		tok := p.csrf(t)
		if r := target.post(e.issuer+"/login/identify", url.Values{"csrf": {tok}, "id": {authRequestID(t, p)}, "email": {"x@example.com"}}); r.status != http.StatusForbidden {
			t.Fatalf("another browser's token: %d", r.status)
		}
	})
}

// TestHandleRotation: the handle changes at every verified step of a
// sign-in and at sign-out; a page's CSRF token dies with its handle; a
// silent sign-in (the session answers) keeps it; a sign-in started in
// another tab before a rotation is still this browser's.
func TestHandleRotation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("rot@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	handle := func() string { _, v := b.browserCookie(); return v }

	first := b.start(app)
	other, otherState := app.authorizeURL() // a second tab, same browser
	tab2 := b.get(other)
	h0 := handle()
	if !tab2.at("/login/identify") || h0 == "" {
		t.Fatalf("second tab: %s", tab2.url)
	}
	p := b.submit(first, "/login/identify", url.Values{"email": {u.Email}})
	if handle() != h0 {
		t.Fatal("naming the account is not a privilege change")
	}
	pw := p
	p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
	h1 := handle()
	if h1 == h0 || !p.at("/login/code") {
		t.Fatalf("the password step did not rotate the handle (%s)", p.url)
	}
	// The password page's form (and its token) died with h0.
	if r := b.submit(pw, "/login/password", url.Values{"password": {testPassword}}); r.status != http.StatusForbidden || !strings.Contains(r.body, "The form has expired") {
		t.Fatalf("a form of the old handle: %d", r.status)
	}
	p = b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
	h2 := handle()
	if h2 == h1 {
		t.Fatal("the second step did not rotate the handle")
	}
	p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
	h3 := handle()
	if h3 == h2 || p.location == "" {
		t.Fatalf("the completion did not rotate the handle (%s)", p.url)
	}
	// The second tab, bound to h0, is still this browser's sign-in: with
	// the session it finishes silently, without a new handle.
	r := b.get(tab2.url.String())
	if r.location == "" {
		t.Fatalf("second tab after the rotation: %s (%d)", r.url, r.status)
	}
	r.code(t, otherState)
	if handle() != h3 {
		t.Fatal("a silent sign-in rotated the handle")
	}
	// Sign-out: a new handle, with no history.
	b.signOut()
	if h4 := handle(); h4 == h3 || h4 == "" {
		t.Fatal("sign-out did not rotate the handle")
	}
}
