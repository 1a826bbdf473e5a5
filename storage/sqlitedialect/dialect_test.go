package sqlitedialect_test

import (
	"database/sql"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/latchkey/latchkey/storage/sqlitedialect"
)

// widget exercises every column type the dialector maps.
type widget struct {
	ID     int64     `gorm:"column:id;primaryKey"`
	Name   string    `gorm:"column:name;uniqueIndex:widgets_name_key"`
	Count  int       `gorm:"column:count"`
	Size   uint      `gorm:"column:size"`
	Ratio  float64   `gorm:"column:ratio"`
	Active bool      `gorm:"column:active"`
	Data   []byte    `gorm:"column:data"`
	Seen   time.Time `gorm:"column:seen"`
	SeenMs int64     `gorm:"column:seen_ms;index:widgets_seen_ms_idx"`
}

func (widget) TableName() string { return "widgets" }

// dsn is a file database with the DSN parameters storage.Open passes.
func dsn(t *testing.T) string {
	return filepath.Join(t.TempDir(), "t.db") + "?_pragma=busy_timeout(4321)&_pragma=journal_mode(WAL)&_txlock=immediate"
}

// open opens a database the way storage does (prepared statements, no
// implicit transactions, silent logger) and creates the widgets table.
func open(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(sqlitedialect.Open(dsn(t)), &gorm.Config{
		PrepareStmt: true, SkipDefaultTransaction: true, Logger: logger.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	sdb, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sdb.SetMaxOpenConns(1) // as storage's writer: one connection
	t.Cleanup(func() { _ = sdb.Close() })
	if err := db.Migrator().CreateTable(&widget{}); err != nil {
		t.Fatal(err)
	}
	return db
}

func names(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var out []string
	if err := db.Model(&widget{}).Order("name").Pluck("name", &out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func TestName(t *testing.T) {
	db := open(t)
	if got := db.Dialector.Name(); got != "sqlite" {
		t.Fatalf("Name() = %q", got)
	}
	if got := db.Migrator().CurrentDatabase(); got != "main" {
		t.Fatalf("CurrentDatabase() = %q", got)
	}
}

// TestDSNParameters: the DSN reaches modernc.org/sqlite unchanged, so the
// _pragma parameters storage sets are in force on the connection.
func TestDSNParameters(t *testing.T) {
	db := open(t)
	var busy int
	var mode string
	if err := db.Raw("PRAGMA busy_timeout").Row().Scan(&busy); err != nil || busy != 4321 {
		t.Fatalf("busy_timeout = %d, %v", busy, err)
	}
	if err := db.Raw("PRAGMA journal_mode").Row().Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}

// TestExistingPool: a pool opened by the caller is used as it is.
func TestExistingPool(t *testing.T) {
	sdb, err := sql.Open(sqlitedialect.DriverName, filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sdb.Close() })
	if _, err := sdb.Exec("CREATE TABLE t (x integer)"); err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(&sqlitedialect.Dialector{DSN: "not used"}, &gorm.Config{ConnPool: sdb, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.DB(); got != sdb {
		t.Fatal("gorm did not keep the given pool")
	}
	if !db.Migrator().HasTable("t") {
		t.Fatal("the table made through the pool is not seen")
	}
}

// TestDataTypes: gorm field types become the SQLite column types
// DataTypeOf names (the type affinity decides how values are stored).
func TestDataTypes(t *testing.T) {
	db := open(t)
	want := map[string]string{
		"id": "integer", "name": "text", "count": "integer", "size": "integer",
		"ratio": "real", "active": "numeric", "data": "blob", "seen": "datetime", "seen_ms": "integer",
	}
	rows, err := db.Raw("SELECT name, type FROM pragma_table_info('widgets')").Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		got[n] = strings.ToLower(typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for col, typ := range want {
		if got[col] != typ {
			t.Errorf("column %s: type %q, want %q", col, got[col], typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("columns %v", got)
	}
	// A type gorm has no mapping for passes through as written.
	d := &sqlitedialect.Dialector{}
	if got := d.DataTypeOf(&schema.Field{DataType: "json"}); got != "json" {
		t.Errorf("DataTypeOf(json) = %q", got)
	}
	stmt := &gorm.Statement{DB: db}
	d.DefaultValueOf(nil).Build(stmt)
	if stmt.SQL.String() != "NULL" {
		t.Errorf("DefaultValueOf = %q", stmt.SQL.String())
	}
}

// TestMigrator: what gormigrate and our migrations ask of the migrator.
func TestMigrator(t *testing.T) {
	db := open(t)
	m := db.Migrator()
	for _, tc := range []struct {
		what string
		got  bool
		want bool
	}{
		{"HasTable(model)", m.HasTable(&widget{}), true},
		{"HasTable(name)", m.HasTable("widgets"), true},
		{"HasTable(missing)", m.HasTable("gadgets"), false},
		{"HasColumn(field name)", m.HasColumn(&widget{}, "SeenMs"), true},
		{"HasColumn(column name)", m.HasColumn(&widget{}, "seen_ms"), true},
		{"HasColumn(missing)", m.HasColumn(&widget{}, "colour"), false},
		{"HasIndex(index name)", m.HasIndex(&widget{}, "widgets_name_key"), true},
		{"HasIndex(field name)", m.HasIndex(&widget{}, "SeenMs"), true},
		{"HasIndex(missing)", m.HasIndex(&widget{}, "widgets_colour_idx"), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if err := m.DropTable(&widget{}); err != nil {
		t.Fatal(err)
	}
	if m.HasTable(&widget{}) || m.HasIndex(&widget{}, "widgets_name_key") {
		t.Fatal("table or index still there after DropTable")
	}
}

// TestQuoting: identifiers are quoted with backticks, a backtick inside
// doubled, and a dotted name quoted per part; SQLite accepts all three.
func TestQuoting(t *testing.T) {
	db := open(t)
	var b strings.Builder
	db.Dialector.QuoteTo(&b, "main.we`ird")
	if b.String() != "`main`.`we``ird`" {
		t.Fatalf("QuoteTo = %s", b.String())
	}
	if err := db.Exec("CREATE TABLE ? (x integer)", clause.Table{Name: "we`ird"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO ? (x) VALUES (?)", clause.Table{Name: "we`ird"}, 7).Error; err != nil {
		t.Fatal(err)
	}
	var x int
	if err := db.Raw("SELECT x FROM ?", clause.Table{Name: "main.we`ird"}).Row().Scan(&x); err != nil || x != 7 {
		t.Fatalf("read back %d, %v", x, err)
	}
	if got := db.Dialector.Explain("SELECT * FROM t WHERE a = ? AND b = ?", `say "hi"`, 7); got != `SELECT * FROM t WHERE a = "say ""hi""" AND b = 7` {
		t.Fatalf("Explain = %s", got)
	}
}

// TestTransactions: a failed transaction leaves nothing behind, and a
// failed nested one (SAVEPOINT / ROLLBACK TO) only its own part.
func TestTransactions(t *testing.T) {
	db := open(t)
	boom := errors.New("boom")
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&widget{Name: "rolled back"}).Error; err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transaction = %v", err)
	}
	if got := names(t, db); len(got) != 0 {
		t.Fatalf("after rollback: %v", got)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&widget{Name: "outer"}).Error; err != nil {
			return err
		}
		if err := tx.Transaction(func(tx2 *gorm.DB) error {
			if err := tx2.Create(&widget{Name: "inner"}).Error; err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			return errors.New("inner transaction did not fail")
		}
		return tx.Create(&widget{Name: "outer 2"}).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, db); strings.Join(got, ",") != "outer,outer 2" {
		t.Fatalf("after a rolled back savepoint: %v", got)
	}
}

// TestPreparedStatements: with PrepareStmt, a query run again with other
// values reuses its one prepared statement and still answers for the
// values given (the point of this dialector: modernc.org/sqlite keeps
// prepared statements).
func TestPreparedStatements(t *testing.T) {
	db := open(t)
	for i := 1; i <= 20; i++ {
		if err := db.Create(&widget{ID: int64(i), Name: "w" + string(rune('a'+i)), Count: i * i}).Error; err != nil {
			t.Fatal(err)
		}
	}
	pdb, ok := db.ConnPool.(*gorm.PreparedStmtDB)
	if !ok {
		t.Fatalf("ConnPool is %T", db.ConnPool)
	}
	var before int
	for i := 1; i <= 20; i++ {
		var w widget
		if err := db.Where("id = ?", i).Take(&w).Error; err != nil || w.Count != i*i {
			t.Fatalf("id %d: count %d, %v", i, w.Count, err)
		}
		if i == 1 {
			before = len(pdb.Stmts.Keys())
		}
	}
	if after := len(pdb.Stmts.Keys()); after != before {
		t.Fatalf("prepared statements: %d after the first query, %d after twenty", before, after)
	}
}

// TestConstraintErrors: a unique or primary-key violation comes back as
// the driver error storage recognises (extended result codes 2067 and
// 1555), and the statement changes nothing.
func TestConstraintErrors(t *testing.T) {
	db := open(t)
	if err := db.Create(&widget{ID: 1, Name: "a"}).Error; err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		w    widget
		code int
	}{
		{"unique index", widget{ID: 2, Name: "a"}, 2067},
		{"primary key", widget{ID: 1, Name: "b"}, 1555},
	} {
		err := db.Create(&tc.w).Error
		var coded interface{ Code() int }
		if !errors.As(err, &coded) || coded.Code() != tc.code || !strings.Contains(err.Error(), "constraint failed") {
			t.Errorf("%s: %v", tc.what, err)
		}
	}
	if got := names(t, db); strings.Join(got, ",") != "a" {
		t.Fatalf("rows %v", got)
	}
}

// TestReturning: INSERT, UPDATE and DELETE … RETURNING (SQLite ≥ 3.35),
// through gorm's clauses and as raw SQL the way storage redeems codes.
func TestReturning(t *testing.T) {
	db := open(t)
	w := widget{Name: "a", Count: 1}
	if err := db.Clauses(clause.Returning{}).Create(&w).Error; err != nil || w.ID == 0 {
		t.Fatalf("insert returning: id %d, %v", w.ID, err)
	}
	if err := db.Create(&widget{Name: "b", Count: 10}).Error; err != nil {
		t.Fatal(err)
	}
	var updated []widget
	if err := db.Model(&updated).Clauses(clause.Returning{}).Where("count < ?", 100).
		Update("count", gorm.Expr("count + 1")).Error; err != nil {
		t.Fatal(err)
	}
	if len(updated) != 2 || updated[0].Count+updated[1].Count != 2+11 {
		t.Fatalf("update returning: %+v", updated)
	}
	var raw []widget
	if err := db.Raw("UPDATE widgets SET count = count * 2 WHERE name = ? AND count = ? RETURNING *", "a", 2).Scan(&raw).Error; err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || raw[0].Count != 4 {
		t.Fatalf("raw update returning: %+v", raw)
	}
	// The same conditional update again matches nothing: one winner.
	raw = nil
	if err := db.Raw("UPDATE widgets SET count = count * 2 WHERE name = ? AND count = ? RETURNING *", "a", 2).Scan(&raw).Error; err != nil || len(raw) != 0 {
		t.Fatalf("second conditional update: %+v, %v", raw, err)
	}
	var deleted []widget
	if err := db.Clauses(clause.Returning{}).Where("name = ?", "b").Delete(&deleted).Error; err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].Name != "b" || deleted[0].Count != 11 {
		t.Fatalf("delete returning: %+v", deleted)
	}
}

// TestForUpdateDropped: SQLite has no row locks; the dialector leaves
// FOR UPDATE out instead of sending a syntax error.
func TestForUpdateDropped(t *testing.T) {
	db := open(t)
	if err := db.Create(&widget{Name: "a"}).Error; err != nil {
		t.Fatal(err)
	}
	q := func(tx *gorm.DB) *gorm.DB {
		var w widget
		return tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("name = ?", "a").Take(&w)
	}
	if s := db.ToSQL(q); strings.Contains(strings.ToUpper(s), "FOR UPDATE") {
		t.Fatalf("SQL still locks: %s", s)
	}
	if err := db.Transaction(func(tx *gorm.DB) error { return q(tx).Error }); err != nil {
		t.Fatal(err)
	}
}

// TestInstants: storage keeps instants as int64 Unix milliseconds in
// integer columns. They come back exactly, at both ends of the range,
// stored as SQLite integers, and compare as numbers. A time.Time field
// (which storage avoids) gets a datetime column and also round-trips.
func TestInstants(t *testing.T) {
	db := open(t)
	vals := []int64{math.MinInt64, -1, 0, 1, 1_800_000_000_123, math.MaxInt64}
	for i, v := range vals {
		if err := db.Create(&widget{ID: int64(i + 1), Name: string(rune('a' + i)), SeenMs: v}).Error; err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	if err := db.Model(&widget{}).Order("seen_ms").Pluck("seen_ms", &got).Error; err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if i >= len(got) || got[i] != vals[i] {
			t.Fatalf("seen_ms in order: %v, want %v", got, vals)
		}
	}
	var n int64
	if err := db.Model(&widget{}).Where("seen_ms > ?", int64(1_700_000_000_000)).Count(&n).Error; err != nil || n != 2 {
		t.Fatalf("numeric comparison: %d, %v", n, err)
	}
	var kinds []string
	if err := db.Raw("SELECT DISTINCT typeof(seen_ms) FROM widgets").Scan(&kinds).Error; err != nil || strings.Join(kinds, ",") != "integer" {
		t.Fatalf("storage classes %v, %v", kinds, err)
	}

	at := time.Date(2027, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	if err := db.Create(&widget{ID: 100, Name: "timed", Seen: at}).Error; err != nil {
		t.Fatal(err)
	}
	var w widget
	if err := db.Where("id = ?", 100).Take(&w).Error; err != nil || !w.Seen.Equal(at) {
		t.Fatalf("datetime round trip: %v, want %v (%v)", w.Seen, at, err)
	}
}
