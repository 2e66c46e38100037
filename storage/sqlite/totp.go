package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const totpColumns = `user_id, secret_enc, created_at, last_step, last_used_at`

func scanTOTP(row rowScanner) (*storage.TOTPFactor, error) {
	var f storage.TOTPFactor
	err := row.Scan(&f.UserID, &f.SecretEnc, timeCol{&f.CreatedAt}, &f.LastStep, timeCol{&f.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// SetTOTP inserts or replaces the user's factor in one statement (the user ID
// is the key); the foreign key makes an unknown user ErrNotFound.
func (s *Store) SetTOTP(ctx context.Context, f *storage.TOTPFactor) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO totp_factors (`+totpColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at,
			last_step = excluded.last_step, last_used_at = excluded.last_used_at`,
		f.UserID, f.SecretEnc, millis(f.CreatedAt), f.LastStep, optMillis(f.LastUsedAt))
	return wrapErr("sqlite: set totp", err)
}

// GetTOTP returns the user's factor.
func (s *Store) GetTOTP(ctx context.Context, userID string) (*storage.TOTPFactor, error) {
	f, err := scanTOTP(s.q.QueryRowContext(ctx, `SELECT `+totpColumns+` FROM totp_factors WHERE user_id = ?`, userID))
	return f, wrapErr("sqlite: get totp", err)
}

// HasSecondFactor implements storage.Store.
func (s *Store) HasSecondFactor(ctx context.Context, userID string) (bool, error) {
	var has bool
	err := s.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?)
		OR EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = ?)`, userID, userID).Scan(&has)
	return has, wrapErr("sqlite: has second factor", err)
}

// UseTOTPStep accepts step when it is after the last accepted one. The check
// is the UPDATE's WHERE, so of concurrent calls with one step (SQLite runs
// one writer at a time) the first moves last_step and the rest no longer
// match. When no row changed, a second read tells a reused step
// (ErrConflict) from a user without TOTP (ErrNotFound).
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64, usedAt time.Time) error {
	const what = "sqlite: use totp step"
	res, err := s.q.ExecContext(ctx, `UPDATE totp_factors SET last_step = ?, last_used_at = ?
		WHERE user_id = ? AND last_step < ?`, step, millis(usedAt), userID, step)
	if err != nil {
		return wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(what, err)
	}
	if n == 1 {
		return nil
	}
	var last int64
	if err := s.q.QueryRowContext(ctx, `SELECT last_step FROM totp_factors WHERE user_id = ?`, userID).Scan(&last); err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: step %d not after the last accepted %d: %w", what, step, last, storage.ErrConflict)
}

// DeleteTOTP removes the user's factor.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	return execOne(ctx, s.q, "sqlite: delete totp", `DELETE FROM totp_factors WHERE user_id = ?`, userID)
}
