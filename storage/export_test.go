package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// RowKeys returns the sorted primary keys of table, for tests that must
// see rows no method returns (the sweeper's exactness).
func RowKeys(ctx context.Context, s *Store, table, pk string) ([]string, error) {
	var keys []string
	err := s.read(ctx).Raw("SELECT CAST(" + pk + " AS TEXT) FROM " + table).Scan(&keys).Error
	slices.Sort(keys)
	return keys, err
}

// SetQueueEvent sets Options.QueueEvent on an open store (the suite's
// stores are opened by storagetest without options).
func SetQueueEvent(s *Store, f func(string) bool) { s.queueEvent = f }

// MigrateUpTo runs the migrations up to and including id, as a database
// last migrated by an older build stands, for upgrade tests.
func MigrateUpTo(ctx context.Context, s *Store, id string) error {
	ms := migrations(s.dialect)
	i := slices.IndexFunc(ms, func(m *gormigrate.Migration) bool { return m.ID == id })
	if i < 0 {
		return fmt.Errorf("no migration %q", id)
	}
	return gormigrate.New(s.w.WithContext(ctx), &gormigrate.Options{
		TableName: migrationTable, IDColumnName: "id", IDColumnSize: 255,
	}, ms[:i+1]).Migrate()
}

// InsertOldRefreshToken inserts a token's row alone, as a build before
// migration 0013 (no family rows) did, for upgrade tests.
func InsertOldRefreshToken(ctx context.Context, s *Store, rt RefreshToken) (RefreshToken, error) {
	startFamily(&rt)
	row := refreshTokenToRow(rt)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return RefreshToken{}, err
	}
	return row.domain()
}

// ExecSQL runs a statement on the writer, for tests that must set up what
// no method does (a table's storage parameters).
func ExecSQL(ctx context.Context, s *Store, q string) error {
	return s.write(ctx).Exec(q).Error
}

// HoldSweepLock takes s's sweep lock (PostgreSQL) on a connection of its
// own, as another instance that is sweeping holds it, until release.
func HoldSweepLock(ctx context.Context, s *Store) (release func(), err error) {
	held, done, freed := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(freed)
		_ = s.w.WithContext(context.WithoutCancel(ctx)).Connection(func(conn *gorm.DB) error {
			var got bool
			err := conn.Raw(sweepTryLock, lockClass, lockSweep).Scan(&got).Error
			if err == nil && !got {
				err = errors.New("the sweep lock is held elsewhere")
			}
			held <- err
			if err != nil {
				return err
			}
			<-done
			return conn.Exec(sweepUnlock, lockClass, lockSweep).Error
		})
	}()
	if err := <-held; err != nil {
		<-freed
		return nil, err
	}
	return func() { close(done); <-freed }, nil
}
