package storage

// Housekeeping: deleting what has expired. Every deletion is a batch of
// plain DELETE statements (at most sweepBatch rows each, each its own
// autocommit statement), so a large backlog never holds the SQLite write
// lock or PostgreSQL row locks for long, and running Sweep again, or on
// several instances, is harmless. On PostgreSQL one instance sweeps at a
// time (pg_try_advisory_lock: the others return at once).

import (
	"context"
	"database/sql/driver"
	"strconv"
	"time"

	"gorm.io/gorm"
)

const sweepBatch = 1000

// Sweep deletes, as of now:
//   - auth requests past ExpiresAt whose code (if any) is past CodeExpiresAt
//     too (a redeemed request is kept until then for reuse detection);
//   - email codes, device authorizations, upstream states, logout requests,
//     action tokens, access tokens and known browsers past ExpiresAt;
//   - sessions unseen for SessionMaxIdle (0: none);
//   - trusted devices expired for longer than TrustedDeviceGrace (0: none:
//     the re-verification rule may still read expired records);
//   - throttles neither blocked nor failed for ThrottleIdle (0: 24h);
//   - refresh families past their cap (ExpiresAt), families whose head is
//     unused for RefreshIdle (0: none), and revoked families revoked for
//     longer than RefreshIdle (0: at once);
//   - audit events older than AuditRetention (0: none);
//   - outbox messages done (sent, failed, superseded, void) for longer
//     than OutboxKeep (0: 7 days); their content went when they were done.
func (s *Store) Sweep(ctx context.Context, now time.Time, p SweepPolicy) error {
	if !s.postgres() {
		return fail("sweep", s.sweep(s.write(ctx), now, p))
	}
	err := s.w.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		var got bool
		if err := conn.Raw("SELECT pg_try_advisory_lock(?, ?)", lockClass, lockSweep).Scan(&got).Error; err != nil {
			return err
		}
		if !got {
			s.log.Debug("storage: sweep skipped: another instance is sweeping")
			return nil
		}
		defer func() {
			uctx := context.WithoutCancel(ctx)
			if err := conn.WithContext(uctx).Exec("SELECT pg_advisory_unlock(?, ?)", lockClass, lockSweep).Error; err != nil {
				if c, ok := sqlConn(conn); ok {
					_ = c.Raw(func(any) error { return driver.ErrBadConn })
				}
			}
		}()
		return s.sweep(conn, now, p)
	})
	return fail("sweep", err)
}

func (s *Store) sweep(db *gorm.DB, now time.Time, p SweepPolicy) error {
	n := ms(now)
	outboxKeep := p.OutboxKeep
	if outboxKeep <= 0 {
		outboxKeep = 7 * 24 * time.Hour
	}
	before := func(d time.Duration) int64 { return ms(now.Add(-d)) }
	type job struct {
		table, pk, where string
		args             []any
	}
	jobs := []job{
		{"auth_requests", "id", "expires_at < ? AND code_expires_at < ?", []any{n, n}},
		{"email_codes", "id", "expires_at < ?", []any{n}},
		{"device_authorizations", "id", "expires_at < ?", []any{n}},
		{"upstream_states", "id", "expires_at < ?", []any{n}},
		{"logout_requests", "id", "expires_at < ?", []any{n}},
		{"action_tokens", "id", "expires_at < ?", []any{n}},
		{"access_tokens", "id", "expires_at < ?", []any{n}},
		{"known_browsers", "user_id, token_hash", "expires_at < ?", []any{n}},
		{"mail_outbox", "id", "done_at <> 0 AND done_at < ?", []any{before(outboxKeep)}},
		{"refresh_tokens", "id",
			"family_id IN (SELECT family_id FROM refresh_tokens WHERE expires_at <> 0 AND expires_at < ?)", []any{n}},
	}
	if p.SessionMaxIdle > 0 {
		jobs = append(jobs, job{"sessions", "id", "last_seen_at < ?", []any{before(p.SessionMaxIdle)}})
	}
	if p.TrustedDeviceGrace > 0 {
		jobs = append(jobs, job{"trusted_devices", "id", "expires_at < ?", []any{before(p.TrustedDeviceGrace)}})
	}
	throttleIdle := p.ThrottleIdle
	if throttleIdle <= 0 {
		throttleIdle = 24 * time.Hour
	}
	jobs = append(jobs, job{"throttles", "throttle_key", "blocked_until < ? AND last_failure_at < ?",
		[]any{n, before(throttleIdle)}})
	if p.RefreshIdle > 0 {
		jobs = append(jobs, job{"refresh_tokens", "id",
			"family_id IN (SELECT family_id FROM refresh_tokens WHERE last_used_at < ? AND used_at = 0 AND revoked_at = 0)",
			[]any{before(p.RefreshIdle)}})
	}
	// Revocation never precedes the family's last use, so the
	// last_used_at condition is implied and lets the index do the work.
	keep := before(max(p.RefreshIdle, 0))
	jobs = append(jobs, job{"refresh_tokens", "id",
		"family_id IN (SELECT family_id FROM refresh_tokens WHERE last_used_at < ? AND revoked_at <> 0 AND revoked_at < ?)",
		[]any{keep, keep}})
	if p.AuditRetention > 0 {
		jobs = append(jobs, job{"audit_events", "id", "at < ?", []any{before(p.AuditRetention)}})
	}

	for _, j := range jobs {
		var total int64
		sql := "DELETE FROM " + j.table + " WHERE (" + j.pk + ") IN (SELECT " + j.pk + " FROM " + j.table +
			" WHERE " + j.where + " LIMIT " + strconv.Itoa(sweepBatch) + ")"
		for {
			res := db.Exec(sql, j.args...)
			if res.Error != nil {
				return res.Error
			}
			total += res.RowsAffected
			if res.RowsAffected < sweepBatch {
				break
			}
		}
		if total > 0 {
			s.log.Debug("storage: swept", "table", j.table, "rows", total)
		}
	}
	return nil
}
