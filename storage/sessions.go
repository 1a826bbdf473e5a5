package storage

import (
	"context"
	"time"
)

// CreateSession inserts s (ID generated when empty; a zero LastSeenAt
// starts at CreatedAt so the idle sweep measures from creation).
func (s *Store) CreateSession(ctx context.Context, sess Session) (Session, error) {
	if sess.ID == "" {
		sess.ID = NewID()
	}
	if len(sess.TokenHash) == 0 {
		return Session{}, invalid("create session: empty token hash")
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = sess.CreatedAt
	}
	row := sessionToRow(sess)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return Session{}, fail("create session", err)
	}
	out, err := row.domain()
	return out, fail("create session", err)
}

// GetSession finds a session by id.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	row, err := take[sessionRow](s.read(ctx), "id = ?", id)
	if err != nil {
		return Session{}, fail("get session", err)
	}
	out, err := row.domain()
	return out, fail("get session", err)
}

// GetSessionByTokenHash finds the session of a cookie (hot path: one
// prepared SELECT on the unique token_hash index).
func (s *Store) GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (Session, error) {
	if len(tokenHash) == 0 {
		return Session{}, ErrNotFound
	}
	var row sessionRow
	if err := s.hotRow(ctx, sessionByTokenHash, row.ptrs(), tokenHash); err != nil {
		return Session{}, fail("get session by token", err)
	}
	out, err := row.domain()
	return out, fail("get session by token", err)
}

// TouchSession moves LastSeenAt forward to now in one UPDATE (greatest()
// keeps it from moving back when two requests race). ErrNotFound if the
// session is gone.
func (s *Store) TouchSession(ctx context.Context, id string, now time.Time) error {
	res := s.write(ctx).Exec(
		"UPDATE sessions SET last_seen_at = "+s.greatest("last_seen_at", "?")+" WHERE id = ?",
		ms(now), id)
	if res.Error != nil {
		return fail("touch session", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// greatest is the two-argument maximum: GREATEST on PostgreSQL, the
// multi-argument scalar max() on SQLite.
func (s *Store) greatest(a, b string) string {
	if s.postgres() {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "MAX(" + a + ", " + b + ")"
}

// UpdateSession is a read-modify-write of one session.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*Session) error) (Session, error) {
	return updateRow(s, ctx, "update session", "id = ?", []any{id},
		sessionRow.domain, sessionToRow, fn,
		func(old Session, v *Session) { v.ID = old.ID })
}

// DeleteSession deletes one session; ErrNotFound if absent.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	res := s.write(ctx).Where("id = ?", id).Delete(&sessionRow{})
	if res.Error != nil {
		return fail("delete session", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ListSessions returns the user's sessions, most recently seen first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	var rows []sessionRow
	if err := s.read(ctx).Where("user_id = ?", userID).Order("last_seen_at DESC, id").Find(&rows).Error; err != nil {
		return nil, fail("list sessions", err)
	}
	out := make([]Session, 0, len(rows))
	for _, r := range rows {
		v, err := r.domain()
		if err != nil {
			return nil, fail("list sessions", err)
		}
		out = append(out, v)
	}
	return out, nil
}
