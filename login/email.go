package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/storage"
)

// mailer is what the handler needs from *mail.Mailer: each method queues a
// message and returns at once.
type mailer interface {
	VerifyEmail(ctx context.Context, to, name, link string)
	ResetPassword(ctx context.Context, to, name, link string)
	PasswordChanged(ctx context.Context, to, name string)
	ConfirmNewEmail(ctx context.Context, to, name, link string)
	EmailChangeNotice(ctx context.Context, to, name, newEmail string)
	AccountDeleted(ctx context.Context, to, name string)
	FactorAdded(ctx context.Context, to, name, factor string)
	FactorRemoved(ctx context.Context, to, name, factor string)
	RecoveryCodeUsed(ctx context.Context, to, name string, remaining int)
	MFAReset(ctx context.Context, to, name string)
	SecondStepLocked(ctx context.Context, to, name string, failures int, lockedFor time.Duration)
}

func newMailer(cfg *Config, log *slog.Logger) mailer {
	if cfg.Mailer != nil {
		return cfg.Mailer
	}
	// No mailer configured: write the messages to the log (development).
	s, err := mail.NewSender("", "", cfg.Logger)
	if err != nil {
		panic("login: log mail sink: " + err.Error())
	}
	log.Warn("no mailer configured: emails are written to the log")
	return mail.NewMailer(s, mail.Config{ProductName: cfg.ProductName, Logger: cfg.Logger})
}

// link returns the absolute URL of path with query q, for emails.
func (h *Handler) link(path string, q url.Values) string {
	u := h.issuer + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Emailed one-time tokens (docs/design.md): 32 random bytes, base64url in the link,
// only their SHA-256 in the store, single use, a new one replaces the older
// ones of its kind.

func tokenHash(raw string) []byte {
	s := sha256.Sum256([]byte(raw))
	return s[:]
}

// issueToken stores a new token of kind for user and returns its value.
func (h *Handler) issueToken(ctx context.Context, kind string, user *storage.User, email string, ttl time.Duration) (string, error) {
	raw := randomToken(32)
	now := h.now()
	err := h.store.CreateOneTimeToken(ctx, &storage.OneTimeToken{
		Hash: tokenHash(raw), Kind: kind, UserID: user.ID, Email: email,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	})
	if err != nil {
		return "", err
	}
	return raw, nil
}

// cancelPendingLinks voids the user's outstanding email-change and reset
// links after their password changed: whoever asked for them may not know
// the new password (an attacker who knew the old one could otherwise open a
// pending email-change link afterwards and take the account back). The Store
// replaces a user's token of a kind with each new one, so an
// already-expired replacement voids it.
func (h *Handler) cancelPendingLinks(ctx context.Context, userID string) error {
	now := h.now()
	for _, kind := range []string{storage.TokenChangeEmail, storage.TokenResetPassword} {
		err := h.store.CreateOneTimeToken(ctx, &storage.OneTimeToken{
			Hash: tokenHash(randomToken(32)), Kind: kind, UserID: userID, CreatedAt: now, ExpiresAt: now,
		})
		if err != nil {
			return fmt.Errorf("cancel pending %s links: %w", kind, err)
		}
	}
	return nil
}

// wellFormedToken reports whether raw can be a token value at all, so junk
// never reaches the store.
func wellFormedToken(raw string) bool {
	b, err := b64.DecodeString(raw)
	return err == nil && len(b) == 32
}

// consumeToken uses up the token raw of kind. It returns nil (and no error)
// when the token is malformed, unknown, of another kind, used or expired.
func (h *Handler) consumeToken(ctx context.Context, raw, kind string) (*storage.OneTimeToken, error) {
	if !wellFormedToken(raw) {
		return nil, nil
	}
	t, err := h.store.ConsumeOneTimeToken(ctx, tokenHash(raw), kind, h.now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// peekToken checks that raw is a live token of kind without using it up.
// The Store has no read-only look-up, so the token is consumed and put back
// unchanged (same hash, same expiry): a reload of the page, or a mail
// scanner that fetches the link first, leaves it valid.
func (h *Handler) peekToken(ctx context.Context, raw, kind string) (*storage.OneTimeToken, error) {
	t, err := h.consumeToken(ctx, raw, kind)
	if err != nil || t == nil {
		return nil, err
	}
	if err := h.restoreToken(ctx, raw, t); err != nil {
		return nil, err
	}
	return t, nil
}

// restoreToken puts the consumed token raw back, unused.
func (h *Handler) restoreToken(ctx context.Context, raw string, t *storage.OneTimeToken) error {
	back := *t
	back.Hash = tokenHash(raw)
	back.UsedAt = nil
	return h.store.CreateOneTimeToken(ctx, &back)
}
