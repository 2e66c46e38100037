package postgres

import (
	"context"
	"time"
)

// DenyAccessToken puts the token on the deny-list until expiresAt. Denying a
// token twice keeps the later expiry.
func (s *Store) DenyAccessToken(ctx context.Context, tokenID string, expiresAt time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO denied_access_tokens (token_id, expires_at) VALUES ($1, $2)
		ON CONFLICT (token_id) DO UPDATE
		SET expires_at = GREATEST(denied_access_tokens.expires_at, excluded.expires_at)`,
		tokenID, expiresAt)
	return wrapErr("postgres: deny access token", err)
}

// IsAccessTokenDenied reports whether the token is on the deny-list.
func (s *Store) IsAccessTokenDenied(ctx context.Context, tokenID string) (bool, error) {
	var denied bool
	err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM denied_access_tokens WHERE token_id = $1)`, tokenID).Scan(&denied)
	return denied, wrapErr("postgres: is access token denied", err)
}
