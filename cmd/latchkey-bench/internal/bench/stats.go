package bench

import (
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest sample such that at least p % of the samples are
// less than or equal to it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 · n), computed in integers where possible to avoid
	// 0.9·10 = 9.000000000000002 → 10.
	rank := int(p * float64(n) / 100)
	if float64(rank)*100 < p*float64(n) {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// latencies merges the per-worker samples and computes the summary.
type latencySummary struct {
	P50, P90, P99, Max time.Duration
}

func summarize(perWorker [][]time.Duration) latencySummary {
	all := slices.Concat(perWorker...)
	slices.Sort(all)
	return latencySummary{
		P50: percentile(all, 50),
		P90: percentile(all, 90),
		P99: percentile(all, 99),
		Max: percentile(all, 100),
	}
}
