package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const refreshTokenColumns = `hash, grant_id, parent_hash, scopes, created_at, expires_at, rotated_at`

func scanRefreshToken(row rowScanner) (*storage.RefreshToken, error) {
	var t storage.RefreshToken
	err := row.Scan(&t.Hash, &t.GrantID, &t.ParentHash, listCol{&t.Scopes},
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timePtrCol{&t.RotatedAt})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// insertRefreshToken stores t under grantID and parentHash, which
// RotateRefreshToken takes from the parent rather than trusting the successor.
func insertRefreshToken(ctx context.Context, db execer, t *storage.RefreshToken, grantID string, parentHash []byte) error {
	scopes, err := jsonList(t.Scopes)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, grantID, optBytes(parentHash), scopes, millis(t.CreatedAt), millis(t.ExpiresAt), ptrMillis(t.RotatedAt))
	return err
}

// CreateRefreshToken stores the first token of a grant (or any token as given).
func (s *Store) CreateRefreshToken(ctx context.Context, t *storage.RefreshToken) error {
	return wrapErr("sqlite: create refresh token", insertRefreshToken(ctx, s.db, t, t.GrantID, t.ParentHash))
}

// GetRefreshToken returns the token with hash.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (*storage.RefreshToken, error) {
	t, err := scanRefreshToken(s.q.QueryRowContext(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE hash = ?`, hash))
	return t, wrapErr("sqlite: get refresh token", err)
}

// refreshTokenWithGrantQuery reads a refresh token, its grant and the
// grant's user in one statement.
var refreshTokenWithGrantQuery = `SELECT ` + storage.Qualify("t", refreshTokenColumns) + `, ` +
	storage.Qualify("g", grantColumns) + `, ` + storage.Qualify("u", userColumns) + `
	FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id JOIN users u ON u.id = g.user_id
	WHERE t.hash = ?`

// GetRefreshTokenWithGrant returns the token with hash, its grant and the
// grant's user, joined.
func (s *Store) GetRefreshTokenWithGrant(ctx context.Context, hash []byte) (*storage.RefreshTokenWithGrant, error) {
	const what = "sqlite: get refresh token with grant"
	var r storage.RefreshTokenWithGrant
	err := storage.ScanJoined(s.q.QueryRowContext(ctx, refreshTokenWithGrantQuery, hash),
		func(row storage.RowScanner) (err error) { r.Token, err = scanRefreshToken(row); return err },
		func(row storage.RowScanner) (err error) { r.Grant, err = scanGrant(row); return err },
		func(row storage.RowScanner) (err error) { r.User, err = scanUser(row); return err })
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return &r, nil
}

// RotateRefreshToken implements the rotation contract of storage.Store. The
// transaction holds SQLite's write lock from BEGIN, so concurrent rotations of
// one parent run one after the other and only the first finds it unrotated.
// The successor is stored under the parent's grant with ParentHash = parentHash,
// whatever successor.GrantID and successor.ParentHash say.
func (s *Store) RotateRefreshToken(ctx context.Context, parentHash []byte, successor *storage.RefreshToken,
	now time.Time, grace time.Duration) (storage.RotateOutcome, error) {
	const what = "sqlite: rotate refresh token"
	var outcome storage.RotateOutcome
	var reused bool
	err := s.inTx(ctx, what, func(tx *txq) error {
		var grantID string
		var rotatedAt, revokedAt *time.Time
		err := tx.QueryRowContext(ctx, `SELECT t.grant_id, t.rotated_at, g.revoked_at
			FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?`, parentHash).
			Scan(&grantID, timePtrCol{&rotatedAt}, timePtrCol{&revokedAt})
		if err != nil {
			return wrapErr(what, err)
		}
		switch {
		case revokedAt != nil:
			return fmt.Errorf("%s: %w", what, storage.ErrRevoked)
		case rotatedAt == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ?`,
				millis(now), parentHash); err != nil {
				return wrapErr(what, err)
			}
			if err := insertRefreshToken(ctx, tx, successor, grantID, parentHash); err != nil {
				return wrapErr(what+": store successor", err)
			}
			outcome = storage.Rotated
		case time.UnixMilli(now.UnixMilli()).Sub(*rotatedAt) <= grace:
			// Compared at the stored (millisecond) precision, so a retry exactly
			// grace after the rotation is still inside the window.
			outcome = storage.ReissuedInGrace
		default:
			// Reuse after the grace window means the token leaked: revoke the
			// whole grant, and commit that before reporting the reuse.
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
				millis(now), grantID); err != nil {
				return wrapErr(what+": revoke grant", err)
			}
			reused = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if reused {
		return 0, fmt.Errorf("%s: %w", what, storage.ErrTokenReused)
	}
	return outcome, nil
}
