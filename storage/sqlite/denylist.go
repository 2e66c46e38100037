package sqlite

import (
	"context"
	"time"
)

// DenyAccessToken puts the token on the deny-list until expiresAt. Denying a
// token twice keeps the later expiry.
func (s *Store) DenyAccessToken(ctx context.Context, tokenID string, expiresAt time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO denied_access_tokens (token_id, expires_at) VALUES (?, ?)
		ON CONFLICT (token_id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
		tokenID, millis(expiresAt))
	return wrapErr("sqlite: deny access token", err)
}

// IsAccessTokenDenied reports whether the token is on the deny-list.
func (s *Store) IsAccessTokenDenied(ctx context.Context, tokenID string) (bool, error) {
	var denied bool
	err := s.q.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM denied_access_tokens WHERE token_id = ?)`, tokenID).Scan(&denied)
	return denied, wrapErr("sqlite: is access token denied", err)
}
