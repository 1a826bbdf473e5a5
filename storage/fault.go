package storage

// Fault injection for outage tests: a database/sql connector wrapper that,
// while the fault is on, behaves like a database that went away — open
// connections report themselves broken (driver.ErrBadConn, so database/sql
// drops them and dials again) and dialling is refused. Everything above
// database/sql (gorm, the prepared hot path, the batcher, Health) sees
// what it would see from a stopped PostgreSQL, and the errors go through
// the same classification (ErrUnavailable). Only used when Options.Fault
// is set; production opens the drivers directly.

import (
	"context"
	"database/sql/driver"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Fault switches a store's database off and on (Options.Fault).
type Fault struct{ down atomic.Bool }

// SetDown makes the database unreachable (true) or reachable again.
func (f *Fault) SetDown(down bool) { f.down.Store(down) }

// Down reports whether the database is unreachable.
func (f *Fault) Down() bool { return f != nil && f.down.Load() }

// errRefused is what dialling a stopped server gives.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

type faultConnector struct {
	inner driver.Connector
	f     *Fault
}

func (c faultConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.f.Down() {
		return nil, errRefused
	}
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &faultConn{inner: conn, f: c.f}, nil
}

func (c faultConnector) Driver() driver.Driver { return c.inner.Driver() }

// dsnConnector makes a Connector of a driver and a DSN.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// faultConn forwards to the driver's connection unless the fault is on.
type faultConn struct {
	inner driver.Conn
	f     *Fault
}

// unwrapConn is the driver's own connection (bulk.go needs pgx's).
func (c *faultConn) unwrapConn() driver.Conn { return c.inner }

func (c *faultConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *faultConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.f.Down() {
		return nil, driver.ErrBadConn
	}
	var st driver.Stmt
	var err error
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &faultStmt{inner: st, f: c.f}, nil
}

func (c *faultConn) Close() error { return c.inner.Close() }

func (c *faultConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *faultConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.f.Down() {
		return nil, driver.ErrBadConn
	}
	var tx driver.Tx
	var err error
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		tx, err = c.inner.Begin() //nolint:staticcheck // the driver has nothing better
	}
	if err != nil {
		return nil, err
	}
	return faultTx{inner: tx, f: c.f}, nil
}

func (c *faultConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.f.Down() {
		return nil, driver.ErrBadConn
	}
	if e, ok := c.inner.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *faultConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.f.Down() {
		return nil, driver.ErrBadConn
	}
	if q, ok := c.inner.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *faultConn) Ping(ctx context.Context) error {
	if c.f.Down() {
		return driver.ErrBadConn
	}
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *faultConn) ResetSession(ctx context.Context) error {
	if c.f.Down() {
		return driver.ErrBadConn
	}
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *faultConn) IsValid() bool {
	if c.f.Down() {
		return false
	}
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *faultConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type faultStmt struct {
	inner driver.Stmt
	f     *Fault
}

func (s *faultStmt) Close() error  { return s.inner.Close() }
func (s *faultStmt) NumInput() int { return s.inner.NumInput() }

func (s *faultStmt) Exec(args []driver.Value) (driver.Result, error) {
	if s.f.Down() {
		return nil, driver.ErrBadConn
	}
	return s.inner.Exec(args) //nolint:staticcheck // only when the driver lacks ExecContext
}

func (s *faultStmt) Query(args []driver.Value) (driver.Rows, error) {
	if s.f.Down() {
		return nil, driver.ErrBadConn
	}
	return s.inner.Query(args) //nolint:staticcheck // only when the driver lacks QueryContext
}

func (s *faultStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.f.Down() {
		return nil, driver.ErrBadConn
	}
	if e, ok := s.inner.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.inner.Exec(vals) //nolint:staticcheck // the driver has nothing better
}

func (s *faultStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.f.Down() {
		return nil, driver.ErrBadConn
	}
	if q, ok := s.inner.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.inner.Query(vals) //nolint:staticcheck // the driver has nothing better
}

func (s *faultStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func namedToValues(args []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, driver.ErrSkip
		}
		vals[i] = a.Value
	}
	return vals, nil
}

type faultTx struct {
	inner driver.Tx
	f     *Fault
}

func (t faultTx) Commit() error {
	if t.f.Down() {
		_ = t.inner.Rollback()
		return driver.ErrBadConn
	}
	return t.inner.Commit()
}

func (t faultTx) Rollback() error { return t.inner.Rollback() }
