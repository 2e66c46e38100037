package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const refreshTokenColumns = `hash, grant_id, parent_hash, scopes, created_at, expires_at, rotated_at`

func scanRefreshToken(row rowScanner) (*storage.RefreshToken, error) {
	var t storage.RefreshToken
	err := row.Scan(&t.Hash, &t.GrantID, &t.ParentHash, &t.Scopes,
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timePtrCol{&t.RotatedAt})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// insertRefreshToken stores t under grantID and parentHash, which
// RotateRefreshToken takes from the parent rather than trusting the successor.
func insertRefreshToken(ctx context.Context, db execer, t *storage.RefreshToken, grantID string, parentHash []byte) error {
	_, err := db.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Hash, grantID, optBytes(parentHash), list(t.Scopes), t.CreatedAt, t.ExpiresAt, t.RotatedAt)
	return err
}

// CreateRefreshToken stores the first token of a grant (or any token as given).
func (s *Store) CreateRefreshToken(ctx context.Context, t *storage.RefreshToken) error {
	return wrapErr("postgres: create refresh token", insertRefreshToken(ctx, s.pool, t, t.GrantID, t.ParentHash))
}

// GetRefreshToken returns the token with hash.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (*storage.RefreshToken, error) {
	t, err := scanRefreshToken(s.pool.QueryRow(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	return t, wrapErr("postgres: get refresh token", err)
}

// refreshTokenWithGrantQuery reads a refresh token, its grant and the
// grant's user in one statement.
var refreshTokenWithGrantQuery = `SELECT ` + storage.Qualify("t", refreshTokenColumns) + `, ` +
	storage.Qualify("g", grantColumns) + `, ` + storage.Qualify("u", userColumns) + `
	FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id JOIN users u ON u.id = g.user_id
	WHERE t.hash = $1`

// GetRefreshTokenWithGrant returns the token with hash, its grant and the
// grant's user, joined.
func (s *Store) GetRefreshTokenWithGrant(ctx context.Context, hash []byte) (*storage.RefreshTokenWithGrant, error) {
	const what = "postgres: get refresh token with grant"
	var r storage.RefreshTokenWithGrant
	err := storage.ScanJoined(s.pool.QueryRow(ctx, refreshTokenWithGrantQuery, hash),
		func(row storage.RowScanner) (err error) { r.Token, err = scanRefreshToken(row); return err },
		func(row storage.RowScanner) (err error) { r.Grant, err = scanGrant(row); return err },
		func(row storage.RowScanner) (err error) { r.User, err = scanUser(row); return err })
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return &r, nil
}

// rotateRefreshToken is a rotation in one statement (one round trip, no
// BEGIN and COMMIT): 5 round trips before, against pgbench -N's 5 for a whole
// transaction (issue 14). parent locks the presented token's row (FOR UPDATE
// OF t), so concurrent rotations of one parent run one after the other; in
// READ COMMITTED a rotation that waited for the lock gets the row as the
// earlier one committed it (PostgreSQL re-reads a locked row that changed),
// so it sees rotated_at set and rotates nothing. The other parts act on
// parent's row, as the branches of the earlier transaction did: rotated sets
// rotated_at and successor stores the new token when the parent was never
// rotated and its grant is live; revoked revokes the grant when the parent
// was rotated before $7 (now − grace, at the stored microsecond precision:
// a retry exactly grace after the rotation is still inside the window). The
// statement returns parent's row as read, which tells the caller which
// branch ran; no row means no such token.
const rotateRefreshToken = `WITH parent AS (
		SELECT t.hash, t.grant_id, t.rotated_at, g.revoked_at
		FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id
		WHERE t.hash = $1 FOR UPDATE OF t
	), rotated AS (
		UPDATE refresh_tokens r SET rotated_at = $2
		FROM parent p
		WHERE r.hash = p.hash AND p.rotated_at IS NULL AND p.revoked_at IS NULL
		RETURNING r.grant_id
	), successor AS (
		INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
		SELECT $3, grant_id, $1, $4, $5, $6, NULL FROM rotated
	), revoked AS (
		UPDATE grants g SET revoked_at = COALESCE(g.revoked_at, $2)
		FROM parent p
		WHERE g.id = p.grant_id AND p.revoked_at IS NULL AND p.rotated_at < $7
	)
	SELECT grant_id, rotated_at, revoked_at FROM parent`

// RotateRefreshToken implements the rotation contract of storage.Store in one
// statement (rotateRefreshToken). The successor is stored under the parent's
// grant with ParentHash = parentHash, whatever successor.GrantID and
// successor.ParentHash say.
func (s *Store) RotateRefreshToken(ctx context.Context, parentHash []byte, successor *storage.RefreshToken,
	now time.Time, grace time.Duration) (storage.RotateOutcome, error) {
	const what = "postgres: rotate refresh token"
	// The stored precision is the microsecond: a cutoff between two
	// microseconds is rounded up, so that the statement (which gets it
	// truncated) and the comparison below agree for any grace.
	cutoff := now.Truncate(time.Microsecond).Add(-grace)
	if down := cutoff.Truncate(time.Microsecond); down.Before(cutoff) {
		cutoff = down.Add(time.Microsecond)
	}
	var grantID string
	var rotatedAt, revokedAt *time.Time
	err := s.pool.QueryRow(ctx, rotateRefreshToken, parentHash, now,
		successor.Hash, list(successor.Scopes), successor.CreatedAt, successor.ExpiresAt, cutoff).
		Scan(&grantID, timePtrCol{&rotatedAt}, timePtrCol{&revokedAt})
	if err != nil {
		return 0, wrapErr(what, err)
	}
	switch {
	case revokedAt != nil:
		return 0, fmt.Errorf("%s: %w", what, storage.ErrRevoked)
	case rotatedAt == nil:
		return storage.Rotated, nil
	case !rotatedAt.Before(cutoff):
		return storage.ReissuedInGrace, nil
	default:
		// Reused after the grace window: the token leaked, and the statement
		// has revoked the whole grant.
		return 0, fmt.Errorf("%s: %w", what, storage.ErrTokenReused)
	}
}
