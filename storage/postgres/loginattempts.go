package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

// RegisterLoginAttempt implements the lockout contract of storage.Store. Its
// first statement creates the key's row if missing and, either way, locks it
// until commit (ON CONFLICT DO UPDATE locks the row it finds), so concurrent
// attempts on a key, from any process, run one after the other and each reads
// the count the previous one committed.
func (s *Store) RegisterLoginAttempt(ctx context.Context, key string, now time.Time,
	threshold int, lockFor time.Duration) (storage.LoginAttempt, error) {
	const what = "postgres: register login attempt"
	var out storage.LoginAttempt
	err := s.inTx(ctx, what, func(tx pgx.Tx) error {
		var failures int
		var lockedUntil *time.Time
		err := tx.QueryRow(ctx, `INSERT INTO login_attempts AS a (key, failures, updated_at) VALUES ($1, 0, $2)
			ON CONFLICT (key) DO UPDATE SET failures = a.failures
			RETURNING failures, locked_until`, key, now).
			Scan(&failures, timePtrCol{&lockedUntil})
		if err != nil {
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
		_, err = tx.Exec(ctx, `UPDATE login_attempts SET failures = $2, locked_until = $3, updated_at = $4
			WHERE key = $1`, key, failures, optTime(out.LockedUntil), now)
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
	_, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, key)
	return wrapErr("postgres: clear login failures", err)
}

// LoginLocks returns the locks among keys that still hold at now.
func (s *Store) LoginLocks(ctx context.Context, keys []string, now time.Time) (map[string]time.Time, error) {
	const what = "postgres: login locks"
	out := map[string]time.Time{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT key, locked_until FROM login_attempts
		WHERE key = ANY($1) AND locked_until > $2`, keys, now)
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
