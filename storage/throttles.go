package storage

// Failure counters for rate limiting. The policy (windows, limits) is the
// caller's; the store only makes the read-modify-write atomic.

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GetThrottle returns the counter for key; ErrNotFound if there is none
// (callers treat that as a zero Throttle).
func (s *Store) GetThrottle(ctx context.Context, key string) (Throttle, error) {
	row, err := take[throttleRow](s.read(ctx), "throttle_key = ?", key)
	if err != nil {
		return Throttle{}, fail("get throttle", err)
	}
	return row.domain(), nil
}

// UpdateThrottle runs fn on the counter for key (zero when absent) and
// saves it, in one transaction. A missing row is first inserted as zero
// (ON CONFLICT DO NOTHING) so that there is always a row to lock: two
// concurrent first failures then serialise on it instead of racing to
// insert.
func (s *Store) UpdateThrottle(ctx context.Context, key string, fn func(*Throttle) error) (Throttle, error) {
	var out Throttle
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		zero := throttleRow{Key: key}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&zero).Error; err != nil {
			return err
		}
		var row throttleRow
		if err := s.forUpdate(tx).Where("throttle_key = ?", key).Take(&row).Error; err != nil {
			return err
		}
		v := row.domain()
		if err := runFn(fn(&v)); err != nil {
			return err
		}
		v.Key = key
		nr := throttleToRow(v)
		if err := tx.Select("*").Updates(&nr).Error; err != nil {
			return err
		}
		out = nr.domain()
		return nil
	})
	return out, fail("update throttle", err)
}

// DeleteThrottle forgets the counter (absent is fine).
func (s *Store) DeleteThrottle(ctx context.Context, key string) error {
	return fail("delete throttle", s.write(ctx).Where("throttle_key = ?", key).Delete(&throttleRow{}).Error)
}

// ThrottleRule turns the number of attempts counted on a key into a wait:
// the first Free attempts are free, the next makes the key wait Base, each
// further one twice as long, up to Max; a key whose last attempt is older
// than Forget starts again from zero (a rule without a Base and a Max
// never waits). The rule is the caller's policy; it is handed to the store
// so that "may I try?" and "count this try" are one statement.
type ThrottleRule struct {
	Free      int
	Base, Max time.Duration
	Forget    time.Duration
}

// Delay is the wait after the n-th counted attempt: 0 while n < Free, then
// Base·2^(n−Free), capped at Max. TakeThrottles computes the same in SQL.
func (r ThrottleRule) Delay(n int) time.Duration {
	if n < r.Free || r.Base <= 0 {
		return 0
	}
	d := r.Base
	for k := n - max(r.Free, 0); k > 0 && d < r.Max; k-- {
		d *= 2
	}
	return min(d, r.Max)
}

// shifts is the largest k for which Base<<k still needs capping: past it
// Base·2^k > Max, so SQL never shifts further (and never overflows).
func (r ThrottleRule) shifts() int {
	k := 0
	for d := r.Base; d > 0 && d < r.Max && k < 62; d *= 2 {
		k++
	}
	return k
}

// ThrottleTake is one key of a TakeThrottles call.
type ThrottleTake struct {
	Key  string
	Rule ThrottleRule
}

// takeSQL counts one attempt on a key unless it is blocked at now. The
// insert is the first attempt; the update runs only when the key is not
// blocked (its WHERE), so a blocked key returns no row and keeps its
// count. N is the new count (restarting after Forget), D(N) its delay.
//
// A key is blocked only while a wait is actually set: an attempt whose
// delay is 0 (a free one) leaves blocked_until at 0, not at its own now.
// Otherwise a concurrent attempt whose now was read a moment earlier (on
// this instance, or on one whose clock is a millisecond behind) would find
// blocked_until > now and be refused with "Too many attempts" although no
// rule asked for a wait.
func (s *Store) takeSQL() string {
	least := "MIN"
	if s.postgres() {
		least = "LEAST"
	}
	n := `(CASE WHEN throttles.last_failure_at < CAST(@forget AS BIGINT) THEN 1 ELSE throttles.failures + 1 END)`
	// bigint << int: PostgreSQL wants the shift count as an int.
	d := `(CASE WHEN ` + n + ` < CAST(@free AS BIGINT) THEN 0 ELSE ` + least + `(CAST(@max AS BIGINT), CAST(@base AS BIGINT) << CAST(` +
		least + `(` + n + ` - CAST(@free AS BIGINT), CAST(@shifts AS BIGINT)) AS INTEGER)) END)`
	return `INSERT INTO throttles (throttle_key, failures, last_failure_at, blocked_until)
		VALUES (@key, 1, CAST(@now AS BIGINT), CAST(@first AS BIGINT))
		ON CONFLICT (throttle_key) DO UPDATE SET
			failures = ` + n + `,
			last_failure_at = CAST(@now AS BIGINT),
			blocked_until = CASE WHEN ` + d + ` = 0 THEN 0 ELSE CAST(@now AS BIGINT) + ` + d + ` END
		WHERE throttles.blocked_until <= CAST(@now AS BIGINT)
		RETURNING failures`
}

// TakeThrottles counts one attempt on every key, unless one of them is
// blocked at now: then nothing is counted and the latest instant until
// which a key is blocked comes back (zero: taken). Each key is one
// INSERT … ON CONFLICT DO UPDATE … WHERE not blocked … RETURNING; the keys
// share one transaction (taken in key order, so two calls never wait on
// each other crosswise), so concurrent callers on any number of instances
// are counted one by one and no attempt gets past a key that an earlier
// one blocked.
//
// It runs on database/sql with statements prepared on the pool (like
// refresh rotation): gorm's statement cache inside transactions deadlocks
// when many transactions wait on one row (its cache lock is held while a
// statement is prepared).
func (s *Store) TakeThrottles(ctx context.Context, now time.Time, takes ...ThrottleTake) (time.Time, error) {
	until, _, err := s.TakeThrottlesCounted(ctx, now, takes...)
	return until, err
}

// TakeThrottlesCounted is TakeThrottles that also reports the count of
// the first key after this attempt (0 when blocked), e.g. for telling the
// attempt that starts a lockout.
func (s *Store) TakeThrottlesCounted(ctx context.Context, now time.Time, takes ...ThrottleTake) (time.Time, int, error) {
	sorted := slices.Clone(takes)
	slices.SortFunc(sorted, func(a, b ThrottleTake) int { return strings.Compare(a.Key, b.Key) })
	sorted = slices.CompactFunc(sorted, func(a, b ThrottleTake) bool { return a.Key == b.Key })
	if len(sorted) == 0 {
		return time.Time{}, 0, nil
	}
	q, names := positional(s.takeSQL())
	take, err := s.hot.get(ctx, q)
	if err != nil {
		return time.Time{}, 0, fail("take throttles", err)
	}
	peek, err := s.hot.get(ctx, "SELECT blocked_until FROM throttles WHERE throttle_key = ?")
	if err != nil {
		return time.Time{}, 0, fail("take throttles", err)
	}
	nowMs := ms(now)
	tx, err := s.hot.db.BeginTx(ctx, nil)
	if err != nil {
		return time.Time{}, 0, fail("take throttles", err)
	}
	defer func() { _ = tx.Rollback() }()
	var blocked int64
	first := 0
	for _, t := range sorted {
		r := t.Rule
		firstUntil := int64(0) // no wait set: not blocked (takeSQL)
		if d := durMs(r.Delay(1)); d > 0 {
			firstUntil = nowMs + d
		}
		vals := map[string]any{
			"key": t.Key, "now": nowMs, "first": firstUntil,
			"forget": nowMs - durMs(r.Forget), "free": r.Free, "base": durMs(r.Base), "max": durMs(r.Max),
			"shifts": r.shifts(),
		}
		args := make([]any, len(names))
		for i, n := range names {
			args[i] = vals[n]
		}
		// No row back means the key was blocked when the statement ran;
		// the peek says until when. On PostgreSQL another instance may
		// have changed the row in between (a success cleared it): a key
		// no longer blocked is taken again rather than refused.
		for try := 0; ; try++ {
			var count int64
			err := tx.StmtContext(ctx, take).QueryRowContext(ctx, args...).Scan(&count)
			if err == nil {
				if t.Key == takes[0].Key {
					first = int(count)
				}
				break
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return time.Time{}, 0, fail("take throttles", err)
			}
			var until int64
			if err := tx.StmtContext(ctx, peek).QueryRowContext(ctx, t.Key).Scan(&until); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return time.Time{}, 0, fail("take throttles", err)
			}
			if until > nowMs || try == 3 {
				blocked = max(blocked, until, 1)
				break
			}
		}
	}
	if blocked != 0 {
		return tm(blocked), 0, nil // rolled back: nothing counted
	}
	if err := tx.Commit(); err != nil {
		return time.Time{}, 0, fail("take throttles", err)
	}
	return time.Time{}, first, nil
}

// positional turns @name parameters into ? placeholders and lists the
// names in order (a name may repeat).
func positional(q string) (string, []string) {
	var b strings.Builder
	var names []string
	for i := 0; i < len(q); i++ {
		if q[i] != '@' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z') {
			j++
		}
		names = append(names, q[i+1:j])
		b.WriteByte('?')
		i = j - 1
	}
	return b.String(), names
}

// ReturnThrottle gives back one attempt counted by TakeThrottles (it
// succeeded): the count drops by one and, below the rule's free
// attempts, so does the wait. Absent keys are fine.
func (s *Store) ReturnThrottle(ctx context.Context, key string, rule ThrottleRule) error {
	err := s.write(ctx).Exec(`UPDATE throttles SET
			failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END,
			blocked_until = CASE WHEN failures - 1 < ? THEN 0 ELSE blocked_until END
		WHERE throttle_key = ?`, rule.Free, key).Error
	return fail("return throttle", err)
}
