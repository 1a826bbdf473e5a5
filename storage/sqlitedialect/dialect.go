// Package sqlitedialect is a small gorm dialector for SQLite on the pure-Go
// modernc.org/sqlite driver.
//
// Why our own: the project's stack named github.com/glebarez/sqlite, whose
// driver is a 2023 fork of modernc.org/sqlite (v1.23) that parses every SQL
// statement again on every execution. modernc.org/sqlite v1.61 keeps
// prepared statements, which halves the cost of each query and makes
// refresh-token rotation about twice as fast. The two drivers cannot be
// linked together (both register "sqlite" with database/sql), so this
// package replaces glebarez/sqlite: gorm, the pure-Go engine and the DSN
// syntax (_pragma, _txlock) are unchanged, and there is still no cgo.
//
// It does only what storage needs: our migrations are hand-written SQL, so
// the migrator supports what gormigrate calls (HasTable, CreateTable) and
// nothing that would read information_schema.
package sqlitedialect

import (
	"database/sql"
	"strconv"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/migrator"
	"gorm.io/gorm/schema"

	// The driver, registered with database/sql as "sqlite".
	_ "modernc.org/sqlite"
)

// DriverName is the database/sql driver name of modernc.org/sqlite.
const DriverName = "sqlite"

// Dialector opens a SQLite database by DSN ("path?_pragma=…").
type Dialector struct {
	DSN string
}

// Open returns a dialector for dsn.
func Open(dsn string) gorm.Dialector { return &Dialector{DSN: dsn} }

// Name implements gorm.Dialector.
func (d *Dialector) Name() string { return "sqlite" }

// Initialize opens the pool and registers gorm's callbacks with SQLite's
// clauses (RETURNING is supported since SQLite 3.35).
func (d *Dialector) Initialize(db *gorm.DB) error {
	if db.ConnPool == nil {
		conn, err := sql.Open(DriverName, d.DSN)
		if err != nil {
			return err
		}
		db.ConnPool = conn
	}
	callbacks.RegisterDefaultCallbacks(db, &callbacks.Config{
		CreateClauses:        []string{"INSERT", "VALUES", "ON CONFLICT", "RETURNING"},
		UpdateClauses:        []string{"UPDATE", "SET", "FROM", "WHERE", "RETURNING"},
		DeleteClauses:        []string{"DELETE", "FROM", "WHERE", "RETURNING"},
		LastInsertIDReversed: true,
	})
	// SQLite has no row locks: a write transaction locks the database, so
	// FOR UPDATE is dropped rather than sent (it would be a syntax error).
	db.ClauseBuilders["FOR"] = func(clause.Clause, clause.Builder) {}
	return nil
}

// Migrator implements gorm.Dialector.
func (d *Dialector) Migrator(db *gorm.DB) gorm.Migrator {
	return liteMigrator{migrator.Migrator{Config: migrator.Config{DB: db, Dialector: d, CreateIndexAfterCreateTable: true}}}
}

// DataTypeOf maps gorm field types to SQLite column types.
func (d *Dialector) DataTypeOf(f *schema.Field) string {
	switch f.DataType {
	case schema.Bool:
		return "numeric"
	case schema.Int, schema.Uint:
		return "integer"
	case schema.Float:
		return "real"
	case schema.String:
		return "text"
	case schema.Time:
		return "datetime"
	case schema.Bytes:
		return "blob"
	}
	return string(f.DataType)
}

// DefaultValueOf implements gorm.Dialector.
func (d *Dialector) DefaultValueOf(*schema.Field) clause.Expression {
	return clause.Expr{SQL: "NULL"}
}

// BindVarTo writes a placeholder.
func (d *Dialector) BindVarTo(w clause.Writer, _ *gorm.Statement, _ interface{}) {
	_ = w.WriteByte('?')
}

// QuoteTo quotes an identifier (and dotted paths) with backticks.
func (d *Dialector) QuoteTo(w clause.Writer, s string) {
	for i, part := range strings.Split(s, ".") {
		if i > 0 {
			_ = w.WriteByte('.')
		}
		_ = w.WriteByte('`')
		_, _ = w.WriteString(strings.ReplaceAll(part, "`", "``"))
		_ = w.WriteByte('`')
	}
}

// Explain renders SQL with its values, for gorm's logger (which storage
// keeps silent: values may be digests).
func (d *Dialector) Explain(sql string, vars ...interface{}) string {
	return logger.ExplainSQL(sql, nil, `"`, vars...)
}

// SavePoint and RollbackTo support nested transactions.
func (d *Dialector) SavePoint(tx *gorm.DB, name string) error {
	return tx.Exec("SAVEPOINT " + quoteName(name)).Error
}

// RollbackTo rolls back to a savepoint.
func (d *Dialector) RollbackTo(tx *gorm.DB, name string) error {
	return tx.Exec("ROLLBACK TO SAVEPOINT " + quoteName(name)).Error
}

func quoteName(s string) string { return strconv.Quote(s) }

// liteMigrator answers from sqlite_master instead of information_schema.
type liteMigrator struct{ migrator.Migrator }

func (m liteMigrator) CurrentDatabase() string { return "main" }

func (m liteMigrator) HasTable(value interface{}) bool {
	var n int64
	_ = m.RunWithValue(value, func(stmt *gorm.Statement) error {
		return m.DB.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", stmt.Table).Scan(&n).Error
	})
	return n > 0
}

func (m liteMigrator) HasIndex(value interface{}, name string) bool {
	var n int64
	_ = m.RunWithValue(value, func(stmt *gorm.Statement) error {
		if stmt.Schema != nil {
			if idx := stmt.Schema.LookIndex(name); idx != nil {
				name = idx.Name
			}
		}
		return m.DB.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?", stmt.Table, name).Scan(&n).Error
	})
	return n > 0
}

func (m liteMigrator) HasColumn(value interface{}, name string) bool {
	var n int64
	_ = m.RunWithValue(value, func(stmt *gorm.Statement) error {
		if stmt.Schema != nil {
			if f := stmt.Schema.LookUpField(name); f != nil {
				name = f.DBName
			}
		}
		return m.DB.Raw("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", stmt.Table, name).Scan(&n).Error
	})
	return n > 0
}
