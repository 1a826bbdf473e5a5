package storage

// Error translation. Only ErrNotFound, ErrConflict, context errors and
// opaque *internalError values leave the package, so that no caller ever
// depends on gorm, pgx or the SQLite driver (and cannot by accident: the
// opaque error keeps the driver's message but not its type).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"gorm.io/gorm"
)

// ErrUnavailable is the database being out of reach: refused or broken
// connections, a server shutting down or starting up, too many
// connections, a disk that is full or failing, SQLite's lock held past the
// busy timeout. It is a condition that passes, not a fault of the request
// or of the data, so callers answer 503 with Retry-After (OAuth's
// temporarily_unavailable), never a 4xx that would blame the client or the
// token. Test with IsUnavailable.
var ErrUnavailable = errors.New("storage: database unavailable")

// IsUnavailable reports whether err means the database could not be
// reached or did not answer in time (a deadline that ran out waiting for
// it is both ErrUnavailable and context.DeadlineExceeded).
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// internalError is a database failure with the driver's message but none
// of its types in the chain; unavailable marks the ErrUnavailable kind.
type internalError struct {
	msg         string
	unavailable bool
	deadline    bool // a deadline ran out waiting for the database
}

func (e *internalError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrUnavailable) true for an unavailability.
func (e *internalError) Is(target error) bool {
	return e.unavailable && target == ErrUnavailable || e.deadline && target == context.DeadlineExceeded
}

// opaque wraps err's text without keeping err, and whether it is an
// unavailability.
func opaque(op string, err error) error {
	return &internalError{msg: "storage: " + op + ": " + err.Error(), unavailable: unavailable(err)}
}

// unavailable classifies a driver error as the database being out of
// reach (see ErrUnavailable), on both dialects, without depending on
// driver types other than by behaviour.
func unavailable(err error) bool {
	var ie *internalError
	if errors.As(err, &ie) {
		return ie.unavailable
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// PostgreSQL: connection exceptions (08…), insufficient resources
	// (53…: too many connections, disk full), shutdown and start-up
	// (57P01–57P03), system errors (58…: I/O).
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		code := pg.SQLState()
		switch {
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"),
			code == "57P01", code == "57P02", code == "57P03":
			return true
		}
		return false
	}
	// SQLite: BUSY and LOCKED (the lock held past busy_timeout), IOERR,
	// FULL, CANTOPEN — by primary result code.
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case 5, 6, 10, 13, 14:
			return true
		}
		return false
	}
	// What pgx and database/sql say without a type to match.
	msg := err.Error()
	for _, s := range []string{"conn closed", "connection refused", "broken pipe", "connection reset",
		"database is closed", "failed to connect", "server closed the connection", "the database system is"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// fail translates an error from a gorm call or a transaction for the
// method named op. Caller errors (from updater fns) come back unchanged.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
		// Ours already (possibly returned from inside a transaction).
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		return ErrConflict
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, ErrInvalidText):
		return ErrInvalidText
	case isUniqueViolation(err):
		return ErrConflict
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("storage: %s: %w", op, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return &internalError{msg: "storage: " + op + ": " + context.DeadlineExceeded.Error(), unavailable: true, deadline: true}
	}
	var ie *internalError
	if errors.As(err, &ie) {
		return ie
	}
	return opaque(op, err)
}

// isUniqueViolation recognises a unique or primary-key violation on both
// dialects without importing driver types: pgconn.PgError has SQLState,
// the SQLite driver's Error has Code (extended result codes).
func isUniqueViolation(err error) bool {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) && pg.SQLState() == "23505" {
		return true
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() {
		case 2067, // SQLITE_CONSTRAINT_UNIQUE
			1555: // SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// invalid reports a call the contract does not allow (empty id, empty
// filter, …). It is an internalError so that fail passes it through as is.
func invalid(msg string) error { return &internalError{msg: "storage: " + msg} }
