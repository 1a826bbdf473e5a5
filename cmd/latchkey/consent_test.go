package main

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestThirdPartyConsent (issue 12 item 11): a third-party client shows a
// consent page in plain words; the answer is remembered per user, client
// and scopes; prompt=consent asks again; prompt=none cannot ask; a new
// scope asks; the Devices page lists the consent and takes it back; a
// denial is access_denied; first-party clients never ask.
func TestThirdPartyConsent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("consent@example.com")
		third := e.newRP("partner", func(c *storage.Client) { c.ThirdParty, c.Name = true, "Partner Tool" })
		first := e.newRP("own")
		b := e.newBrowser()

		// First-party: never a consent page.
		b.signInRP(first, u.Email, signInOpts{})

		// Third-party: asked after the sign-in, in words.
		authURL, verifier, state, nonce := third.authorizeURL()
		p := b.get(authURL)
		if !p.at("/login/consent") {
			t.Fatalf("no consent page: %s %q", p.url, p.location)
		}
		for _, w := range []string{"Partner Tool", "see your email address", "see your name", "stay signed in", "Allow", "Deny"} {
			if !strings.Contains(p.body, w) {
				t.Errorf("consent page lacks %q:\n%s", w, p.body)
			}
		}
		// prompt=none cannot ask: consent_required.
		noneURL, _, _, _ := third.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
		if got := b.get(noneURL).rpError(); got != "consent_required" {
			t.Fatalf("prompt=none before consent: %q", got)
		}
		p = b.submit(p, "/login/consent", url.Values{"choice": {"allow"}})
		third.exchange(p.code(t, state), verifier, nonce)
		if !slices.Contains(e.auditEvents(u.ID), "consent.granted") {
			t.Errorf("audit: %v", e.auditEvents(u.ID))
		}

		// Remembered: the next sign-in, silent ones too, go straight back.
		if got := b.promptNone(third); got != "" {
			t.Fatalf("prompt=none after consent: %q", got)
		}
		// prompt=consent always asks.
		authURL, _, _, _ = third.authorizeURL(oauth2.SetAuthURLParam("prompt", "consent"))
		if p := b.get(authURL); !p.at("/login/consent") {
			t.Fatalf("prompt=consent: %s %d\n%s", p.url, p.status, p.body)
		}
		// A scope not allowed yet asks.
		authURL, _, _, _ = third.authorizeURL(oauth2.SetAuthURLParam("scope", "openid email privacy"))
		p = b.get(authURL)
		if !p.at("/login/consent") || !strings.Contains(p.body, "read and change your privacy settings") {
			t.Fatalf("new scope: %s", p.url)
		}
		// Deny: access_denied to the client.
		if got := b.submit(p, "/login/consent", url.Values{"choice": {"deny"}}).rpError(); got != "access_denied" {
			t.Fatalf("deny: %q", got)
		}

		// The Devices page lists it under the product and takes it back.
		ab := e.newBrowser()
		p = ab.account("/account/devices", u.Email, signInOpts{})
		if !strings.Contains(p.body, "Partner Tool") || !strings.Contains(p.body, "allowed to confirm who you are") {
			t.Fatalf("devices page:\n%s", p.body)
		}
		ab.post(e.issuer+"/account/devices/remove", url.Values{"csrf": {p.csrf(t)}, "kind": {"consent"}, "id": {"partner"}})
		if _, err := e.store.GetConsent(t.Context(), u.ID, "partner"); err == nil {
			t.Fatal("consent still stored")
		}
		if got := b.promptNone(third); got != "consent_required" {
			t.Fatalf("after removal: %q", got)
		}
		// And the first-party client was never asked.
		if got := b.promptNone(first); got != "" {
			t.Fatalf("first party: %q", got)
		}
	})
}
