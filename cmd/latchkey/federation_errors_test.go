package main

// Single sign-on error paths that a user can reach (login/federated.go):
// an organisation whose IdP is not set up correctly (issuer mismatch, a
// client secret that cannot be opened, an SSO user whose organisation is
// gone), an upstream error other than access_denied and a callback with a
// missing or forged code, an organisation that changes between
// /federation/start and /federation/callback, and an upstream state that
// expired. Each gives a clear page (never the internal-error page), is
// audited, and creates no user, no session and no code for the product.
// The upstream is federation/federationtest, whose answers the test
// controls.

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/federation"
	"github.com/latchkey/latchkey/federation/federationtest"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// What the user reads (login/federated.go; unexported there).
const (
	pageSSOUpstreamError = "Your organisation's sign-in service reported a problem. Go back to the application and try again."
	pageSSOStateBad      = "This sign-in link is not valid or has expired. Go back to the application and start again."
	pageSSONotConfigured = "Single sign-on for your organisation is not set up correctly. Contact your organisation's IT support."
	pageSSOChanged       = "This sign-in changed in another tab or window. Go back to the application and start again."
	pageInternal         = "Something went wrong on our side."

	// upstreamStateLifetime is login.upstreamStateTTL: how long one round
	// trip to the organisation's IdP may take.
	upstreamStateLifetime = 10 * time.Minute

	tamperDomain = "tamper.example"
	tamperEmail  = "tim@" + tamperDomain
)

// newTamperFed is our OP with the organisation Tamper (tamper.example),
// whose IdP is a federationtest provider answering for tim@tamper.example;
// more organisations may be added (extra gets the provider). up is our OP
// too: there is no upstream Latchkey.
func newTamperFed(t *testing.T, d storagetest.Dialect, extra func(*federationtest.Provider) []config.Organization) (*fed, *federationtest.Provider) {
	t.Helper()
	tp := federationtest.New(t.Cleanup, upClientID, upClientSecret)
	down := newTestEnv(t, d, func(c *config.Config) {
		c.Organizations = append(c.Organizations, config.Organization{Name: "Tamper", Domains: []string{tamperDomain},
			Issuer: tp.Issuer, ClientID: upClientID, ClientSecret: upClientSecret})
		if extra != nil {
			c.Organizations = append(c.Organizations, extra(tp)...)
		}
	})
	org, err := down.store.GetOrganizationByName(context.Background(), "Tamper")
	if err != nil {
		t.Fatal(err)
	}
	tp.SetClaims(map[string]any{"sub": "t-1", "email": tamperEmail, "name": "Tim", "auth_time": down.clock.Now().Unix()})
	return &fed{t: t, up: down, down: down, org: org, app: down.newRP("app")}, tp
}

// toCallback drives a sign-in of email in b through /federation/start and
// the upstream, and stops before our callback: it returns the callback
// URL (with a valid state) and the product's verifier, state and nonce.
func (f *fed) toCallback(b *fedBrowser, email string) (callback, verifier, state, nonce string) {
	f.t.Helper()
	b.stopAt = "/federation/callback"
	defer func() { b.stopAt = "" }()
	authURL, verifier, state, nonce := f.app.authorizeURL()
	p := b.signIn(authURL, email, email)
	if !strings.HasPrefix(p.location, f.down.issuer+"/federation/callback?") {
		f.t.Fatalf("expected a redirect to our callback, got %q (%s, %d):\n%s", p.location, p.url, p.status, p.body)
	}
	return p.location, verifier, state, nonce
}

// tally counts what a refused sign-in must not create.
type tally struct{ users, sessions int }

func (f *fed) tally() tally {
	f.t.Helper()
	ctx := context.Background()
	us, err := f.down.store.ListUsers(ctx, storage.ListOptions{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	n := tally{users: len(us)}
	for _, u := range us {
		ss, err := f.down.store.ListSessions(ctx, u.ID)
		if err != nil {
			f.t.Fatal(err)
		}
		n.sessions += len(ss)
	}
	return n
}

// refused checks a refused SSO sign-in: the status, the whole message on
// our error page (not the internal-error page), no redirect to the
// product (no code), an sso.failure audit with reason, no user or session
// more than before, and no session in this browser (prompt=none says
// login_required).
func (f *fed) refused(b *fedBrowser, p response, status int, msg, reason string, before tally) {
	t := f.t
	t.Helper()
	body := html.UnescapeString(p.body)
	if p.status != status || !strings.Contains(body, msg) || strings.Contains(body, pageInternal) {
		t.Fatalf("status %d (want %d), want the page %q; got on %s:\n%s", p.status, status, msg, p.url, p.body)
	}
	if p.location != "" || p.url.Host != host(f.down.issuer) {
		t.Fatalf("the refusal left our OP: %s -> %q", p.url, p.location)
	}
	if !auditHas(t, f.down, "sso.failure", reason) {
		t.Errorf("no sso.failure audit with %q", reason)
	}
	if after := f.tally(); after != before {
		t.Fatalf("a refused sign-in created users or sessions: before %+v, after %+v", before, after)
	}
	authURL, _, _, _ := f.app.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
	if got := b.get(authURL).rpError(); got != "login_required" {
		t.Fatalf("after the refusal, prompt=none in the same browser: %q (want login_required)", got)
	}
}

// TestFederationNotConfigured: an organisation whose IdP is not set up
// correctly gets the "not set up correctly" page, at /federation/start or
// at the callback: the upstream's discovery names another issuer; the
// stored client secret cannot be opened (sealed for another
// organisation), before the round trip or during it; an SSO user's
// organisation was deleted.
func TestFederationNotConfigured(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		var mismatch string
		f, tp := newTamperFed(t, d, func(tp *federationtest.Provider) []config.Organization {
			// The same provider under another name: its discovery says
			// http://127.0.0.1:port, not http://localhost:port.
			mismatch = strings.Replace(tp.Issuer, "127.0.0.1", "localhost", 1)
			return []config.Organization{{Name: "Mismatch", Domains: []string{"mismatch.example"}, Issuer: mismatch,
				ClientID: upClientID, ClientSecret: upClientSecret}}
		})
		ctx := context.Background()
		before := f.tally()

		// Issuer mismatch: refused at /federation/start, the user is never
		// sent to the upstream.
		b := f.newBrowser(tp.Issuer, mismatch)
		authURL, _, _, _ := f.app.authorizeURL()
		p := b.signIn(authURL, "mo@mismatch.example", "mo@mismatch.example")
		if p.url.Path != "/federation/start" || tp.LastAuthorize() != nil {
			t.Fatalf("issuer mismatch: ended on %s, upstream asked %v", p.url, tp.LastAuthorize())
		}
		f.refused(b, p, http.StatusBadGateway, pageSSONotConfigured, "upstream misconfigured", before)

		// The client secret cannot be opened: sealed under another
		// organisation's id (a row copied by hand). Refused at start.
		sealSecret := func(orgID string) {
			t.Helper()
			if _, err := f.down.store.UpdateOrganization(ctx, f.org.ID, func(o *storage.Organization) error {
				o.ClientSecretSealed = federation.SealSecret(f.down.kr, orgID, upClientSecret)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		sealSecret("another-organisation")
		b = f.newBrowser(tp.Issuer)
		authURL, _, _, _ = f.app.authorizeURL()
		p = b.signIn(authURL, tamperEmail, tamperEmail)
		if p.url.Path != "/federation/start" || tp.LastAuthorize() != nil {
			t.Fatalf("unreadable secret: ended on %s, upstream asked %v", p.url, tp.LastAuthorize())
		}
		f.refused(b, p, http.StatusBadGateway, pageSSONotConfigured, "upstream misconfigured", before)

		// … or it becomes unreadable during the round trip: refused at
		// the callback (the code is never exchanged).
		sealSecret(f.org.ID)
		b = f.newBrowser(tp.Issuer)
		callback, _, _, _ := f.toCallback(b, tamperEmail)
		sealSecret("another-organisation")
		f.refused(b, b.get(callback), http.StatusBadGateway, pageSSONotConfigured, "upstream misconfigured", before)

		// With the secret repaired the same sign-in works (the refusals
		// above were the secret's doing).
		sealSecret(f.org.ID)
		f.ssoSignIn(f.newBrowser(tp.Issuer), tamperEmail)
		tim, err := f.down.store.GetUserByEmail(ctx, tamperEmail)
		if err != nil || tim.OrgID != f.org.ID {
			t.Fatalf("repaired organisation: %+v, %v", tim, err)
		}

		// The organisation is deleted (its users are kept): its SSO user
		// is sent to /federation/start, which has no organisation to use.
		if err := f.down.store.DeleteOrganization(ctx, f.org.ID); err != nil {
			t.Fatal(err)
		}
		before = f.tally()
		b = f.newBrowser(tp.Issuer)
		authURL, _, _, _ = f.app.authorizeURL()
		p = b.signIn(authURL, tamperEmail, tamperEmail)
		if p.url.Path != "/federation/start" {
			t.Fatalf("organisation gone: ended on %s (%d)", p.url, p.status)
		}
		f.refused(b, p, http.StatusServiceUnavailable, pageSSONotConfigured, "organisation missing", before)
	})
}

// TestFederationUpstreamErrors: a callback with a valid state but an
// upstream error other than access_denied (with or without a code), no
// code, or a code the upstream never issued gets the "reported a problem"
// page; nothing is created.
func TestFederationUpstreamErrors(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f, tp := newTamperFed(t, d, nil)
		before := f.tally()
		parent := t
		for _, tc := range []struct {
			name   string
			change func(q url.Values)
			reason string
		}{
			{"server_error", func(q url.Values) {
				q.Del("code")
				q.Set("error", "server_error")
				q.Set("error_description", "down for maintenance")
			}, "upstream error: server_error: down for maintenance"},
			{"temporarily_unavailable", func(q url.Values) {
				q.Del("code")
				q.Set("error", "temporarily_unavailable")
			}, "upstream error: temporarily_unavailable"},
			{"error alongside a valid code", func(q url.Values) { q.Set("error", "server_error") },
				"upstream error: server_error"},
			{"no code", func(q url.Values) { q.Del("code") }, "upstream refused the code"},
			{"empty code", func(q url.Values) { q.Set("code", "") }, "upstream refused the code"},
			{"forged code", func(q url.Values) { q.Set("code", "forged-0123456789") }, "upstream refused the code"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f.t = t // the helpers fail this subtest
				defer func() { f.t = parent }()
				b := f.newBrowser(tp.Issuer)
				callback, _, _, _ := f.toCallback(b, tamperEmail)
				u, err := url.Parse(callback)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				tc.change(q)
				u.RawQuery = q.Encode()
				f.refused(b, b.get(u.String()), http.StatusBadGateway, pageSSOUpstreamError, tc.reason, before)
			})
		}
		// The upstream works: the refusals were the callback's doing.
		f.ssoSignIn(f.newBrowser(tp.Issuer), tamperEmail)
		if countUsers(t, f.down) != 1 {
			t.Fatalf("the untampered sign-in: %d users", countUsers(t, f.down))
		}
	})
}

// TestFederationOrgChanged: the organisation of a sign-in changes between
// /federation/start and the callback. The email's domain moved to another
// organisation: the "changed in another tab" page. The organisation was
// deleted — under an SSO user or a new (just-in-time) one —: the "not set
// up correctly" page, with nothing created and the state spent.
func TestFederationOrgChanged(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f, tp := newTamperFed(t, d, nil)
		ctx := context.Background()
		moveDomain := func(from, to, parked string) {
			t.Helper()
			set := func(id, domain string) {
				if _, err := f.down.store.UpdateOrganization(ctx, id, func(o *storage.Organization) error {
					o.Domains = []string{domain}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			set(from, parked) // first: a domain has one owner
			set(to, tamperDomain)
		}
		// Other uses the same IdP: only the organisation differs.
		now := f.down.clock.Now()
		other := storage.Organization{ID: storage.NewID(), Name: "Other", Domains: []string{"other.example"}, Issuer: tp.Issuer,
			ClientID: upClientID, Scopes: []string{"openid", "email", "profile"}, ClaimEmail: "email", ClaimName: "name",
			JITProvisioning: true, Source: "cli", CreatedAt: now, UpdatedAt: now}
		other.ClientSecretSealed = federation.SealSecret(f.down.kr, other.ID, upClientSecret)
		if _, err := f.down.store.CreateOrganization(ctx, other); err != nil {
			t.Fatal(err)
		}

		// A new user: the domain moves from Tamper to Other meanwhile.
		before := f.tally()
		b := f.newBrowser(tp.Issuer)
		callback, _, _, _ := f.toCallback(b, tamperEmail)
		moveDomain(f.org.ID, other.ID, "parked.example")
		f.refused(b, b.get(callback), http.StatusBadRequest, pageSSOChanged, "organisation of the sign-in changed", before)
		moveDomain(other.ID, f.org.ID, "other.example")

		// An SSO user of Tamper (signed in once), whose organisation is
		// deleted during the round trip.
		f.ssoSignIn(f.newBrowser(tp.Issuer), tamperEmail)
		before = f.tally()
		b = f.newBrowser(tp.Issuer)
		callback, _, _, _ = f.toCallback(b, tamperEmail)
		if err := f.down.store.DeleteOrganization(ctx, f.org.ID); err != nil {
			t.Fatal(err)
		}
		f.refused(b, b.get(callback), http.StatusServiceUnavailable, pageSSONotConfigured, "organisation missing", before)

		// A new user of Other, whose organisation is deleted during the
		// round trip: no organisation owns the domain any more, but the
		// user is told SSO broke rather than asked for a password of an
		// account that does not exist.
		before = f.tally()
		b = f.newBrowser(tp.Issuer)
		callback, _, _, _ = f.toCallback(b, "oz@other.example")
		if err := f.down.store.DeleteOrganization(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		f.refused(b, b.get(callback), http.StatusServiceUnavailable, pageSSONotConfigured, "organisation missing", before)
		if p := b.get(callback); p.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(p.body), "already been used") {
			t.Fatalf("the callback again: %d\n%s", p.status, p.body)
		}
	})
}

// TestFederationUpstreamStateExpiry: a round trip to the organisation's
// IdP is valid for 10 minutes (through the last instant); one second more
// and the callback is refused with the "not valid or has expired" page —
// not the page of an expired sign-in (the auth request lives longer), not
// an internal error — and nothing is created.
func TestFederationUpstreamStateExpiry(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f, tp := newTamperFed(t, d, nil)
		before := f.tally()

		b := f.newBrowser(tp.Issuer)
		callback, _, _, _ := f.toCallback(b, tamperEmail)
		f.down.clock.Advance(upstreamStateLifetime + time.Second)
		p := b.get(callback)
		if strings.Contains(html.UnescapeString(p.body), "This sign-in has expired or is unknown") {
			t.Fatalf("the auth request expired, not the upstream state: the test's times are wrong")
		}
		f.refused(b, p, http.StatusBadRequest, pageSSOStateBad, "unknown or expired state", before)

		// At exactly the lifetime the callback still works.
		b = f.newBrowser(tp.Issuer)
		callback, verifier, state, nonce := f.toCallback(b, tamperEmail)
		f.down.clock.Advance(upstreamStateLifetime)
		p = b.get(callback)
		if _, _, c := f.app.exchange(p.code(t, state), verifier, nonce); c["email"] != tamperEmail {
			t.Fatalf("sign-in at the state's last instant: %v", c["email"])
		}
	})
}
