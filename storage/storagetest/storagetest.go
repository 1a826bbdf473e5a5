package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The pgx database/sql driver, for creating and dropping schemas.
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/latchkey/latchkey/storage"
)

// EnvDatabaseURL names the PostgreSQL database tests may use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvDatabaseURL = "LATCHKEY_TEST_DATABASE_URL"

// Dialect is one database to run a test against.
type Dialect struct {
	Name string // storage.DialectSQLite or storage.DialectPostgres
	// Open returns a fresh, migrated, isolated store, closed (and its
	// database removed) when the test ends.
	Open func(t testing.TB) *storage.Store
	// URL returns the URL of a fresh, empty, unmigrated database (removed
	// when the test ends), for tests of Open and Migrate themselves.
	URL func(t testing.TB) string
}

// Dialects returns SQLite always, and PostgreSQL when EnvDatabaseURL is
// set. Without it, under CI=true the test fails; otherwise the skip is
// logged. A URL that is set but unreachable fails the test.
func Dialects(t testing.TB) []Dialect {
	t.Helper()
	ds := []Dialect{{Name: storage.DialectSQLite, Open: OpenSQLite, URL: SQLiteURL}}
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storagetest: %s is not set, but CI=true: PostgreSQL tests must run in CI", EnvDatabaseURL)
		}
		t.Logf("storagetest: PostgreSQL tests skipped: %s is not set", EnvDatabaseURL)
		return ds
	}
	db := adminDB(t, base)
	_ = db.Close()
	return append(ds, Dialect{
		Name: storage.DialectPostgres,
		Open: func(t testing.TB) *storage.Store { return OpenPostgres(t, base) },
		URL:  func(t testing.TB) string { return PostgresURL(t, base) },
	})
}

// SQLiteURL returns the URL of a new SQLite file in t.TempDir().
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "latchkey.db")
}

// OpenSQLite returns a migrated store on a new SQLite file.
func OpenSQLite(t testing.TB) *storage.Store {
	t.Helper()
	return open(t, SQLiteURL(t))
}

// PostgresURL creates a schema lk_<random> in the database of base and
// returns base with search_path set to it (pgx passes unknown URL
// parameters to the server at connection start, so every pooled connection
// uses the schema). The schema is dropped with CASCADE when the test ends.
func PostgresURL(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storagetest: %s is not a URL: %v", EnvDatabaseURL, err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "lk_" + hex.EncodeToString(b)

	db := adminDB(t, base)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storagetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		db := adminDB(t, base)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres returns a migrated store in a new schema of base.
func OpenPostgres(t testing.TB, base string) *storage.Store {
	t.Helper()
	return open(t, PostgresURL(t, base))
}

func open(t testing.TB, u string) *storage.Store {
	t.Helper()
	return OpenURLWith(t, u, storage.Options{})
}

// OpenURLWith is OpenURL with options (e.g. a storage.Fault).
func OpenURLWith(t testing.TB, u string, opts storage.Options) *storage.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := storage.Open(ctx, u, opts)
	if err != nil {
		t.Fatalf("storagetest: open: %v", err)
	}
	// Registered after the schema's cleanup, so it runs before it.
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: migrate: %v", err)
	}
	return s
}

// adminDB connects to base and fails the test if it cannot.
func adminDB(t testing.TB, base string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", EnvDatabaseURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Fatalf("storagetest: %s is set but PostgreSQL is unreachable: %v", EnvDatabaseURL, err)
	}
	return db
}

// OpenURL opens (and migrates) a store on an existing database URL, e.g.
// one from Dialect.URL: several stores on one URL are several instances
// of Latchkey sharing a database.
func OpenURL(t testing.TB, u string) *storage.Store {
	t.Helper()
	return open(t, u)
}

// RawDB is a database/sql connection of the test's own to the database
// of u (a store URL), bypassing the store, closed when the test ends.
func RawDB(t testing.TB, u string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", u
	if strings.HasPrefix(u, "sqlite:") {
		driver, dsn = "sqlite", strings.TrimPrefix(u, "sqlite:")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Dump reads every row of table through a connection of its own, each
// column as text (bytes as they are), for tests that check what is
// stored at rest.
func Dump(t testing.TB, u, table string) []map[string]string {
	t.Helper()
	rows, err := RawDB(t, u).Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("storagetest: dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				m[c] = string(v)
			case nil:
				m[c] = ""
			default:
				m[c] = fmt.Sprint(v)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
