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

// redeemCodeAndCreateGrant spends the code and stores the grant and its
// first refresh token in one statement (one round trip; the transaction it
// replaced took five). redeemed is the conditional UPDATE, which takes the
// row lock: a concurrent redemption waits, then finds the code used and
// updates nothing; the inserts take their rows from redeemed, so they store
// nothing unless the code was spent, and a failing insert (a taken grant ID)
// fails the whole statement, the spending too. $14 false stores no refresh
// token.
const redeemCodeAndCreateGrant = `WITH redeemed AS (
		UPDATE auth_requests SET code_used_at = $1
		WHERE id = $2 AND code_hash = $3 AND code_used_at IS NULL AND code_expires_at > $1
		RETURNING id
	), grant_row AS (
		INSERT INTO grants (id, user_id, client_id, session_id, scopes, auth_time,
			amr, created_at, expires_at, revoked_at, resources, idp, dpop_jkt)
		SELECT id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $16 FROM redeemed
		RETURNING id
	), token AS (
		INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
		SELECT $17, id, NULL, $18, $19, $20, NULL FROM grant_row WHERE $14
	)
	SELECT count(*) FROM grant_row`

// RedeemCodeAndCreateGrant implements storage.Store in one statement
// (redeemCodeAndCreateGrant). When it spent nothing, a second statement tells
// a used code from an unknown or expired one: it must be a statement of its
// own, because under READ COMMITTED only a new statement sees a concurrent
// redemption that committed while this one waited for the row lock, and that
// redemption is what makes this one a replay (ErrCodeReused revokes the grant).
func (s *Store) RedeemCodeAndCreateGrant(ctx context.Context, codeHash []byte, now time.Time, g *storage.Grant, t *storage.RefreshToken) error {
	const what = "postgres: redeem code and create grant"
	withToken := t != nil
	if t == nil {
		t = &storage.RefreshToken{}
	}
	var stored int
	err := s.pool.QueryRow(ctx, redeemCodeAndCreateGrant, now, g.ID, codeHash,
		nullIfEmpty(g.UserID), g.ClientID, g.SessionID, list(g.Scopes), optTime(g.AuthTime),
		list(g.AMR), g.CreatedAt, g.ExpiresAt, g.RevokedAt, list(g.Resources), withToken, g.IDP, g.DPoPJKT,
		optBytes(t.Hash), list(t.Scopes), t.CreatedAt, t.ExpiresAt).Scan(&stored)
	if err != nil {
		return wrapErr(what, err)
	}
	if stored == 1 {
		return nil
	}
	var used *time.Time
	err = s.pool.QueryRow(ctx, `SELECT code_used_at FROM auth_requests WHERE id = $1 AND code_hash = $2`, g.ID, codeHash).Scan(&used)
	if err == nil && used != nil {
		return fmt.Errorf("%s: %w", what, storage.ErrCodeReused)
	}
	return notFound(what)
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
