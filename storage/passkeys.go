package storage

// Passkeys (WebAuthn credentials) and their ceremonies in flight.

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// CreatePasskey inserts p (ID generated when empty). ErrConflict if the
// credential id is already registered (to anyone).
func (s *Store) CreatePasskey(ctx context.Context, p Passkey) (Passkey, error) {
	if p.ID == "" {
		p.ID = NewID()
	}
	if p.UserID == "" || len(p.CredentialID) == 0 || len(p.UserHandle) == 0 || len(p.PublicKey) == 0 {
		return Passkey{}, invalid("create passkey: user, credential id, user handle and public key are required")
	}
	row := passkeyToRow(p)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return Passkey{}, fail("create passkey", err)
	}
	return row.domain()
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]Passkey, error) {
	var rows []passkeyRow
	if err := s.read(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fail("list passkeys", err)
	}
	out := make([]Passkey, len(rows))
	for i, r := range rows {
		p, err := r.domain()
		if err != nil {
			return nil, fail("list passkeys", err)
		}
		out[i] = p
	}
	return out, nil
}

// GetPasskeyByCredentialID finds the passkey with this credential id,
// whoever it belongs to.
func (s *Store) GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error) {
	if len(credentialID) == 0 {
		return Passkey{}, ErrNotFound
	}
	row, err := take[passkeyRow](s.read(ctx), "credential_id = ?", credentialID)
	if err != nil {
		return Passkey{}, fail("get passkey", err)
	}
	p, err := row.domain()
	return p, fail("get passkey", err)
}

// UsePasskey records a verified assertion in one conditional UPDATE: the
// signature counter only moves forward (WebAuthn §6.1.1: a counter that
// does not grow means a cloned authenticator), except for authenticators
// that keep no counter (0 stored and 0 presented). ErrConflict if the
// counter did not grow; ErrNotFound if the passkey is gone.
func (s *Store) UsePasskey(ctx context.Context, id string, u PasskeyUse) error {
	n := int64(u.SignCount)
	cond := "sign_count < ?" // the counter grew
	if n == 0 {
		cond = "sign_count = ?" // no counter, then or now
	}
	res := s.write(ctx).Exec(
		`UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ?
		 WHERE id = ? AND `+cond,
		n, u.BackupState, ms(u.At), id, n)
	if res.Error != nil {
		return fail("use passkey", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if _, err := take[passkeyRow](s.read(ctx), "id = ?", id); err != nil {
		return fail("use passkey", err)
	}
	return ErrConflict
}

// DeletePasskey deletes one passkey of this user (ErrNotFound if it is
// not theirs).
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	res := s.write(ctx).Where("id = ? AND user_id = ?", id, userID).Delete(&passkeyRow{})
	if res.Error != nil {
		return fail("delete passkey", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// CreatePasskeyChallenge inserts c (ID generated when empty) and, in the
// same transaction, retires (UsedAt=c.CreatedAt) every live challenge of
// the same purpose, context and browser: a page that asks again replaces
// what it asked before. ErrConflict on a duplicate challenge digest.
func (s *Store) CreatePasskeyChallenge(ctx context.Context, c PasskeyChallenge) (PasskeyChallenge, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	if len(c.ChallengeHash) == 0 || c.Purpose == "" || len(c.BrowserHash) == 0 {
		return PasskeyChallenge{}, invalid("create passkey challenge: challenge, purpose and browser are required")
	}
	row := passkeyChallengeToRow(c)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(
			`UPDATE passkey_challenges SET used_at = ?
			 WHERE purpose = ? AND context_id = ? AND browser_hash = ? AND used_at = 0`,
			usedMs(c.CreatedAt), c.Purpose, c.ContextID, c.BrowserHash).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return PasskeyChallenge{}, fail("create passkey challenge", err)
	}
	return row.domain(), nil
}

// TakePasskeyChallenge uses up the live challenge with this digest, of
// this purpose and context, asked for by this browser, in one conditional
// UPDATE … RETURNING: of concurrent takers exactly one wins. ErrNotFound
// when there is none (unknown, used, superseded, expired at now, or asked
// for by another browser or for something else).
func (s *Store) TakePasskeyChallenge(ctx context.Context, challengeHash []byte, purpose, contextID string, browserHash []byte, now time.Time) (PasskeyChallenge, error) {
	if len(challengeHash) == 0 || len(browserHash) == 0 {
		return PasskeyChallenge{}, ErrNotFound
	}
	var rows []passkeyChallengeRow
	err := s.write(ctx).Raw(
		`UPDATE passkey_challenges SET used_at = ?
		 WHERE challenge_hash = ? AND purpose = ? AND context_id = ? AND browser_hash = ?
		   AND used_at = 0 AND expires_at >= ?
		 RETURNING *`,
		usedMs(now), challengeHash, purpose, contextID, browserHash, ms(now)).Scan(&rows).Error
	if err != nil {
		return PasskeyChallenge{}, fail("take passkey challenge", err)
	}
	if len(rows) != 1 {
		return PasskeyChallenge{}, ErrNotFound
	}
	return rows[0].domain(), nil
}
