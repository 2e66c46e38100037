package postgres

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const pushedRequestColumns = `request_uri_hash, client_id, params, created_at, expires_at`

// CreatePushedRequest stores r; ErrConflict if its hash is taken, ErrNotFound
// if its client does not exist.
func (s *Store) CreatePushedRequest(ctx context.Context, r *storage.PushedRequest) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pushed_requests (`+pushedRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5)`,
		r.Hash, r.ClientID, r.Params, r.CreatedAt, r.ExpiresAt)
	return wrapErr("postgres: create pushed request", err)
}

// ConsumePushedRequest deletes and returns the live request with hash pushed
// by clientID, in one statement: concurrent consumers queue on the row lock
// and find it gone after the first commits, so exactly one gets it.
// ErrNotFound otherwise.
func (s *Store) ConsumePushedRequest(ctx context.Context, hash []byte, clientID string, now time.Time) (*storage.PushedRequest, error) {
	var r storage.PushedRequest
	err := s.pool.QueryRow(ctx, `DELETE FROM pushed_requests
		WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3
		RETURNING `+pushedRequestColumns, hash, clientID, now).
		Scan(&r.Hash, &r.ClientID, &r.Params, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt})
	if err != nil {
		return nil, wrapErr("postgres: consume pushed request", err)
	}
	return &r, nil
}
