package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, hint_subject, created_at, expires_at,
	done, COALESCE(user_id, ''), session_id, auth_time, amr, code_expires_at, code_used_at, resources, idp, dpop_jkt`

func scanAuthRequest(row rowScanner) (*storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, &r.Scopes,
		&r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt,
		&r.MaxAge, &r.LoginHint, &r.HintSubject, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt},
		&r.Done, &r.UserID, &r.SessionID, timeCol{&r.AuthTime}, &r.AMR,
		timeCol{&r.CodeExpiresAt}, timePtrCol{&r.CodeUsedAt}, &r.Resources, &r.IDP, &r.DPoPJKT)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateAuthRequest inserts r, including any completion fields already set.
// The code fields are set here only when r.CodeHash is (op.Finish), else by SaveAuthCode.
func (s *Store) CreateAuthRequest(ctx context.Context, r *storage.AuthRequest) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_requests (id, client_id, redirect_uri, state, nonce,
		scopes, response_type, response_mode, code_challenge, code_challenge_method, prompt, max_age,
		login_hint, hint_subject, created_at, expires_at, done, user_id, session_id, auth_time, amr,
		resources, idp, dpop_jkt, code_hash, code_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce,
		list(r.Scopes), r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod, list(r.Prompt), r.MaxAge,
		r.LoginHint, r.HintSubject, r.CreatedAt, r.ExpiresAt, r.Done, nullIfEmpty(r.UserID),
		r.SessionID, optTime(r.AuthTime), list(r.AMR), list(r.Resources), r.IDP, r.DPoPJKT, codeHash(r), codeExpiry(r))
	return wrapErr("postgres: create auth request", err)
}

// codeHash and codeExpiry are the code columns CreateAuthRequest writes:
// NULL unless the request is stored with its code.
func codeHash(r *storage.AuthRequest) []byte {
	if len(r.CodeHash) == 0 {
		return nil
	}
	return r.CodeHash
}

func codeExpiry(r *storage.AuthRequest) *time.Time {
	if len(r.CodeHash) == 0 {
		return nil
	}
	return &r.CodeExpiresAt
}

// GetAuthRequest returns the auth request with id.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	r, err := scanAuthRequest(s.pool.QueryRow(ctx,
		`SELECT `+authRequestColumns+` FROM auth_requests WHERE id = $1`, id))
	return r, wrapErr("postgres: get auth request", err)
}

// authRequestWithUserQuery reads a completed request and its user in one
// statement.
var authRequestWithUserQuery = `SELECT ` + storage.Qualify("a", authRequestColumns) + `, ` + storage.Qualify("u", userColumns) + `
	FROM auth_requests a JOIN users u ON u.id = a.user_id
	WHERE a.id = $1`

// GetAuthRequestWithUser implements storage.Store.
func (s *Store) GetAuthRequestWithUser(ctx context.Context, id string) (*storage.AuthRequestWithUser, error) {
	var r storage.AuthRequestWithUser
	err := storage.ScanJoined(s.pool.QueryRow(ctx, authRequestWithUserQuery, id),
		func(row storage.RowScanner) (err error) { r.Request, err = scanAuthRequest(row); return err },
		func(row storage.RowScanner) (err error) { r.User, err = scanUser(row); return err })
	if err != nil {
		return nil, wrapErr("postgres: get auth request with user", err)
	}
	return &r, nil
}

// SaveAuthCode attaches the hash of an issued code to the request.
func (s *Store) SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error {
	if len(codeHash) == 0 {
		return errors.New("postgres: save auth code: empty code hash")
	}
	const what = "postgres: save auth code"
	err := execOne(ctx, s.pool, what,
		`UPDATE auth_requests SET code_hash = $1, code_expires_at = $2 WHERE id = $3 AND code_hash IS NULL`, codeHash, expiresAt, id)
	if errors.Is(err, storage.ErrNotFound) {
		var exists bool
		if qerr := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth_requests WHERE id = $1)`, id).Scan(&exists); qerr == nil && exists {
			return fmt.Errorf("%s: a code was already issued: %w", what, storage.ErrConflict)
		}
	}
	return err
}

// RedeemAuthCode marks the code used and returns its request. The conditional
// UPDATE is the atomic step: a concurrent redemption waits for the row lock,
// then re-checks code_used_at IS NULL against the committed row and matches
// nothing.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (*storage.AuthRequest, error) {
	const what = "postgres: redeem auth code"
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, `UPDATE auth_requests SET code_used_at = $1
		WHERE code_hash = $2 AND code_used_at IS NULL RETURNING `+authRequestColumns, now, codeHash))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, wrapErr(what, err)
	}
	// Nothing updated: either the code is unknown or it was redeemed before.
	r, err = scanAuthRequest(s.pool.QueryRow(ctx,
		`SELECT `+authRequestColumns+` FROM auth_requests WHERE code_hash = $1`, codeHash))
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return r, fmt.Errorf("%s: %w", what, storage.ErrCodeReused)
}

// DeleteAuthRequest deletes the request and with it its code.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return execOne(ctx, s.pool, "postgres: delete auth request", `DELETE FROM auth_requests WHERE id = $1`, id)
}
