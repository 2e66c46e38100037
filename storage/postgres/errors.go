package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/storage"
)

// SQLSTATE codes the store translates.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// wrapErr adds what was being done to err and translates the driver's errors
// into the storage sentinels callers test with errors.Is.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case uniqueViolation:
			return fmt.Errorf("%s: %w (%s)", what, storage.ErrConflict, pgErr.ConstraintName)
		case foreignKeyViolation:
			// The row refers to a user or client that does not exist.
			return fmt.Errorf("%s: referenced row: %w (%s)", what, storage.ErrNotFound, pgErr.ConstraintName)
		}
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable reports whether err says the database could not answer rather
// than that the statement was wrong: no connection (refused, reset, timed
// out, pool closed), or a server-side error of the classes that mean "not
// now" — 08 connection exception, 53 insufficient resources, 57 operator
// intervention (shutdown, restart, cannot connect now), 58 system error.
// Any other error that carries no PostgreSQL error code is a transport
// failure too: pgx reports statement and data errors as *pgconn.PgError.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller went away; nothing is wrong with the store
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57", "58":
			return true
		}
		return false
	}
	var scanErr pgx.ScanArgError
	return !errors.As(err, &scanErr)
}

// storeErr wraps an error that did not come from a statement (begin, commit,
// ping, acquire) with what was being done, marking transport failures.
func storeErr(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// notFound is the error for an update or delete that matched no row.
func notFound(what string) error {
	return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
