package storage

// One-time codes mailed to the user.

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

// CreateEmailCode inserts c and kills the live codes of the same (user,
// purpose, context) in one transaction, serialised per scope, so at most
// one code per scope is ever live.
func (s *Store) CreateEmailCode(ctx context.Context, c EmailCode) (EmailCode, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	row := emailCodeToRow(c)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Without the lock, two concurrent creations on PostgreSQL would
		// each kill the older codes but not see the other's new one.
		scope := c.UserID + "\x1f" + c.Purpose + "\x1f" + c.ContextID // PostgreSQL text cannot hold NUL
		if err := s.pgLockText(tx, lockClassEmailCode, scope); err != nil {
			return err
		}
		err := tx.Exec(
			`UPDATE email_codes SET dead_at = ?
			 WHERE user_id = ? AND purpose = ? AND context_id = ? AND dead_at = 0`,
			usedMs(c.CreatedAt), c.UserID, c.Purpose, c.ContextID).Error
		if err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return EmailCode{}, fail("create email code", err)
	}
	return row.domain(), nil
}

// LatestEmailCode returns the newest code of the scope, live or dead. Two
// codes created in the same millisecond are told apart by liveness (the
// live one is the newer: creating it killed the other).
func (s *Store) LatestEmailCode(ctx context.Context, userID, purpose, contextID string) (EmailCode, error) {
	// Every code page of a sign-in: a prepared statement.
	var row emailCodeRow
	if err := s.hotRow(ctx, latestEmailCode, row.ptrs(), userID, purpose, contextID); err != nil {
		return EmailCode{}, fail("latest email code", err)
	}
	return row.domain(), nil
}

// CountEmailCodesSince counts the user's codes created at or after since.
func (s *Store) CountEmailCodesSince(ctx context.Context, userID string, since time.Time) (int, error) {
	var n int64
	err := s.read(ctx).Model(&emailCodeRow{}).
		Where("user_id = ? AND created_at >= ?", userID, ms(since)).Count(&n).Error
	if err != nil {
		return 0, fail("count email codes", err)
	}
	return int(n), nil
}

// UpdateEmailCode is a read-modify-write of one code; concurrent updaters
// are serialised, so attempt counters never lose an increment.
func (s *Store) UpdateEmailCode(ctx context.Context, id string, fn func(*EmailCode) error) (EmailCode, error) {
	return updateRow(s, ctx, "update email code", "id = ?", []any{id},
		noErr(emailCodeRow.domain), emailCodeToRow, fn,
		func(old EmailCode, v *EmailCode) { v.ID = old.ID })
}

// TakeEmailCodeAttempt counts one attempt on the code and returns it, in
// one statement, before the caller compares anything: the code must be
// live (not dead, not expired at now) and have made fewer than max
// attempts, else ErrNotFound. Of concurrent callers at most max ever get
// the code back, on any number of instances.
func (s *Store) TakeEmailCodeAttempt(ctx context.Context, id string, now time.Time, max int) (EmailCode, error) {
	var rows []emailCodeRow
	err := s.write(ctx).Raw(`UPDATE email_codes SET attempts = attempts + 1
		WHERE id = ? AND dead_at = 0 AND expires_at >= ? AND attempts < ?
		RETURNING *`, id, ms(now), max).Scan(&rows).Error
	if err != nil {
		return EmailCode{}, fail("take email code attempt", err)
	}
	if len(rows) == 0 {
		return EmailCode{}, ErrNotFound
	}
	return rows[0].domain(), nil
}

// UseEmailCode marks a live code used (DeadAt=now). ErrConflict if it is
// dead already (used concurrently, superseded): one winner.
func (s *Store) UseEmailCode(ctx context.Context, id string, now time.Time) error {
	res := s.write(ctx).Exec(`UPDATE email_codes SET dead_at = ? WHERE id = ? AND dead_at = 0`, usedMs(now), id)
	if res.Error != nil {
		return fail("use email code", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrConflict
	}
	return nil
}

// IssueEmailCode creates the code c together with the mail m that
// carries it (m.EmailCodeID is set to c's id), if r allows: no code of the
// same scope (user, purpose, context) whose mail is queued or sent was
// made within r.Gap, and fewer than r.Max codes of the user and r.Budget whose
// mail did not fail or get superseded were made within r.Window. Live
// codes of the scope die; their mails still waiting are superseded (never
// sent, the secret dropped). One transaction, serialised per user (an
// advisory lock on PostgreSQL, the write lock on SQLite), so concurrent
// requests on any number of instances never get past the budget.
// c.Budget is r.Budget; c.MailState is MailVoid when m is (a stand-in's
// code no mail carries).
func (s *Store) IssueEmailCode(ctx context.Context, c EmailCode, m OutboxMessage, r CodeRule) (CodeIssue, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	c.Budget = r.Budget
	m.EmailCodeID = c.ID
	m = outboxDefaults(m)
	c.MailState = MailQueued
	if m.State == OutboxVoid {
		c.MailState = MailVoid
	}
	crow, mrow := emailCodeToRow(c), outboxToRow(m)
	now := ms(c.CreatedAt)
	stmts := make([]*sql.Stmt, len(issueSQL))
	for i, q := range issueSQL {
		var err error
		if stmts[i], err = s.hot.get(ctx, q); err != nil {
			return CodeIssue{}, fail("issue email code", err)
		}
	}
	tx, err := s.hot.db.BeginTx(ctx, nil)
	if err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	defer func() { _ = tx.Rollback() }()
	st := func(i int) *sql.Stmt { return tx.StmtContext(ctx, stmts[i]) }
	if s.postgres() {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", lockClassEmailCode, c.UserID); err != nil {
			return CodeIssue{}, fail("issue email code", err)
		}
	}
	// The gap, from the newest code of the scope whose mail is on its way
	// or arrived (one that failed, or is being retried, is no reason to
	// wait: nothing reached the mailbox).
	var last int64
	err = st(issueLast).QueryRowContext(ctx, c.UserID, c.Purpose, c.ContextID, MailFailed, MailRetrying).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return CodeIssue{}, fail("issue email code", err)
	}
	if err == nil && now-last < durMs(r.Gap) && last <= now {
		return CodeIssue{Refused: RefusedGap, RetryAt: tm(last + durMs(r.Gap))}, nil
	}
	// The budget.
	var n, oldest int64
	if err := st(issueCount).QueryRowContext(ctx, c.UserID, r.Budget, now-durMs(r.Window), MailFailed, MailSuperseded).Scan(&n, &oldest); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if int(n) >= r.Max {
		return CodeIssue{Refused: RefusedBudget, RetryAt: tm(oldest + durMs(r.Window))}, nil
	}
	// The scope's live codes die; their mails not yet sent are superseded.
	if _, err := st(issueSupersedeMail).ExecContext(ctx, now, c.UserID, c.Purpose, c.ContextID); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if _, err := st(issueSupersedeCode).ExecContext(ctx, c.UserID, c.Purpose, c.ContextID); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if _, err := st(issueKill).ExecContext(ctx, usedMs(c.CreatedAt), c.UserID, c.Purpose, c.ContextID); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if _, err := st(issueInsertCode).ExecContext(ctx, crow.ID, crow.UserID, crow.Purpose, crow.ContextID, crow.BrowserHash,
		crow.CodeHash, crow.CreatedMs, crow.ExpiresMs, crow.Attempts, crow.DeadMs, crow.Budget, crow.MailState); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if _, err := st(issueInsertMail).ExecContext(ctx, mrow.values()...); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	if err := tx.Commit(); err != nil {
		return CodeIssue{}, fail("issue email code", err)
	}
	return CodeIssue{Code: crow.domain()}, nil
}

// The statements of IssueEmailCode, in issueSQL's order.
const (
	issueLast = iota
	issueCount
	issueSupersedeMail
	issueSupersedeCode
	issueKill
	issueInsertCode
	issueInsertMail
)

var issueSQL = []string{
	issueLast: `SELECT created_at FROM email_codes WHERE user_id = ? AND purpose = ? AND context_id = ? AND mail_state <> ? AND mail_state <> ?
		ORDER BY created_at DESC LIMIT 1`,
	issueCount: `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM email_codes
		WHERE user_id = ? AND budget = ? AND created_at >= ? AND mail_state <> ? AND mail_state <> ?`,
	issueSupersedeMail: `UPDATE mail_outbox SET state = 'superseded', sealed = NULL, done_at = ?
		WHERE state = 'pending' AND email_code_id IN (SELECT id FROM email_codes
			WHERE user_id = ? AND purpose = ? AND context_id = ? AND mail_state IN ('', 'retrying'))`,
	issueSupersedeCode: `UPDATE email_codes SET mail_state = 'superseded'
		WHERE user_id = ? AND purpose = ? AND context_id = ? AND mail_state IN ('', 'retrying')
			AND EXISTS (SELECT 1 FROM mail_outbox m WHERE m.email_code_id = email_codes.id AND m.state = 'superseded')`,
	issueKill: `UPDATE email_codes SET dead_at = ? WHERE user_id = ? AND purpose = ? AND context_id = ? AND dead_at = 0`,
	issueInsertCode: `INSERT INTO email_codes (id, user_id, purpose, context_id, browser_hash, code_hash, created_at,
		expires_at, attempts, dead_at, budget, mail_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	issueInsertMail: outboxInsert,
}
