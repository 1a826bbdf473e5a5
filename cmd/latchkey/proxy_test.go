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
