package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

type liteErr int

func (e liteErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e liteErr) Code() int     { return int(e) }

// TestUnavailableClassification: what the drivers say when the database
// is out of reach is ErrUnavailable; what they say about the request or
// the data is not.
func TestUnavailableClassification(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{driver.ErrBadConn, true},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{errRefused, true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "53300", Message: "too many connections"}, true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, true},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key"}, false},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, false},
		{liteErr(5), true},     // SQLITE_BUSY
		{liteErr(261), true},   // SQLITE_BUSY_RECOVERY
		{liteErr(10), true},    // SQLITE_IOERR
		{liteErr(13), true},    // SQLITE_FULL
		{liteErr(2067), false}, // SQLITE_CONSTRAINT_UNIQUE
		{liteErr(1), false},    // SQLITE_ERROR (a bad statement)
		{errors.New("failed to connect to `host=db user=x`: dial error"), true},
		{errors.New("conn closed"), true},
		{errors.New("syntax error at or near"), false},
	} {
		if got := unavailable(c.err); got != c.want {
			t.Errorf("unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
		if got := errors.Is(fail("op", c.err), ErrUnavailable); got != c.want {
			t.Errorf("fail(%v) is ErrUnavailable = %v, want %v", c.err, got, c.want)
		}
	}
	// A deadline that ran out waiting for the database is both.
	err := fail("op", context.DeadlineExceeded)
	if !IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
	// Not found stays not found.
	if IsUnavailable(fail("op", ErrNotFound)) {
		t.Error("not found classified as unavailable")
	}
}
