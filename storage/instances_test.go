package storage_test

// Tests that need several instances (stores with their own connection
// pools) on one database, as several Latchkey processes behind a load
// balancer have.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// instances opens n stores on one fresh, migrated database of d.
func instances(t *testing.T, d storagetest.Dialect, n int) []*storage.Store {
	t.Helper()
	u := d.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*storage.Store
	for i := range n {
		s, err := storage.Open(ctx, u, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if i == 0 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, s)
	}
	return out
}

// TestThrottleAcrossInstances: three instances taking attempts on one key
// at once let exactly the rule's free attempts through between them.
func TestThrottleAcrossInstances(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ss := instances(t, d, 3)
			rule := storage.ThrottleRule{Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}
			now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			var wg sync.WaitGroup
			var mu sync.Mutex
			taken := 0
			for i := range 60 {
				s := ss[i%len(ss)]
				wg.Go(func() {
					b, err := s.TakeThrottles(t.Context(), now, storage.ThrottleTake{Key: "pwd:acct:x", Rule: rule})
					if err != nil {
						t.Error(err)
						return
					}
					if b.IsZero() {
						mu.Lock()
						taken++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if taken != 5 {
				t.Fatalf("%d attempts taken across instances, want 5", taken)
			}
		})
	}
}

// TestOutboxClaimsAcrossInstances: three instances claiming from one
// outbox at once hand every message out exactly once.
func TestOutboxClaimsAcrossInstances(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ss := instances(t, d, 3)
			now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			const n = 90
			for i := range n {
				if _, err := ss[0].EnqueueMail(t.Context(), storage.OutboxMessage{Kind: "notice", Recipient: "x@example.com",
					Sealed: []byte("m"), CreatedAt: now.Add(time.Duration(i) * time.Millisecond), GiveUpAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for i := range 9 {
				s := ss[i%len(ss)]
				wg.Go(func() {
					for {
						got, err := s.ClaimOutbox(t.Context(), now.Add(time.Second), time.Minute, 2)
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, m := range got {
							seen[m.ID]++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(seen) != n {
				t.Fatalf("%d messages claimed, want %d", len(seen), n)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("%s claimed %d times across instances", id, k)
				}
			}
		})
	}
}

// TestAuthRequestUpdatesAcrossInstances: read-modify-writes of one sign-in
// from three instances at once (a double-clicked form, two tabs) lose no
// update: each adds its mark, and every mark is there at the end.
func TestAuthRequestUpdatesAcrossInstances(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ss := instances(t, d, 3)
			now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			if err := ss[0].CreateAuthRequest(t.Context(), storage.AuthRequest{ID: "ar", ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			const n = 30
			var wg sync.WaitGroup
			for i := range n {
				s := ss[i%len(ss)]
				wg.Go(func() {
					_, err := s.UpdateAuthRequest(t.Context(), "ar", func(v *storage.AuthRequest) error {
						v.UpstreamAMR = append(v.UpstreamAMR, fmt.Sprint("m", i))
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got, err := ss[1].GetAuthRequest(t.Context(), "ar")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, m := range got.UpstreamAMR {
				seen[m] = true
			}
			if len(got.UpstreamAMR) != n || len(seen) != n {
				t.Fatalf("%d marks (%d distinct) after %d updates: %v", len(got.UpstreamAMR), len(seen), n, got.UpstreamAMR)
			}
		})
	}
}

// TestSweepLockPerSchema: on PostgreSQL one instance of a deployment
// sweeps at a time, and deployments in other schemas of the same database
// (advisory locks are the database's) still sweep their own tables.
func TestSweepLockPerSchema(t *testing.T) {
	ds := storagetest.Dialects(t)
	i := slices.IndexFunc(ds, func(d storagetest.Dialect) bool { return d.Name == storage.DialectPostgres })
	if i < 0 {
		t.Skip("PostgreSQL only: advisory locks")
	}
	d := ds[i]
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	a, b := d.Open(t), d.Open(t)
	for _, s := range []*storage.Store{a, b} {
		if err := s.UseOnce(ctx, "expired", now.Add(-time.Hour), now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	left := func(s *storage.Store) int {
		keys, err := storage.RowKeys(ctx, s, "used_jtis", "jti_key")
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	release, err := storage.HoldSweepLock(ctx, a) // an instance of a sweeping
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*storage.Store{a, b} {
		if err := s.Sweep(ctx, now, storage.SweepPolicy{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := []int{left(a), left(b)}; got[0] != 1 || got[1] != 0 {
		t.Fatalf("rows left while a's sweep lock is held: a %d, b %d; want a's sweep skipped (1) and b's done (0)", got[0], got[1])
	}
	release()
	if err := a.Sweep(ctx, now, storage.SweepPolicy{}); err != nil {
		t.Fatal(err)
	}
	if n := left(a); n != 0 {
		t.Fatalf("a's sweep after the lock's release left %d rows", n)
	}
}
