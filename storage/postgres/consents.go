package postgres

import (
	"context"

	"github.com/gatehouse-id/gatehouse/storage"
)

// GetConsent returns what the user granted the client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error) {
	c := storage.Consent{UserID: userID, ClientID: clientID}
	err := s.pool.QueryRow(ctx, `SELECT scopes, granted_at FROM consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&c.Scopes, timeCol{&c.GrantedAt})
	if err != nil {
		return nil, wrapErr("postgres: get consent", err)
	}
	return &c, nil
}

// SaveConsent inserts the consent or replaces the user's earlier one for the client.
func (s *Store) SaveConsent(ctx context.Context, c *storage.Consent) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, list(c.Scopes), c.GrantedAt)
	return wrapErr("postgres: save consent", err)
}
