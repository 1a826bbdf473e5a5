package login

// Failures from elsewhere never lock the owner out (issue #10 §2, OWASP
// "device cookies"): a browser that has signed in as the user answers for
// its own failures only; any other browser waits at most a minute however
// long the storm lasts.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestStormDoesNotLockOutOwner: 200 wrong passwords from address A (at
// once, then one more every 15 minutes for a day); the owner's known
// browser at address B signs in at once every time, also after signing
// out; a new browser at B waits at most a minute, then gets in.
func TestStormDoesNotLockOutOwner(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("owner@example.com")
		app := e.newRP("app")

		owner := e.newBrowser()
		owner.ip = "198.51.100.7" // B
		owner.signIn(first(app.authorizeURL()), u.Email, signInOpts{})
		owner.signOut()

		attacker := e.newBrowser()
		attacker.ip = "203.0.113.66" // A
		// attack starts a fresh sign-in (an auth request lives 30 minutes)
		// and sends n wrong passwords at once.
		attack := func(n int) map[int]int {
			p := attacker.get(first(app.authorizeURL()))
			p = attacker.submit(p, "/login/identify", url.Values{"email": {u.Email}})
			return attacker.storm(p, "/login/password", url.Values{"password": {"wrong"}}, n)
		}
		if st := attack(200); st[http.StatusTooManyRequests] == 0 {
			t.Fatalf("the storm was never throttled: %v", st)
		}
		for round := range 96 { // a day of one wrong password every 15 minutes
			e.clock.Advance(15 * time.Minute)
			attack(1)
			if round%24 != 0 {
				continue
			}
			// The owner's browser signs in at once.
			authURL, state := app.authorizeURL()
			q := owner.identifyAndPassword(owner.get(authURL), u.Email)
			if q.status == http.StatusTooManyRequests || q.at("/login/password") {
				t.Fatalf("round %d: the owner's known browser was delayed: %s (%d)\n%s", round, q.url, q.status, q.body)
			}
			owner.drive(q, u.Email, signInOpts{}).code(t, state)
			owner.signOut()
		}

		// A new browser at B is throttled by the storm, but for a minute at
		// most.
		stranger := e.newBrowser()
		stranger.ip = "198.51.100.7"
		q := stranger.get(first(app.authorizeURL()))
		q = stranger.submit(q, "/login/identify", url.Values{"email": {u.Email}})
		r := stranger.submit(q, "/login/password", url.Values{"password": {testPassword}})
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("a new browser right after the storm: %d, want 429 (the storm counts for browsers the owner never used)", r.status)
		}
		if !strings.Contains(r.body, "seconds.") && !strings.Contains(r.body, "in 1 minute.") {
			t.Fatalf("an unknown browser must wait at most a minute:\n%s", r.body)
		}
		e.clock.Advance(time.Minute)
		if r = stranger.submit(q, "/login/password", url.Values{"password": {testPassword}}); !r.at("/login/code") {
			t.Fatalf("an unknown browser with the right password after a minute: %s (%d)\n%s", r.url, r.status, r.body)
		}
	})
}

// TestSharedAddressDoesNotShareLimits: wrong passwords for ten accounts
// from one address (one NAT, one proxy) do not throttle another account's
// sign-in from that address.
func TestSharedAddressDoesNotShareLimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	app := e.newRP("app")
	victim := e.createUser("victim@example.com")
	b := e.newBrowser()
	b.ip = "192.0.2.10"
	for i := range 10 {
		email := "user" + string(rune('a'+i)) + "@example.com"
		e.createUser(email)
		p := b.get(first(app.authorizeURL()))
		p = b.submit(p, "/login/identify", url.Values{"email": {email}})
		for range 6 {
			p = b.submit(p, "/login/password", url.Values{"password": {"wrong"}})
		}
		if p.status != http.StatusTooManyRequests {
			t.Fatalf("%s: six wrong passwords were not throttled (%d)", email, p.status)
		}
	}
	other := e.newBrowser()
	other.ip = "192.0.2.10"
	p := other.get(first(app.authorizeURL()))
	if p = other.identifyAndPassword(p, victim.Email); !p.at("/login/code") {
		t.Fatalf("another account from the same address: %s (%d)\n%s", p.url, p.status, p.body)
	}
}
