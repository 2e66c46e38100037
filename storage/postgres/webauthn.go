package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

const webAuthnCredentialColumns = `id, user_id, name, public_key, attestation_type, aaguid, sign_count,
	transports, user_verified, backup_eligible, backup_state, created_at, last_used_at`

func scanWebAuthnCredential(row rowScanner) (*storage.WebAuthnCredential, error) {
	var c storage.WebAuthnCredential
	var signCount int64
	err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.AttestationType, &c.AAGUID, &signCount,
		&c.Transports, &c.UserVerified, &c.BackupEligible, &c.BackupState,
		timeCol{&c.CreatedAt}, timeCol{&c.LastUsedAt})
	if err != nil {
		return nil, err
	}
	// The schema's CHECK keeps sign_count within uint32.
	c.SignCount = uint32(signCount)
	return &c, nil
}

// CreateWebAuthnCredential inserts c. The primary key makes a taken
// credential ID ErrConflict, and the foreign key an unknown user ErrNotFound.
func (s *Store) CreateWebAuthnCredential(ctx context.Context, c *storage.WebAuthnCredential) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webauthn_credentials (`+webAuthnCredentialColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.ID, c.UserID, c.Name, c.PublicKey, c.AttestationType, optBytes(c.AAGUID), int64(c.SignCount),
		list(c.Transports), c.UserVerified, c.BackupEligible, c.BackupState, c.CreatedAt, optTime(c.LastUsedAt))
	return wrapErr("postgres: create webauthn credential", err)
}

// GetWebAuthnCredential returns the credential with id.
func (s *Store) GetWebAuthnCredential(ctx context.Context, id []byte) (*storage.WebAuthnCredential, error) {
	c, err := scanWebAuthnCredential(s.pool.QueryRow(ctx, `SELECT `+webAuthnCredentialColumns+`
		FROM webauthn_credentials WHERE id = $1`, id))
	return c, wrapErr("postgres: get webauthn credential", err)
}

// ListWebAuthnCredentials returns the user's credentials ordered by creation,
// then ID (bytea compares bytewise, as SQLite's BLOBs do).
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]storage.WebAuthnCredential, error) {
	const what = "postgres: list webauthn credentials"
	rows, err := s.pool.Query(ctx, `SELECT `+webAuthnCredentialColumns+` FROM webauthn_credentials
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var creds []storage.WebAuthnCredential
	for rows.Next() {
		c, err := scanWebAuthnCredential(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		creds = append(creds, *c)
	}
	return creds, wrapErr(what, rows.Err())
}

// UseWebAuthnCredential records an assertion. The counter check is in the
// UPDATE's WHERE, so it and the write are one step: concurrent uses queue on
// the row lock, and after the first commits the others re-check the WHERE
// against the count it stored and no longer match. When no row changed, a
// second read tells a refused count (ErrConflict) from an unknown credential.
// $1 is cast to bigint: a counter above 2^31 does not fit integer, the type
// PostgreSQL would infer from "$1 = 0".
func (s *Store) UseWebAuthnCredential(ctx context.Context, id []byte, newCount uint32, backupState bool, usedAt time.Time) error {
	const what = "postgres: use webauthn credential"
	tag, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials
		SET sign_count = CASE WHEN $1::bigint = 0 THEN sign_count ELSE $1::bigint END,
			backup_state = $2, last_used_at = $3
		WHERE id = $4 AND (sign_count = 0 OR $1::bigint = 0 OR $1::bigint > sign_count)`,
		int64(newCount), backupState, usedAt, id)
	if err != nil {
		return wrapErr(what, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var stored int64
	err = s.pool.QueryRow(ctx, `SELECT sign_count FROM webauthn_credentials WHERE id = $1`, id).Scan(&stored)
	if err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: signature counter %d not above the stored %d, a cloned authenticator: %w",
		what, newCount, stored, storage.ErrConflict)
}

// DeleteWebAuthnCredential removes the user's credential id.
func (s *Store) DeleteWebAuthnCredential(ctx context.Context, userID string, id []byte) error {
	return execOne(ctx, s.pool, "postgres: delete webauthn credential",
		`DELETE FROM webauthn_credentials WHERE user_id = $1 AND id = $2`, userID, id)
}

// WebAuthnUserHandle returns the user's handle, storing candidate if there is
// none. The common case (a handle exists) is one read. Otherwise the upsert
// decides: a concurrent caller's insert makes this one wait for it to commit,
// then take the DO UPDATE branch, a no-op whose RETURNING gives the stored
// handle, so every caller gets the one stored.
func (s *Store) WebAuthnUserHandle(ctx context.Context, userID string, candidate []byte) ([]byte, error) {
	const what = "postgres: webauthn user handle"
	if len(candidate) == 0 || len(candidate) > storage.MaxWebAuthnUserHandle {
		return nil, fmt.Errorf("%s: candidate of %d bytes, want 1 to %d", what, len(candidate), storage.MaxWebAuthnUserHandle)
	}
	var handle []byte
	err := s.pool.QueryRow(ctx, `SELECT handle FROM webauthn_user_handles WHERE user_id = $1`, userID).Scan(&handle)
	if err == nil {
		return handle, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, wrapErr(what, err)
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO webauthn_user_handles (user_id, handle) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET handle = webauthn_user_handles.handle
		RETURNING handle`, userID, candidate).Scan(&handle)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return handle, nil
}

// GetUserByWebAuthnHandle returns the user whose handle is handle.
func (s *Store) GetUserByWebAuthnHandle(ctx context.Context, handle []byte) (*storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM webauthn_user_handles WHERE handle = $1)`, handle))
	return u, wrapErr("postgres: get user by webauthn handle", err)
}

// DeleteMFA removes the user's passkeys, TOTP and recovery codes in one
// transaction, so no reader sees some factors gone and others left. The user
// handle stays: passkeys registered later keep the same user.id.
func (s *Store) DeleteMFA(ctx context.Context, userID string) error {
	const what = "postgres: delete mfa"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		for _, q := range []string{
			`DELETE FROM webauthn_credentials WHERE user_id = $1`,
			`DELETE FROM totp_factors WHERE user_id = $1`,
			`DELETE FROM recovery_codes WHERE user_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, userID); err != nil {
				return wrapErr(what, err)
			}
		}
		return nil
	})
}
