package storage

// This file opens the database and holds the few helpers every aggregate
// file uses (transactions, row locks, the reader/writer split).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"modernc.org/sqlite"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/latchkey/latchkey/storage/sqlitedialect"
)

// Dialect names returned by (*Store).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Options tunes Open. The zero value is fine.
type Options struct {
	// Logger receives migration and sweep summaries; nil discards them.
	// SQL is never logged (parameters carry digests and email addresses).
	Logger *slog.Logger
	// MaxOpenConns caps the PostgreSQL pool (default 16). On SQLite it
	// caps the pool of read-only connections (default GOMAXPROCS, at most
	// 8); SQLite writes always go through one connection.
	MaxOpenConns int
	// BusyTimeout is how long a SQLite connection waits for another
	// process (the CLI next to a running server) to release the write
	// lock before failing (default 5s).
	BusyTimeout time.Duration
	// QueueEvent, when set, says which audit events (by name) are also
	// queued for the security-event webhook (see CreateAuditEvent).
	QueueEvent func(event string) bool
	// Fault, when set, can make the database unreachable (outage tests:
	// fault.go). Production leaves it nil.
	Fault *Fault
}

// Store is the one persistent store of Latchkey. It is safe for concurrent
// use. See api.go for the method contract and doc.go for the rules.
type Store struct {
	dialect string
	// w takes every write and every transaction. On SQLite it is a single
	// connection: writers queue in database/sql instead of failing with
	// "database is locked", and BEGIN IMMEDIATE (the DSN's _txlock) makes
	// read-then-write transactions safe against other processes.
	w *gorm.DB
	// r serves single-statement reads. On SQLite it is a pool of
	// query_only connections (WAL lets them read while w writes); on
	// PostgreSQL and for sqlite::memory: it is w.
	r   *gorm.DB
	log *slog.Logger
	// hot caches the writer's hand-written statements (see stmtCache).
	hot *stmtCache
	// hotRead caches the token path's reads, prepared on the read pool.
	hotRead *stmtCache
	// batch group-commits the token endpoint's writes (batch.go).
	batch *batcher
	// dsn is the PostgreSQL URL, for the change listener's own
	// connection (notify.go); "" on SQLite.
	dsn string
	// queueEvent: Options.QueueEvent.
	queueEvent func(event string) bool
}

// NewID returns a fresh random identifier: 128 bits of crypto/rand as 26
// lowercase base32 characters (never contains ':').
func NewID() string {
	return strings.ToLower(rand.Text())
}

// sortable is base32 in ASCII order, so that encoded numbers sort as text.
const sortable = "234567abcdefghijklmnopqrstuvwxyz"

// sortableTime writes the millisecond clock of now into b (10 bytes), as
// the first characters of a NewSortableID.
func sortableTime(b []byte, now time.Time) {
	ms := uint64(now.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = sortable[ms&31]
		ms >>= 5
	}
}

// sortableFloor is the least NewSortableID of the millisecond of t: every
// id made at t or later sorts at or after it.
func sortableFloor(t time.Time) string {
	var b [10]byte
	sortableTime(b[:], t)
	return string(b[:])
}

// NewSortableID returns an identifier that sorts by creation time: 10
// characters of the millisecond clock, then 80 random bits — 26
// characters of [2-7a-z], like NewID. Use it for high-volume rows
// (tokens): consecutive inserts then land on the same B-tree page instead
// of dirtying a random one each, which is most of the cost of a commit.
// Not for ids whose creation time should stay private (users).
func NewSortableID(now time.Time) string {
	var b [26]byte
	sortableTime(b[:10], now)
	var r [10]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	// 80 bits → 16 characters.
	acc, bits, j := uint64(0), 0, 10
	for _, x := range r {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			b[j] = sortable[(acc>>bits)&31]
			j++
		}
	}
	return string(b[:])
}

// Open connects to the database named by url:
//
//	sqlite:PATH            a file (parent directories are created)
//	sqlite:///abs/path     the same with a URL-ish spelling
//	sqlite::memory:        a private in-memory database (one connection;
//	                       for tests and demos only)
//	postgres://… postgresql://…  PostgreSQL (pgx keywords accepted in the query)
//
// Open does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var s *Store
	var err error
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		s, err = openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"), opts, log)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err = openPostgres(ctx, url, opts, log)
	default:
		// Do not echo the URL: it may carry a password.
		return nil, errors.New("storage: unsupported database URL (want sqlite:PATH or postgres://…)")
	}
	if err != nil {
		return nil, err
	}
	s.queueEvent = opts.QueueEvent
	return s, nil
}

// gormConfig is shared by every connection pool. PrepareStmt caches
// statements per connection; the silent logger keeps SQL and its
// parameters (digests, emails) out of the logs; SkipDefaultTransaction
// avoids wrapping single statements in BEGIN/COMMIT (they are atomic
// anyway, and multi-statement methods open their own transaction).
func gormConfig(pool gorm.ConnPool) *gorm.Config {
	return &gorm.Config{
		PrepareStmt:            true,
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		ConnPool:               pool, // nil: the dialector opens its own
	}
}

// sqliteFaultPool is the SQLite pool behind a Fault (nil without one).
func sqliteFaultPool(dsn string, f *Fault) gorm.ConnPool {
	if f == nil {
		return nil
	}
	return sql.OpenDB(faultConnector{inner: dsnConnector{drv: &sqlite.Driver{}, dsn: dsn}, f: f})
}

func openSQLite(ctx context.Context, path string, opts Options, log *slog.Logger) (*Store, error) {
	if strings.HasPrefix(path, "//") {
		path = strings.TrimPrefix(path, "//")
	}
	if path == "" {
		return nil, errors.New("storage: sqlite: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		// The driver treats what follows '?' as parameters; refuse rather
		// than open a different file than the operator named.
		return nil, errors.New("storage: sqlite: path must not contain '?' or '#'")
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("storage: sqlite: create directory: %w", err)
		}
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	if !memory {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	// NORMAL is durable across application crashes in WAL mode and only
	// risks the last transactions on power loss; FULL would fsync on
	// every commit and cap refresh rotation at the disk's fsync rate.
	q.Add("_pragma", "synchronous(NORMAL)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = append([]string(nil), v...)
	}
	wq.Set("_txlock", "immediate")

	w, err := gorm.Open(sqlitedialect.Open(path+"?"+wq.Encode()), gormConfig(sqliteFaultPool(path+"?"+wq.Encode(), opts.Fault)))
	if err != nil {
		return nil, fmt.Errorf("storage: sqlite: open: %s", err)
	}
	guardText(w)
	wdb, err := w.DB()
	if err != nil {
		return nil, fmt.Errorf("storage: sqlite: %s", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	s := &Store{dialect: DialectSQLite, w: w, r: w, log: log}
	if s.hot, err = newStmtCache(w, false); err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("storage: sqlite: %s", err)
	}
	s.batch = newBatcher(wdb, true)
	s.hotRead = s.hot
	if memory {
		return s, s.pingOrClose(ctx)
	}

	rq := url.Values{}
	for k, v := range q {
		rq[k] = append([]string(nil), v...)
	}
	// A reader never writes; query_only turns a bug into an error rather
	// than a second writer contending for the lock.
	rq.Add("_pragma", "query_only(1)")
	r, err := gorm.Open(sqlitedialect.Open(path+"?"+rq.Encode()), gormConfig(sqliteFaultPool(path+"?"+rq.Encode(), opts.Fault)))
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("storage: sqlite: open reader: %s", err)
	}
	guardText(r)
	rdb, err := r.DB()
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("storage: sqlite: %s", err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		// Not tied to GOMAXPROCS: readers mostly wait on each other, not on
		// the CPU, and database/sql hands a freed connection to a random
		// waiter, so a pool of one under many requests starves some of them
		// for a second or more.
		n = 8
	}
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	s.r = r
	if s.hotRead, err = newStmtCache(r, false); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("storage: sqlite: %s", err)
	}
	return s, s.pingOrClose(ctx)
}

func openPostgres(ctx context.Context, dsn string, opts Options, log *slog.Logger) (*Store, error) {
	pc := postgres.Config{DSN: dsn}
	if opts.Fault != nil {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, opaque("open postgres", err)
		}
		pc.Conn = sql.OpenDB(faultConnector{inner: stdlib.GetConnector(*cfg), f: opts.Fault})
	}
	db, err := gorm.Open(postgres.New(pc), gormConfig(nil))
	if err != nil {
		return nil, opaque("open postgres", err)
	}
	guardText(db)
	sdb, err := db.DB()
	if err != nil {
		return nil, opaque("open postgres", err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 16
	}
	sdb.SetMaxOpenConns(n)
	sdb.SetMaxIdleConns(n)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{dialect: DialectPostgres, w: db, r: db, log: log, dsn: dsn}
	if s.hot, err = newStmtCache(db, true); err != nil {
		_ = sdb.Close()
		return nil, opaque("open postgres", err)
	}
	s.batch = newBatcher(sdb, false)
	s.hotRead = s.hot
	return s, s.pingOrClose(ctx)
}

func (s *Store) pingOrClose(ctx context.Context) error {
	if err := s.Health(ctx); err != nil {
		_ = s.Close()
		return err
	}
	return nil
}

// Close releases the database connections.
func (s *Store) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	var errs []error
	for _, db := range s.pools() {
		sdb, err := db.DB()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, sdb.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return opaque("close", err)
	}
	return nil
}

// Health pings every pool.
func (s *Store) Health(ctx context.Context) error {
	for _, db := range s.pools() {
		sdb, err := db.DB()
		if err != nil {
			return opaque("health", err)
		}
		if err := sdb.PingContext(ctx); err != nil {
			return opaque("health", err)
		}
	}
	return nil
}

// Dialect is DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

func (s *Store) pools() []*gorm.DB {
	if s.r == s.w {
		return []*gorm.DB{s.w}
	}
	return []*gorm.DB{s.w, s.r}
}

func (s *Store) postgres() bool { return s.dialect == DialectPostgres }

// read returns a session on the reader pool. Never use it inside a
// transaction callback: use the tx handed to the callback.
func (s *Store) read(ctx context.Context) *gorm.DB { return s.r.WithContext(ctx) }

// write returns a session on the writer for single-statement writes.
func (s *Store) write(ctx context.Context) *gorm.DB { return s.w.WithContext(ctx) }

// inTx runs fn in one transaction on the writer (BEGIN IMMEDIATE on
// SQLite). fn must only use tx: on SQLite the writer has one connection,
// so touching s.w inside fn would wait for itself.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.w.WithContext(ctx).Transaction(fn)
}

// forUpdate adds FOR UPDATE on PostgreSQL, so that read-modify-write
// updaters serialise on the row. On SQLite the transaction already holds
// the database write lock (BEGIN IMMEDIATE), and the dialect drops the
// clause.
func (s *Store) forUpdate(tx *gorm.DB) *gorm.DB {
	if s.postgres() {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// pgLock takes a transaction-scoped PostgreSQL advisory lock on
// (class, key); on SQLite it does nothing (the transaction already holds
// the database write lock).
func (s *Store) pgLock(tx *gorm.DB, class, key int) error {
	if !s.postgres() {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?, ?)", class, key).Error
}

// pgLockText is pgLock keyed by hashtext(key).
func (s *Store) pgLockText(tx *gorm.DB, class int, key string) error {
	if !s.postgres() {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", class, key).Error
}

// callerError carries an error returned by a caller's updater fn through
// gorm's Transaction, so that it comes back unchanged (not translated).
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// runFn calls the caller's fn and marks its error as the caller's.
func runFn(err error) error {
	if err != nil {
		return &callerError{err}
	}
	return nil
}

// sqlConn digs the pinned *sql.Conn out of a gorm.DB given by Connection.
func sqlConn(db *gorm.DB) (*sql.Conn, bool) {
	c, ok := db.Statement.ConnPool.(*sql.Conn)
	return c, ok
}

// limit applies the default page size.
func limit(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}

// take loads the one row matching query (gorm.ErrRecordNotFound if none).
func take[R any](db *gorm.DB, query string, args ...any) (R, error) {
	var r R
	err := db.Where(query, args...).Take(&r).Error
	return r, err
}

// updateRow is the read-modify-write behind every UpdateX method: lock the
// row (FOR UPDATE on PostgreSQL; the SQLite transaction holds the write
// lock), decode it, let fn change it, restore what must not change, write
// every column back and return what was stored.
func updateRow[R any, T any](s *Store, ctx context.Context, op string,
	where string, args []any,
	dec func(R) (T, error), enc func(T) R,
	fn func(*T) error, keep func(old T, v *T),
) (T, error) {
	var out T
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = updateRowTx(s, tx, where, args, dec, enc, fn, keep)
		return err
	})
	return out, fail(op, err)
}

// updateRowTx is updateRow inside a transaction the caller holds.
func updateRowTx[R any, T any](s *Store, tx *gorm.DB,
	where string, args []any,
	dec func(R) (T, error), enc func(T) R,
	fn func(*T) error, keep func(old T, v *T),
) (T, error) {
	var out T
	var row R
	if err := s.forUpdate(tx).Where(where, args...).Take(&row).Error; err != nil {
		return out, err
	}
	v, err := dec(row)
	if err != nil {
		return out, err
	}
	old := v
	if err := runFn(fn(&v)); err != nil {
		return out, err
	}
	keep(old, &v)
	nr := enc(v)
	if err := tx.Select("*").Updates(&nr).Error; err != nil {
		return out, err
	}
	return dec(nr)
}

// noErr adapts a conversion that cannot fail to updateRow's signature.
func noErr[R any, T any](f func(R) T) func(R) (T, error) {
	return func(r R) (T, error) { return f(r), nil }
}

// stmtCache holds statements prepared on the writer's *sql.DB for the
// hottest transaction (refresh-token rotation). gorm's PrepareStmt cannot
// help inside a transaction: a statement it first meets in a transaction
// is prepared again in every later one (the tx-bound statement dies with
// its tx). A statement prepared on the DB and bound with Tx.StmtContext is
// prepared once per connection and then reused by database/sql; pgx then
// skips the server round trip of a prepare, and modernc's SQLite driver
// keeps the compiled statement (since v1.61: a statement parsed once).
// Besides the rotation, the sign-in's request (UpdateAuthRequest) uses it.
type stmtCache struct {
	db *sql.DB
	pg bool
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *gorm.DB, pg bool) (*stmtCache, error) {
	sdb, err := db.DB()
	if err != nil {
		return nil, err
	}
	return &stmtCache{db: sdb, pg: pg, m: make(map[string]*sql.Stmt)}, nil
}

// get returns query (written with ? placeholders) prepared on the DB.
// Call it only while holding no transaction: preparing needs a free
// connection, and SQLite's writer has exactly one.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	q := query
	if c.pg {
		q = rebindDollar(query)
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

// Hot reads, as prepared statements (see hotRow); they scan into the
// rows' ptrs().
const (
	// A refresh token is found by its family and its digest; one from
	// before its value named its family by its digest alone (migration
	// 0012). On SQLite the first search runs in the family index
	// (family_id, used_at, token_hash), where the family's unused head
	// comes first, and the second in a partial index of the old tokens:
	// a rotation maintains no index of random digests. PostgreSQL keeps
	// its unique index of digests and searches both there (by digest, the
	// family compared after: given the family too, its planner may choose
	// the family index and read every row the reuse grace keeps).
	refreshTokenByFamily = "SELECT " + refreshTokenColumns + " FROM refresh_tokens WHERE family_id = ? AND token_hash = ?"
	refreshTokenOld      = "SELECT " + refreshTokenColumns + " FROM refresh_tokens WHERE token_hash = ? AND hash_only = TRUE"
	refreshTokenByDigest = "SELECT " + refreshTokenColumns + " FROM refresh_tokens WHERE token_hash = ?"
	userByID             = "SELECT " + userColumns + " FROM users WHERE id = ?"
	userByEmailKey       = "SELECT " + userColumns + " FROM users WHERE email_key = ?"
	clientByID           = "SELECT " + clientColumns + " FROM clients WHERE id = ?"
	latestEmailCode      = "SELECT " + emailCodeColumns + " FROM email_codes WHERE user_id = ? AND purpose = ? AND context_id = ?" +
		" ORDER BY created_at DESC, dead_at ASC LIMIT 1"
	totpByUser = "SELECT " + totpColumns + " FROM totp_credentials WHERE user_id = ?" +
		" ORDER BY CASE WHEN status = '" + TOTPActive + "' THEN 0 ELSE 1 END, created_at, id"
	organizationByDomain = "SELECT " + organizationColumns + " FROM organizations" +
		" WHERE id = (SELECT org_id FROM organization_domains WHERE domain = ?)"
	accessTokenByID    = "SELECT " + accessTokenColumns + " FROM access_tokens WHERE id = ?"
	sessionByTokenHash = "SELECT " + sessionColumns + " FROM sessions WHERE token_hash = ?"
)

// refreshGrantByFamily, refreshGrantOld and refreshGrantByDigest: a
// refresh token and its user (GetRefreshGrant), found as the
// refreshToken… statements.
var (
	refreshGrantByFamily = refreshGrant + " WHERE r.family_id = ? AND r.token_hash = ?"
	refreshGrantOld      = refreshGrant + " WHERE r.token_hash = ? AND r.hash_only = TRUE"
	refreshGrantByDigest = refreshGrant + " WHERE r.token_hash = ?"
	refreshGrant         = "SELECT " + qualify("r", refreshTokenColumns) + ", " + qualify("u", userColumns) +
		" FROM refresh_tokens r JOIN users u ON u.id = r.user_id"
)

// qualify prefixes each of the comma-separated columns with alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// hotRow runs a single-row SELECT of the token path or the session-cookie
// lookup as a prepared statement on the read pool (gorm's query building
// costs more than the query). ErrNotFound when there is no row.
func (s *Store) hotRow(ctx context.Context, query string, dest []any, args ...any) error {
	if !argsValid(args) {
		return ErrNotFound // no row holds a value the database cannot store
	}
	st, err := s.hotRead.get(ctx, query)
	if err != nil {
		return err
	}
	err = st.QueryRowContext(s.hotCtx(ctx), args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// hotRows is hotRow for a SELECT of any number of rows: each is scanned
// into a new R through ptrs. No rows (or arguments no row can hold): nil.
func hotRows[R any](s *Store, ctx context.Context, query string, ptrs func(*R) []any, args ...any) ([]R, error) {
	if !argsValid(args) {
		return nil, nil
	}
	st, err := s.hotRead.get(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(s.hotCtx(ctx), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		var r R
		if err := rows.Scan(ptrs(&r)...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// hotCtx is the context of a token-path statement. On SQLite it cannot be
// cancelled: for a cancellable context modernc's driver starts a goroutine
// per statement (and database/sql one per result set) to watch it, which
// costs more than the indexed lookup itself; such a statement takes
// microseconds, and the busy timeout bounds a wait for a lock. On
// PostgreSQL the request's context still bounds the round trip.
func (s *Store) hotCtx(ctx context.Context) context.Context {
	if s.dialect == DialectSQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// rebindDollar turns ? placeholders into PostgreSQL's $1, $2, … (our
// statements have no ? inside literals).
func rebindDollar(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
