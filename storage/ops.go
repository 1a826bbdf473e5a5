package storage

// What an operator's tools ask of the database: the schema version
// (readiness, and the CLI's "is there a database at all"), maintenance
// settings that would slow Latchkey down, the pools' statistics
// (metrics) and an online SQLite backup.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
)

// SchemaVersion is the newest migration recorded in the database, or ""
// for a database without Latchkey's schema.
func (s *Store) SchemaVersion(ctx context.Context) (string, error) {
	// HasTable cannot tell "no table" from "no database": ask first.
	if err := s.Health(ctx); err != nil {
		return "", err
	}
	db := s.read(ctx)
	if !db.Migrator().HasTable(migrationTable) {
		return "", nil
	}
	var id sql.NullString
	if err := db.Raw("SELECT MAX(id) FROM " + migrationTable).Scan(&id).Error; err != nil {
		return "", fail("schema version", err)
	}
	return id.String, nil
}

// MaintenanceWarnings says what in the database's own configuration will
// slow Latchkey down as it runs: on PostgreSQL, autovacuum turned off for
// the server or for any of Latchkey's tables. Their rows churn (every
// refresh leaves dead ones behind), and without vacuum the tables bloat
// and their plans go stale: measured, PostgreSQL's CPU per refresh grew
// about fivefold within two minutes and p99 reached seconds. Nothing on
// SQLite.
func (s *Store) MaintenanceWarnings(ctx context.Context) ([]string, error) {
	if !s.postgres() {
		return nil, nil
	}
	db := s.read(ctx)
	var off bool
	if err := db.Raw("SELECT current_setting('autovacuum') = 'off'").Scan(&off).Error; err != nil {
		return nil, fail("maintenance warnings", err)
	}
	var tables []string
	if err := db.Raw(autovacuumOffTables).Scan(&tables).Error; err != nil {
		return nil, fail("maintenance warnings", err)
	}
	var out []string
	if off {
		out = append(out, "PostgreSQL's autovacuum is off (autovacuum = off): Latchkey's tables will bloat "+
			"and slow down as tokens rotate; turn it on (the default)")
	}
	if len(tables) > 0 {
		out = append(out, "autovacuum is turned off for "+strings.Join(tables, ", ")+
			" (autovacuum_enabled = false): those tables will bloat and slow down; ALTER TABLE … RESET (autovacuum_enabled)")
	}
	return out, nil
}

// autovacuumOffTables: the tables of the current schema whose storage
// parameters turn autovacuum off (any spelling PostgreSQL accepts for
// false).
const autovacuumOffTables = `SELECT c.relname FROM pg_class c
	WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
	AND EXISTS (SELECT 1 FROM unnest(c.reloptions) o WHERE o ~* '^autovacuum_enabled=(f|fa|fal|fals|false|n|no|of|off|0)$')
	ORDER BY c.relname`

// PoolStats returns database/sql's statistics of each pool.
func (s *Store) PoolStats() map[string]sql.DBStats {
	out := make(map[string]sql.DBStats, 2)
	name := func(i int) string {
		if s.postgres() {
			return "primary"
		}
		return [...]string{"writer", "reader"}[i]
	}
	for i, db := range s.pools() {
		if sdb, err := db.DB(); err == nil {
			out[name(i)] = sdb.Stats()
		}
	}
	return out
}

// Backup copies a SQLite database to path with VACUUM INTO: a consistent
// snapshot taken online (writers wait a moment, readers not at all). The
// file must not exist yet.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.postgres() {
		return errNoBackup
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("storage: backup: %s exists already", path)
	}
	return fail("backup", s.write(ctx).Exec("VACUUM INTO ?", path).Error)
}

// TableRows counts the rows of every table of the schema (the migrations'
// bookkeeping table included), by table name. One COUNT(*) per table: for
// an operator's look or a soak's record, not for a hot path.
func (s *Store) TableRows(ctx context.Context) (map[string]int64, error) {
	db := s.read(ctx)
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if s.postgres() {
		q = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
	}
	var names []string
	if err := db.Raw(q).Scan(&names).Error; err != nil {
		return nil, fail("table rows", err)
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		if !ValidText(n) || strings.ContainsAny(n, `"`) {
			continue
		}
		var c int64
		if err := db.Raw(`SELECT COUNT(*) FROM "` + n + `"`).Scan(&c).Error; err != nil {
			return nil, fail("table rows", err)
		}
		out[n] = c
	}
	return out, nil
}

// DatabaseSize is the size of the database in bytes: pg_database_size on
// PostgreSQL; on SQLite the main file's pages (page_count × page_size,
// free pages included: the file does not shrink without VACUUM) plus the
// write-ahead log's file.
func (s *Store) DatabaseSize(ctx context.Context) (int64, error) {
	db := s.read(ctx)
	if s.postgres() {
		var n int64
		err := db.Raw("SELECT pg_database_size(current_database())").Scan(&n).Error
		return n, fail("database size", err)
	}
	var pages, size int64
	if err := db.Raw("PRAGMA page_count").Scan(&pages).Error; err != nil {
		return 0, fail("database size", err)
	}
	if err := db.Raw("PRAGMA page_size").Scan(&size).Error; err != nil {
		return 0, fail("database size", err)
	}
	n := pages * size
	var file string
	if err := db.Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file).Error; err == nil && file != "" {
		if fi, err := os.Stat(file + "-wal"); err == nil {
			n += fi.Size()
		}
	}
	return n, nil
}

// Vacuum runs PostgreSQL's VACUUM (ANALYZE) on every table: what
// autovacuum (on by default) does on its own, for a soak on a server where
// it is off and after a bulk load. Dead rows' space becomes reusable, so a
// table whose rows stay flat stops growing on disk; freshly loaded rows get
// their hint bits and visibility map set once, here, instead of on the
// first requests that read them; the planner gets statistics. On SQLite it
// does nothing: freed pages are reused without it.
func (s *Store) Vacuum(ctx context.Context) error {
	if !s.postgres() {
		return nil
	}
	return fail("vacuum", s.write(ctx).Exec("VACUUM (ANALYZE)").Error)
}
