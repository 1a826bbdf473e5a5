package storage

// Housekeeping: deleting what has expired. Every deletion is a batch of
// plain DELETE statements (at most sweepBatch rows each, each its own
// autocommit statement), so a large backlog never holds the SQLite write
// lock or PostgreSQL row locks for long, and running Sweep again, or on
// several instances, is harmless. On PostgreSQL one instance of a schema
// sweeps at a time (pg_try_advisory_lock: the others return at once).

import (
	"context"
	"database/sql/driver"
	"strconv"
	"time"

	"gorm.io/gorm"
)

const sweepBatch = 1000

// The sweep's advisory lock (PostgreSQL) is per schema: advisory locks
// belong to the database, and stores in different schemas of one database
// (several deployments, the tests' stores) share no tables, so one must
// not skip the other's sweep. Instances of one deployment share its
// schema and take turns.
const (
	sweepTryLock = "SELECT pg_try_advisory_lock(?, hashtext(current_schema()) # ?)"
	sweepUnlock  = "SELECT pg_advisory_unlock(?, hashtext(current_schema()) # ?)"
)

// Sweep deletes, as of now:
//   - auth requests past ExpiresAt whose code (if any) is past CodeExpiresAt
//     too (a redeemed request is kept until then for reuse detection);
//   - email codes, passkey challenges, device authorizations, upstream
//     states, logout requests, action tokens, access tokens and known
//     browsers past ExpiresAt;
//   - sessions unseen for SessionMaxIdle (0: none);
//   - trusted devices expired for longer than TrustedDeviceGrace (0: none:
//     the re-verification rule may still read expired records);
//   - throttles neither blocked nor failed for ThrottleIdle (0: 24h);
//   - refresh families past their cap (ExpiresAt), heads unused for
//     RefreshIdle (0: none), used tokens used longer than RefreshUsedKeep
//     ago (0: a minute), and revoked families revoked for longer than
//     RefreshIdle (0: at once);
//   - audit events older than AuditRetention (0: none);
//   - outbox messages done (sent, failed, superseded, void) for longer
//     than OutboxKeep (0: 7 days); their content went when they were done;
//   - back-channel logouts done (delivered or given up) for longer than
//     BackchannelKeep, webhook deliveries done for longer than
//     EventDeliveryKeep (0: 7 days each);
//   - links of sessions to products (session_clients) whose session is
//     gone, an hour after they were made.
//
// Rotated refresh tokens are not left to the sweep: a rotation deletes
// its family's used tokens but the one it rotated, so a family holds only
// its head(s) and the token the grace may still rotate. No table grows
// with traffic, only with time, up to the longest of these durations
// (README, "Running on PostgreSQL", has a soak's figures;
// TestTablesStayBounded fails if a rule goes missing).
func (s *Store) Sweep(ctx context.Context, now time.Time, p SweepPolicy) error {
	if !s.postgres() {
		return fail("sweep", s.sweep(s.write(ctx), now, p))
	}
	err := s.w.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		var got bool
		if err := conn.Raw(sweepTryLock, lockClass, lockSweep).Scan(&got).Error; err != nil {
			return err
		}
		if !got {
			s.log.Debug("storage: sweep skipped: another instance is sweeping")
			return nil
		}
		defer func() {
			uctx := context.WithoutCancel(ctx)
			if err := conn.WithContext(uctx).Exec(sweepUnlock, lockClass, lockSweep).Error; err != nil {
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
	backchannelKeep := p.BackchannelKeep
	if backchannelKeep <= 0 {
		backchannelKeep = 7 * 24 * time.Hour
	}
	before := func(d time.Duration) int64 { return ms(now.Add(-d)) }
	type job struct {
		table, pk, where string
		args             []any
	}
	if p.OnAbandoned != nil {
		var cnt int64
		if err := db.Raw("SELECT COUNT(*) FROM auth_requests WHERE expires_at < ? AND code_expires_at < ? AND done = ? AND user_id <> ''",
			n, n, false).Scan(&cnt).Error; err != nil {
			return err
		}
		if cnt > 0 {
			p.OnAbandoned(int(cnt))
		}
	}
	jobs := []job{
		{"auth_requests", "id", "expires_at < ? AND code_expires_at < ?", []any{n, n}},
		{"email_codes", "id", "expires_at < ?", []any{n}},
		{"passkey_challenges", "id", "expires_at < ?", []any{n}},
		{"device_authorizations", "id", "expires_at < ?", []any{n}},
		{"upstream_states", "id", "expires_at < ?", []any{n}},
		{"logout_requests", "id", "expires_at < ?", []any{n}},
		{"action_tokens", "id", "expires_at < ?", []any{n}},
		{"access_tokens", "id", "expires_at < ?", []any{n}},
		{"used_jtis", "jti_key", "expires_at < ?", []any{n}},
		{"pushed_requests", "id", "expires_at < ?", []any{n}},
		// Finished deliveries: their audit events stay.
		{"backchannel_logouts", "id", "(delivered_at <> 0 OR failed_at <> 0) AND created_at < ?", []any{before(backchannelKeep)}},
		// Links of sessions that ended without a back-channel logout being
		// queued (idle sessions the sweep deleted). Not race-free: a sweep
		// landing between a caller's deletion of a session and its
		// EnqueueBackchannelLogouts (the next statement) would drop that
		// session's links; the hour spares sessions that just started.
		// Keyed by the table's own primary key, so a batch is exactly the
		// rows it selected; NOT EXISTS (not NOT IN) lets PostgreSQL run an
		// anti-join on the sessions key however many sessions there are.
		{"session_clients", "session_id, client_id",
			"created_at < ? AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.id = session_clients.live_session_id)", []any{before(time.Hour)}},
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
		// Idle heads, each on its own: a family may have two (a sibling
		// issued within the reuse grace), and one idle head must not take
		// a live one with it. A family left with no head is then only
		// used tokens, which the next rule removes.
		jobs = append(jobs, job{"refresh_tokens", "id", "last_used_at < ? AND used_at = 0 AND revoked_at = 0",
			[]any{before(p.RefreshIdle)}})
	}
	// Used refresh tokens: reuse detection needs only the heads (and,
	// within the reuse grace, the token just rotated); a token rotated
	// away longer ago is still recognised by the family its value names
	// (op). So used tokens go once RefreshUsedKeep has passed, and a
	// family's rows stay bounded however often it rotates.
	usedKeep := p.RefreshUsedKeep
	if usedKeep <= 0 {
		usedKeep = time.Minute
	}
	jobs = append(jobs, job{"refresh_tokens", "id", "used_at <> 0 AND used_at < ? AND revoked_at = 0", []any{before(usedKeep)}})
	// Revocation never precedes the family's last use, so the
	// last_used_at condition is implied and lets the index do the work.
	keep := before(max(p.RefreshIdle, 0))
	jobs = append(jobs, job{"refresh_tokens", "id",
		"family_id IN (SELECT family_id FROM refresh_tokens WHERE last_used_at < ? AND revoked_at <> 0 AND revoked_at < ?)",
		[]any{keep, keep}})
	// Families with no token left (the jobs above, a user's deletion, a
	// failed load). A family's row and first token are written in one
	// transaction; the hour spares a bulk load (two) in flight.
	jobs = append(jobs, job{"refresh_families", "id",
		"created_at < ? AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.family_id = refresh_families.id)",
		[]any{before(time.Hour)}})
	deliveryKeep := p.EventDeliveryKeep
	if deliveryKeep <= 0 {
		deliveryKeep = 7 * 24 * time.Hour
	}
	jobs = append(jobs, job{"event_deliveries", "id",
		"(delivered_at > 0 AND delivered_at < ?) OR (failed_at > 0 AND failed_at < ?)",
		[]any{before(deliveryKeep), before(deliveryKeep)}})
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
