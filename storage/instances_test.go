package storage_test

// Tests that need several instances (stores with their own connection
// pools) on one database, as several Latchkey processes behind a load
// balancer have.

import (
	"context"
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
