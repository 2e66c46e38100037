package postgres

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
	_, err := s.pool.Exec(ctx, `INSERT INTO totp_factors (`+totpColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at,
			last_step = excluded.last_step, last_used_at = excluded.last_used_at`,
		f.UserID, f.SecretEnc, f.CreatedAt, f.LastStep, optTime(f.LastUsedAt))
	return wrapErr("postgres: set totp", err)
}

// GetTOTP returns the user's factor.
func (s *Store) GetTOTP(ctx context.Context, userID string) (*storage.TOTPFactor, error) {
	f, err := scanTOTP(s.pool.QueryRow(ctx, `SELECT `+totpColumns+` FROM totp_factors WHERE user_id = $1`, userID))
	return f, wrapErr("postgres: get totp", err)
}

// HasSecondFactor implements storage.Store.
func (s *Store) HasSecondFactor(ctx context.Context, userID string) (bool, error) {
	var has bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = $1)
		OR EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = $1)`, userID).Scan(&has)
	return has, wrapErr("postgres: has second factor", err)
}

// UseTOTPStep accepts step when it is after the last accepted one. The check
// is the UPDATE's WHERE: concurrent calls queue on the row lock, and after the
// first commits the others re-check last_step < step against its value and no
// longer match. When no row changed, a second read tells a reused step
// (ErrConflict) from a user without TOTP (ErrNotFound).
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64, usedAt time.Time) error {
	const what = "postgres: use totp step"
	tag, err := s.pool.Exec(ctx, `UPDATE totp_factors SET last_step = $1, last_used_at = $2
		WHERE user_id = $3 AND last_step < $1`, step, usedAt, userID)
	if err != nil {
		return wrapErr(what, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT last_step FROM totp_factors WHERE user_id = $1`, userID).Scan(&last); err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: step %d not after the last accepted %d: %w", what, step, last, storage.ErrConflict)
}

// DeleteTOTP removes the user's factor.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	return execOne(ctx, s.pool, "postgres: delete totp", `DELETE FROM totp_factors WHERE user_id = $1`, userID)
}
