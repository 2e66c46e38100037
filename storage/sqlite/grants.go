package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const grantColumns = `id, user_id, client_id, session_id, scopes, auth_time, amr, created_at, expires_at, revoked_at, resources, idp, dpop_jkt`

func scanGrant(row rowScanner) (*storage.Grant, error) {
	var g storage.Grant
	err := row.Scan(&g.ID, stringCol{&g.UserID}, &g.ClientID, &g.SessionID, listCol{&g.Scopes},
		timeCol{&g.AuthTime}, listCol{&g.AMR}, timeCol{&g.CreatedAt}, timeCol{&g.ExpiresAt},
		timePtrCol{&g.RevokedAt}, listCol{&g.Resources}, &g.IDP, &g.DPoPJKT)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// CreateGrant inserts g; ErrConflict if its ID is taken.
func (s *Store) CreateGrant(ctx context.Context, g *storage.Grant) error {
	return wrapErr("sqlite: create grant", insertGrant(ctx, s.q, g))
}

// CreateGrantWithRefreshToken stores g and its first refresh token t in one
// transaction: both or neither.
func (s *Store) CreateGrantWithRefreshToken(ctx context.Context, g *storage.Grant, t *storage.RefreshToken) error {
	const what = "sqlite: create grant with refresh token"
	return s.inTx(ctx, what, func(tx *txq) error {
		if err := insertGrant(ctx, tx, g); err != nil {
			return wrapErr(what, err)
		}
		return wrapErr(what, insertRefreshToken(ctx, tx, t, g.ID, nil))
	})
}

// RedeemCodeAndCreateGrant implements storage.Store. SQLite runs one writer
// at a time, so of concurrent redemptions one finds the code unused.
func (s *Store) RedeemCodeAndCreateGrant(ctx context.Context, codeHash []byte, now time.Time, g *storage.Grant, t *storage.RefreshToken) error {
	const what = "sqlite: redeem code and create grant"
	return s.inTx(ctx, what, func(tx *txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_requests SET code_used_at = ?
			WHERE id = ? AND code_hash = ? AND code_used_at IS NULL AND code_expires_at > ?`, millis(now), g.ID, codeHash, millis(now))
		if err != nil {
			return wrapErr(what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrapErr(what, err)
		} else if n == 0 {
			var used sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT code_used_at FROM auth_requests WHERE id = ? AND code_hash = ?`, g.ID, codeHash).Scan(&used)
			if err == nil && used.Valid {
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
	scopes, err := jsonList(g.Scopes)
	if err != nil {
		return err
	}
	amr, err := jsonList(g.AMR)
	if err != nil {
		return err
	}
	resources, err := jsonList(g.Resources)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, nullIfEmpty(g.UserID), g.ClientID, g.SessionID, scopes, optMillis(g.AuthTime), amr,
		millis(g.CreatedAt), millis(g.ExpiresAt), ptrMillis(g.RevokedAt), resources, g.IDP, g.DPoPJKT)
	return err
}

// GetGrant returns the grant with id, revoked or not.
func (s *Store) GetGrant(ctx context.Context, id string) (*storage.Grant, error) {
	g, err := scanGrant(s.q.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	return g, wrapErr("sqlite: get grant", err)
}

// RevokeGrant marks the grant revoked; a grant revoked before keeps its first
// RevokedAt.
func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: revoke grant",
		`UPDATE grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, millis(now), id)
}

// RevokeGrantsBySession revokes the session's grants but surviving offline
// ones (see storage.Store).
func (s *Store) RevokeGrantsBySession(ctx context.Context, sessionID string, now time.Time) error {
	if sessionID == "" { // grants without a session must not match
		return nil
	}
	_, err := s.q.ExecContext(ctx, `UPDATE grants SET revoked_at = ?
		WHERE session_id = ? AND revoked_at IS NULL
		AND NOT (EXISTS (SELECT 1 FROM clients c WHERE c.id = grants.client_id AND c.offline_survives_logout = 1)
			AND EXISTS (SELECT 1 FROM json_each(grants.scopes) WHERE value = 'offline_access'))`, millis(now), sessionID)
	return wrapErr("sqlite: revoke grants by session", err)
}

// RevokeGrantsByUser revokes every grant of the user.
func (s *Store) RevokeGrantsByUser(ctx context.Context, userID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE grants SET revoked_at = ?
		WHERE user_id = ? AND revoked_at IS NULL`, millis(now), userID)
	return wrapErr("sqlite: revoke grants by user", err)
}
