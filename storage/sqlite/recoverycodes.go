package sqlite

import (
	"context"
	"time"
)

// ReplaceRecoveryCodes deletes the user's codes and inserts hashes, in one
// transaction: a reader sees the old set or the new, and a failure (an
// unknown user, a repeated hash) leaves the old set in place.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	const what = "sqlite: replace recovery codes"
	return s.inTx(ctx, what, func(tx *txq) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return wrapErr(what, err)
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (?, ?, ?)`,
				userID, h, millis(now)); err != nil {
				return wrapErr(what, err)
			}
		}
		return nil
	})
}

// UseRecoveryCode marks the code used and counts what is left, in one
// transaction. The UPDATE's used_at IS NULL makes one use of a code succeed:
// the transaction holds SQLite's write lock, so a concurrent use runs after
// it and finds the code used.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, usedAt time.Time) (int, error) {
	const what = "sqlite: use recovery code"
	var remaining int
	err := s.inTx(ctx, what, func(tx *txq) error {
		err := execOne(ctx, tx, what, `UPDATE recovery_codes SET used_at = ?
			WHERE user_id = ? AND hash = ? AND used_at IS NULL`, millis(usedAt), userID, hash)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`,
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
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`,
		userID).Scan(&n)
	if err != nil {
		return 0, wrapErr("sqlite: count recovery codes", err)
	}
	return n, nil
}
