// Package storage is Latchkey's one persistent store: a *Store over gorm on
// SQLite (modernc.org/sqlite through storage/sqlitedialect, pure Go; the default for a single
// machine) or PostgreSQL (pgx; several instances share one database).
//
// # What it owns
//
//   - The schema: unexported row structs (rows.go), one per table, and
//     versioned, frozen migrations (migrate.go). Open never migrates;
//     Migrate is safe to run from several instances at once.
//   - The contract of api.go: every method other packages call, with
//     ErrNotFound and ErrConflict as the only errors callers branch on.
//     gorm, pgx and driver types never leave the package, not even wrapped.
//     Text the database cannot hold (NUL, invalid UTF-8) is refused before
//     any statement is sent (text.go): ErrNotFound for lookups,
//     ErrInvalidText for writes, on both dialects.
//   - Atomicity: read-modify-write updaters run in one transaction (row
//     lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), and every single-use
//     secret (auth code, refresh token, TOTP step, action token, upstream
//     state, backup code) is consumed by one conditional UPDATE whose row
//     count picks exactly one winner among concurrent callers.
//   - Housekeeping: Sweep deletes expired rows in small batches, safe on
//     every instance at once; a refresh rotation deletes its family's
//     tokens used before the reuse grace, so no table grows with traffic
//     (TestTablesStayBounded; TableRows and DatabaseSize for a soak).
//   - The security-event webhook's durable queue (events.go): a delivery
//     row written in the transaction of its audit event, claimed by one
//     worker at a time (FOR UPDATE SKIP LOCKED on PostgreSQL), retried and
//     finished by the caller. What to send and how is the caller's.
//   - The operator's reads: SchemaVersion (readiness, "is there a
//     database"), PoolStats (metrics), Backup (VACUUM INTO on SQLite),
//     TableRows and DatabaseSize (latchkey-bench soak).
//
// # What it must not do
//
//   - No policy: lifetimes, limits, what counts as expired for a sign-in,
//     which second factor is required — all of that is the caller's. The
//     store compares the instants it is given; it never reads the wall
//     clock for a decision.
//   - No cryptography: callers pass HMAC digests (…Hash) and AES-GCM
//     ciphertexts (…Sealed). Secrets never reach this package in the clear,
//     and it holds no keys (storage/keyring derives them, for callers).
//   - No logging of SQL: statements carry digests and email addresses, so
//     gorm's logger is silenced; only summaries go to the Logger.
//
// # Dialect notes
//
// SQLite runs in WAL mode with synchronous=NORMAL and a busy timeout. All
// writes and transactions go through one connection, so writers within a
// process queue instead of failing with "database is locked"; transactions
// begin IMMEDIATE so that a second process (the CLI next to a running
// server) waits for the write lock up front rather than failing half-way.
// Single-statement reads use a separate pool of read-only connections.
//
// On PostgreSQL, updaters lock their row with SELECT … FOR UPDATE;
// migrations, signing-key rotation and sweeping are serialised across
// instances with advisory locks. Revocations repeat their UPDATE until it
// matches nothing, because under READ COMMITTED an UPDATE that waited for a
// concurrent rotation does not see the token that rotation inserted.
//
// The token endpoint's writes are group-committed (batch.go): one
// transaction for whatever jobs are waiting, each caller answered after
// the commit. On PostgreSQL such a job is one statement — the refresh
// rotation a data-modifying WITH that marks, inserts and deletes — and a
// batch goes out as one pgx pipeline, BEGIN and every job's statement,
// then COMMIT (pipeline.go); with a Fault (tests) the connections are not
// plain pgx ones and the batch runs statement by statement instead. On
// SQLite the token path's statements run on a context that cannot be
// cancelled (modernc's driver would start a goroutine per statement to
// watch it).
//
// Instants are stored as int64 Unix milliseconds (0 = zero time), lists
// and maps as JSON text, digests as bytea/BLOB: the same encoding on both
// dialects, with no driver datetime and no time-zone conversion.
//
// # Size
//
// The package is larger than the house's ~2k-line guide because it is one
// concrete store with ~90 methods over 20 tables; it is split by aggregate
// (users.go, tokens.go, orgs.go, …) and the conformance suite
// (conformance_test.go) covers every method on both dialects.
package storage
