package sqlite

import (
	"context"

	"github.com/gatehouse-id/gatehouse/storage"
)

// GetConsent returns what the user granted the client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error) {
	c := storage.Consent{UserID: userID, ClientID: clientID}
	err := s.q.QueryRowContext(ctx, `SELECT scopes, granted_at FROM consents WHERE user_id = ? AND client_id = ?`,
		userID, clientID).Scan(listCol{&c.Scopes}, timeCol{&c.GrantedAt})
	if err != nil {
		return nil, wrapErr("sqlite: get consent", err)
	}
	return &c, nil
}

// SaveConsent inserts the consent or replaces the user's earlier one for the client.
func (s *Store) SaveConsent(ctx context.Context, c *storage.Consent) error {
	const what = "sqlite: save consent"
	scopes, err := jsonList(c.Scopes)
	if err != nil {
		return wrapErr(what, err)
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, scopes, millis(c.GrantedAt))
	return wrapErr(what, err)
}
