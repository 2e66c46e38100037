package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, hint_subject, created_at, expires_at,
	done, user_id, session_id, auth_time, amr, code_expires_at, code_used_at, resources, idp, dpop_jkt`

func scanAuthRequest(row rowScanner) (*storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, listCol{&r.Scopes},
		&r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, listCol{&r.Prompt},
		int64PtrCol{&r.MaxAge}, &r.LoginHint, &r.HintSubject, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt},
		&r.Done, stringCol{&r.UserID}, &r.SessionID, timeCol{&r.AuthTime}, listCol{&r.AMR},
		timeCol{&r.CodeExpiresAt}, timePtrCol{&r.CodeUsedAt}, listCol{&r.Resources}, &r.IDP, &r.DPoPJKT)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateAuthRequest inserts r, including any completion fields already set.
// The code fields are set here only when r.CodeHash is (op.Finish), else by SaveAuthCode.
func (s *Store) CreateAuthRequest(ctx context.Context, r *storage.AuthRequest) error {
	const what = "sqlite: create auth request"
	scopes, err := jsonList(r.Scopes)
	if err != nil {
		return wrapErr(what, err)
	}
	prompt, err := jsonList(r.Prompt)
	if err != nil {
		return wrapErr(what, err)
	}
	amr, err := jsonList(r.AMR)
	if err != nil {
		return wrapErr(what, err)
	}
	resources, err := jsonList(r.Resources)
	if err != nil {
		return wrapErr(what, err)
	}
	var maxAge any
	if r.MaxAge != nil {
		maxAge = *r.MaxAge
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO auth_requests (id, client_id, redirect_uri, state, nonce,
		scopes, response_type, response_mode, code_challenge, code_challenge_method, prompt, max_age,
		login_hint, hint_subject, created_at, expires_at, done, user_id, session_id, auth_time, amr,
		resources, idp, dpop_jkt, code_hash, code_expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce,
		scopes, r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod, prompt, maxAge,
		r.LoginHint, r.HintSubject, millis(r.CreatedAt), millis(r.ExpiresAt), r.Done, nullIfEmpty(r.UserID),
		r.SessionID, optMillis(r.AuthTime), amr, resources, r.IDP, r.DPoPJKT, codeHash(r), codeExpiry(r))
	return wrapErr(what, err)
}

// codeHash and codeExpiry are the code columns CreateAuthRequest writes:
// NULL unless the request is stored with its code.
func codeHash(r *storage.AuthRequest) any {
	if len(r.CodeHash) == 0 {
		return nil
	}
	return r.CodeHash
}

func codeExpiry(r *storage.AuthRequest) any {
	if len(r.CodeHash) == 0 {
		return nil
	}
	return millis(r.CodeExpiresAt)
}

// GetAuthRequest returns the auth request with id.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	r, err := scanAuthRequest(s.q.QueryRowContext(ctx,
		`SELECT `+authRequestColumns+` FROM auth_requests WHERE id = ?`, id))
	return r, wrapErr("sqlite: get auth request", err)
}

// authRequestWithUserQuery reads a completed request and its user in one
// statement.
var authRequestWithUserQuery = `SELECT ` + storage.Qualify("a", authRequestColumns) + `, ` + storage.Qualify("u", userColumns) + `
	FROM auth_requests a JOIN users u ON u.id = a.user_id
	WHERE a.id = ?`

// GetAuthRequestWithUser implements storage.Store.
func (s *Store) GetAuthRequestWithUser(ctx context.Context, id string) (*storage.AuthRequestWithUser, error) {
	var r storage.AuthRequestWithUser
	err := storage.ScanJoined(s.q.QueryRowContext(ctx, authRequestWithUserQuery, id),
		func(row storage.RowScanner) (err error) { r.Request, err = scanAuthRequest(row); return err },
		func(row storage.RowScanner) (err error) { r.User, err = scanUser(row); return err })
	if err != nil {
		return nil, wrapErr("sqlite: get auth request with user", err)
	}
	return &r, nil
}

// SaveAuthCode attaches the hash of an issued code to the request.
func (s *Store) SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error {
	if len(codeHash) == 0 {
		return errors.New("sqlite: save auth code: empty code hash")
	}
	const what = "sqlite: save auth code"
	err := execOne(ctx, s.q, what,
		`UPDATE auth_requests SET code_hash = ?, code_expires_at = ? WHERE id = ? AND code_hash IS NULL`,
		codeHash, millis(expiresAt), id)
	if errors.Is(err, storage.ErrNotFound) {
		var n int
		if qerr := s.q.QueryRowContext(ctx, `SELECT count(*) FROM auth_requests WHERE id = ?`, id).Scan(&n); qerr == nil && n > 0 {
			return fmt.Errorf("%s: a code was already issued: %w", what, storage.ErrConflict)
		}
	}
	return err
}

// RedeemAuthCode marks the code used and returns its request. The conditional
// UPDATE is the atomic step: SQLite runs one writer at a time, so of concurrent
// redemptions exactly one sees code_used_at still NULL.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (*storage.AuthRequest, error) {
	const what = "sqlite: redeem auth code"
	r, err := scanAuthRequest(s.q.QueryRowContext(ctx, `UPDATE auth_requests SET code_used_at = ?
		WHERE code_hash = ? AND code_used_at IS NULL RETURNING `+authRequestColumns,
		millis(now), codeHash))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrapErr(what, err)
	}
	// Nothing updated: either the code is unknown or it was redeemed before.
	r, err = scanAuthRequest(s.q.QueryRowContext(ctx,
		`SELECT `+authRequestColumns+` FROM auth_requests WHERE code_hash = ?`, codeHash))
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return r, fmt.Errorf("%s: %w", what, storage.ErrCodeReused)
}

// DeleteAuthRequest deletes the request and with it its code.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return execOne(ctx, s.q, "sqlite: delete auth request", `DELETE FROM auth_requests WHERE id = ?`, id)
}
