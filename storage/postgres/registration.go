package postgres

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const registrationTokenColumns = `id, hash, created_at, expires_at, max_uses, uses`

func scanRegistrationToken(row rowScanner) (*storage.RegistrationToken, error) {
	var t storage.RegistrationToken
	if err := row.Scan(&t.ID, &t.Hash, timeCol{&t.CreatedAt}, timePtrCol{&t.ExpiresAt}, &t.MaxUses, &t.Uses); err != nil {
		return nil, err
	}
	return &t, nil
}

// usableToken is the condition of a token that may register a client at $1.
const usableToken = `(expires_at IS NULL OR expires_at > $1) AND (max_uses = 0 OR uses < max_uses)`

// CreateRegistrationToken stores t with no uses.
func (s *Store) CreateRegistrationToken(ctx context.Context, t *storage.RegistrationToken) error {
	t.Uses = 0
	_, err := s.pool.Exec(ctx, `INSERT INTO registration_tokens (`+registrationTokenColumns+`) VALUES ($1, $2, $3, $4, $5, 0)`,
		t.ID, t.Hash, t.CreatedAt, t.ExpiresAt, t.MaxUses)
	return wrapErr("postgres: create registration token", err)
}

// ListRegistrationTokens returns every token, oldest first.
func (s *Store) ListRegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	const what = "postgres: list registration tokens"
	rows, err := s.pool.Query(ctx, `SELECT `+registrationTokenColumns+` FROM registration_tokens ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []storage.RegistrationToken
	for rows.Next() {
		t, err := scanRegistrationToken(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, *t)
	}
	return out, wrapErr(what, rows.Err())
}

// GetRegistrationToken returns a usable token without using it.
func (s *Store) GetRegistrationToken(ctx context.Context, hash []byte, now time.Time) (*storage.RegistrationToken, error) {
	t, err := scanRegistrationToken(s.pool.QueryRow(ctx, `SELECT `+registrationTokenColumns+` FROM registration_tokens
		WHERE hash = $2 AND `+usableToken, now, hash))
	return t, wrapErr("postgres: get registration token", err)
}

// UseRegistrationToken counts a use in one statement: concurrent uses queue
// on the row lock and re-check the condition after the first commits.
func (s *Store) UseRegistrationToken(ctx context.Context, hash []byte, now time.Time) (*storage.RegistrationToken, error) {
	t, err := scanRegistrationToken(s.pool.QueryRow(ctx, `UPDATE registration_tokens SET uses = uses + 1
		WHERE hash = $2 AND `+usableToken+` RETURNING `+registrationTokenColumns, now, hash))
	return t, wrapErr("postgres: use registration token", err)
}

// DeleteRegistrationToken removes the token with id.
func (s *Store) DeleteRegistrationToken(ctx context.Context, id string) error {
	return execOne(ctx, s.pool, "postgres: delete registration token", `DELETE FROM registration_tokens WHERE id = $1`, id)
}

// SetClientRegistration stores or replaces the client's registration.
func (s *Store) SetClientRegistration(ctx context.Context, r *storage.ClientRegistration) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO client_registrations (client_id, token_hash, initial_token_id, created_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (client_id) DO UPDATE SET token_hash = excluded.token_hash,
			initial_token_id = excluded.initial_token_id, created_at = excluded.created_at`,
		r.ClientID, r.TokenHash, r.InitialTokenID, r.CreatedAt)
	return wrapErr("postgres: set client registration", err)
}

// GetClientRegistration returns the client's registration.
func (s *Store) GetClientRegistration(ctx context.Context, clientID string) (*storage.ClientRegistration, error) {
	var r storage.ClientRegistration
	err := s.pool.QueryRow(ctx, `SELECT client_id, token_hash, initial_token_id, created_at
		FROM client_registrations WHERE client_id = $1`, clientID).
		Scan(&r.ClientID, &r.TokenHash, &r.InitialTokenID, timeCol{&r.CreatedAt})
	if err != nil {
		return nil, wrapErr("postgres: get client registration", err)
	}
	return &r, nil
}
