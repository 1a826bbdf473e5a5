package login

// Guessing device user codes (RFC 8628 §5.1; issue #10 §1 and §7): each
// guess is counted before any lookup — per address, for everybody
// without a session at once, and against the authorization it could aim
// at — and the codes are stored as HMACs only.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// countingStore counts the device user-code lookups the handler makes.
type countingStore struct {
	*storage.Store
	lookups atomic.Int64
}

func (s *countingStore) GuessDeviceUserCode(ctx context.Context, half []byte, now time.Time, max int) ([]storage.DeviceAuthorization, error) {
	s.lookups.Add(1)
	return s.Store.GuessDeviceUserCode(ctx, half, now, max)
}

// newDeviceAuthorization stores a pending authorization with user code
// code, as the OP does.
func (e *testEnv) newDeviceAuthorization(client, code string) storage.DeviceAuthorization {
	e.t.Helper()
	full, half := e.kr.UserCodeDigests(code)
	now := e.clock.Now()
	d, err := e.store.CreateDeviceAuthorization(context.Background(), storage.DeviceAuthorization{
		DeviceCodeHash: e.kr.MACString(keyring.PurposeDeviceCode, code), UserCodeHash: full, UserCodeHalf: half, ClientID: client,
		Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// TestConcurrentDeviceCodeGuesses: 60 wrong user codes at once from one
// address make at most 5 lookups.
func TestConcurrentDeviceCodeGuesses(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		var cs *countingStore
		e := newTestEnvWith(t, d, envSetup{wrap: func(s *storage.Store) Store { cs = &countingStore{Store: s}; return cs }})
		e.newRP("tv")
		e.newDeviceAuthorization("tv", "BCDF-GHJK")
		b := e.newBrowser()
		p := b.get(e.issuer + "/device")
		st := b.storm(p, "/device", url.Values{"user_code": {"BCDF-XXXX"}}, stormSize)
		if n := cs.lookups.Load(); n > 5 {
			t.Errorf("%d user-code lookups for %d concurrent guesses, want at most 5", n, stormSize)
		}
		if st[http.StatusTooManyRequests] < stormSize-5 {
			t.Errorf("statuses %v", st)
		}
	})
}

// TestDeviceCodeGuessesPerAuthorization: wrong guesses that share the
// first half of a live code (someone saw part of it), each from another
// address, put that authorization out of reach after five; others are
// not affected.
func TestDeviceCodeGuessesPerAuthorization(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	e.newRP("tv")
	e.newDeviceAuthorization("tv", "BCDF-GHJK")
	e.newDeviceAuthorization("tv", "MNPQ-RSTV")
	enter := func(ip, code string) response {
		b := e.newBrowser()
		b.ip = ip
		return b.submit(b.get(e.issuer+"/device"), "/device", url.Values{"user_code": {code}})
	}
	for i := range 5 {
		if p := enter(fmt.Sprintf("192.0.2.%d", i+1), fmt.Sprintf("BCDF-GHJ%c", "LMNPQ"[i])); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong guess %d: %d", i, p.status)
		}
	}
	if p := enter("198.51.100.1", "BCDF-GHJK"); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("the right code after five aimed guesses: %s (%d), want refused", p.url, p.status)
	}
	if p := enter("198.51.100.2", "mnpq-rstv"); !p.at("/login/identify") {
		t.Fatalf("another authorization's code: %s (%d)", p.url, p.status)
	}
}

// TestDeviceCodeGuessesGlobal: guesses spread over a thousand addresses
// hold up every browser without a session — but not a signed-in one, so
// nobody can lock users out of the page.
func TestDeviceCodeGuessesGlobal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("tv-owner@example.com")
	app := e.newRP("app")
	e.newRP("tv")
	e.newDeviceAuthorization("tv", "BCDF-GHJK")
	// Signed in before the storm.
	signedIn := e.newBrowser()
	signedIn.signIn(first(app.authorizeURL()), u.Email, signInOpts{})

	b := e.newBrowser()
	p := b.get(e.issuer + "/device")
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range 1000 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := *b
			c.ip = fmt.Sprintf("10.%d.%d.1", i/250, i%250)
			c.storm(p, "/device", url.Values{"user_code": {"ZZZZ-ZZZZ"}}, 1)
		})
	}
	wg.Wait()
	stranger := e.newBrowser()
	stranger.ip = "203.0.113.200"
	q := stranger.submit(stranger.get(e.issuer+"/device"), "/device", url.Values{"user_code": {"BCDF-GHJK"}})
	if q.status != http.StatusTooManyRequests || !strings.Contains(q.body, "sign in first") {
		t.Fatalf("a browser without a session after 1000 wrong guesses: %d, want 429 with advice\n%s", q.status, q.body)
	}
	signedIn.ip = "203.0.113.201"
	if q = signedIn.submit(signedIn.get(e.issuer+"/device"), "/device", url.Values{"user_code": {"BCDF-GHJK"}}); q.status == http.StatusTooManyRequests {
		t.Fatalf("a signed-in browser was held up by everybody else's guesses: %s", q.body)
	}
}
