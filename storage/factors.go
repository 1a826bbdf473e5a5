package storage

// Second factors: TOTP credentials and the backup code.

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateTOTP inserts c (ID generated when empty; Status defaults to
// TOTPPending).
func (s *Store) CreateTOTP(ctx context.Context, c TOTPCredential) (TOTPCredential, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.Status == "" {
		c.Status = TOTPPending
	}
	row := totpToRow(c)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return TOTPCredential{}, fail("create totp", err)
	}
	return row.domain(), nil
}

// ListTOTP returns the user's credentials, active first, then oldest first.
func (s *Store) ListTOTP(ctx context.Context, userID string) ([]TOTPCredential, error) {
	// Every step of a sign-in reads the user's authenticators: a prepared
	// statement.
	rows, err := hotRows(s, ctx, totpByUser, (*totpRow).ptrs, userID)
	if err != nil {
		return nil, fail("list totp", err)
	}
	out := make([]TOTPCredential, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// AcceptTOTPStep records step as the last accepted one iff it is newer, in
// one conditional UPDATE: of two concurrent calls with the same step the
// database lets exactly one change the row.
func (s *Store) AcceptTOTPStep(ctx context.Context, id string, step int64) error {
	res := s.write(ctx).Exec(
		"UPDATE totp_credentials SET last_step = ? WHERE id = ? AND last_step < ?", step, id, step)
	if res.Error != nil {
		return fail("accept totp step", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if _, err := take[totpRow](s.read(ctx), "id = ?", id); err != nil {
		return fail("accept totp step", err)
	}
	return ErrConflict
}

// ActivateTOTP promotes the pending credential and deletes the user's
// others, in one transaction.
func (s *Store) ActivateTOTP(ctx context.Context, userID, id string, step int64, now time.Time) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(
			`UPDATE totp_credentials SET status = ?, last_step = ?, confirmed_at = ?
			 WHERE id = ? AND user_id = ? AND status = ?`,
			TOTPActive, step, ms(now), id, userID, TOTPPending)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Where("user_id = ? AND id <> ?", userID, id).Delete(&totpRow{}).Error
	})
	return fail("activate totp", err)
}

// DeleteTOTP deletes the user's credentials of status ("" = all). Deleting
// nothing is not an error.
func (s *Store) DeleteTOTP(ctx context.Context, userID, status string) error {
	q := s.write(ctx).Where("user_id = ?", userID)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	return fail("delete totp", q.Delete(&totpRow{}).Error)
}

// BackupCodeShow says where the display copy of a new backup code goes,
// written in the same transaction as the code itself: a code that guards
// the account is never one its owner cannot see.
type BackupCodeShow struct {
	// AuthRequestID is the sign-in that shows the new code once; Sealed is
	// its sealed copy (auth_requests.backup_code_sealed, cleared when the
	// user ticks "I saved my backup code").
	AuthRequestID string
	Sealed        []byte
	// NextSignin: nobody sees the new code now (a password reset); the
	// user's next sign-in makes and shows a fresh one
	// (users.needs_backup_code).
	NextSignin bool
}

// SetBackupCode replaces the user's backup code (upsert) and records show,
// in one transaction.
func (s *Store) SetBackupCode(ctx context.Context, b BackupCode, show BackupCodeShow) error {
	row := backupCodeToRow(b)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "user_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"code_hash", "created_at"}),
		}).Create(&row).Error; err != nil {
			return err
		}
		return recordBackupShow(tx, b.UserID, show)
	})
	return fail("set backup code", err)
}

// recordBackupShow writes show inside the backup code's transaction.
func recordBackupShow(tx *gorm.DB, userID string, show BackupCodeShow) error {
	if show.AuthRequestID != "" {
		res := tx.Exec("UPDATE auth_requests SET backup_code_sealed = ?, backup_code_shown = ? WHERE id = ? AND done = ?",
			blob(show.Sealed), false, show.AuthRequestID, false)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound // the sign-in is gone or finished: keep the old code
		}
	}
	if show.NextSignin {
		return tx.Exec("UPDATE users SET needs_backup_code = ? WHERE id = ?", true, userID).Error
	}
	return nil
}

// GetBackupCode returns the user's backup code.
func (s *Store) GetBackupCode(ctx context.Context, userID string) (BackupCode, error) {
	row, err := take[backupCodeRow](s.read(ctx), "user_id = ?", userID)
	if err != nil {
		return BackupCode{}, fail("get backup code", err)
	}
	return row.domain(), nil
}

// ReplaceBackupCode swaps the code iff it still is oldHash (compare-and-set
// in one UPDATE) and records show, in one transaction. ErrConflict if it is
// not (already used); ErrNotFound if the user has no backup code at all, or
// show names a sign-in that is gone or finished (nothing changes).
// next.UserID is ignored.
func (s *Store) ReplaceBackupCode(ctx context.Context, userID string, oldHash []byte, next BackupCode, show BackupCodeShow) error {
	if len(oldHash) == 0 {
		return ErrConflict
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(
			"UPDATE backup_codes SET code_hash = ?, created_at = ? WHERE user_id = ? AND code_hash = ?",
			blob(next.CodeHash), ms(next.CreatedAt), userID, oldHash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if _, err := take[backupCodeRow](tx, "user_id = ?", userID); err != nil {
				return err
			}
			return ErrConflict
		}
		return recordBackupShow(tx, userID, show)
	})
	return fail("replace backup code", err)
}

// DeleteBackupCode deletes the user's backup code (none is fine).
func (s *Store) DeleteBackupCode(ctx context.Context, userID string) error {
	return fail("delete backup code",
		s.write(ctx).Where("user_id = ?", userID).Delete(&backupCodeRow{}).Error)
}
