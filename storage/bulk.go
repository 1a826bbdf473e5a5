package storage

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Bulk loading, for seeding benchmark data (latchkey seed) and imports:
// PostgreSQL's COPY, which loads about a hundred thousand rows a second
// (a million users and ten million refresh tokens in minutes), and on
// SQLite one transaction of prepared inserts per call. Each call is all or
// nothing. Nothing on the request path uses these.

// userColumns are userRow's columns in field order (kept in step with the
// model by TestHandWrittenInserts).
const userColumns = `id, email, email_key, email_verified, name, region, password_hash,
	disabled, org_id, needs_backup_code, privacy_product_improvement, privacy_personalised_offers,
	privacy_updated_at, password_changed_at, created_at, updated_at, language, time_zone`

// userInsert inserts a userRow without gorm.
const userInsert = `INSERT INTO users (` + userColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// ptrs are the scan targets of userColumns, in order.
func (r *userRow) ptrs() []any {
	return []any{&r.ID, &r.Email, &r.EmailKey, &r.EmailVerified, &r.Name, &r.Region, &r.PasswordHash,
		&r.Disabled, &r.OrgID, &r.NeedsBackupCode, &r.PrivacyProductImprovement, &r.PrivacyPersonalisedOffers,
		&r.PrivacyUpdatedMs, &r.PasswordChangedMs, &r.CreatedMs, &r.UpdatedMs, &r.Language, &r.TimeZone}
}

func (r *userRow) values() []any {
	return []any{r.ID, r.Email, r.EmailKey, r.EmailVerified, r.Name, r.Region, r.PasswordHash,
		r.Disabled, r.OrgID, r.NeedsBackupCode, r.PrivacyProductImprovement, r.PrivacyPersonalisedOffers,
		r.PrivacyUpdatedMs, r.PasswordChangedMs, r.CreatedMs, r.UpdatedMs, r.Language, r.TimeZone}
}

// BulkCreateUsers inserts users (IDs generated when empty). ErrConflict if
// an email or id exists.
func (s *Store) BulkCreateUsers(ctx context.Context, us []User) error {
	rows := make([][]any, len(us))
	for i := range us {
		if us[i].ID == "" {
			us[i].ID = NewID()
		}
		r := userToRow(us[i])
		rows[i] = r.values()
	}
	return fail("bulk create users", s.bulkInsert(ctx, "users", userColumns, userInsert, rows))
}

// BulkCreateRefreshTokens inserts refresh tokens, each the first of a new
// family (IDs generated when empty; family defaults as
// CreateRefreshToken); the database writes their families' rows
// (migration 0014), COPY included.
func (s *Store) BulkCreateRefreshTokens(ctx context.Context, ts []RefreshToken) error {
	rows := make([][]any, len(ts))
	for i := range ts {
		t := &ts[i]
		if t.ID == "" {
			t.ID = NewSortableID(t.CreatedAt)
		}
		startFamily(t)
		r := refreshTokenToRow(*t)
		rows[i] = r.values()
	}
	return fail("bulk create refresh tokens", s.bulkInsert(ctx, "refresh_tokens", refreshTokenColumns, refreshTokenInsert, rows))
}

// splitColumns turns a column list ("a, b,\n c") into names.
func splitColumns(columns string) []string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return cols
}

// bulkInsert loads rows into table: by COPY of columns on PostgreSQL, by
// the prepared insert (of the same columns) on SQLite.
func (s *Store) bulkInsert(ctx context.Context, table, columns, insert string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows { // COPY bypasses gorm's guard (text.go)
		if !argsValid(r) {
			return ErrInvalidText
		}
	}
	sdb, err := s.w.DB()
	if err != nil {
		return err
	}
	if s.dialect == DialectPostgres {
		conn, err := sdb.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			if fc, ok := dc.(*faultConn); ok {
				dc = fc.unwrapConn()
			}
			sc, ok := dc.(*stdlib.Conn)
			if !ok {
				return errors.New("bulk insert: not a pgx connection")
			}
			_, err := sc.Conn().CopyFrom(ctx, pgx.Identifier{table}, splitColumns(columns), pgx.CopyFromRows(rows))
			return err
		})
	}
	st, err := s.hot.get(ctx, insert)
	if err != nil {
		return err
	}
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	stx := tx.StmtContext(ctx, st)
	for _, r := range rows {
		res, err := stx.ExecContext(ctx, r...)
		if err != nil {
			return err
		}
		// The token inserts say ON CONFLICT DO NOTHING (for the group
		// commit): a skipped row is a conflict here.
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return ErrConflict
		}
	}
	return tx.Commit()
}
