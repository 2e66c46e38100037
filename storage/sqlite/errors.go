package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-id/gatehouse/storage"
)

// wrapErr adds what was being done to err and translates the driver's errors
// into the storage sentinels callers test with errors.Is.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w (%v)", what, storage.ErrConflict, se)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			// The row refers to a user or client that does not exist.
			return fmt.Errorf("%s: referenced row: %w (%v)", what, storage.ErrNotFound, se)
		}
	}
	return storeErr(what, err)
}

// storeErr wraps err with what was being done, marking the failures that
// mean the database could not answer now (busy or locked past the timeout,
// I/O error, disk full, file gone, connection closed) as
// storage.ErrUnavailable: not a verdict on the request, worth retrying.
func storeErr(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func unavailable(err error) bool {
	if errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY:
		return true
	}
	return false
}

// notFound is the error for an update or delete that matched no row.
func notFound(what string) error {
	return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
