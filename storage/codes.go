package storage

// One-time codes mailed to the user.

import (
	"context"
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
	var rows []emailCodeRow
	err := s.read(ctx).
		Where("user_id = ? AND purpose = ? AND context_id = ?", userID, purpose, contextID).
		Order("created_at DESC, dead_at ASC").Limit(1).Find(&rows).Error
	if err != nil {
		return EmailCode{}, fail("latest email code", err)
	}
	if len(rows) == 0 {
		return EmailCode{}, ErrNotFound
	}
	return rows[0].domain(), nil
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
