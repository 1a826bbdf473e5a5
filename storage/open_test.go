package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[a-z2-7]{26}$`) // 130 bits of base32, no ':'
	seen := make(map[string]bool)
	for range 1000 {
		id := storage.NewID()
		if !re.MatchString(id) {
			t.Fatalf("NewID() = %q", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestOpenURLs(t *testing.T) {
	ctx := t.Context()
	for _, bad := range []string{
		"", "mysql://x", "sqlite:", "sqlite:/tmp/a.db?mode=ro", "file:/tmp/a.db",
	} {
		if s, err := storage.Open(ctx, bad, storage.Options{}); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	// Parent directories are created; the sqlite:/// spelling is accepted.
	dir := t.TempDir()
	for _, u := range []string{
		"sqlite:" + filepath.Join(dir, "a", "b", "one.db"),
		"sqlite://" + filepath.Join(dir, "c", "two.db"),
	} {
		s, err := storage.Open(ctx, u, storage.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		ok(t, s.Migrate(ctx))
		ok(t, s.Close())
	}
	for _, f := range []string{"a/b/one.db", "c/two.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// In memory: one connection, fully usable.
	s, err := storage.Open(ctx, "sqlite::memory:", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok(t, s.Migrate(ctx))
	newUser(t, s, "mem@example.com")
	equal(t, s.Dialect(), storage.DialectSQLite)
}

// TestConcurrentMigrate: several instances starting at once against one
// empty database all succeed, and the schema is created once.
func TestConcurrentMigrate(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			u := d.URL(t)
			const n = 4
			stores := make([]*storage.Store, n)
			for i := range stores {
				stores[i] = must(storage.Open(t.Context(), u, storage.Options{}))(t)
				t.Cleanup(func() { _ = stores[i].Close() })
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
			}
			wg.Wait()
			ok(t, errors.Join(errs...))
			newUser(t, stores[0], "m@example.com")
			must(stores[n-1].GetUserByEmail(t.Context(), "M@example.com"))(t)
		})
	}
}

// storeMigratedTo opens a database of d as a build that knew migrations up
// to id left it.
func storeMigratedTo(t *testing.T, d storagetest.Dialect, id string) *storage.Store {
	t.Helper()
	s := must(storage.Open(t.Context(), d.URL(t), storage.Options{}))(t)
	t.Cleanup(func() { _ = s.Close() })
	ok(t, storage.MigrateUpTo(t.Context(), s, id))
	return s
}

// TestUpgradeKeepsOldRefreshTokens: a database last migrated before
// 0012 holds refresh tokens whose values name no family (issued before
// they did); after the upgrade they are still found by digest alone, and
// rotate into tokens found by their family, which the digest alone no
// longer finds. Their families got rows (0013): they are listed and
// revoked by user and by session as the new ones are.
func TestUpgradeKeepsOldRefreshTokens(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storeMigratedTo(t, d, "0011_refresh_family_used")
			u := newUser(t, s, "up@example.com")
			old := must(storage.InsertOldRefreshToken(ctx, s, storage.RefreshToken{
				ID: "old-0", TokenHash: digest("old-0"), ClientID: "app", UserID: u.ID, SessionID: "s1",
				Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd"}, AuthTime: at(0), CreatedAt: at(0),
			}))(t)
			other := must(storage.InsertOldRefreshToken(ctx, s, storage.RefreshToken{
				ID: "other-0", TokenHash: digest("other-0"), ClientID: "app", UserID: u.ID, SessionID: "s2",
				Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd"}, AuthTime: at(0), CreatedAt: at(0),
			}))(t)
			ok(t, s.Migrate(ctx))
			fams := must(s.ListRefreshFamilies(ctx, u.ID))(t)
			equal(t, len(fams), 2)

			// The old token: by digest alone, and by its family.
			equal(t, must(s.GetRefreshTokenByHash(ctx, "", digest("old-0")))(t), old)
			equal(t, must(s.GetRefreshTokenByHash(ctx, old.FamilyID, digest("old-0")))(t), old)
			rt, gu, err := s.GetRefreshGrant(ctx, "", digest("old-0"))
			ok(t, err)
			equal(t, rt, old)
			equal(t, gu.ID, u.ID)

			// Its successor and a new family: by their family only.
			next := rotate(t, s, old, "old-1", at(time.Hour))
			mine := newFamily(t, s, "mine", u.ID, "s1", "app")
			for _, rt := range []storage.RefreshToken{next, mine} {
				equal(t, must(s.GetRefreshTokenByHash(ctx, rt.FamilyID, rt.TokenHash))(t), rt)
				got, gu, err := s.GetRefreshGrant(ctx, rt.FamilyID, rt.TokenHash)
				ok(t, err)
				equal(t, got, rt)
				equal(t, gu.ID, u.ID)
				_, err = s.GetRefreshTokenByHash(ctx, "", rt.TokenHash)
				wantErr(t, err, storage.ErrNotFound)
				_, _, err = s.GetRefreshGrant(ctx, "", rt.TokenHash)
				wantErr(t, err, storage.ErrNotFound)
			}

			// By session: the old family of s2 only.
			ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: "s2"}, at(2*time.Hour)))
			revoked := must(s.GetRefreshTokenByHash(ctx, "", other.TokenHash))(t)
			if revoked.RevokedAt.IsZero() {
				t.Fatal("the old family of the session was not revoked")
			}
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 2) // old (rotated) and mine
			// By user: the rest.
			ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: u.ID}, at(2*time.Hour)))
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 0)
		})
	}
}

// TestUpgradeFillsFamilies: families an instance of a build before 0013
// started after 0013 ran (tokens, no family row) get their rows from
// migration 0014, once, and are then revoked with their session; from
// then on the database writes the row of any such token itself.
func TestUpgradeFillsFamilies(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storeMigratedTo(t, d, "0013_refresh_families")
			u := newUser(t, s, "fill@example.com")
			oldBuild := func(id, session string) storage.RefreshToken {
				return must(storage.InsertOldRefreshToken(ctx, s, storage.RefreshToken{
					ID: id, TokenHash: digest(id), FamilyID: "fam-" + id, ClientID: "app", UserID: u.ID,
					SessionID: session, CreatedAt: at(0),
				}))(t)
			}
			gap := oldBuild("gap", "s1")
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 0)
			ok(t, s.Migrate(ctx))
			equal(t, keys(t, s, "refresh_families", "id"), []string{"fam-gap"})
			oldBuild("after", "s1")
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 2)
			ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: "s1"}, at(time.Hour)))
			if got := must(s.GetRefreshTokenByHash(ctx, gap.FamilyID, gap.TokenHash))(t); got.RevokedAt.IsZero() {
				t.Fatal("the filled-in family was not revoked with its session")
			}
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 0)
		})
	}
}

// TestSQLiteTwoProcesses: two Stores on one file (the CLI next to a running
// server) write at the same time without "database is locked": BEGIN
// IMMEDIATE plus busy_timeout make the second writer wait its turn, and
// read-modify-writes do not lose updates across them.
func TestSQLiteTwoProcesses(t *testing.T) {
	u := storagetest.SQLiteURL(t)
	a := must(storage.Open(t.Context(), u, storage.Options{}))(t)
	defer a.Close()
	ok(t, a.Migrate(t.Context()))
	b := must(storage.Open(t.Context(), u, storage.Options{}))(t)
	defer b.Close()

	var wg sync.WaitGroup
	const n = 50
	for _, s := range []*storage.Store{a, b, a, b} {
		wg.Go(func() {
			for range n {
				if _, err := s.UpdateThrottle(t.Context(), "k", func(v *storage.Throttle) error { v.Failures++; return nil }); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.CreateUser(t.Context(), storage.User{Email: storage.NewID() + "@example.com"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	equal(t, must(b.GetThrottle(t.Context(), "k"))(t).Failures, 4*n)
	equal(t, len(must(a.ListUsers(t.Context(), storage.ListOptions{Limit: 1000}))(t)), 4*n)
}

func TestNewSortableID(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := storage.NewSortableID(t0.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || strings.Trim(id, "234567abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("bad id %q", id)
		}
		if id <= prev || seen[id] {
			t.Fatalf("not increasing or repeated: %q after %q", id, prev)
		}
		prev, seen[id] = id, true
	}
}
