package creds

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// countDigests counts Digest calls of the factor verifier.
type countDigests struct {
	FactorVerifier
	n atomic.Int64
}

func (c *countDigests) Digest(a, b []byte) bool {
	c.n.Add(1)
	return c.FactorVerifier.Digest(a, b)
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	s     *Service
	store *storage.Store
	kr    *keyring.Keyring
	clock *testClock
}

func newFixture(t *testing.T, d storagetest.Dialect, v Verifier) *fixture {
	t.Helper()
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := d.Open(t)
	clk := &testClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	s, err := New(Config{Issuer: "http://localhost"}, Deps{Store: st, Keyring: kr, Now: clk.Now, Logger: log,
		Hasher: factor.NewPasswordHasher(factor.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, store: st, kr: kr, clock: clk}
}

func forEachDialect(t *testing.T, fn func(t *testing.T, d storagetest.Dialect)) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// TestEmailCodeAttemptCountedBeforeCompare: an email code's own budget of
// five tries holds against concurrent guesses without the throttle: the
// code is compared only after its attempt was counted, so 50 concurrent
// wrong codes make exactly 5 comparisons and the right code then fails.
func TestEmailCodeAttemptCountedBeforeCompare(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		v := &countDigests{}
		f := newFixture(t, d, v)
		ctx := context.Background()
		browser := []byte("browser-digest")
		now := f.clock.Now()
		if _, err := f.store.CreateEmailCode(ctx, storage.EmailCode{UserID: "u1", Purpose: PurposeSignin, ContextID: "ar1",
			BrowserHash: browser, CodeHash: f.kr.MACString(keyring.PurposeEmailCode, "123456"),
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for range 50 {
			wg.Go(func() {
				ok, err := f.s.VerifyEmailCode(ctx, "u1", PurposeSignin, "ar1", "654321", browser)
				if err != nil {
					t.Error(err)
				}
				if ok {
					accepted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := v.n.Load(); n != MaxCodeAttempts {
			t.Errorf("%d comparisons for 50 concurrent wrong codes, want %d", n, MaxCodeAttempts)
		}
		if accepted.Load() != 0 {
			t.Fatal("a wrong code was accepted")
		}
		ok, err := f.s.VerifyEmailCode(ctx, "u1", PurposeSignin, "ar1", "123456", browser)
		if err != nil || ok {
			t.Fatalf("right code after five wrong ones: %v, %v; want refused", ok, err)
		}
	})
}

// TestEmailCodeUsedOnce: of concurrent right codes exactly one wins.
func TestEmailCodeUsedOnce(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFixture(t, d, nil)
		ctx := context.Background()
		browser := []byte("browser-digest")
		now := f.clock.Now()
		if _, err := f.store.CreateEmailCode(ctx, storage.EmailCode{UserID: "u1", Purpose: PurposeSignin, ContextID: "ar1",
			BrowserHash: browser, CodeHash: f.kr.MACString(keyring.PurposeEmailCode, "123456"),
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for range 4 {
			wg.Go(func() {
				ok, err := f.s.VerifyEmailCode(ctx, "u1", PurposeSignin, "ar1", "123456", browser)
				if err != nil && !errors.Is(err, storage.ErrConflict) {
					t.Error(err)
				}
				if ok {
					accepted.Add(1)
				}
			})
		}
		wg.Wait()
		if accepted.Load() != 1 {
			t.Fatalf("%d acceptances of one code, want 1", accepted.Load())
		}
	})
}
