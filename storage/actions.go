package storage

// Single-use link tokens and pending logout requests.

import (
	"context"
	"time"
)

// CreateActionToken inserts t (ID generated when empty).
func (s *Store) CreateActionToken(ctx context.Context, t ActionToken) (ActionToken, error) {
	if len(t.TokenHash) == 0 {
		return ActionToken{}, invalid("create action token: empty token hash")
	}
	if t.ID == "" {
		t.ID = NewID()
	}
	row := actionTokenToRow(t)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return ActionToken{}, fail("create action token", err)
	}
	return row.domain(), nil
}

// RedeemActionToken marks the token used in one conditional UPDATE …
// RETURNING (one winner). Valid through now == ExpiresAt. ErrNotFound for
// unknown, wrong purpose, expired or already used.
func (s *Store) RedeemActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (ActionToken, error) {
	if len(tokenHash) == 0 {
		return ActionToken{}, ErrNotFound
	}
	var rows []actionTokenRow
	err := s.write(ctx).Raw(
		`UPDATE action_tokens SET used_at = ?
		 WHERE token_hash = ? AND purpose = ? AND used_at = 0 AND expires_at >= ?
		 RETURNING *`,
		usedMs(now), tokenHash, purpose, ms(now)).Scan(&rows).Error
	if err != nil {
		return ActionToken{}, fail("redeem action token", err)
	}
	if len(rows) == 0 {
		return ActionToken{}, ErrNotFound
	}
	return rows[0].domain(), nil
}

// GetActionToken finds an unused token of purpose, unexpired at now.
func (s *Store) GetActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (ActionToken, error) {
	if len(tokenHash) == 0 {
		return ActionToken{}, ErrNotFound
	}
	row, err := take[actionTokenRow](s.read(ctx),
		"token_hash = ? AND purpose = ? AND used_at = 0 AND expires_at >= ?", tokenHash, purpose, ms(now))
	if err != nil {
		return ActionToken{}, fail("get action token", err)
	}
	return row.domain(), nil
}

// CreateLogoutRequest inserts l (ID generated when empty).
func (s *Store) CreateLogoutRequest(ctx context.Context, l LogoutRequest) (LogoutRequest, error) {
	if l.ID == "" {
		l.ID = NewID()
	}
	row := logoutRequestToRow(l)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return LogoutRequest{}, fail("create logout request", err)
	}
	return row.domain(), nil
}

// TakeLogoutRequest deletes the request and returns it (one DELETE …
// RETURNING, so it can be taken once). An expired request is deleted too
// but reported as ErrNotFound. Valid through now == ExpiresAt.
func (s *Store) TakeLogoutRequest(ctx context.Context, id string, now time.Time) (LogoutRequest, error) {
	var rows []logoutRequestRow
	if err := s.write(ctx).Raw("DELETE FROM logout_requests WHERE id = ? RETURNING *", id).Scan(&rows).Error; err != nil {
		return LogoutRequest{}, fail("take logout request", err)
	}
	if len(rows) == 0 || rows[0].ExpiresMs < ms(now) {
		return LogoutRequest{}, ErrNotFound
	}
	return rows[0].domain(), nil
}

// GetLogoutRequest returns the request if it exists and is unexpired at
// now (valid through now == ExpiresAt), without deleting it.
func (s *Store) GetLogoutRequest(ctx context.Context, id string, now time.Time) (LogoutRequest, error) {
	row, err := take[logoutRequestRow](s.read(ctx), "id = ? AND expires_at >= ?", id, ms(now))
	if err != nil {
		return LogoutRequest{}, fail("get logout request", err)
	}
	return row.domain(), nil
}

// DeleteLogoutRequest deletes one request; ErrNotFound if absent.
func (s *Store) DeleteLogoutRequest(ctx context.Context, id string) error {
	res := s.write(ctx).Where("id = ?", id).Delete(&logoutRequestRow{})
	if res.Error != nil {
		return fail("delete logout request", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}
