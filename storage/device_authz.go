package storage

// RFC 8628 device authorizations.

import (
	"context"

	"gorm.io/gorm"
)

// CreateDeviceAuthorization inserts d (ID generated when empty; State
// defaults to DevicePending). The user code must not belong to a row still
// live at d.CreatedAt (ExpiresAt > d.CreatedAt): ErrConflict. A unique
// index cannot say "among live rows", so the check and the insert share a
// transaction, serialised per user code (an advisory lock on PostgreSQL,
// the write lock on SQLite).
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) (DeviceAuthorization, error) {
	if d.UserCode == "" || len(d.DeviceCodeHash) == 0 {
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
		if err := s.pgLockText(tx, lockClassUserCode, d.UserCode); err != nil {
			return err
		}
		var n int64
		err := tx.Model(&deviceAuthorizationRow{}).
			Where("user_code = ? AND expires_at > ?", d.UserCode, ms(d.CreatedAt)).Count(&n).Error
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

// GetDeviceAuthorizationByUserCode returns the newest authorization with
// this user code, expired or not (older expired rows may share the code).
func (s *Store) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (DeviceAuthorization, error) {
	var rows []deviceAuthorizationRow
	err := s.read(ctx).Where("user_code = ?", userCode).Order("created_at DESC, id").Limit(1).Find(&rows).Error
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
// (ID, user code and device code are immutable).
func (s *Store) UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*DeviceAuthorization) error) (DeviceAuthorization, error) {
	return updateRow(s, ctx, "update device authorization", "id = ?", []any{id},
		deviceAuthorizationRow.domain, deviceAuthorizationToRow, fn,
		func(old DeviceAuthorization, v *DeviceAuthorization) {
			v.ID, v.UserCode, v.DeviceCodeHash = old.ID, old.UserCode, old.DeviceCodeHash
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
