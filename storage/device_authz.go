package storage

// RFC 8628 device authorizations.

import (
	"context"
	"encoding/hex"
	"time"

	"gorm.io/gorm"
)

// CreateDeviceAuthorization inserts d (ID generated when empty; State
// defaults to DevicePending). The user code (UserCodeHash) must not belong
// to a row still live at d.CreatedAt (ExpiresAt > d.CreatedAt):
// ErrConflict. A unique index cannot say "among live rows", so the check
// and the insert share a transaction, serialised per user code (an
// advisory lock on PostgreSQL, the write lock on SQLite).
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) (DeviceAuthorization, error) {
	if len(d.UserCodeHash) == 0 || len(d.UserCodeHalf) == 0 || len(d.DeviceCodeHash) == 0 {
		return DeviceAuthorization{}, invalid("create device authorization: empty user or device code")
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	if d.State == "" {
		d.State = DevicePending
	}
	row := deviceAuthorizationToRow(d)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.pgLockText(tx, lockClassUserCode, hex.EncodeToString(d.UserCodeHash)); err != nil {
			return err
		}
		var n int64
		err := tx.Model(&deviceAuthorizationRow{}).
			Where("user_code_hash = ? AND expires_at > ?", d.UserCodeHash, ms(d.CreatedAt)).Count(&n).Error
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return DeviceAuthorization{}, fail("create device authorization", err)
	}
	out, err := row.domain()
	return out, fail("create device authorization", err)
}

// GuessDeviceUserCode counts one wrong-or-right guess against every
// pending authorization live at now whose user code's first half digests
// to half and that has made fewer than max guesses, and returns them, in
// one statement — before the caller compares the full code's digest with
// theirs. An authorization guessed at max times is out of reach (its
// device waits until it expires). Usually none or one row comes back.
func (s *Store) GuessDeviceUserCode(ctx context.Context, half []byte, now time.Time, max int) ([]DeviceAuthorization, error) {
	if len(half) == 0 {
		return nil, nil
	}
	var rows []deviceAuthorizationRow
	err := s.write(ctx).Raw(`UPDATE device_authorizations SET wrong_guesses = wrong_guesses + 1
		WHERE user_code_half = ? AND state = ? AND expires_at >= ? AND wrong_guesses < ?
		RETURNING *`, half, DevicePending, ms(now), max).Scan(&rows).Error
	if err != nil {
		return nil, fail("guess device user code", err)
	}
	out := make([]DeviceAuthorization, 0, len(rows))
	for _, r := range rows {
		d, err := r.domain()
		if err != nil {
			return nil, fail("guess device user code", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// GetDeviceAuthorizationByUserCodeHash returns the newest authorization
// with this user code digest, expired or not (older expired rows may
// share the code).
func (s *Store) GetDeviceAuthorizationByUserCodeHash(ctx context.Context, hash []byte) (DeviceAuthorization, error) {
	if len(hash) == 0 {
		return DeviceAuthorization{}, ErrNotFound
	}
	var rows []deviceAuthorizationRow
	err := s.read(ctx).Where("user_code_hash = ?", hash).Order("created_at DESC, id").Limit(1).Find(&rows).Error
	if err != nil {
		return DeviceAuthorization{}, fail("get device authorization", err)
	}
	if len(rows) == 0 {
		return DeviceAuthorization{}, ErrNotFound
	}
	out, err := rows[0].domain()
	return out, fail("get device authorization", err)
}

// GetDeviceAuthorizationByDeviceCode finds an authorization by the digest
// of its device code.
func (s *Store) GetDeviceAuthorizationByDeviceCode(ctx context.Context, deviceCodeHash []byte) (DeviceAuthorization, error) {
	if len(deviceCodeHash) == 0 {
		return DeviceAuthorization{}, ErrNotFound
	}
	row, err := take[deviceAuthorizationRow](s.read(ctx), "device_code_hash = ?", deviceCodeHash)
	if err != nil {
		return DeviceAuthorization{}, fail("get device authorization", err)
	}
	out, err := row.domain()
	return out, fail("get device authorization", err)
}

// UpdateDeviceAuthorization is a read-modify-write of one authorization
// (ID, user code digests and device code are immutable).
func (s *Store) UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*DeviceAuthorization) error) (DeviceAuthorization, error) {
	return updateRow(s, ctx, "update device authorization", "id = ?", []any{id},
		deviceAuthorizationRow.domain, deviceAuthorizationToRow, fn,
		func(old DeviceAuthorization, v *DeviceAuthorization) {
			v.ID, v.UserCodeHash, v.UserCodeHalf, v.DeviceCodeHash = old.ID, old.UserCodeHash, old.UserCodeHalf, old.DeviceCodeHash
		})
}

// GetDeviceAuthorization finds an authorization by id.
func (s *Store) GetDeviceAuthorization(ctx context.Context, id string) (DeviceAuthorization, error) {
	row, err := take[deviceAuthorizationRow](s.read(ctx), "id = ?", id)
	if err != nil {
		return DeviceAuthorization{}, fail("get device authorization", err)
	}
	out, err := row.domain()
	return out, fail("get device authorization", err)
}
