package storage

import (
	"context"
	"strings"
)

// emailKey is the case-insensitive form of an email address used for the
// unique index and lookups. Only the case is folded: trimming, IDNA and
// the like are the caller's normalisation, not ours.
func emailKey(email string) string { return strings.ToLower(email) }

// CreateUser inserts u (ID generated when empty).
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	if u.ID == "" {
		u.ID = NewID()
	}
	row := userToRow(u)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return User{}, fail("create user", err)
	}
	return row.domain(), nil
}

// GetUser finds a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	// On the token path (refresh, userinfo): a prepared statement.
	var row userRow
	if err := s.hotRow(ctx, userByID, row.ptrs(), id); err != nil {
		return User{}, fail("get user", err)
	}
	return row.domain(), nil
}

// GetUserByEmail finds a user by email, case-insensitively.
//
// The sign-in's identifier step: a prepared statement.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (User, error) {
	var row userRow
	if err := s.hotRow(ctx, userByEmailKey, row.ptrs(), emailKey(email)); err != nil {
		return User{}, fail("get user by email", err)
	}
	return row.domain(), nil
}

// ListUsers pages through users in creation order.
func (s *Store) ListUsers(ctx context.Context, opts ListOptions) ([]User, error) {
	var rows []userRow
	err := s.read(ctx).Order("created_at, id").Limit(limit(opts.Limit)).Offset(max(opts.Offset, 0)).Find(&rows).Error
	if err != nil {
		return nil, fail("list users", err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// UpdateUser is a read-modify-write of one user.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error) {
	return updateRow(s, ctx, "update user", "id = ?", []any{id},
		noErr(userRow.domain), userToRow, fn,
		func(old User, v *User) { v.ID = old.ID })
}

// UserQuery selects users for SearchUsers.
type UserQuery struct {
	// EmailPrefix matches the start of the email, case-insensitively.
	EmailPrefix string
	// After continues a previous page: the email of its last user.
	After string
	Limit int // default 100
}

// SearchUsers pages through users in email order (case-insensitive),
// optionally those whose email starts with a prefix. It reads the unique
// index on the lower-cased email as a range, so a prefix search costs a
// few pages whatever the number of users.
func (s *Store) SearchUsers(ctx context.Context, q UserQuery) ([]User, error) {
	db := s.read(ctx)
	if p := emailKey(q.EmailPrefix); p != "" {
		// email_key >= p AND email_key < p with its last byte incremented
		// (a prefix as a range; a last byte of 0xff runs to the end).
		db = db.Where("email_key >= ?", p)
		if last := p[len(p)-1]; last < 0xff {
			db = db.Where("email_key < ?", p[:len(p)-1]+string([]byte{last + 1}))
		}
	}
	if q.After != "" {
		db = db.Where("email_key > ?", emailKey(q.After))
	}
	var rows []userRow
	if err := db.Order("email_key").Limit(limit(q.Limit)).Find(&rows).Error; err != nil {
		return nil, fail("search users", err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}
