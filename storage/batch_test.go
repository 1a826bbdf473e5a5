package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestGroupCommit: concurrent token writes share transactions, yet each
// succeeds or fails on its own — a duplicate id fails alone, the rest are
// stored — and every success is visible once acknowledged.
func TestGroupCommit(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := d.Open(t)
			ctx := context.Background()
			now := time.Now()
			if err := s.CreateAccessToken(ctx, storage.AccessToken{ID: "dup0", ClientID: "c", UserID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			const n = 200
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("tok%03d", i)
					if i%10 == 0 {
						id = "dup0" // collides with the row above
					}
					errs[i] = s.CreateAccessToken(ctx, storage.AccessToken{ID: id, ClientID: "c", UserID: "c",
						Scopes: []string{"api"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i%10 == 0 {
					if !errors.Is(err, storage.ErrConflict) {
						t.Errorf("duplicate %d: %v, want ErrConflict", i, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("token %d: %v", i, err)
					continue
				}
				at, err := s.GetAccessToken(ctx, fmt.Sprintf("tok%03d", i))
				if err != nil || at.Scopes[0] != "api" {
					t.Errorf("token %d not stored: %v", i, err)
				}
			}
			// A canceled context before the write: not written.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := s.CreateAccessToken(cctx, storage.AccessToken{ID: "canceled", ClientID: "c", CreatedAt: now, ExpiresAt: now}); err == nil {
				t.Error("write with a canceled context succeeded")
			}
		})
	}
}

// TestRotateWithAccess: the rotation and its access token commit together;
// a rotation that loses (reuse) stores no access token.
func TestRotateWithAccess(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := d.Open(t)
			ctx := context.Background()
			now := time.Now()
			first, err := s.CreateRefreshToken(ctx, storage.RefreshToken{TokenHash: []byte("h1"), ClientID: "c", UserID: "u", CreatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			next := storage.RefreshToken{TokenHash: []byte("h2"), ClientID: "c", UserID: "u"}
			got, err := s.RotateRefreshTokenWithAccess(ctx, first.ID, now, 0, next, storage.AccessToken{ID: "at1", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			at, err := s.GetAccessToken(ctx, "at1")
			if err != nil || at.RefreshTokenID != got.ID || at.FamilyID != first.FamilyID {
				t.Fatalf("access token %+v %v", at, err)
			}
			_, err = s.RotateRefreshTokenWithAccess(ctx, first.ID, now, 0, storage.RefreshToken{TokenHash: []byte("h3"), ClientID: "c", UserID: "u"},
				storage.AccessToken{ID: "at2", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("reuse: %v", err)
			}
			if _, err := s.GetAccessToken(ctx, "at2"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("a lost rotation stored its access token")
			}

			// Failures after the compare-and-set leave nothing half-written:
			// the old token stays usable and nothing new is stored.
			unused := func(when string) {
				t.Helper()
				rt, err := s.GetRefreshTokenByHash(ctx, first.FamilyID, []byte("h2"))
				if err != nil || !rt.UsedAt.IsZero() || !rt.RevokedAt.IsZero() {
					t.Fatalf("%s: old token %+v %v, want unused", when, rt, err)
				}
			}
			// The new id is taken (ErrConflict, compensated in the job).
			_, err = s.RotateRefreshTokenWithAccess(ctx, got.ID, now, 0, storage.RefreshToken{ID: first.ID, TokenHash: []byte("h3b"), ClientID: "c", UserID: "u"},
				storage.AccessToken{ID: "at3", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("taken id: %v", err)
			}
			unused("taken id")
			// The access token id is taken (the job aborts its transaction).
			if err := s.CreateAccessToken(ctx, storage.AccessToken{ID: "taken", ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			_, err = s.RotateRefreshTokenWithAccess(ctx, got.ID, now, 0, storage.RefreshToken{TokenHash: []byte("h4"), ClientID: "c", UserID: "u"},
				storage.AccessToken{ID: "taken", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err == nil {
				t.Fatal("rotation with a taken access token id succeeded")
			}
			unused("taken access token id")
			if _, err := s.GetAccessToken(ctx, "at1"); err != nil {
				t.Fatalf("an aborted rotation deleted the old token's access token: %v", err)
			}
			if _, err := s.GetRefreshTokenByHash(ctx, first.FamilyID, []byte("h4")); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("an aborted rotation stored its refresh token")
			}
			if _, err := s.GetAccessToken(ctx, "at3"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("a failed rotation stored its access token")
			}
			// Still rotatable.
			if _, err := s.RotateRefreshTokenWithAccess(ctx, got.ID, now, 0, storage.RefreshToken{TokenHash: []byte("h5"), ClientID: "c", UserID: "u"},
				storage.AccessToken{ID: "at5", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGroupCommitAborts: rotations that abort their transaction (a taken
// access token id), among many concurrent ones sharing batches, fail
// alone and leave their old token usable; every other rotation is stored
// whole.
func TestGroupCommitAborts(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := d.Open(t)
			ctx := context.Background()
			now := time.Now()
			if err := s.CreateAccessToken(ctx, storage.AccessToken{ID: "taken", ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			const n = 120
			heads := make([]storage.RefreshToken, n)
			for i := range n {
				var err error
				heads[i], err = s.CreateRefreshToken(ctx, storage.RefreshToken{TokenHash: fmt.Appendf(nil, "old%d", i), ClientID: "c", UserID: "u", CreatedAt: now})
				if err != nil {
					t.Fatal(err)
				}
			}
			nexts := make([]storage.RefreshToken, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					id := fmt.Sprintf("at%d", i)
					if i%7 == 3 {
						id = "taken"
					}
					nexts[i], errs[i] = s.RotateRefreshTokenWithAccess(ctx, heads[i].ID, now, 0,
						storage.RefreshToken{TokenHash: fmt.Appendf(nil, "new%d", i), ClientID: "c", UserID: "u"},
						storage.AccessToken{ID: id, ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
				})
			}
			wg.Wait()
			for i := range n {
				old, err := s.GetRefreshTokenByHash(ctx, heads[i].FamilyID, fmt.Appendf(nil, "old%d", i))
				if err != nil {
					t.Fatal(err)
				}
				_, newErr := s.GetRefreshTokenByHash(ctx, heads[i].FamilyID, fmt.Appendf(nil, "new%d", i))
				if i%7 == 3 {
					if errs[i] == nil || !old.UsedAt.IsZero() || !errors.Is(newErr, storage.ErrNotFound) {
						t.Errorf("aborted rotation %d: %v; old used at %v; new token: %v", i, errs[i], old.UsedAt, newErr)
					}
					continue
				}
				if errs[i] != nil || old.UsedAt.IsZero() || newErr != nil {
					t.Errorf("rotation %d: %v; old used at %v; new token: %v", i, errs[i], old.UsedAt, newErr)
					continue
				}
				at, err := s.GetAccessToken(ctx, fmt.Sprintf("at%d", i))
				if err != nil || at.RefreshTokenID != nexts[i].ID || at.FamilyID != heads[i].FamilyID {
					t.Errorf("access token %d: %+v %v", i, at, err)
				}
			}
		})
	}
}
