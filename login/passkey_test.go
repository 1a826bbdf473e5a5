package login

// Passkeys in the sign-in, over HTTP with a software authenticator
// (login/passkeytest) on both databases: passwordless on the
// identifier page, the second step, the step-up to acr phr, and every
// refusal (a replayed or foreign challenge, a wrong origin, another
// user's credential, a disabled user, a counter going backwards).

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/passkeytest"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// newPasskeyEnv is a harness whose issuer is http://localhost:PORT:
// WebAuthn needs a domain for its RP ID (127.0.0.1 cannot be one).
func newPasskeyEnv(t *testing.T, d storagetest.Dialect) (*testEnv, *passkeytest.Authenticator) {
	t.Helper()
	e := newTestEnv(t, d, localhostIssuer)
	if !strings.HasPrefix(e.issuer, "http://localhost:") {
		t.Fatalf("issuer %s", e.issuer)
	}
	return e, passkeytest.New(e.issuer)
}

// localhostIssuer makes the issuer http://localhost:PORT.
func localhostIssuer(c *Config) { c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1) }

// enrolPasskey registers a passkey of a for u through the real set-up
// ceremony (the account page drives the same calls).
func (e *testEnv) enrolPasskey(u storage.User, a *passkeytest.Authenticator) *passkeytest.Credential {
	e.t.Helper()
	ctx := context.Background()
	browser := []byte("the account page's browser")
	opts, err := e.h.creds.BeginPasskeyRegistration(ctx, u, "enrol-"+u.ID, browser)
	if err != nil {
		e.t.Fatal(err)
	}
	answer, err := a.Create(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.h.creds.FinishPasskeyRegistration(ctx, u, "enrol-"+u.ID, browser, "Test key", answer); err != nil {
		e.t.Fatal(err)
	}
	return a.Creds[len(a.Creds)-1]
}

var optionsRe = regexp.MustCompile(`data-options="([^"]*)"`)

// passkeyOptions are the ceremony options a page offers.
func passkeyOptions(t testing.TB, p response) string {
	t.Helper()
	m := optionsRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no passkey on %s (%d):\n%s", p.url, p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

// usePasskey answers the page's passkey form with a's newest allowed
// credential.
func (b *browser) usePasskey(p response, a *passkeytest.Authenticator) response {
	b.e.t.Helper()
	answer, err := a.Get(passkeyOptions(b.e.t, p))
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.submit(p, "/login/passkey", url.Values{"credential": {answer}})
}

func TestPasskeyPasswordless(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		u := e.createUser("ada@example.com")
		e.enrolPasskey(u, a)
		r := e.newRP("app")
		b := e.newBrowser()
		authURL, state := r.authorizeURL()
		p := b.get(authURL)
		if !p.at("/login/identify") || !strings.Contains(p.body, `autocomplete="username webauthn"`) ||
			!strings.Contains(p.body, "Sign in with a passkey") || !strings.Contains(p.body, `<script src="/static/passkey.js" defer></script>`) {
			t.Fatalf("identifier page without the passkey offer:\n%s", p.body)
		}
		p = b.usePasskey(p, a)
		claims := r.claims(p.code(t, state))
		if claims["sub"] != u.ID || claims["acr"] != flow.ACRPhishingResistant || amrOf(claims) != "hwk user pin mfa" {
			t.Fatalf("claims = %v", claims)
		}
		if _, ok := e.sink.Last(u.Email); ok {
			t.Error("a passkey sign-in sent mail")
		}
		pks, _ := e.store.ListPasskeys(context.Background(), u.ID)
		if len(pks) != 1 || pks[0].SignCount != 1 || pks[0].LastUsedAt.IsZero() || pks[0].Name != "Test key" {
			t.Errorf("stored passkey after use: %+v", pks)
		}
		// The session stands: the next product signs in without a page,
		// with the session's amr.
		r2 := e.newRP("app2")
		authURL, state = r2.authorizeURL()
		if c2 := r2.claims(b.get(authURL).code(t, state)); c2["acr"] != flow.ACRMFA || amrOf(c2) != "hwk user pin mfa" {
			t.Errorf("session reuse: %v", c2)
		}
	})
}

func TestPasskeySecondStep(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		a.UserVerified = false // a security key without a PIN: still a second factor
		u := e.createUser("bob@example.com")
		e.enrolPasskeyUV(u, a)
		r := e.newRP("app")
		b := e.newBrowser()
		authURL, state := r.authorizeURL()
		p := b.identifyAndPassword(b.get(authURL), u.Email)
		if !p.at("/login/code") || !strings.Contains(p.body, "Use a passkey") || strings.Contains(p.body, `name="code"`) ||
			!strings.Contains(p.body, "Get code by email") || !strings.Contains(p.body, "Use a backup code") {
			t.Fatalf("second step does not offer the passkey first:\n%s", p.body)
		}
		if _, ok := e.sink.Last(u.Email); ok {
			t.Error("the passkey page sent an email code")
		}
		p = b.usePasskey(p, a)
		// No "Trust this device" after a passkey: straight to the product.
		claims := r.claims(p.code(t, state))
		if claims["acr"] != flow.ACRPhishingResistant || amrOf(claims) != "pwd hwk user mfa" {
			t.Fatalf("claims = %v", claims)
		}

		// The email code stays available on the same page.
		b2 := e.newBrowser()
		authURL, state = r.authorizeURL()
		p = b2.identifyAndPassword(b2.get(authURL), u.Email)
		p = b2.get(e.issuer + "/login/code?id=" + url.QueryEscape(authRequestIDOf(t, p)) + "&method=email")
		p = b2.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}})
		if !p.at("/login/remember") {
			t.Fatalf("after the email code: %s", p.url)
		}
	})
}

// enrolPasskeyUV enrols with user verification (registration requires
// it) and then restores a's setting for the assertions.
func (e *testEnv) enrolPasskeyUV(u storage.User, a *passkeytest.Authenticator) *passkeytest.Credential {
	uv := a.UserVerified
	a.UserVerified = true
	defer func() { a.UserVerified = uv }()
	return e.enrolPasskey(u, a)
}

func authRequestIDOf(t *testing.T, p response) string {
	t.Helper()
	if id := p.url.Query().Get("id"); id != "" {
		return id
	}
	for _, h := range hiddenRe.FindAllStringSubmatch(p.body, -1) {
		if h[1] == "id" {
			return h[2]
		}
	}
	t.Fatalf("no auth request id on %s", p.url)
	return ""
}

// TestPasskeyStepUp: a product asking for acr phr steps a password+code
// session up to a passkey (nothing else is offered), and gets
// access_denied for a user without one.
func TestPasskeyStepUp(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		u := e.createUser("cy@example.com")
		r := e.newRP("app")
		b := e.newBrowser()
		// Signed in with password and email code, before any passkey.
		authURL, state := r.authorizeURL()
		r.claims(b.signIn(authURL, u.Email, signInOpts{}).code(t, state))
		e.enrolPasskey(u, a)

		authURL, state = r.authorizeURL(oauth2.SetAuthURLParam("acr_values", flow.ACRPhishingResistant))
		p := b.get(authURL)
		if !p.at("/login/code") || !strings.Contains(p.body, "this product asks for a passkey") ||
			strings.Contains(p.body, "Get code by email") || strings.Contains(p.body, "Use a backup code") {
			t.Fatalf("step-up page:\n%s", p.body)
		}
		// A code cannot stand in: "Get code by email" and a posted code go
		// back to the passkey.
		q := b.post(e.issuer+"/login/code", url.Values{"csrf": {csrfOf(p)}, "id": {authRequestIDOf(t, p)}, "method": {"email"}, "code": {"123456"}})
		if !q.at("/login/code") || !strings.Contains(q.body, "Use a passkey") {
			t.Fatalf("a code on the passkey step-up: %s\n%s", q.url, q.body)
		}
		p = b.usePasskey(q, a) // the page shown last holds the live ceremony
		claims := r.claims(p.code(t, state))
		// A passkey that verified its user is a whole new authentication:
		// its own amr, a new auth_time and session.
		if claims["acr"] != flow.ACRPhishingResistant || amrOf(claims) != "hwk user pin mfa" {
			t.Fatalf("step-up claims = %v", claims)
		}

		// A user without a passkey: the password, then access_denied.
		v := e.createUser("dee@example.com")
		b2 := e.newBrowser()
		authURL, _ = r.authorizeURL(oauth2.SetAuthURLParam("acr_values", flow.ACRPhishingResistant))
		p = b2.identifyAndPassword(b2.get(authURL), v.Email)
		if p.rpError() != flow.ErrAccessDenied {
			t.Fatalf("phr without a passkey: %s %s", p.url, p.location)
		}
	})
}

func csrfOf(p response) string {
	for _, h := range hiddenRe.FindAllStringSubmatch(p.body, -1) {
		if h[1] == "csrf" {
			return h[2]
		}
	}
	return ""
}

// TestPasskeyRefusals: each check refuses with the same message, leaves
// the user on the page, and does not finish the sign-in.
func TestPasskeyRefusals(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		u := e.createUser("eve@example.com")
		cred := e.enrolPasskey(u, a)
		r := e.newRP("app")
		refused := func(t *testing.T, p response, m i18n.Msg) {
			t.Helper()
			msg := i18n.MustLoad().Localizer(i18n.English).Msg(m)
			if p.status != http.StatusUnauthorized || p.location != "" || !strings.Contains(p.body, html.EscapeString(msg)) {
				t.Fatalf("want a refusal (%q), got %d %s %s:\n%s", msg, p.status, p.url, p.location, p.body)
			}
		}

		t.Run("wrong origin, then the same challenge replayed", func(t *testing.T) {
			b := e.newBrowser()
			p := b.start(r)
			opts := passkeyOptions(t, p)
			evil := passkeytest.New("http://localhost.evil.example")
			evil.Creds = a.Creds
			answer, err := evil.Get(opts)
			if err != nil {
				t.Fatal(err)
			}
			q := b.submit(p, "/login/passkey", url.Values{"credential": {answer}})
			refused(t, q, msgPasskeyRefused)
			// The refused attempt used the challenge up: a good answer to
			// it is too late.
			good, _ := a.Get(opts)
			q = b.submit(p, "/login/passkey", url.Values{"credential": {good}})
			refused(t, q, msgPasskeyExpired)
			// The page shown with the refusal carries a new ceremony.
			if p2 := b.usePasskey(q, a); p2.location == "" {
				t.Fatalf("a fresh ceremony after a refusal: %s %d", p2.url, p2.status)
			}
		})

		t.Run("an answer for another sign-in", func(t *testing.T) {
			b := e.newBrowser()
			p1 := b.start(r)
			answer, _ := a.Get(passkeyOptions(t, p1))
			p2 := b.start(r)
			refused(t, b.submit(p2, "/login/passkey", url.Values{"credential": {answer}}), msgPasskeyExpired)
		})

		t.Run("a credential of another user", func(t *testing.T) {
			other := e.createUser("mallory@example.com")
			ma := passkeytest.New(e.issuer)
			theirs := e.enrolPasskey(other, ma)
			b := e.newBrowser()
			p := b.identifyAndPassword(b.start(r), u.Email)
			answer, err := ma.GetWith(passkeyOptions(t, p), theirs)
			if err != nil {
				t.Fatal(err)
			}
			refused(t, b.submit(p, "/login/passkey", url.Values{"credential": {answer}}), msgPasskeyRefused)
		})

		t.Run("a counter going backwards", func(t *testing.T) {
			b := e.newBrowser()
			if p := b.usePasskey(b.start(r), a); p.location == "" {
				t.Fatalf("first sign-in: %s", p.url)
			}
			cred.Counter -= 2 // the next assertion repeats an old counter: a clone
			b2 := e.newBrowser()
			refused(t, b2.usePasskey(b2.start(r), a), msgPasskeyRefused)
			cred.Counter += 5
			if p := b2.usePasskey(b2.start(r), a); p.location == "" {
				t.Fatalf("a growing counter again: %s", p.url)
			}
		})

		t.Run("a disabled user", func(t *testing.T) {
			if _, err := e.store.UpdateUser(context.Background(), u.ID, func(x *storage.User) error { x.Disabled = true; return nil }); err != nil {
				t.Fatal(err)
			}
			defer e.store.UpdateUser(context.Background(), u.ID, func(x *storage.User) error { x.Disabled = false; return nil })
			b := e.newBrowser()
			refused(t, b.usePasskey(b.start(r), a), msgPasskeyRefused)
		})

		t.Run("a single sign-on user", func(t *testing.T) {
			// A passkey set up before the account joined an organisation
			// is not accepted afterwards: the organisation confirms this
			// user's identity (SPEC: SSO users see none of this).
			sa := passkeytest.New(e.issuer)
			s := e.createUser("sso@corp.example")
			e.enrolPasskey(s, sa)
			if _, err := e.store.UpdateUser(context.Background(), s.ID, func(x *storage.User) error { x.OrgID = "org1"; return nil }); err != nil {
				t.Fatal(err)
			}
			b := e.newBrowser()
			refused(t, b.usePasskey(b.start(r), sa), msgPasskeyRefused)
			if pks, _ := e.store.ListPasskeys(context.Background(), s.ID); len(pks) != 1 || pks[0].SignCount != 0 || !pks[0].LastUsedAt.IsZero() {
				t.Errorf("the refused passkey was used: %+v", pks)
			}
		})

		t.Run("no answer (no JavaScript) and garbage", func(t *testing.T) {
			b := e.newBrowser()
			p := b.start(r)
			for _, v := range []string{"", "{", strings.Repeat("a", 20000), `{"id":"AA","rawId":"AA","type":"public-key"}`} {
				refused(t, b.submit(p, "/login/passkey", url.Values{"credential": {v}}), msgPasskeyRefused)
			}
			// Bytes that are not text stop at the pages' boundary check.
			if q := b.submit(p, "/login/passkey", url.Values{"credential": {"\x00\xff"}}); q.status != http.StatusBadRequest {
				t.Fatalf("NUL and invalid UTF-8: %d", q.status)
			}
			if q := b.submit(p, "/login/passkey", url.Values{"kind": {"nonsense"}}); q.status != http.StatusBadRequest {
				t.Fatalf("bad kind: %d", q.status)
			}
		})
	})
}

// TestPasskeyAnswerRace: one answer posted many times at once finishes
// the sign-in once.
func TestPasskeyAnswerRace(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e, a := newPasskeyEnv(t, d)
		u := e.createUser("race@example.com")
		e.enrolPasskey(u, a)
		r := e.newRP("app")
		b := e.newBrowser()
		p := b.start(r)
		answer, _ := a.Get(passkeyOptions(t, p))
		const n = 8
		var wg sync.WaitGroup
		results := make([]response, n)
		for i := range n {
			wg.Go(func() { results[i] = b.submit(p, "/login/passkey", url.Values{"credential": {answer}}) })
		}
		wg.Wait()
		done := 0
		for _, q := range results {
			if q.location != "" && q.rpError() == "" {
				done++
			} else if q.status >= 500 {
				t.Errorf("a loser got %d:\n%s", q.status, q.body)
			}
		}
		if done != 1 {
			for _, q := range results {
				t.Logf("%d %s location=%q", q.status, q.url, q.location)
			}
			t.Fatalf("%d of %d identical answers finished the sign-in, want 1", done, n)
		}
	})
}

// TestPasskeyPagesCSP: only the pages that offer a passkey may run a
// script, and only from our origin; without passkeys (an IP issuer)
// nothing is offered.
func TestPasskeyPagesCSP(t *testing.T) {
	e, a := newPasskeyEnv(t, sqlite(t))
	u := e.createUser("csp@example.com")
	e.enrolPasskey(u, a)
	r := e.newRP("app")
	b := e.newBrowser()
	resp := func(u string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	authURL, _ := r.authorizeURL()
	res := resp(authURL)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasSuffix(res.Request.URL.Path, "/login/identify") ||
		!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("identifier page CSP %q", csp)
	}
	if csp := resp(e.issuer + "/").Header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") {
		t.Fatalf("home page CSP %q allows scripts", csp)
	}
	js := resp(e.issuer + "/static/passkey.js")
	if js.StatusCode != http.StatusOK || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("passkey.js: %d %s", js.StatusCode, js.Header.Get("Content-Type"))
	}

	plain := newTestEnv(t, sqlite(t)) // issuer http://127.0.0.1:PORT
	p := plain.newBrowser().start(plain.newRP("app"))
	if !p.at("/login/identify") || strings.Contains(p.body, "passkey") || strings.Contains(p.body, "<script") {
		t.Fatalf("an IP issuer offers passkeys:\n%s", p.body)
	}
}
