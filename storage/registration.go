package storage

import (
	"context"
	"time"
)

// Dynamic client registration (RFC 7591) and its management protocol
// (RFC 7592).

// RegistrationToken is an initial access token (RFC 7591 §3): an admin
// hands it to a tool that may then register clients. Only its SHA-256 is
// stored.
type RegistrationToken struct {
	ID        string // random, shown in lists; never the token
	Hash      []byte // SHA-256 of the token
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: never expires
	MaxUses   int        // 0: unlimited
	Uses      int        // registrations made with it
}

// ClientRegistration is what a client registered through the endpoint has
// beyond the client: the SHA-256 of its registration access token (RFC
// 7592 §1) and the initial access token it was registered with ("" for an
// open, loopback-only registration).
type ClientRegistration struct {
	ClientID       string
	TokenHash      []byte
	InitialTokenID string
	CreatedAt      time.Time
}

// Audit actions of registration tokens (Subject: the token's ID).
const (
	AuditRegistrationTokenCreated = "registration_token_created"
	AuditRegistrationTokenRevoked = "registration_token_revoked"
)

// RegistrationStore is the dynamic client registration part of Store.
type RegistrationStore interface {
	// CreateRegistrationToken stores t with Uses 0; ErrConflict when its ID
	// or hash exists.
	CreateRegistrationToken(ctx context.Context, t *RegistrationToken) error
	// ListRegistrationTokens returns every token ordered by CreatedAt, then
	// ID; empty (no error) when there are none.
	ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error)
	// GetRegistrationToken returns the token with this hash if it could be
	// used at now (not expired, uses left), without using it; ErrNotFound
	// otherwise.
	GetRegistrationToken(ctx context.Context, hash []byte, now time.Time) (*RegistrationToken, error)
	// UseRegistrationToken counts one use of the token with this hash and
	// returns it, in one statement: ErrNotFound when it is unknown, expired
	// (ExpiresAt <= now) or used up. Of concurrent uses of a token with one
	// use left exactly one succeeds.
	UseRegistrationToken(ctx context.Context, hash []byte, now time.Time) (*RegistrationToken, error)
	// DeleteRegistrationToken removes the token with id; ErrNotFound when
	// there is none. Clients registered with it stay.
	DeleteRegistrationToken(ctx context.Context, id string) error

	// SetClientRegistration stores r, replacing the client's earlier one;
	// ErrNotFound when r.ClientID is not a client. DeleteClient removes it.
	SetClientRegistration(ctx context.Context, r *ClientRegistration) error
	// GetClientRegistration returns the client's registration; ErrNotFound
	// for a client not registered through the endpoint, or no client.
	GetClientRegistration(ctx context.Context, clientID string) (*ClientRegistration, error)
}
