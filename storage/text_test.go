package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// badText are values PostgreSQL cannot hold in a TEXT column (NUL, invalid
// UTF-8) and SQLite would store as they are.
var badText = []string{"a\x00b", "\x00", "\xff", "caf\xc3", "ok\xed\xa0\x80"}

// TestInvalidText: a lookup by a value no row can hold finds nothing, and a
// write of one is refused with ErrInvalidText, the same on both databases,
// and never as a driver error (PostgreSQL's "invalid byte sequence for
// encoding UTF8", which the pages would show as a 500).
func TestInvalidText(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			s := d.Open(t)
			ctx := context.Background()
			u := newUser(t, s, "text@example.com")
			ok(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "ar-text", ClientID: "c", State: "st", CreatedAt: at(0), ExpiresAt: at(1)}))
			for _, bad := range badText {
				lookups := map[string]error{}
				_, lookups["GetUser"] = s.GetUser(ctx, bad)
				_, lookups["GetUserByEmail"] = s.GetUserByEmail(ctx, bad)
				_, lookups["GetClient"] = s.GetClient(ctx, bad)
				_, lookups["GetAuthRequest"] = s.GetAuthRequest(ctx, bad)
				_, lookups["UpdateAuthRequest"] = s.UpdateAuthRequest(ctx, bad, func(*storage.AuthRequest) error { return nil })
				lookups["DeleteAuthRequest"] = s.DeleteAuthRequest(ctx, bad)
				_, lookups["GetLogoutRequest"] = s.GetLogoutRequest(ctx, bad, at(0))
				_, lookups["GetAccessToken"] = s.GetAccessToken(ctx, bad)
				_, lookups["GetFederatedIdentity"] = s.GetFederatedIdentity(ctx, "org", bad)
				_, lookups["GetOrganizationByDomain"] = s.GetOrganizationByDomain(ctx, bad)
				lookups["DeleteTrustedDevice"] = s.DeleteTrustedDevice(ctx, u.ID, bad)
				for name, err := range lookups {
					if !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("%s(%q) = %v, want ErrNotFound", name, bad, err)
					}
				}

				writes := map[string]error{}
				_, writes["CreateUser"] = s.CreateUser(ctx, storage.User{Email: "w@example.com", Name: bad, CreatedAt: at(0), UpdatedAt: at(0)})
				_, writes["UpdateUser"] = s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Name = bad; return nil })
				writes["CreateAuthRequest"] = s.CreateAuthRequest(ctx, storage.AuthRequest{ID: storage.NewID(), ClientID: "c", State: bad, CreatedAt: at(0), ExpiresAt: at(1)})
				writes["CreateFederatedIdentity"] = s.CreateFederatedIdentity(ctx, storage.FederatedIdentity{OrgID: "org", Subject: bad, UserID: u.ID, CreatedAt: at(0)})
				writes["CreateAuditEvent"] = s.CreateAuditEvent(ctx, storage.AuditEvent{UserID: u.ID, Event: "x", UserAgent: bad, At: at(0)})
				_, writes["UpdateAuthRequest"] = s.UpdateAuthRequest(ctx, "ar-text", func(v *storage.AuthRequest) error { v.State = bad; return nil })
				for name, err := range writes {
					if !errors.Is(err, storage.ErrInvalidText) {
						t.Errorf("%s with %q = %v, want ErrInvalidText", name, bad, err)
					}
				}
			}
			// Nothing was half-written, and the store still works.
			equal(t, must(s.GetAuthRequest(ctx, "ar-text"))(t).State, "st")
			got := must(s.GetUser(ctx, u.ID))(t)
			if got.Name != u.Name {
				t.Fatalf("user changed: %+v", got)
			}
			if _, err := s.GetUserByEmail(ctx, "w@example.com"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("refused user was stored: %v", err)
			}
			// Valid text, accents and all, still goes in and out.
			name := "Zoë Ångström 名前 🙂"
			got = must(s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Name = name; return nil }))(t)
			if got = must(s.GetUser(ctx, u.ID))(t); got.Name != name {
				t.Fatalf("name = %q", got.Name)
			}
		})
	}
}
