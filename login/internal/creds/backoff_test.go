package creds

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{-1, 0},
		{0, 0},
		{4, 0},               // last free failure
		{5, time.Second},     // first delayed: Base·2^0
		{6, 2 * time.Second}, // Base·2^1
		{7, 4 * time.Second},
		{14, 512 * time.Second},
		{15, 15 * time.Minute}, // 1024 s > 900 s: capped
		{16, 15 * time.Minute},
		{100, 15 * time.Minute},
		{math.MaxInt, 15 * time.Minute},
	} {
		if got := b.Delay(tc.failures); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestBackoffEdgeConfigs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        Backoff
		failures int
		want     time.Duration
	}{
		{"zero value never waits", Backoff{}, 100, 0},
		{"no free failures", Backoff{Free: 0, Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"negative free is zero", Backoff{Free: -3, Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"cap equal to a power", Backoff{Free: 1, Base: time.Second, Max: 8 * time.Second}, 4, 8 * time.Second},
		{"cap just below a power", Backoff{Free: 1, Base: time.Second, Max: 8 * time.Second}, 5, 8 * time.Second},
		{"cap below base", Backoff{Free: 0, Base: time.Minute, Max: time.Second}, 0, time.Second},
		{"no cap", Backoff{Free: 0, Base: time.Second}, 10, 1024 * time.Second},
		{"no cap saturates", Backoff{Free: 0, Base: time.Second}, 1000, time.Duration(math.MaxInt64)},
		{"negative base", Backoff{Free: 0, Base: -time.Second, Max: time.Minute}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.failures); got != tc.want {
				t.Fatalf("Delay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}

func TestBackoffRetryAtAndWait(t *testing.T) {
	b := Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	last := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := b.RetryAt(3, last); !got.Equal(last) {
		t.Errorf("RetryAt(free) = %v, want %v", got, last)
	}
	if got, want := b.RetryAt(7, last), last.Add(4*time.Second); !got.Equal(want) {
		t.Errorf("RetryAt(7) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		failures int
		now      time.Time
		want     time.Duration
	}{
		{4, last, 0},
		{7, last, 4 * time.Second},
		{7, last.Add(3 * time.Second), time.Second},
		{7, last.Add(4 * time.Second), 0}, // exactly at RetryAt: allowed
		{7, last.Add(time.Hour), 0},
		{7, last.Add(-time.Second), 5 * time.Second}, // clock behind the record
		{20, last.Add(10 * time.Minute), 5 * time.Minute},
	} {
		if got := b.Wait(tc.failures, last, tc.now); got != tc.want {
			t.Errorf("Wait(%d, now=last+%v) = %v, want %v", tc.failures, tc.now.Sub(last), got, tc.want)
		}
	}
}
