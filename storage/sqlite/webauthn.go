package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const webAuthnCredentialColumns = `id, user_id, name, public_key, attestation_type, aaguid, sign_count,
	transports, user_verified, backup_eligible, backup_state, created_at, last_used_at`

func scanWebAuthnCredential(row rowScanner) (*storage.WebAuthnCredential, error) {
	var c storage.WebAuthnCredential
	var signCount int64
	err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.AttestationType, &c.AAGUID, &signCount,
		listCol{&c.Transports}, &c.UserVerified, &c.BackupEligible, &c.BackupState,
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
	const what = "sqlite: create webauthn credential"
	transports, err := jsonList(c.Transports)
	if err != nil {
		return wrapErr(what, err)
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO webauthn_credentials (`+webAuthnCredentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.Name, c.PublicKey, c.AttestationType, optBytes(c.AAGUID), int64(c.SignCount),
		transports, c.UserVerified, c.BackupEligible, c.BackupState, millis(c.CreatedAt), optMillis(c.LastUsedAt))
	return wrapErr(what, err)
}

// GetWebAuthnCredential returns the credential with id.
func (s *Store) GetWebAuthnCredential(ctx context.Context, id []byte) (*storage.WebAuthnCredential, error) {
	c, err := scanWebAuthnCredential(s.q.QueryRowContext(ctx, `SELECT `+webAuthnCredentialColumns+`
		FROM webauthn_credentials WHERE id = ?`, id))
	return c, wrapErr("sqlite: get webauthn credential", err)
}

// ListWebAuthnCredentials returns the user's credentials ordered by creation,
// then ID (SQLite compares BLOBs with memcmp: byte order).
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]storage.WebAuthnCredential, error) {
	const what = "sqlite: list webauthn credentials"
	rows, err := s.q.QueryContext(ctx, `SELECT `+webAuthnCredentialColumns+` FROM webauthn_credentials
		WHERE user_id = ? ORDER BY created_at, id`, userID)
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
// UPDATE's WHERE, so it and the write are one step: SQLite runs one writer at
// a time, and of concurrent uses with one count the first moves the stored
// count and the rest no longer match. When no row changed, a second read
// tells a refused count (ErrConflict) from an unknown credential.
func (s *Store) UseWebAuthnCredential(ctx context.Context, id []byte, newCount uint32, backupState bool, usedAt time.Time) error {
	const what = "sqlite: use webauthn credential"
	res, err := s.q.ExecContext(ctx, `UPDATE webauthn_credentials
		SET sign_count = CASE WHEN ?1 = 0 THEN sign_count ELSE ?1 END, backup_state = ?2, last_used_at = ?3
		WHERE id = ?4 AND (sign_count = 0 OR ?1 = 0 OR ?1 > sign_count)`,
		int64(newCount), backupState, millis(usedAt), id)
	if err != nil {
		return wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(what, err)
	}
	if n == 1 {
		return nil
	}
	var stored int64
	err = s.q.QueryRowContext(ctx, `SELECT sign_count FROM webauthn_credentials WHERE id = ?`, id).Scan(&stored)
	if err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: signature counter %d not above the stored %d, a cloned authenticator: %w",
		what, newCount, stored, storage.ErrConflict)
}

// DeleteWebAuthnCredential removes the user's credential id.
func (s *Store) DeleteWebAuthnCredential(ctx context.Context, userID string, id []byte) error {
	return execOne(ctx, s.q, "sqlite: delete webauthn credential",
		`DELETE FROM webauthn_credentials WHERE user_id = ? AND id = ?`, userID, id)
}

// WebAuthnUserHandle returns the user's handle, storing candidate if there is
// none. The common case (a handle exists) is one read. Otherwise the upsert
// decides: a concurrent caller's handle inserted first is kept (the no-op DO
// UPDATE) and returned by RETURNING, so every caller gets the stored one.
func (s *Store) WebAuthnUserHandle(ctx context.Context, userID string, candidate []byte) ([]byte, error) {
	const what = "sqlite: webauthn user handle"
	if len(candidate) == 0 || len(candidate) > storage.MaxWebAuthnUserHandle {
		return nil, fmt.Errorf("%s: candidate of %d bytes, want 1 to %d", what, len(candidate), storage.MaxWebAuthnUserHandle)
	}
	var handle []byte
	err := s.q.QueryRowContext(ctx, `SELECT handle FROM webauthn_user_handles WHERE user_id = ?`, userID).Scan(&handle)
	if err == nil {
		return handle, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrapErr(what, err)
	}
	err = s.q.QueryRowContext(ctx, `INSERT INTO webauthn_user_handles (user_id, handle) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET handle = webauthn_user_handles.handle
		RETURNING handle`, userID, candidate).Scan(&handle)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return handle, nil
}

// GetUserByWebAuthnHandle returns the user whose handle is handle.
func (s *Store) GetUserByWebAuthnHandle(ctx context.Context, handle []byte) (*storage.User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM webauthn_user_handles WHERE handle = ?)`, handle))
	return u, wrapErr("sqlite: get user by webauthn handle", err)
}

// DeleteMFA removes the user's passkeys, TOTP and recovery codes in one
// transaction, so no reader sees some factors gone and others left. The user
// handle stays: passkeys registered later keep the same user.id.
func (s *Store) DeleteMFA(ctx context.Context, userID string) error {
	const what = "sqlite: delete mfa"
	return s.inTx(ctx, what, func(tx *txq) error {
		for _, q := range []string{
			`DELETE FROM webauthn_credentials WHERE user_id = ?`,
			`DELETE FROM totp_factors WHERE user_id = ?`,
			`DELETE FROM recovery_codes WHERE user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return wrapErr(what, err)
			}
		}
		return nil
	})
}
