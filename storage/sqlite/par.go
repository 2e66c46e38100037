package sqlite

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const pushedRequestColumns = `request_uri_hash, client_id, params, created_at, expires_at`

// CreatePushedRequest stores r; ErrConflict if its hash is taken, ErrNotFound
// if its client does not exist.
func (s *Store) CreatePushedRequest(ctx context.Context, r *storage.PushedRequest) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO pushed_requests (`+pushedRequestColumns+`)
		VALUES (?, ?, ?, ?, ?)`,
		r.Hash, r.ClientID, r.Params, millis(r.CreatedAt), millis(r.ExpiresAt))
	return wrapErr("sqlite: create pushed request", err)
}

// ConsumePushedRequest deletes and returns the live request with hash pushed
// by clientID, in one statement, so of concurrent consumers exactly one gets
// it. ErrNotFound otherwise.
func (s *Store) ConsumePushedRequest(ctx context.Context, hash []byte, clientID string, now time.Time) (*storage.PushedRequest, error) {
	var r storage.PushedRequest
	err := s.q.QueryRowContext(ctx, `DELETE FROM pushed_requests
		WHERE request_uri_hash = ? AND client_id = ? AND expires_at > ?
		RETURNING `+pushedRequestColumns, hash, clientID, millis(now)).
		Scan(&r.Hash, &r.ClientID, &r.Params, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt})
	if err != nil {
		return nil, wrapErr("sqlite: consume pushed request", err)
	}
	return &r, nil
}
