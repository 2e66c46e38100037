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
	err := s.inTx(ctx, what, func(tx *txq) error {
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

// LoginLocks returns the locks among keys that still hold at now. The keys
// travel as one JSON array, so the query text (and its prepared statement)
// is the same for any number of them.
func (s *Store) LoginLocks(ctx context.Context, keys []string, now time.Time) (map[string]time.Time, error) {
	const what = "sqlite: login locks"
	out := map[string]time.Time{}
	if len(keys) == 0 {
		return out, nil
	}
	list, err := jsonList(keys)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	rows, err := s.q.QueryContext(ctx, `SELECT key, locked_until FROM login_attempts
		WHERE key IN (SELECT value FROM json_each(?)) AND locked_until > ?`, list, millis(now))
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var until time.Time
		if err := rows.Scan(&key, timeCol{&until}); err != nil {
			return nil, wrapErr(what, err)
		}
		out[key] = until
	}
	return out, wrapErr(what, rows.Err())
}
