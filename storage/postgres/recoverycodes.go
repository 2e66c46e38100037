package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplaceRecoveryCodes deletes the user's codes and inserts hashes, in one
// transaction: a reader sees the old set or the new, and a failure (an
// unknown user, a repeated hash) leaves the old set in place.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	const what = "postgres: replace recovery codes"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return wrapErr(what, err)
		}
		if len(hashes) == 0 {
			return nil
		}
		// One statement for the set; unnest keeps it one round trip.
		_, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, hash, created_at)
			SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h`, userID, hashes, now)
		return wrapErr(what, err)
	})
}

// UseRecoveryCode marks the code used and counts what is left, in one
// transaction. The UPDATE's used_at IS NULL makes one use of a code succeed:
// concurrent uses queue on the row lock, and after the first commits the
// others re-check the WHERE, find the code used and change nothing.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, usedAt time.Time) (int, error) {
	const what = "postgres: use recovery code"
	var remaining int
	err := s.inTx(ctx, what, func(tx pgx.Tx) error {
		err := execOne(ctx, tx, what, `UPDATE recovery_codes SET used_at = $1
			WHERE user_id = $2 AND hash = $3 AND used_at IS NULL`, usedAt, userID, hash)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`,
			userID).Scan(&remaining)
		return wrapErr(what, err)
	})
	if err != nil {
		return 0, err
	}
	return remaining, nil
}

// CountRecoveryCodes counts the user's unused codes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`,
		userID).Scan(&n)
	if err != nil {
		return 0, wrapErr("postgres: count recovery codes", err)
	}
	return n, nil
}
