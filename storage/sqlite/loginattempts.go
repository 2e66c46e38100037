package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// RegisterLoginAttempt implements the lockout contract of storage.Store. The
// transaction holds SQLite's write lock from BEGIN, so concurrent attempts on
// a key run one after the other and each sees the count the previous one left.
func (s *Store) RegisterLoginAttempt(ctx context.Context, key string, now time.Time,
	threshold int, lockFor time.Duration) (storage.LoginAttempt, error) {
	const what = "sqlite: register login attempt"
	var out storage.LoginAttempt
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		var failures int
		var lockedUntil *time.Time
		err := tx.QueryRowContext(ctx, `SELECT failures, locked_until FROM login_attempts WHERE key = ?`, key).
			Scan(&failures, timePtrCol{&lockedUntil})
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return wrapErr(what, err)
		}
		if lockedUntil != nil && lockedUntil.After(now) {
			// Locked: no password check, and the count stays where it is.
			out = storage.LoginAttempt{LockedUntil: *lockedUntil, Failures: failures}
			return nil
		}
		if lockedUntil != nil {
			failures = 0 // the lock has expired: a fresh count starts
		}
		failures++
		out = storage.LoginAttempt{Allowed: true, Failures: failures}
		if failures >= threshold {
			out.LockedUntil = stored(now.Add(lockFor))
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO login_attempts (key, failures, locked_until, updated_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
				locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
			key, failures, optMillis(out.LockedUntil), millis(now))
		return wrapErr(what, err)
	})
	if err != nil {
		return storage.LoginAttempt{}, err
	}
	return out, nil
}

// ClearLoginFailures forgets the key's failures and lifts its lock. A key
// without a record is already clear.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM login_attempts WHERE key = ?`, key)
	return wrapErr("sqlite: clear login failures", err)
}
