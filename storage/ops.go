package storage

// What an operator's tools ask of the database: the schema version
// (readiness, and the CLI's "is there a database at all"), the pools'
// statistics (metrics) and an online SQLite backup.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
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
