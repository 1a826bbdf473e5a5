package storage

import (
	"context"
	"slices"
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
