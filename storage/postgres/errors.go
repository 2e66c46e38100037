package postgres

import (
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
	return fmt.Errorf("%s: %w", what, err)
}

// notFound is the error for an update or delete that matched no row.
func notFound(what string) error {
	return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
