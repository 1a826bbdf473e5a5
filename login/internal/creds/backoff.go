package creds

import (
	"math"
	"time"
)

// Backoff is the throttling arithmetic for wrong passwords and codes (SPEC
// §9): a number of free failures, then an exponentially growing wait, capped.
// There is no permanent lock — a lock would let anyone who knows an address
// shut its owner out. Counting failures and remembering the last one (per
// account, per client address) is the caller's business.
type Backoff struct {
	Free int           // failures allowed before any delay, e.g. 5
	Base time.Duration // delay after the first failure past Free, e.g. 1 s
	Max  time.Duration // cap, e.g. 15 min; 0 or less means no cap
}

// Delay is how long after the last failure the next attempt must wait, given
// the number of failures so far: 0 while failures < Free, then
// Base·2^(failures−Free), capped at Max (and at the largest Duration).
func (b Backoff) Delay(failures int) time.Duration {
	free := max(b.Free, 0)
	if failures < free || b.Base <= 0 {
		return 0
	}
	d := b.Base
	for n := failures - free; n > 0; n-- {
		if b.Max > 0 && d >= b.Max {
			break
		}
		if d > math.MaxInt64/2 {
			d = math.MaxInt64
			break
		}
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}

// RetryAt is the earliest instant of the next allowed attempt: lastFailure +
// Delay(failures).
func (b Backoff) RetryAt(failures int, lastFailure time.Time) time.Time {
	return lastFailure.Add(b.Delay(failures))
}

// Wait is how long from now until RetryAt, or 0 if an attempt is allowed now
// (for the page's "try again in …").
func (b Backoff) Wait(failures int, lastFailure, now time.Time) time.Duration {
	return max(b.RetryAt(failures, lastFailure).Sub(now), 0)
}
