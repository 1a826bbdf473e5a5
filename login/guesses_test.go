package login

// Concurrent guesses (issue #10 §1): however many wrong guesses arrive at
// once — in one browser, from one address, on one or several instances —
// the expensive or secret-revealing check runs at most as often as the
// limits allow one by one. The checks are counted by a Verifier wrapped
// around login/factor's.

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// countingVerifier counts the checks of each kind.
type countingVerifier struct {
	inner                         creds.Verifier
	password, dummy, totp, digest atomic.Int64
}

func newCountingVerifier() *countingVerifier {
	return &countingVerifier{inner: creds.FactorVerifier{Hasher: factor.NewPasswordHasher(testHashParams)}}
}

func (v *countingVerifier) Password(phc, pw string) (bool, bool, error) {
	v.password.Add(1)
	return v.inner.Password(phc, pw)
}

func (v *countingVerifier) DummyPassword(pw string) {
	v.dummy.Add(1)
	v.inner.DummyPassword(pw)
}

func (v *countingVerifier) TOTP(seed []byte, in string, now time.Time, last int64) (int64, bool) {
	v.totp.Add(1)
	return v.inner.TOTP(seed, in, now, last)
}

func (v *countingVerifier) Digest(a, b []byte) bool {
	v.digest.Add(1)
	return v.inner.Digest(a, b)
}

// storm posts the page's form whose action is action n times at once from
// browser b, with fields, and returns the count of each status (of the
// page each POST ends on: a failed POST redirects to its page, which
// shows the status its POST handed it). Each request carries b's cookies
// in a jar of its own, as tabs of one browser that do not see each
// other's one-time page messages.
func (b *browser) storm(p response, action string, fields url.Values, n int) map[int]int {
	b.e.t.Helper()
	var form url.Values
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		if html.UnescapeString(m[1]) != action {
			continue
		}
		form = url.Values{}
		for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
			form.Set(h[1], html.UnescapeString(h[2]))
		}
		break
	}
	if form == nil {
		b.e.t.Fatalf("no form %q on %s", action, p.url)
	}
	for k, v := range fields {
		form[k] = v
	}
	target := p.url.Scheme + "://" + p.url.Host + action
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", b.ua)
			if b.ip != "" {
				req.Header.Set("X-Forwarded-For", b.ip)
			}
			root, _ := url.Parse(target)
			root.Path, root.RawQuery = "/", ""
			jar, _ := cookiejar.New(nil)
			jar.SetCookies(root, b.client.Jar.Cookies(root))
			client := &http.Client{Jar: jar, CheckRedirect: b.client.CheckRedirect}
			resp, err := client.Do(req)
			if err != nil {
				b.e.t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return statuses
}

const stormSize = 60

// TestConcurrentPasswordGuesses: 60 wrong passwords at once are checked
// by argon2id at most 5 times; the others are refused with 429 before
// any check. Then the same across two instances on one database.
func TestConcurrentPasswordGuesses(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		v := newCountingVerifier()
		e := newTestEnvWith(t, d, envSetup{verifier: v})
		u := e.createUser("storm@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		p := b.get(first(app.authorizeURL()))
		p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
		st := b.storm(p, "/login/password", url.Values{"password": {"wrong password, sorry"}}, stormSize)
		if got := v.password.Load() + v.dummy.Load(); got > 5 {
			t.Errorf("%d password checks for %d concurrent guesses, want at most 5", got, stormSize)
		}
		if st[http.StatusTooManyRequests] < stormSize-5 || st[http.StatusUnauthorized] > 5 {
			t.Errorf("statuses %v, want at most 5×401 and the rest 429", st)
		}
	})
}

// TestConcurrentPasswordGuessesAcrossInstances: three instances on one
// database share the count.
func TestConcurrentPasswordGuessesAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		db := d.URL(t)
		var envs []*testEnv
		var vs []*countingVerifier
		for range 3 {
			s := storagetest.OpenURL(t, db)
			v := newCountingVerifier()
			envs = append(envs, newTestEnvWith(t, d, envSetup{verifier: v, dbStore: s}))
			vs = append(vs, v)
		}
		e := envs[0]
		u := e.createUser("storm@example.com")
		app := e.newRP("app")
		// One browser (its cookies go to every instance on 127.0.0.1).
		b := e.newBrowser()
		p := b.get(first(app.authorizeURL()))
		p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
		var wg sync.WaitGroup
		for _, other := range envs {
			q := p
			q.url = mustURL(t, other.issuer+p.url.Path)
			wg.Go(func() { b.storm(q, "/login/password", url.Values{"password": {"wrong"}}, stormSize/3) })
		}
		wg.Wait()
		var got int64
		for _, v := range vs {
			got += v.password.Load() + v.dummy.Load()
		}
		if got > 5 {
			t.Errorf("%d password checks across 3 instances for %d guesses, want at most 5", got, stormSize)
		}
	})
}

// TestConcurrentSecondStepGuesses: wrong authenticator, backup and email
// codes sent at once are each checked at most 5 times.
func TestConcurrentSecondStepGuesses(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		for _, tc := range []struct {
			method string
			count  func(*countingVerifier) int64
		}{
			{"totp", func(v *countingVerifier) int64 { return v.totp.Load() }},
			{"backup", func(v *countingVerifier) int64 { return v.digest.Load() }},
			{"email", func(v *countingVerifier) int64 { return v.digest.Load() }},
		} {
			t.Run(tc.method, func(t *testing.T) {
				v := newCountingVerifier()
				e := newTestEnvWith(t, d, envSetup{verifier: v})
				u := e.createUser(tc.method + "@example.com")
				if tc.method != "email" {
					e.enrolTOTP(u)
					if err := e.store.SetBackupCode(t.Context(), storage.BackupCode{UserID: u.ID,
						CodeHash: e.kr.MACString(keyring.PurposeBackupCode, "0000000000000000"), CreatedAt: e.clock.Now()}, storage.BackupCodeShow{}); err != nil {
						t.Fatal(err)
					}
				}
				app := e.newRP("app")
				b := e.newBrowser()
				authURL, _ := app.authorizeURL()
				p := b.identifyAndPassword(b.get(authURL), u.Email)
				if tc.method != "totp" {
					p = b.get(e.issuer + "/login/code?id=" + p.url.Query().Get("id") + "&method=" + tc.method)
				}
				if !p.at("/login/code") || !strings.Contains(p.body, `name="method" value="`+tc.method+`"`) {
					t.Fatalf("not on the %s code page: %s\n%s", tc.method, p.url, p.body)
				}
				wrong := "000000"
				if tc.method == "backup" {
					wrong = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
				} else if tc.method == "email" {
					wrong = wrongCode(e.mailCode(u.Email))
				}
				st := b.storm(p, "/login/code", url.Values{"code": {wrong}}, stormSize)
				if got := tc.count(v); got > 5 {
					t.Errorf("%d %s checks for %d concurrent guesses, want at most 5", got, tc.method, stormSize)
				}
				if st[http.StatusUnauthorized] > 5 {
					t.Errorf("statuses %v, want at most 5 refusals after a check", st)
				}
			})
		}
	})
}

func first(a, _ string) string { return a }

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
