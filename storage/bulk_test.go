package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestBulkCreate(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := d.Open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			var us []storage.User
			for i := range 500 {
				us = append(us, storage.User{Email: fmt.Sprintf("Bulk%d@Example.com", i), Name: "B", PasswordHash: "$argon2id$x",
					EmailVerified: true, CreatedAt: now, UpdatedAt: now})
			}
			if err := s.BulkCreateUsers(ctx, us); err != nil {
				t.Fatal(err)
			}
			u, err := s.GetUserByEmail(ctx, "bulk7@example.com")
			if err != nil || u.ID != us[7].ID || !u.EmailVerified {
				t.Fatalf("bulk user: %+v %v", u, err)
			}
			var ts []storage.RefreshToken
			for i := range 1000 {
				ts = append(ts, storage.RefreshToken{TokenHash: []byte(fmt.Sprintf("hash-%04d", i)), ClientID: "c", UserID: us[i%500].ID,
					Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now, CreatedAt: now})
			}
			if err := s.BulkCreateRefreshTokens(ctx, ts); err != nil {
				t.Fatal(err)
			}
			rt, err := s.GetRefreshTokenByHash(ctx, ts[999].FamilyID, []byte("hash-0999"))
			if err != nil || rt.UserID != us[499].ID || !rt.LastUsedAt.Equal(now) || rt.FamilyID == "" {
				t.Fatalf("bulk token: %+v %v", rt, err)
			}
			// All or nothing: a duplicate email fails the whole call.
			err = s.BulkCreateUsers(ctx, []storage.User{{Email: "new@example.com"}, {Email: "BULK1@example.com"}})
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("duplicate email: %v", err)
			}
			if _, err := s.GetUserByEmail(ctx, "new@example.com"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("a failed bulk insert left rows behind")
			}
		})
	}
}
