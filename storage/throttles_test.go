package storage_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
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
