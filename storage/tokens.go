package storage

// Refresh-token families and opaque access tokens. These are the OP's hot
// paths: every method here is one or a few statements on indexed columns.

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// CreateRefreshToken inserts the first token of a family; the database
// writes the family's row (migration 0014). Defaults: ID and FamilyID
// generated when empty; FamilyCreatedAt and LastUsedAt default to
// CreatedAt (the idle sweep measures from LastUsedAt). A token added to a
// family that exists must have its user, session and client.
func (s *Store) CreateRefreshToken(ctx context.Context, rt RefreshToken) (RefreshToken, error) {
	if len(rt.TokenHash) == 0 {
		return RefreshToken{}, invalid("create refresh token: empty token hash")
	}
	if rt.ID == "" {
		rt.ID = NewID()
	}
	startFamily(&rt)
	row := refreshTokenToRow(rt)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		// After the insert, so two first tokens of one family at once
		// cannot both pass: the second sees the first's row.
		var fam refreshFamilyRow
		if err := tx.Where("id = ?", row.FamilyID).Take(&fam).Error; err != nil {
			return err
		}
		if fam.UserID != row.UserID || fam.SessionID != row.SessionID || fam.ClientID != row.ClientID {
			return invalid("create refresh token: the family has another user, session or client")
		}
		return nil
	})
	if err != nil {
		return RefreshToken{}, fail("create refresh token", err)
	}
	out, err := row.domain()
	return out, fail("create refresh token", err)
}

// startFamily fills the defaults of a family's first token: a new
// FamilyID, and FamilyCreatedAt and LastUsedAt at CreatedAt.
func startFamily(rt *RefreshToken) {
	if rt.FamilyID == "" {
		rt.FamilyID = NewID()
	}
	if rt.FamilyCreatedAt.IsZero() {
		rt.FamilyCreatedAt = rt.CreatedAt
	}
	if rt.LastUsedAt.IsZero() {
		rt.LastUsedAt = rt.CreatedAt
	}
}

// GetRefreshTokenByHash finds a token by its family (the family its value
// names) and digest, whatever its state (the caller tells reuse from use by
// UsedAt/RevokedAt). family "" finds only a token issued before values
// named their family (a database migrated from before 0012), by digest
// alone.
func (s *Store) GetRefreshTokenByHash(ctx context.Context, family string, tokenHash []byte) (RefreshToken, error) {
	l, ok := s.refreshLookup(family, tokenHash)
	if !ok {
		return RefreshToken{}, ErrNotFound
	}
	// The refresh grant's first read: a prepared statement, not gorm.
	var row refreshTokenRow
	if err := s.hotRow(ctx, refreshTokenLookups[l.by], row.ptrs(), l.args...); err != nil {
		return RefreshToken{}, fail("get refresh token", err)
	}
	if !l.holds(row.FamilyID) {
		return RefreshToken{}, ErrNotFound
	}
	out, err := row.domain()
	return out, fail("get refresh token", err)
}

// GetRefreshGrant is the refresh grant's one read: the token by family and
// digest, whatever its state (as GetRefreshTokenByHash), and its user, in
// one statement. ErrNotFound when there is no such token or its user is
// gone: the caller tells those apart with GetRefreshTokenByHash and
// GetUser, off the hot path.
func (s *Store) GetRefreshGrant(ctx context.Context, family string, tokenHash []byte) (RefreshToken, User, error) {
	l, ok := s.refreshLookup(family, tokenHash)
	if !ok {
		return RefreshToken{}, User{}, ErrNotFound
	}
	var rt refreshTokenRow
	var u userRow
	if err := s.hotRow(ctx, refreshGrantLookups[l.by], append(rt.ptrs(), u.ptrs()...), l.args...); err != nil {
		return RefreshToken{}, User{}, fail("get refresh grant", err)
	}
	if !l.holds(rt.FamilyID) {
		return RefreshToken{}, User{}, ErrNotFound
	}
	out, err := rt.domain()
	if err != nil {
		return RefreshToken{}, User{}, fail("get refresh grant", err)
	}
	return out, u.domain(), nil
}

// refreshLookup is how a presented refresh token is searched for (see
// refreshTokenByFamily), and with what arguments.
type refreshLookup struct {
	by     lookupBy
	family string // lookupDigest: the family the found row must have
	args   []any
}

type lookupBy int

const (
	lookupFamily lookupBy = iota // by family and digest (SQLite)
	lookupOld                    // by digest among the tokens from before migration 0012 (no family named)
	lookupDigest                 // by digest, the family compared after (PostgreSQL)
)

// refreshLookup: ok is false when nothing can match (no digest, or a
// family that is not valid text and so names no row).
func (s *Store) refreshLookup(family string, tokenHash []byte) (refreshLookup, bool) {
	switch {
	case len(tokenHash) == 0 || !ValidText(family):
		return refreshLookup{}, false
	case family == "":
		return refreshLookup{by: lookupOld, args: []any{tokenHash}}, true
	case s.postgres():
		return refreshLookup{by: lookupDigest, family: family, args: []any{tokenHash}}, true
	}
	return refreshLookup{by: lookupFamily, args: []any{family, tokenHash}}, true
}

// The statements of each kind of lookup.
var (
	refreshTokenLookups = [...]string{lookupFamily: refreshTokenByFamily, lookupOld: refreshTokenOld, lookupDigest: refreshTokenByDigest}
	refreshGrantLookups = [...]string{lookupFamily: refreshGrantByFamily, lookupOld: refreshGrantOld, lookupDigest: refreshGrantByDigest}
)

// holds: the found row is of the family searched for.
func (l refreshLookup) holds(family string) bool { return l.by != lookupDigest || family == l.family }

// LiveRefreshFamily returns a token of the family that is not revoked —
// an unused head if there is one — or ErrNotFound when the family does not
// exist (any more) or is revoked. Rotated-away tokens are compacted out of
// storage (Sweep); this is how one of them, presented again, is still
// recognised as reuse of a live grant.
func (s *Store) LiveRefreshFamily(ctx context.Context, familyID string) (RefreshToken, error) {
	if familyID == "" || !ValidText(familyID) {
		return RefreshToken{}, ErrNotFound
	}
	var row refreshTokenRow
	err := s.read(ctx).Where("family_id = ? AND revoked_at = 0", familyID).
		Order("used_at, created_at DESC").Take(&row).Error
	if err != nil {
		return RefreshToken{}, fail("live refresh family", err)
	}
	out, err := row.domain()
	return out, fail("live refresh family", err)
}

// The statements of a rotation, prepared once (see stmtCache).
const (
	// The compare-and-set of a rotation: the token is unused, or was used
	// within the reuse grace (its first use stays its used_at, so retries
	// do not stretch the grace). Revoked tokens never rotate.
	rotateMarkUsed = `UPDATE refresh_tokens SET used_at = CASE WHEN used_at = 0 THEN ? ELSE used_at END
		WHERE id = ? AND revoked_at = 0 AND (used_at = 0 OR used_at >= ?)
		RETURNING family_id, family_created_at`
	rotateExists       = `SELECT count(*) FROM refresh_tokens WHERE id = ?`
	rotateDeleteAccess = `DELETE FROM access_tokens WHERE refresh_token_id = ?`
	rotateUndo         = `UPDATE refresh_tokens SET used_at = 0 WHERE id = ? AND used_at = ?`
	// The family's compaction: the grace is for a retry of the family's
	// latest rotation (a lost answer, refreshes sent at once), so every
	// used token but the one just rotated goes now — a client that
	// presents its successor has had the answer — and reuse of one is
	// still recognised by the family its value names (op). The heads stay:
	// a family keeps its live token(s) and the token the grace may rotate
	// again, however often it rotates and however seldom the sweep runs.
	rotatePrune = `DELETE FROM refresh_tokens WHERE family_id = ? AND used_at > 0 AND id <> ? AND revoked_at = 0`
)

// RotateRefreshToken: one transaction of a conditional UPDATE … RETURNING
// (the compare-and-set that picks the single winner), the INSERT of next
// and the DELETE of oldID's access tokens. next inherits the family:
// FamilyID and FamilyCreatedAt are filled in when empty (a different
// FamilyID is an error); ID is generated when empty; zero CreatedAt and
// LastUsedAt default to now. ErrNotFound if oldID does not exist.
//
// This is the OP's hottest write, so it runs on database/sql with
// statements prepared once, not through gorm's builder.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next RefreshToken) (RefreshToken, error) {
	return s.rotate(ctx, oldID, now, 0, next, nil)
}

// RotateRefreshTokenWithAccess is RotateRefreshToken plus the insert of the
// access token minted with the new refresh token, in the same job of the
// group commit (the refresh grant's one write). at.RefreshTokenID and
// at.FamilyID are filled in from the rotation.
//
// grace is the reuse grace (RFC 9700 §4.14.2): a token used at most grace
// ago rotates again into a sibling of its first successor (same family),
// for a client that lost the answer or sent two refreshes at once; after
// grace a second use is ErrConflict (reuse). 0: no grace. The grace is
// the family's latest rotation's: rotating any other token of the family
// compacts the used ones away (rotatePrune), and a later use of one is
// ErrNotFound — reuse, which op recognises by the family.
func (s *Store) RotateRefreshTokenWithAccess(ctx context.Context, oldID string, now time.Time, grace time.Duration, next RefreshToken, at AccessToken) (RefreshToken, error) {
	if at.ID == "" {
		return RefreshToken{}, invalid("rotate refresh token: empty access token id")
	}
	return s.rotate(ctx, oldID, now, grace, next, &at)
}

func (s *Store) rotate(ctx context.Context, oldID string, now time.Time, grace time.Duration, next RefreshToken, at *AccessToken) (RefreshToken, error) {
	if len(next.TokenHash) == 0 {
		return RefreshToken{}, invalid("rotate refresh token: empty token hash")
	}
	if next.ID == "" {
		next.ID = NewID()
	}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = now
	}
	if next.LastUsedAt.IsZero() {
		next.LastUsedAt = now
	}
	// Encode before queueing: jobs run one after another on the batcher's
	// goroutine, so work done inside one delays every job behind it.
	row := refreshTokenToRow(next)
	var ar accessTokenRow
	if at != nil {
		ar = accessTokenToRow(*at)
	}
	// These statements bypass gorm's guard (text.go).
	if !argsValid([]any{oldID}) {
		return RefreshToken{}, ErrNotFound
	}
	if !argsValid(row.values()) || (at != nil && !argsValid(ar.values())) {
		return RefreshToken{}, ErrInvalidText
	}
	if s.postgres() {
		return s.rotatePG(ctx, oldID, now, grace, row, ar, at != nil)
	}
	// Prepare outside the transaction: preparing needs a free connection.
	// (Through the cache even the rare undo: it rebinds ? for PostgreSQL.)
	var st [7]*sql.Stmt
	for i, q := range []string{rotateMarkUsed, rotateExists, refreshTokenInsert, rotateDeleteAccess, accessTokenInsert, rotateUndo, rotatePrune} {
		var err error
		if st[i], err = s.hot.get(ctx, q); err != nil {
			return RefreshToken{}, fail("rotate refresh token", err)
		}
	}
	// One job of a group commit (batch.go): it must leave nothing behind
	// when it fails, so the insert cannot raise (ON CONFLICT DO NOTHING)
	// and a skipped insert undoes the compare-and-set.
	err := s.batch.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var famID string
		var famCreated int64
		graceFrom := graceFrom(now, grace)
		err := tx.StmtContext(ctx, st[0]).QueryRowContext(ctx, usedMs(now), oldID, graceFrom).Scan(&famID, &famCreated)
		if errors.Is(err, sql.ErrNoRows) {
			var n int64
			if err := tx.StmtContext(ctx, st[1]).QueryRowContext(ctx, oldID).Scan(&n); err != nil {
				return abortBatch(err)
			}
			if n == 0 {
				return ErrNotFound
			}
			return ErrConflict
		}
		if err != nil {
			return abortBatch(err)
		}
		if row.FamilyID == "" {
			row.FamilyID = famID
		}
		if row.FamilyCreatedMs == 0 {
			row.FamilyCreatedMs = famCreated
		}
		if row.FamilyID != famID {
			err = invalid("rotate refresh token: next belongs to another family")
		} else {
			var res sql.Result
			if res, err = tx.StmtContext(ctx, st[2]).ExecContext(ctx, row.values()...); err != nil {
				return abortBatch(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				err = ErrConflict // the new id or hash exists
			}
		}
		if err != nil {
			// Undo the compare-and-set: the old token stays usable.
			if _, uerr := tx.StmtContext(ctx, st[5]).ExecContext(ctx, oldID, usedMs(now)); uerr != nil {
				return abortBatch(uerr)
			}
			return err
		}
		if _, err := tx.StmtContext(ctx, st[3]).ExecContext(ctx, oldID); err != nil {
			return abortBatch(err)
		}
		if _, err := tx.StmtContext(ctx, st[6]).ExecContext(ctx, famID, oldID); err != nil {
			return abortBatch(err)
		}
		if at != nil {
			ar.RefreshTokenID, ar.FamilyID = row.ID, row.FamilyID
			res, err := tx.StmtContext(ctx, st[4]).ExecContext(ctx, ar.values()...)
			if err != nil {
				return abortBatch(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				// An id collision cannot happen with fresh ids; if it does,
				// nothing of this rotation may stand.
				return abortBatch(ErrConflict)
			}
		}
		return nil
	})
	if err != nil {
		return RefreshToken{}, fail("rotate refresh token", err)
	}
	out, err := row.domain()
	return out, fail("rotate refresh token", err)
}

// graceFrom is the lower bound of used_at within the reuse grace: used_at
// >= graceFrom (with no grace, the sentinel that no used_at reaches).
func graceFrom(now time.Time, grace time.Duration) int64 {
	if grace > 0 {
		return usedMs(now.Add(-grace))
	}
	return math.MaxInt64
}

// rotatePG is rotate on PostgreSQL: one statement (rotatePG), one job of
// the pipelined group commit (pipeline.go).
func (s *Store) rotatePG(ctx context.Context, oldID string, now time.Time, grace time.Duration, row refreshTokenRow, ar accessTokenRow, withAccess bool) (RefreshToken, error) {
	q := rotatePG
	args := make([]any, 0, 3+20+10)
	args = append(args, usedMs(now), oldID, graceFrom(now, grace))
	args = append(args, row.values()...)
	args[3+1] = []byte(row.TokenHash)
	if withAccess {
		q = rotateWithAccessPG
		av := ar.values()
		args = append(append(args, av[:3]...), av[5:]...) // not refresh_token_id, family_id
	}
	var (
		fam          sql.NullString
		famCreated   sql.NullInt64
		nRT, nAT     int64
		exists       bool
		wantFamilyID = row.FamilyID
	)
	err := s.batch.doPG(ctx, &pgStmt{sql: q, args: args, read: func(scan func(...any) error) error {
		if err := scan(&fam, &famCreated, &nRT, &nAT, &exists); err != nil {
			return err
		}
		switch {
		case !fam.Valid && !exists:
			return ErrNotFound
		case !fam.Valid:
			return ErrConflict // used (beyond the grace) or revoked
		case nRT == 0 && wantFamilyID != "" && wantFamilyID != fam.String:
			// The old token is marked: roll the batch back.
			return abortBatch(invalid("rotate refresh token: next belongs to another family"))
		case nRT == 0:
			return abortBatch(ErrConflict) // the new id or hash exists
		case withAccess && nAT == 0:
			// An id collision cannot happen with fresh ids; if it does,
			// nothing of this rotation may stand.
			return abortBatch(ErrConflict)
		}
		return nil
	}})
	if err != nil {
		return RefreshToken{}, fail("rotate refresh token", err)
	}
	if row.FamilyID == "" {
		row.FamilyID = fam.String
	}
	if row.FamilyCreatedMs == 0 {
		row.FamilyCreatedMs = famCreated.Int64
	}
	out, err := row.domain()
	return out, fail("rotate refresh token", err)
}

// revokeLoop repeats a revoking UPDATE until it matches nothing. On
// PostgreSQL (READ COMMITTED) an UPDATE that waited for a concurrent
// rotation to commit does not see the token that rotation inserted; the
// next statement does. Repeating closes that window, so a revoked family
// cannot keep a live head. On SQLite the second pass is a no-op.
func revokeLoop(tx *gorm.DB, sql string, args ...any) error {
	for range 16 {
		res := tx.Exec(sql, args...)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
	}
	return nil
}

// RevokeRefreshFamily revokes every token of the family and deletes its
// access tokens. Revoking an unknown or already revoked family is not an
// error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	if familyID == "" {
		return invalid("revoke refresh family: empty family id")
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := revokeLoop(tx,
			"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at = 0",
			usedMs(now), familyID); err != nil {
			return err
		}
		return tx.Where("family_id = ?", familyID).Delete(&accessTokenRow{}).Error
	})
	return fail("revoke refresh family", err)
}

// The searches of refresh tokens by user or session go through the
// families' rows (migration 0013): refresh_tokens has no index of either.
const (
	// refreshFamiliesWhere starts the search of families by their columns.
	refreshFamiliesWhere = "SELECT id FROM refresh_families WHERE "
	// revokeFamiliesIn revokes the tokens of the families of a search.
	revokeFamiliesIn = "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at = 0 AND family_id IN "
	// userHeads: the live heads of a user's families.
	userHeads = "family_id IN (" + refreshFamiliesWhere + "user_id = ?) AND used_at = 0 AND revoked_at = 0"
)

// RevokeRefreshTokens revokes every family one of whose tokens matches the
// filter, and deletes the access tokens of those families. Access tokens
// outside any family (no refresh token was issued) are left to expire.
func (s *Store) RevokeRefreshTokens(ctx context.Context, f TokenFilter, now time.Time) error {
	if f.UserID == "" && f.SessionID == "" && f.FamilyID == "" {
		// An empty filter would revoke every family of every user.
		return invalid("revoke refresh tokens: filter needs a user, session or family")
	}
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"user_id", f.UserID}, {"session_id", f.SessionID},
		{"client_id", f.ClientID}, {"id", f.FamilyID},
	} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	// The filter's columns are the family row's (what a family's tokens
	// share), searched by its user and session indexes.
	families := refreshFamiliesWhere + strings.Join(conds, " AND ")
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := revokeLoop(tx, revokeFamiliesIn+"("+families+")",
			append([]any{usedMs(now)}, args...)...); err != nil {
			return err
		}
		return tx.Exec("DELETE FROM access_tokens WHERE family_id IN ("+families+")", args...).Error
	})
	return fail("revoke refresh tokens", err)
}

// ListRefreshFamilies returns the head (the unused, unrevoked token) of each
// of the user's live families, most recently used first. A family whose
// cap has passed is still listed until the sweeper deletes it: the store
// does not know the caller's now.
func (s *Store) ListRefreshFamilies(ctx context.Context, userID string) ([]RefreshToken, error) {
	var rows []refreshTokenRow
	err := s.read(ctx).Where(userHeads, userID).
		Order("created_at DESC, id").Find(&rows).Error
	if err != nil {
		return nil, fail("list refresh families", err)
	}
	seen := make(map[string]bool, len(rows))
	out := make([]RefreshToken, 0, len(rows))
	for _, r := range rows {
		if seen[r.FamilyID] {
			continue // rotation keeps one head per family; be safe anyway
		}
		seen[r.FamilyID] = true
		t, err := r.domain()
		if err != nil {
			return nil, fail("list refresh families", err)
		}
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b RefreshToken) int { return b.LastUsedAt.Compare(a.LastUsedAt) })
	return out, nil
}

// CreateAccessToken inserts an opaque access token; the caller chooses the
// id (it is part of the token it hands out).
func (s *Store) CreateAccessToken(ctx context.Context, at AccessToken) error {
	if at.ID == "" {
		return invalid("create access token: empty id")
	}
	row := accessTokenToRow(at)
	if !argsValid(row.values()) { // bypasses gorm's guard (text.go)
		return ErrInvalidText
	}
	if s.postgres() {
		// One statement of the pipelined group commit (pipeline.go).
		return fail("create access token", s.batch.doPG(ctx, &pgStmt{sql: accessTokenInsertPG, args: row.values(),
			read: func(scan func(...any) error) error {
				var n int64
				if err := scan(&n); err != nil {
					return err
				}
				if n == 0 {
					return ErrConflict
				}
				return nil
			}}))
	}
	st, err := s.hot.get(ctx, accessTokenInsert)
	if err != nil {
		return fail("create access token", err)
	}
	// Group-committed with the other token writes (batch.go).
	return fail("create access token", s.batch.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, row.values()...)
		if err != nil {
			return abortBatch(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		return nil
	}))
}

// GetAccessToken returns the token as stored, expired or revoked included
// (userinfo and introspection: a prepared statement, not gorm).
func (s *Store) GetAccessToken(ctx context.Context, id string) (AccessToken, error) {
	var row accessTokenRow
	if err := s.hotRow(ctx, accessTokenByID, row.ptrs(), id); err != nil {
		return AccessToken{}, fail("get access token", err)
	}
	out, err := row.domain()
	return out, fail("get access token", err)
}

// RevokeAccessToken marks the token revoked (idempotent; the first
// revocation time is kept). ErrNotFound if it does not exist.
func (s *Store) RevokeAccessToken(ctx context.Context, id string, now time.Time) error {
	res := s.write(ctx).Exec(
		"UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0", usedMs(now), id)
	if res.Error != nil {
		return fail("revoke access token", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if _, err := take[accessTokenRow](s.read(ctx), "id = ?", id); err != nil {
		return fail("revoke access token", err)
	}
	return nil
}
