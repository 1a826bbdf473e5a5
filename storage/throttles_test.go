package storage_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestThrottleRuleDelay: the arithmetic TakeThrottles repeats in SQL (the
// conformance suite checks the two agree), at its boundaries.
func TestThrottleRuleDelay(t *testing.T) {
	r := storage.ThrottleRule{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{-1, 0}, {0, 0}, {4, 0}, // free
		{5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second}, {14, 512 * time.Second},
		{15, 15 * time.Minute}, {100, 15 * time.Minute}, {1 << 40, 15 * time.Minute}, // capped
	} {
		if got := r.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		r    storage.ThrottleRule
		n    int
		want time.Duration
	}{
		{"zero rule never waits", storage.ThrottleRule{}, 100, 0},
		{"no free attempts", storage.ThrottleRule{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"cap below base", storage.ThrottleRule{Base: time.Minute, Max: time.Second}, 0, time.Second},
		{"cap equal to a power", storage.ThrottleRule{Free: 1, Base: time.Second, Max: 8 * time.Second}, 4, 8 * time.Second},
	} {
		if got := tc.r.Delay(tc.n); got != tc.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", tc.name, tc.n, got, tc.want)
		}
	}
}

// TestThrottleRefusesOnlyWhileWaiting: an attempt is refused only while a
// wait is actually set. Free attempts set none, so one whose now was read
// a moment before another's (a concurrent request, an instance whose
// clock is a millisecond behind) is counted, not refused with "Too many
// attempts"; once the rule sets a wait, every attempt inside it is
// refused, whatever its now.
func TestThrottleRefusesOnlyWhileWaiting(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ss := instances(t, d, 3)
			ctx := t.Context()
			rule := storage.ThrottleRule{Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}
			t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			take := func(s *storage.Store, now time.Time) time.Time {
				t.Helper()
				until, err := s.TakeThrottles(ctx, now, storage.ThrottleTake{Key: "pwd:ip:x", Rule: rule})
				if err != nil {
					t.Fatal(err)
				}
				return until
			}
			// Free attempts (Delay(n) is 0 for n < Free) out of order in
			// time, across instances.
			for i, off := range []time.Duration{3, 1, 2, 0} {
				if until := take(ss[i%3], t0.Add(off*time.Millisecond)); !until.IsZero() {
					t.Fatalf("free attempt %d (now %v) refused until %v", i+1, off*time.Millisecond, until)
				}
			}
			// The fifth is counted and sets the first wait (1 s) …
			if until := take(ss[1], t0.Add(4*time.Millisecond)); !until.IsZero() {
				t.Fatalf("fifth attempt refused until %v", until)
			}
			// … which refuses the next, on any instance, even one a little behind.
			want := t0.Add(4*time.Millisecond + time.Second)
			for i, off := range []time.Duration{5, 0, 1003} {
				if until := take(ss[i], t0.Add(off*time.Millisecond)); !until.Equal(want) {
					t.Fatalf("attempt at +%v inside the wait: until %v, want %v", off*time.Millisecond, until, want)
				}
			}
			if until := take(ss[1], want); !until.IsZero() {
				t.Fatalf("attempt when the wait ends refused until %v", until)
			}

			// Many at once with clocks a few milliseconds apart, all within
			// the free attempts: none is refused, every one is counted.
			many := storage.ThrottleRule{Free: 60, Base: time.Second, Max: time.Minute, Forget: time.Hour}
			var wg sync.WaitGroup
			var refused atomic.Int32
			for i := range 60 {
				s := ss[i%len(ss)]
				wg.Go(func() {
					until, err := s.TakeThrottles(ctx, t0.Add(time.Duration(i%7)*time.Millisecond), storage.ThrottleTake{Key: "pwd:acct:many", Rule: many})
					if err != nil {
						t.Error(err)
					} else if !until.IsZero() {
						refused.Add(1)
					}
				})
			}
			wg.Wait()
			if n := refused.Load(); n != 0 {
				t.Fatalf("%d of 60 free attempts refused", n)
			}
			th, err := ss[0].GetThrottle(ctx, "pwd:acct:many")
			if err != nil {
				t.Fatal(err)
			}
			if th.Failures != 60 {
				t.Fatalf("counted %d attempts, want 60", th.Failures)
			}
		})
	}
}
