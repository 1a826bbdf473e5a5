package storage

// Error translation. Only ErrNotFound, ErrConflict, context errors and
// opaque *internalError values leave the package, so that no caller ever
// depends on gorm, pgx or the SQLite driver (and cannot by accident: the
// opaque error keeps the driver's message but not its type).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// internalError is a database failure with the driver's message but none
// of its types in the chain.
type internalError struct{ msg string }

func (e *internalError) Error() string { return e.msg }

// opaque wraps err's text without keeping err.
func opaque(op string, err error) error {
	return &internalError{msg: "storage: " + op + ": " + err.Error()}
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
		return fmt.Errorf("storage: %s: %w", op, context.DeadlineExceeded)
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
