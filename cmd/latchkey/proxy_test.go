package main

// The client address behind reverse proxies (config trusted_proxies,
// package clientip): what the throttle, the audit log and the mails see.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// forgotStorm asks for password resets from b until one is refused, at
// most n times, and returns how many were answered before.
func forgotStorm(t *testing.T, b *browser, r *rp, n int) int {
	t.Helper()
	authURL, _, _, _ := r.authorizeURL()
	p := b.get(authURL)
	if !p.at("/login/identify") {
		t.Fatalf("not on the identifier page: %s", p.url)
	}
	p = b.get(b.e.issuer + "/forgot?id=" + url.QueryEscape(p.url.Query().Get("id")))
	for i := range n {
		q := b.submit(p, "/forgot", url.Values{"email": {"someone@example.com"}})
		if q.status == http.StatusTooManyRequests {
			return i
		}
	}
	return n
}

// TestTrustedProxySeparatesClients: behind a trusted proxy (the test
// client's 127.0.0.1), two people with different forwarded addresses do
// not share the per-address limit, and the audit log names each one's
// own address.
func TestTrustedProxySeparatesClients(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} })
		app := e.newRP("app")
		a, b := e.newBrowser(), e.newBrowser()
		a.xff, b.xff = "203.0.113.10", "198.51.100.20"
		if n := forgotStorm(t, a, app, 10); n != 5 {
			t.Fatalf("A: %d resets before the limit, want 5", n)
		}
		if n := forgotStorm(t, b, app, 1); n != 1 {
			t.Fatal("B was throttled by A's requests: the proxy's address was shared")
		}
		// A's sign-in is audited with A's address.
		u := e.createUser("proxied@example.com")
		authURL, _, state, _ := app.authorizeURL()
		a.signIn(authURL, u.Email, signInOpts{}).code(t, state)
		evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: u.ID})
		if err != nil || len(evs) == 0 {
			t.Fatalf("audit: %v %v", evs, err)
		}
		for _, ev := range evs {
			if ev.IP == "" && strings.HasSuffix(ev.Event, ".sent") {
				continue // the outbox worker's, not a request's
			}
			if ev.IP != "203.0.113.10" {
				t.Errorf("audit %s from %q, want the forwarded address 203.0.113.10", ev.Event, ev.IP)
			}
		}
	})
}

// TestForgedForwardedForIgnored: without trusted proxies a client that
// writes X-Forwarded-For itself does not escape the per-address limit.
func TestForgedForwardedForIgnored(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	app := e.newRP("app")
	a := e.newBrowser()
	a.xff = "203.0.113.10"
	if n := forgotStorm(t, a, app, 10); n != 5 {
		t.Fatalf("%d resets before the limit, want 5", n)
	}
	b := e.newBrowser()
	b.xff = "198.51.100.20" // forged: the peer is the same
	if n := forgotStorm(t, b, app, 1); n != 0 {
		t.Fatal("a forged X-Forwarded-For escaped the per-address limit")
	}
}

// TestTrustedProxyAddressInMails: behind a trusted proxy the mails that
// name an address (the sign-in code, a change's notice) and the Devices
// page name the forwarded client's address, never the proxy's; without
// trusted proxies a client's own X-Forwarded-For is not believed there.
func TestTrustedProxyAddressInMails(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} })
		u := e.createUser("mail-proxied@example.com")
		b := e.newBrowser()
		b.xff = "198.51.100.7, 203.0.113.10" // the proxy appended the client's address
		const want = "IP address 203.0.113.10"
		mailSays := func(what string) {
			t.Helper()
			m, ok := e.sink.Last(u.Email)
			if !ok || !strings.Contains(m.Text, want) || strings.Contains(m.Text, "IP address 127.0.0.1") || strings.Contains(m.Text, "198.51.100.7") {
				t.Errorf("%s mail does not name the forwarded address:\n%s", what, m.Text)
			}
		}
		b.account("/account/security", u.Email, signInOpts{})
		mailSays("the sign-in code")
		p := b.reconfirmed("/account/security/password", u.Email, signInOpts{})
		p = b.submit(p, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
		if !strings.Contains(p.body, "Your password is changed.") {
			t.Fatalf("password change: %d", p.status)
		}
		mailSays("the password change's notice")
		if p := b.get(e.issuer + "/account/devices"); !strings.Contains(p.body, "from 203.0.113.10") || strings.Contains(p.body, "from 127.0.0.1") {
			t.Errorf("devices page:\n%s", p.body)
		}

		// Without trusted proxies the header is the client's own word.
		e2 := newTestEnv(t, d)
		v := e2.createUser("forged@example.com")
		b2 := e2.newBrowser()
		b2.xff = "203.0.113.10"
		b2.account("/account/security", v.Email, signInOpts{})
		if m, _ := e2.sink.Last(v.Email); !strings.Contains(m.Text, "IP address 127.0.0.1") || strings.Contains(m.Text, "203.0.113.10") {
			t.Errorf("a forged X-Forwarded-For reached the mail:\n%s", m.Text)
		}
	})
}
