package storage

// Text the database cannot hold. PostgreSQL refuses a NUL byte or invalid
// UTF-8 in a text parameter with "invalid byte sequence for encoding
// UTF8" (SQLSTATE 22021), an error no caller can tell from a broken
// database; SQLite stores the same bytes as they are. So no statement
// carrying such a parameter is sent to either database: a read or delete
// keyed by it finds nothing (ErrNotFound: no row can hold that value), a
// write of it fails with ErrInvalidText. The two dialects behave alike
// and nothing is half-written.
//
// The check sits on gorm's connection pool (textGuard), where every
// statement gorm builds passes with its final arguments, and on the two
// paths that bypass gorm (hotRow and the group-committed token writes).
// Callers validate input at their own boundary first (the pages' and the
// OP's filters); this is the last line.

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// ErrInvalidText: a text value to be written is not valid UTF-8 or
// contains a NUL byte.
var ErrInvalidText = errors.New("storage: text is not valid UTF-8 or contains NUL")

// ValidText reports whether s can be stored in a text column on every
// dialect: valid UTF-8 without NUL.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// argsValid reports whether every text argument of a statement is valid.
// Only strings (and named string types) are text; byte strings are BLOBs
// and JSON columns are encoded by encoding/json, which never emits invalid
// UTF-8 or a raw NUL.
func argsValid(args []any) bool {
	for _, a := range args {
		switch v := a.(type) {
		case nil, []byte, blob, int64, int, bool:
		case string:
			if !ValidText(v) {
				return false
			}
		case *string:
			if v != nil && !ValidText(*v) {
				return false
			}
		default:
			if rv := reflect.ValueOf(a); rv.Kind() == reflect.String && !ValidText(rv.String()) {
				return false
			}
		}
	}
	return true
}

// textError is what a refused statement returns: reads and deletes find
// nothing, writes are invalid.
func textError(query string) error {
	q := strings.TrimLeft(query, " \t\r\n(")
	if i := strings.IndexAny(q, " \t\r\n"); i > 0 {
		q = q[:i]
	}
	switch strings.ToUpper(q) {
	case "SELECT", "WITH", "DELETE":
		return ErrNotFound
	}
	return ErrInvalidText
}

// noRows is a query that returns no row, for QueryRowContext, whose
// *sql.Row cannot be built with an error.
const noRows = "SELECT 1 WHERE 1 = 0"

// textGuard wraps a gorm connection pool (gorm's PreparedStmtDB) and
// refuses statements with invalid text arguments. It begins transactions
// as textGuardTx, so statements inside them are guarded too. It must not
// implement gorm.TxCommitter: gorm would take it for a transaction.
type textGuard struct{ pool gorm.ConnPool }

// guardText installs the guard on db (after gorm.Open).
func guardText(db *gorm.DB) {
	g := &textGuard{pool: db.ConnPool}
	db.ConnPool = g
	db.Statement.ConnPool = g
}

func (g *textGuard) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return g.pool.PrepareContext(ctx, query)
}

func (g *textGuard) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !argsValid(args) {
		return nil, textError(query)
	}
	return g.pool.ExecContext(ctx, query, args...)
}

func (g *textGuard) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !argsValid(args) {
		return nil, textError(query)
	}
	return g.pool.QueryContext(ctx, query, args...)
}

func (g *textGuard) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if !argsValid(args) {
		return g.pool.QueryRowContext(ctx, noRows)
	}
	return g.pool.QueryRowContext(ctx, query, args...)
}

// BeginTx implements gorm.ConnPoolBeginner.
func (g *textGuard) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	var tx gorm.ConnPool
	var err error
	switch b := g.pool.(type) {
	case gorm.ConnPoolBeginner:
		tx, err = b.BeginTx(ctx, opts)
	case gorm.TxBeginner:
		tx, err = b.BeginTx(ctx, opts)
	default:
		return nil, gorm.ErrInvalidTransaction
	}
	if err != nil {
		return nil, err
	}
	return &textGuardTx{textGuard{pool: tx}}, nil
}

// GetDBConn implements gorm.GetDBConnector (gorm.DB.DB()).
func (g *textGuard) GetDBConn() (*sql.DB, error) {
	switch p := g.pool.(type) {
	case *sql.DB:
		return p, nil
	case gorm.GetDBConnector:
		return p.GetDBConn()
	}
	return nil, gorm.ErrInvalidDB
}

// textGuardTx is a guarded transaction.
type textGuardTx struct{ textGuard }

func (t *textGuardTx) Commit() error {
	c, ok := t.pool.(gorm.TxCommitter)
	if !ok {
		return gorm.ErrInvalidTransaction
	}
	return c.Commit()
}

func (t *textGuardTx) Rollback() error {
	c, ok := t.pool.(gorm.TxCommitter)
	if !ok {
		return gorm.ErrInvalidTransaction
	}
	return c.Rollback()
}
