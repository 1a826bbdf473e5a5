package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// CreateAuthRequest inserts ar; the caller chooses the id (the OP needs it
// for the login URL before this returns).
func (s *Store) CreateAuthRequest(ctx context.Context, ar AuthRequest) error {
	if ar.ID == "" {
		return invalid("create auth request: empty id")
	}
	row := authRequestToRow(ar)
	return fail("create auth request", s.write(ctx).Create(&row).Error)
}

// GetAuthRequest returns the request as stored, expired or not.
//
// The sign-in reads and updates its request on every step, so both are
// prepared statements, not gorm (whose builder, and its statement
// prepared again in every transaction, cost more than the query).
func (s *Store) GetAuthRequest(ctx context.Context, id string) (AuthRequest, error) {
	var row authRequestRow
	if err := s.hotRow(ctx, authRequestByID, row.ptrs(), id); err != nil {
		return AuthRequest{}, fail("get auth request", err)
	}
	a, err := row.domain()
	return a, fail("get auth request", err)
}

// UpdateAuthRequest is a read-modify-write of one request, in one
// transaction on the writer (the row locked on PostgreSQL; SQLite's BEGIN
// IMMEDIATE holds the database's write lock). fn's error is returned as
// it is, and nothing is written.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, fn func(*AuthRequest) error) (AuthRequest, error) {
	const op = "update auth request"
	if !argsValid([]any{id}) {
		return AuthRequest{}, ErrNotFound
	}
	read := authRequestByID
	if s.postgres() {
		read += " FOR UPDATE"
	}
	// Prepared before the transaction: preparing needs a free connection.
	sel, err := s.hot.get(ctx, read)
	if err != nil {
		return AuthRequest{}, fail(op, err)
	}
	upd, err := s.hot.get(ctx, authRequestUpdate)
	if err != nil {
		return AuthRequest{}, fail(op, err)
	}
	ctx = s.hotCtx(ctx)
	tx, err := s.hot.db.BeginTx(ctx, nil)
	if err != nil {
		return AuthRequest{}, fail(op, err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	var row authRequestRow
	if err := tx.StmtContext(ctx, sel).QueryRowContext(ctx, id).Scan(row.ptrs()...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return AuthRequest{}, ErrNotFound
		}
		return AuthRequest{}, fail(op, err)
	}
	v, err := row.domain()
	if err != nil {
		return AuthRequest{}, fail(op, err)
	}
	if err := fn(&v); err != nil {
		return AuthRequest{}, err
	}
	v.ID = row.ID
	nr := authRequestToRow(v)
	args := nr.updateValues()
	if !argsValid(args) {
		return AuthRequest{}, ErrInvalidText
	}
	if _, err := tx.StmtContext(ctx, upd).ExecContext(ctx, args...); err != nil {
		return AuthRequest{}, fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return AuthRequest{}, fail(op, err)
	}
	out, err := nr.domain()
	return out, fail(op, err)
}

// DeleteAuthRequest deletes one request; ErrNotFound if absent.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	res := s.write(ctx).Where("id = ?", id).Delete(&authRequestRow{})
	if res.Error != nil {
		return fail("delete auth request", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SaveAuthCode sets the code of a done request, once: the conditional
// UPDATE only matches a done request without a code, so a replayed
// callback cannot mint a second code for one sign-in. ErrNotFound if the
// request does not exist; ErrConflict if it is not done or already has a
// code.
func (s *Store) SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error {
	if len(codeHash) == 0 {
		return invalid("save auth code: empty code hash")
	}
	res := s.write(ctx).Exec(
		`UPDATE auth_requests SET code_hash = ?, code_expires_at = ?
		 WHERE id = ? AND done = ? AND code_hash IS NULL`,
		codeHash, ms(expiresAt), id, true)
	if res.Error != nil {
		return fail("save auth code", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if _, err := take[authRequestRow](s.read(ctx), "id = ?", id); err != nil {
		return fail("save auth code", err)
	}
	return ErrConflict
}

// GetAuthRequestByCode finds the request of a code digest, whatever the
// state of the code (unused, used, expired).
func (s *Store) GetAuthRequestByCode(ctx context.Context, codeHash []byte) (AuthRequest, error) {
	if len(codeHash) == 0 {
		return AuthRequest{}, ErrNotFound
	}
	row, err := take[authRequestRow](s.read(ctx), "code_hash = ?", codeHash)
	if err != nil {
		return AuthRequest{}, fail("get auth request by code", err)
	}
	a, err := row.domain()
	return a, fail("get auth request by code", err)
}

// RedeemAuthCode marks the code used in one conditional UPDATE … RETURNING:
// the database decides the single winner, on both dialects. The request
// stays valid through now == CodeExpiresAt (millisecond resolution).
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (AuthRequest, error) {
	if len(codeHash) == 0 {
		return AuthRequest{}, ErrNotFound
	}
	var rows []authRequestRow
	err := s.write(ctx).Raw(
		`UPDATE auth_requests SET code_used_at = ?
		 WHERE code_hash = ? AND code_used_at = 0 AND code_expires_at >= ?
		 RETURNING *`,
		usedMs(now), codeHash, ms(now)).Scan(&rows).Error
	if err != nil {
		return AuthRequest{}, fail("redeem auth code", err)
	}
	if len(rows) == 1 {
		a, err := rows[0].domain()
		return a, fail("redeem auth code", err)
	}
	// Lost: tell reuse (ErrConflict, with the request so the caller can
	// revoke what the first redemption issued) from unknown or expired.
	row, err := take[authRequestRow](s.read(ctx), "code_hash = ?", codeHash)
	if err != nil {
		return AuthRequest{}, fail("redeem auth code", err)
	}
	a, err := row.domain()
	if err != nil {
		return AuthRequest{}, fail("redeem auth code", err)
	}
	if row.CodeUsedMs != 0 {
		return a, ErrConflict
	}
	return AuthRequest{}, ErrNotFound
}

// usedMs is ms for "used at" markers: a used marker must never be 0 (which
// means unused), even for a caller whose clock says 1970.
func usedMs(now time.Time) int64 {
	if v := ms(now); v != 0 {
		return v
	}
	return 1
}
