package main

// Passkeys end to end, through the wired server and go-oidc: set up on the
// account page (reconfirmation, name, notification, several, remove), then
// a passwordless sign-in whose ID token carries acr phr and the passkey's
// amr. The issuer is http://localhost:PORT: WebAuthn needs a domain.

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/passkeytest"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// localhostIssuer makes the issuer http://localhost:PORT (the same
// listener): a secure context for WebAuthn, and a domain for its RP ID.
func localhostIssuer(c *config.Config) {
	c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
}

var passkeyOptionsRe = regexp.MustCompile(`data-options="([^"]*)"`)

func passkeyOptionsOn(t *testing.T, p response) string {
	t.Helper()
	m := passkeyOptionsRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no passkey ceremony on %s (%d):\n%s", p.url, p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

// setUpPasskey answers the set-up form of the passkeys page with a.
func (b *browser) setUpPasskey(p response, a *passkeytest.Authenticator, name string) response {
	b.e.t.Helper()
	answer, err := a.Create(passkeyOptionsOn(b.e.t.(*testing.T), p))
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.submit(p, "/account/security/passkeys", url.Values{"name": {name}, "credential": {answer}})
}

func TestPasskeyAccountSetUpAndSignIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, localhostIssuer)
		u := e.createUser("pk@example.com")
		ctx := context.Background()

		// Another browser signed in: a 2-step change ends it.
		other := e.newBrowser()
		app := e.newRP("shop")
		other.signInRP(app, u.Email, signInOpts{})

		b := e.newBrowser()
		p := b.get(e.issuer + "/account/security")
		p = b.drive(p, u.Email, signInOpts{})
		if !p.at("/account/security") || !strings.Contains(p.body, "<h2>Passkeys</h2>") {
			t.Fatalf("security page without passkeys:\n%s", p.body)
		}
		p = b.reconfirmed("/account/security/passkeys", u.Email, signInOpts{})
		if !strings.Contains(p.body, "You have no passkey yet.") || !strings.Contains(p.body, `data-passkey="create"`) {
			t.Fatalf("passkeys page:\n%s", p.body)
		}
		phone := passkeytest.New(e.issuer)
		p = b.setUpPasskey(p, phone, "  My phone\x01 ") // a control character is cleaned; NUL never gets past the boundary
		if !p.at("/account/security/passkeys") || !strings.Contains(p.body, "Your passkey is set up") ||
			!strings.Contains(p.body, "<td>My phone</td>") || !strings.Contains(p.body, "never") {
			t.Fatalf("after the set-up (%d):\n%s", p.status, p.body)
		}
		if m, ok := e.sink.Last(u.Email); !ok || !strings.Contains(m.Text, "Passkey added: My phone") {
			t.Errorf("no notification of the new passkey: %+v", m)
		}
		if !auditHas(t, e, "passkey.added", "My phone") {
			t.Error("no audit event passkey.added")
		}
		if other.promptNone(app) == "" {
			t.Error("the other browser's session survived a 2-step change")
		}
		// The same authenticator cannot hold two passkeys of one account.
		if _, err := phone.Create(passkeyOptionsOn(t, p)); err == nil {
			t.Error("the set-up did not exclude the passkey this authenticator holds")
		}
		// Several per account.
		e.clock.Advance(time.Minute)
		key := passkeytest.New(e.issuer)
		p = b.setUpPasskey(p, key, "Security key")
		pks, err := e.store.ListPasskeys(ctx, u.ID)
		if err != nil || len(pks) != 2 || pks[0].Name != "My phone" || pks[1].Name != "Security key" ||
			string(pks[0].UserHandle) != string(pks[1].UserHandle) || strings.Contains(string(pks[0].UserHandle), u.ID) {
			t.Fatalf("stored passkeys: %+v %v", pks, err)
		}

		// A replayed set-up answer does not make another passkey (the
		// set-up was a 2-step change: the browser's handle, and with it
		// the form's CSRF token, moved on).
		e.clock.Advance(time.Minute)
		answer, _ := passkeytest.New(e.issuer).Create(passkeyOptionsOn(t, p))
		if q := b.submit(p, "/account/security/passkeys", url.Values{"credential": {answer}}); !q.at("/account/security/passkeys") {
			t.Fatalf("set-up: %s", q.url)
		}
		q := b.submit(p, "/account/security/passkeys", url.Values{"credential": {answer}})
		if q.status != 403 || !strings.Contains(q.body, "The form has expired") {
			t.Fatalf("replayed set-up: %d\n%s", q.status, q.body)
		}
		if pks, _ := e.store.ListPasskeys(ctx, u.ID); len(pks) != 3 {
			t.Fatalf("%d passkeys after a replay, want 3", len(pks))
		}
		p = b.get(e.issuer + "/account/security/passkeys")
		// Remove the third (an unnamed "Passkey").
		pks, _ = e.store.ListPasskeys(ctx, u.ID)
		p = b.post(e.issuer+"/account/security/passkeys/remove", url.Values{"csrf": {p.csrf(t)}, "id": {pks[2].ID}})
		if !strings.Contains(p.body, "The passkey is removed") || strings.Contains(p.body, "<td>Passkey</td>") {
			t.Fatalf("after remove:\n%s", p.body)
		}
		if m, _ := e.sink.Last(u.Email); !strings.Contains(m.Text, "Passkey removed: Passkey") {
			t.Errorf("no notification of the removal: %q", m.Text)
		}
		b.signOut()

		// Passwordless, verified by a real relying party.
		b2 := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		p = b2.get(authURL)
		answer, err = phone.Get(passkeyOptionsOn(t, p))
		if err != nil {
			t.Fatal(err)
		}
		p = b2.submit(p, "/login/passkey", url.Values{"credential": {answer}})
		_, idt, claims := app.exchange(p.code(t, state), verifier, nonce)
		if idt.Subject != u.ID || claims["acr"] != flow.ACRPhishingResistant || strings.Join(amrList(claims), " ") != "hwk user pin mfa" {
			t.Fatalf("passwordless claims: %v", claims)
		}
		p = b2.get(e.issuer + "/account/security")
		if !strings.Contains(p.body, "My phone — added") || strings.Contains(p.body, "My phone — added "+"never") {
			t.Errorf("security page after a passkey sign-in:\n%s", p.body)
		}
	})
}

func amrList(claims map[string]any) []string {
	var out []string
	l, _ := claims["amr"].([]any)
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestPasskeySSOUserRefused: an account that joined an organisation
// (single sign-on) is offered no passkeys and cannot set one up, remove
// one or sign in with one it set up before.
func TestPasskeySSOUserRefused(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, localhostIssuer)
		u := e.createUser("pk-sso@corp.example")
		ctx := context.Background()
		b := e.newBrowser()
		b.account("/account/security", u.Email, signInOpts{})
		p := b.reconfirmed("/account/security/passkeys", u.Email, signInOpts{})
		phone := passkeytest.New(e.issuer)
		p = b.setUpPasskey(p, phone, "Phone")
		if !strings.Contains(p.body, "Your passkey is set up") {
			t.Fatalf("set-up before joining the organisation:\n%s", p.body)
		}
		options := passkeyOptionsOn(t, p) // a fresh ceremony, answered below
		csrf := p.csrf(t)
		if _, err := e.store.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.OrgID = "org1"; return nil }); err != nil {
			t.Fatal(err)
		}
		pks, _ := e.store.ListPasskeys(ctx, u.ID)
		if len(pks) != 1 {
			t.Fatalf("%d passkeys", len(pks))
		}

		p = b.get(e.issuer + "/account/security")
		if !strings.Contains(p.body, "Your organisation confirms your identity.") || strings.Contains(p.body, "<h2>Passkeys</h2>") ||
			strings.Contains(p.body, "/account/security/passkeys") || strings.Contains(p.body, "passkey.js") {
			t.Fatalf("the SSO user's security page offers passkeys:\n%s", p.body)
		}
		if q := b.get(e.issuer + "/account/security/passkeys"); q.status != http.StatusForbidden || strings.Contains(q.body, "data-passkey") {
			t.Errorf("passkeys page for an SSO user: %d %s", q.status, q.url)
		}
		answer, err := passkeytest.New(e.issuer).Create(options)
		if err != nil {
			t.Fatal(err)
		}
		if q := b.post(e.issuer+"/account/security/passkeys", url.Values{"csrf": {csrf}, "name": {"Key"}, "credential": {answer}}); q.status != http.StatusForbidden {
			t.Errorf("set-up by an SSO user: %d %s", q.status, q.url)
		}
		if q := b.post(e.issuer+"/account/security/passkeys/remove", url.Values{"csrf": {csrf}, "id": {pks[0].ID}}); q.status != http.StatusForbidden {
			t.Errorf("removal by an SSO user: %d %s", q.status, q.url)
		}
		if after, _ := e.store.ListPasskeys(ctx, u.ID); len(after) != 1 || after[0].ID != pks[0].ID {
			t.Errorf("an SSO user's post changed the passkeys: %+v", after)
		}
		b.signOut()

		// The passkey set up before is not accepted at sign-in.
		app := e.newRP("shop")
		b2 := e.newBrowser()
		authURL, _, _, _ := app.authorizeURL()
		p = b2.get(authURL)
		answer, err = phone.Get(passkeyOptionsOn(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if q := b2.submit(p, "/login/passkey", url.Values{"credential": {answer}}); q.status != http.StatusUnauthorized || q.location != "" {
			t.Errorf("passkey sign-in of an SSO user: %d %s %s", q.status, q.url, q.location)
		}
	})
}
