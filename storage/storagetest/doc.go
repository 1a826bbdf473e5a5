// Package storagetest gives tests of any package a fresh, migrated,
// isolated *storage.Store on every dialect Latchkey supports, so that the
// op and login end-to-end tests run against real databases rather than a
// fake.
//
// SQLite always runs (a file in t.TempDir()). PostgreSQL runs when
// LATCHKEY_TEST_DATABASE_URL names a database; each store gets its own
// schema (lk_<random>), dropped when the test ends, so tests may run in
// parallel against one database. Under CI=true a missing URL is a failure,
// not a skip, so CI cannot silently lose the PostgreSQL coverage; a URL
// that is set but unreachable is always a failure.
//
// This package is imported by tests only; it must not be imported by
// production code.
package storagetest
