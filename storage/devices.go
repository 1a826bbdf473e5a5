package storage

// Trusted devices ("Trust this device"): one record per (user, browser).

import (
	"context"
)

// CreateTrustedDevice inserts d (ID generated when empty).
func (s *Store) CreateTrustedDevice(ctx context.Context, d TrustedDevice) (TrustedDevice, error) {
	if d.ID == "" {
		d.ID = NewID()
	}
	if len(d.TokenHash) == 0 {
		return TrustedDevice{}, invalid("create trusted device: empty token hash")
	}
	row := trustedDeviceToRow(d)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return TrustedDevice{}, fail("create trusted device", err)
	}
	return row.domain(), nil
}

// GetTrustedDevice returns the newest record of this user for this
// browser cookie, expired or not.
func (s *Store) GetTrustedDevice(ctx context.Context, userID string, tokenHash []byte) (TrustedDevice, error) {
	if len(tokenHash) == 0 {
		return TrustedDevice{}, ErrNotFound
	}
	var rows []trustedDeviceRow
	err := s.read(ctx).Where("user_id = ? AND token_hash = ?", userID, tokenHash).
		Order("created_at DESC, id").Limit(1).Find(&rows).Error
	if err != nil {
		return TrustedDevice{}, fail("get trusted device", err)
	}
	if len(rows) == 0 {
		return TrustedDevice{}, ErrNotFound
	}
	return rows[0].domain(), nil
}

// UpdateTrustedDevice is a read-modify-write of one record (ID and UserID
// are immutable).
func (s *Store) UpdateTrustedDevice(ctx context.Context, id string, fn func(*TrustedDevice) error) (TrustedDevice, error) {
	return updateRow(s, ctx, "update trusted device", "id = ?", []any{id},
		noErr(trustedDeviceRow.domain), trustedDeviceToRow, fn,
		func(old TrustedDevice, v *TrustedDevice) { v.ID, v.UserID = old.ID, old.UserID })
}

// ListTrustedDevices returns the user's records, newest first.
func (s *Store) ListTrustedDevices(ctx context.Context, userID string) ([]TrustedDevice, error) {
	var rows []trustedDeviceRow
	if err := s.read(ctx).Where("user_id = ?", userID).Order("created_at DESC, id").Find(&rows).Error; err != nil {
		return nil, fail("list trusted devices", err)
	}
	out := make([]TrustedDevice, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// DeleteTrustedDevice deletes one record of this user; ErrNotFound if
// there is none with that id for that user.
func (s *Store) DeleteTrustedDevice(ctx context.Context, userID, id string) error {
	res := s.write(ctx).Where("id = ? AND user_id = ?", id, userID).Delete(&trustedDeviceRow{})
	if res.Error != nil {
		return fail("delete trusted device", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchKnownBrowser records that a browser (the digest of its device
// cookie) signed in as the user: inserted on the first sign-in, SeenAt
// and ExpiresAt moved forward on later ones (one statement, an upsert).
func (s *Store) TouchKnownBrowser(ctx context.Context, k KnownBrowser) error {
	if k.UserID == "" || len(k.TokenHash) == 0 {
		return invalid("touch known browser: empty user or token hash")
	}
	err := s.write(ctx).Exec(`INSERT INTO known_browsers (user_id, token_hash, first_seen_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, token_hash) DO UPDATE SET
			last_seen_at = CASE WHEN excluded.last_seen_at > known_browsers.last_seen_at THEN excluded.last_seen_at ELSE known_browsers.last_seen_at END,
			expires_at = CASE WHEN excluded.expires_at > known_browsers.expires_at THEN excluded.expires_at ELSE known_browsers.expires_at END`,
		k.UserID, k.TokenHash, ms(k.SeenAt), ms(k.SeenAt), ms(k.ExpiresAt)).Error
	return fail("touch known browser", err)
}

// GetKnownBrowser returns the record of this user for this browser,
// expired or not (the caller compares ExpiresAt).
func (s *Store) GetKnownBrowser(ctx context.Context, userID string, tokenHash []byte) (KnownBrowser, error) {
	if len(tokenHash) == 0 {
		return KnownBrowser{}, ErrNotFound
	}
	row, err := take[knownBrowserRow](s.read(ctx), "user_id = ? AND token_hash = ?", userID, tokenHash)
	if err != nil {
		return KnownBrowser{}, fail("get known browser", err)
	}
	return row.domain(), nil
}
