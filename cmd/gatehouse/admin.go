package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/adminapi"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/op"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// adminService is the admin service (package admin) for a command: the
// users, clients and keys commands are only its front end, acting as
// admin.CLI. It ends sessions with the server's SessionEnder on the same
// store and keys, hashes with the configured hasher and checks the
// configured password policy. notify mails users (reset-mfa); nil for none.
func adminService(cfg *config, c *core, e *env, notify admin.Notifier) (*admin.Service, error) {
	hasher, err := newHasher(cfg, nil)
	if err != nil {
		return nil, err
	}
	return newAdminService(cfg, c, e.now, hasher, notify, nil)
}

// newAdminService is the admin service on c's store and keys: the one
// wiring the commands and the server's admin API share.
// clients, the server's client cache, is nil for a command (its own
// process has none).
func newAdminService(cfg *config, c *core, now func() time.Time, hasher admin.Hasher, notify admin.Notifier, clients admin.ClientCache) (*admin.Service, error) {
	return admin.New(admin.Config{
		Store: c.store, Sessions: sessionEnder(cfg, c, now), Hasher: hasher, Policy: passwordPolicy(cfg),
		Keys: c.keys, Notifier: notify, Clients: clients, EmailKey: emailPseudonymKey(c.secret), Now: now, Logger: c.log,
	})
}

// adminAPI is the admin API (package adminapi) of the server, its tokens
// checked by the provider and against their client in store, its requests
// limited by the sign-in pages' limiter (memory, or Redis when REDIS_URL is
// set); a user's token serves while the user has adminRole.
func adminAPI(svc *admin.Service, provider *op.Provider, store storage.Store, limiter ratelimit.Limiter, adminRole string,
	clientIP func(*http.Request) string, now func() time.Time, log *slog.Logger) (*adminapi.API, error) {
	return adminapi.New(adminapi.Config{Service: svc, Verifier: tokenVerifier{provider, store}, AdminRole: adminRole,
		ClientIP: clientIP, Limiter: limiter, Now: now, Logger: log})
}

// tokenVerifier adapts op.Provider.VerifyAccessToken to adminapi.Verifier,
// so adminapi does not import op.
type tokenVerifier struct {
	p     *op.Provider
	store storage.Store
}

// Verify also checks the token's client as it is now: a client_credentials
// token has no grant to revoke, so without this a deleted client's admin
// token, or one whose client no longer lists gatehouse:admin, would keep
// administering Gatehouse until it expires (an hour by default). The
// store is read, not the provider's client cache, so a change made by the
// CLI in another process counts at once.
func (v tokenVerifier) Verify(ctx context.Context, token string) (*adminapi.Token, error) {
	info, err := v.p.VerifyAccessToken(ctx, token)
	if errors.Is(err, op.ErrTokenDPoPBound) {
		return nil, adminapi.ErrDPoPBoundToken
	}
	if errors.Is(err, op.ErrTokenInactive) {
		return nil, fmt.Errorf("%w: %w", adminapi.ErrInvalidToken, err)
	}
	if err != nil {
		return nil, err
	}
	c, err := v.store.GetClient(ctx, info.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: client %q no longer exists", adminapi.ErrInvalidToken, info.ClientID)
	}
	if err != nil {
		return nil, fmt.Errorf("load the token's client: %w", err)
	}
	scopes := slices.DeleteFunc(slices.Clone(info.Scopes), func(sc string) bool {
		return sc == storage.ScopeAdmin && !slices.Contains(c.AllowedScopes, storage.ScopeAdmin)
	})
	return &adminapi.Token{ClientID: info.ClientID, UserID: info.UserID, Scopes: scopes, ExpiresAt: info.ExpiresAt}, nil
}

// passwordPolicy is the configured password policy, the one the
// registration and reset pages apply.
func passwordPolicy(cfg *config) policy.Password {
	p := policy.Password{
		MinLength: cfg.PasswordMinLength, RequireUpper: cfg.PasswordUpper,
		RequireDigit: cfg.PasswordDigit, CheckCommon: cfg.PasswordCommon,
	}
	if cfg.PasswordHasher == password.Bcrypt {
		p.MaxBytes = policy.BcryptMaxBytes
	}
	return p
}

// sessionEnder is the server's SessionEnder for a command: the sessions it
// ends get their logout tokens queued, and a running server sends them
// within seconds (its delivery worker polls the outbox).
func sessionEnder(cfg *config, c *core, now func() time.Time) *op.SessionEnder {
	return op.NewSessionEnder(c.store, backchannel.NewMinter(cfg.Issuer, c.keys, now, 0), now, c.log, nil)
}
