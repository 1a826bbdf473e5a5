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
// cookie) signed in as the user, and reports whether it is new to the
// user: inserted now, or its record had expired (a browser not used for
// that long is new again; the record starts over). Whoever races, one
// statement decides, once: the insert that wins, or the one update that
// revives the expired record. A known browser's SeenAt and ExpiresAt only
// move forward, FirstSeen is kept.
func (s *Store) TouchKnownBrowser(ctx context.Context, k KnownBrowser) (bool, error) {
	if k.UserID == "" || len(k.TokenHash) == 0 {
		return false, invalid("touch known browser: empty user or token hash")
	}
	db := s.write(ctx)
	seen, exp := ms(k.SeenAt), ms(k.ExpiresAt)
	res := db.Exec(`INSERT INTO known_browsers (user_id, token_hash, first_seen_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, token_hash) DO NOTHING`, k.UserID, k.TokenHash, seen, seen, exp)
	if res.Error != nil || res.RowsAffected == 1 {
		return res.Error == nil, fail("touch known browser", res.Error)
	}
	res = db.Exec(`UPDATE known_browsers SET first_seen_at = ?, last_seen_at = ?, expires_at = ?
		WHERE user_id = ? AND token_hash = ? AND expires_at < ?`, seen, seen, exp, k.UserID, k.TokenHash, seen)
	if res.Error != nil || res.RowsAffected == 1 {
		return res.Error == nil, fail("touch known browser", res.Error)
	}
	err := db.Exec(`UPDATE known_browsers SET
			last_seen_at = CASE WHEN ? > last_seen_at THEN ? ELSE last_seen_at END,
			expires_at = CASE WHEN ? > expires_at THEN ? ELSE expires_at END
		WHERE user_id = ? AND token_hash = ?`, seen, seen, exp, exp, k.UserID, k.TokenHash).Error
	return false, fail("touch known browser", err)
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
