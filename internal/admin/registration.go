package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Initial access tokens for dynamic client registration (RFC 7591 §3): an
// admin creates one and hands it to a tool, which registers clients with it
// at /oauth/register (package registration).

// RegistrationToken is an initial access token as administrators see it:
// never the token itself, which is shown once, at creation.
type RegistrationToken struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: never
	MaxUses   int        // 0: unlimited
	Uses      int
}

// Usable reports whether the token can still register a client at now.
func (t *RegistrationToken) Usable(now time.Time) bool {
	return (t.ExpiresAt == nil || t.ExpiresAt.After(now)) && (t.MaxUses == 0 || t.Uses < t.MaxUses)
}

// RegistrationTokenSpec is what an admin asks for: a lifetime (0: the
// token never expires) and a number of registrations (0: unlimited).
type RegistrationTokenSpec struct {
	ExpiresIn time.Duration
	Uses      int
}

// HashRegistrationToken is what the store keeps of an initial or a
// registration access token: its SHA-256 (the token is random and
// high-entropy, like a client secret).
func HashRegistrationToken(token string) []byte { return HashClientSecret(token) }

// NewRegistrationToken returns a new random token (32 bytes, base64url).
func NewRegistrationToken() string { return NewClientSecret() }

func registrationTokenView(t *storage.RegistrationToken) RegistrationToken {
	return RegistrationToken{ID: t.ID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, MaxUses: t.MaxUses, Uses: t.Uses}
}

// CreateRegistrationToken creates an initial access token and returns it
// once: only its hash is stored.
func (s *Service) CreateRegistrationToken(ctx context.Context, a Actor, spec RegistrationTokenSpec) (*RegistrationToken, string, error) {
	if err := begin(a); err != nil {
		return nil, "", err
	}
	if spec.ExpiresIn < 0 {
		return nil, "", invalid("expires", "expiry %s: give a positive duration, or none for a token that does not expire", spec.ExpiresIn)
	}
	if spec.Uses < 0 {
		return nil, "", invalid("uses", "uses %d: give a positive number, or none for unlimited", spec.Uses)
	}
	token := NewRegistrationToken()
	now := s.now()
	t := &storage.RegistrationToken{ID: newRegistrationTokenID(), Hash: HashRegistrationToken(token), CreatedAt: now, MaxUses: spec.Uses}
	if spec.ExpiresIn > 0 {
		exp := now.Add(spec.ExpiresIn)
		t.ExpiresAt = &exp
	}
	if err := s.store.CreateRegistrationToken(ctx, t); err != nil {
		return nil, "", fmt.Errorf("create registration token: %w", err)
	}
	detail := map[string]string{"uses": strconv.Itoa(spec.Uses)}
	if t.ExpiresAt != nil {
		detail["expires_at"] = t.ExpiresAt.Format(time.RFC3339)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditRegistrationTokenCreated, Subject: t.ID, Detail: detail})
	v := registrationTokenView(t)
	return &v, token, nil
}

// ListRegistrationTokens returns every initial access token, oldest first,
// the expired and used-up ones too (until revoked).
func (s *Service) ListRegistrationTokens(ctx context.Context, a Actor) ([]RegistrationToken, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	list, err := s.store.ListRegistrationTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registration tokens: %w", err)
	}
	out := make([]RegistrationToken, 0, len(list))
	for i := range list {
		out = append(out, registrationTokenView(&list[i]))
	}
	return out, nil
}

// RevokeRegistrationToken deletes the initial access token id: it
// registers nothing more. Clients registered with it stay.
func (s *Service) RevokeRegistrationToken(ctx context.Context, a Actor, id string) error {
	if err := begin(a); err != nil {
		return err
	}
	if !storable(id) {
		return notFound("no registration token with id %q", id)
	}
	if err := s.store.DeleteRegistrationToken(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return notFound("no registration token with id %q", id)
		}
		return fmt.Errorf("revoke registration token: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditRegistrationTokenRevoked, Subject: id})
	return nil
}

func newRegistrationTokenID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "rt-" + hex.EncodeToString(b)
}
