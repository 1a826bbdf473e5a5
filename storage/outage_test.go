package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestOutage: with the database out of reach (a Fault: open connections
// broken, dialling refused) every kind of call — gorm reads and writes, a
// transaction, the prepared token path, the group commit, the throttle,
// Health — fails with an error that IsUnavailable and is not ErrNotFound
// or ErrConflict (nothing the caller could blame on the request), and
// nothing is half-written; when the database is back the same calls work
// without a restart.
func TestOutage(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			f := &storage.Fault{}
			s := storagetest.OpenURLWith(t, d.URL(t), storage.Options{Fault: f})
			ctx := context.Background()
			u := newUser(t, s, "outage@example.com")
			head := newFamily(t, s, "o", u.ID, "s1", "app")
			if err := s.CreateClient(ctx, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: at(0), UpdatedAt: at(0)}); err != nil {
				t.Fatal(err)
			}
			calls := map[string]func() error{
				"GetClient": func() error { _, err := s.GetClient(ctx, "app"); return err },
				"GetUser":   func() error { _, err := s.GetUser(ctx, u.ID); return err },
				"UpdateUser (transaction)": func() error {
					_, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Name = "changed"; return nil })
					return err
				},
				"CreateAuditEvent": func() error {
					return s.CreateAuditEvent(ctx, storage.AuditEvent{UserID: u.ID, Event: "x", At: at(0)})
				},
				"GetRefreshTokenByHash (prepared)": func() error {
					_, err := s.GetRefreshTokenByHash(ctx, head.FamilyID, head.TokenHash)
					return err
				},
				"RotateRefreshTokenWithAccess (group commit)": func() error {
					_, err := s.RotateRefreshTokenWithAccess(ctx, head.ID, at(time.Minute), 0,
						storage.RefreshToken{TokenHash: digest("o-1"), UserID: u.ID},
						storage.AccessToken{ID: "at-o-1", ClientID: "app", UserID: u.ID, CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)})
					return err
				},
				"TakeThrottles": func() error {
					_, err := s.TakeThrottles(ctx, at(0), storage.ThrottleTake{Key: "k", Rule: storage.ThrottleRule{Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}})
					return err
				},
				"Health": func() error { return s.Health(ctx) },
			}
			f.SetDown(true)
			for name, call := range calls {
				err := call()
				if !storage.IsUnavailable(err) {
					t.Errorf("%s during the outage: %v, want an unavailability", name, err)
				}
				if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
					t.Errorf("%s during the outage: %v reads as the caller's fault", name, err)
				}
			}
			f.SetDown(false)
			for name, call := range calls {
				if err := call(); err != nil {
					t.Errorf("%s after the outage: %v", name, err)
				}
			}
			// What failed left nothing behind: the user was changed once
			// (after), the family rotated once (after).
			if got := must(s.GetUser(ctx, u.ID))(t); got.Name != "changed" {
				t.Errorf("user name %q", got.Name)
			}
			fams := must(s.ListRefreshFamilies(ctx, u.ID))(t)
			equal(t, len(fams), 1)
		})
	}
}

// TestUnavailableFromRealDrivers: what the drivers really say when the
// database is out of reach is classified as such — PostgreSQL refusing
// connections, SQLite's write lock held by another process past the busy
// timeout — and a missing row is still ErrNotFound.
func TestUnavailableFromRealDrivers(t *testing.T) {
	t.Run("postgres refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Port 1 on loopback: nothing listens, the connection is refused.
		_, err := storage.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", storage.Options{})
		if err == nil || !storage.IsUnavailable(err) {
			t.Fatalf("open on a closed port: %v, want an unavailability", err)
		}
	})
	t.Run("sqlite busy", func(t *testing.T) {
		u := storagetest.SQLiteURL(t)
		s := storagetest.OpenURLWith(t, u, storage.Options{BusyTimeout: 50 * time.Millisecond})
		ctx := context.Background()
		if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) || storage.IsUnavailable(err) {
			t.Fatalf("missing user: %v", err)
		}
		// Another process holds the write lock.
		other, err := sql.Open("sqlite", strings.TrimPrefix(u, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		conn, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck
		err = s.CreateAuditEvent(ctx, storage.AuditEvent{Event: "x", At: at(0)})
		if !storage.IsUnavailable(err) {
			t.Fatalf("write while another process holds the lock: %v, want an unavailability", err)
		}
	})
}
