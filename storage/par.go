package storage

import (
	"context"
	"time"
)

// PushedRequest is an authorization request a client pushed to the PAR
// endpoint (RFC 9126), waiting for the browser to bring its request_uri to
// /authorize. It is used once, within its short life.
type PushedRequest struct {
	// Hash is the SHA-256 of the request_uri: the store never holds a
	// request_uri that would start a sign-in.
	Hash     []byte
	ClientID string
	// Params is the authorization request, form-encoded, as pushed (client
	// authentication removed); /authorize validates it again on use.
	Params    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PushedRequests stores pushed authorization requests.
type PushedRequests interface {
	// CreatePushedRequest stores r: ErrConflict if r.Hash exists,
	// ErrNotFound if r.ClientID is not a client.
	CreatePushedRequest(ctx context.Context, r *PushedRequest) error
	// ConsumePushedRequest deletes and returns the request with hash pushed
	// by clientID, in one statement: of concurrent consumers exactly one
	// gets it. ErrNotFound when it is unknown, used, expired
	// (ExpiresAt <= now) or another client's; another client's request is
	// left in place for its own client. DeleteExpired sweeps expired ones.
	ConsumePushedRequest(ctx context.Context, hash []byte, clientID string, now time.Time) (*PushedRequest, error)
}
