package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

const grantColumns = `id, COALESCE(user_id, ''), client_id, session_id, scopes, auth_time, amr, created_at, expires_at, revoked_at, resources, idp, dpop_jkt`

func scanGrant(row rowScanner) (*storage.Grant, error) {
	var g storage.Grant
	err := row.Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Scopes, timeCol{&g.AuthTime}, &g.AMR,
		timeCol{&g.CreatedAt}, timeCol{&g.ExpiresAt}, timePtrCol{&g.RevokedAt}, &g.Resources, &g.IDP, &g.DPoPJKT)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// CreateGrant inserts g; ErrConflict if its ID is taken.
func (s *Store) CreateGrant(ctx context.Context, g *storage.Grant) error {
	return wrapErr("postgres: create grant", insertGrant(ctx, s.pool, g))
}

// CreateGrantWithRefreshToken stores g and its first refresh token t in one
// transaction: both or neither.
func (s *Store) CreateGrantWithRefreshToken(ctx context.Context, g *storage.Grant, t *storage.RefreshToken) error {
	const what = "postgres: create grant with refresh token"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if err := insertGrant(ctx, tx, g); err != nil {
			return wrapErr(what, err)
		}
		return wrapErr(what, insertRefreshToken(ctx, tx, t, g.ID, nil))
	})
}

// RedeemCodeAndCreateGrant implements storage.Store. The conditional UPDATE
// takes the row lock: a concurrent redemption waits, then finds the code used.
func (s *Store) RedeemCodeAndCreateGrant(ctx context.Context, codeHash []byte, now time.Time, g *storage.Grant, t *storage.RefreshToken) error {
	const what = "postgres: redeem code and create grant"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth_requests SET code_used_at = $1
			WHERE id = $2 AND code_hash = $3 AND code_used_at IS NULL AND code_expires_at > $1`, now, g.ID, codeHash)
		if err != nil {
			return wrapErr(what, err)
		}
		if tag.RowsAffected() == 0 {
			var used *time.Time
			err := tx.QueryRow(ctx, `SELECT code_used_at FROM auth_requests WHERE id = $1 AND code_hash = $2`, g.ID, codeHash).Scan(&used)
			if err == nil && used != nil {
				return fmt.Errorf("%s: %w", what, storage.ErrCodeReused)
			}
			return notFound(what)
		}
		if err := insertGrant(ctx, tx, g); err != nil {
			return wrapErr(what, err)
		}
		if t == nil {
			return nil
		}
		return wrapErr(what, insertRefreshToken(ctx, tx, t, g.ID, nil))
	})
}

func insertGrant(ctx context.Context, db execer, g *storage.Grant) error {
	_, err := db.Exec(ctx, `INSERT INTO grants (id, user_id, client_id, session_id, scopes, auth_time,
		amr, created_at, expires_at, revoked_at, resources, idp, dpop_jkt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		g.ID, nullIfEmpty(g.UserID), g.ClientID, g.SessionID, list(g.Scopes), optTime(g.AuthTime),
		list(g.AMR), g.CreatedAt, g.ExpiresAt, g.RevokedAt, list(g.Resources), g.IDP, g.DPoPJKT)
	return err
}

// GetGrant returns the grant with id, revoked or not.
func (s *Store) GetGrant(ctx context.Context, id string) (*storage.Grant, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	return g, wrapErr("postgres: get grant", err)
}

// RevokeGrant marks the grant revoked; a grant revoked before keeps its first
// RevokedAt.
func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: revoke grant",
		`UPDATE grants SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, now, id)
}

// RevokeGrantsBySession revokes the session's grants but surviving offline
// ones (see storage.Store).
func (s *Store) RevokeGrantsBySession(ctx context.Context, sessionID string, now time.Time) error {
	if sessionID == "" { // grants without a session must not match
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE grants g SET revoked_at = $1
		WHERE g.session_id = $2 AND g.revoked_at IS NULL
		AND NOT ('offline_access' = ANY (g.scopes)
			AND EXISTS (SELECT 1 FROM clients c WHERE c.id = g.client_id AND c.offline_survives_logout))`, now, sessionID)
	return wrapErr("postgres: revoke grants by session", err)
}

// RevokeGrantsByUser revokes every grant of the user.
func (s *Store) RevokeGrantsByUser(ctx context.Context, userID string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE grants SET revoked_at = $1
		WHERE user_id = $2 AND revoked_at IS NULL`, now, userID)
	return wrapErr("postgres: revoke grants by user", err)
}
