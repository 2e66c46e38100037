package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/adminapi"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/op"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
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
	return newAdminService(cfg, c, e.now, hasher, notify)
}

// newAdminService is the admin service on c's store and keys: the one
// wiring the commands and the server's admin API share.
func newAdminService(cfg *config, c *core, now func() time.Time, hasher admin.Hasher, notify admin.Notifier) (*admin.Service, error) {
	return admin.New(admin.Config{
		Store: c.store, Sessions: sessionEnder(cfg, c, now), Hasher: hasher, Policy: passwordPolicy(cfg),
		Keys: c.keys, Notifier: notify, EmailKey: emailPseudonymKey(c.secret), Now: now, Logger: c.log,
	})
}

// adminAPI is the admin API (package adminapi) of the server, its tokens
// checked by the provider; a user's token serves while the user has
// adminRole.
func adminAPI(svc *admin.Service, provider *op.Provider, adminRole string, clientIP func(*http.Request) string, log *slog.Logger) (*adminapi.API, error) {
	return adminapi.New(adminapi.Config{Service: svc, Verifier: tokenVerifier{provider}, AdminRole: adminRole, ClientIP: clientIP, Logger: log})
}

// tokenVerifier adapts op.Provider.VerifyAccessToken to adminapi.Verifier,
// so adminapi does not import op.
type tokenVerifier struct{ p *op.Provider }

func (v tokenVerifier) Verify(ctx context.Context, token string) (*adminapi.Token, error) {
	info, err := v.p.VerifyAccessToken(ctx, token)
	if errors.Is(err, op.ErrTokenInactive) {
		return nil, fmt.Errorf("%w: %w", adminapi.ErrInvalidToken, err)
	}
	if err != nil {
		return nil, err
	}
	return &adminapi.Token{ClientID: info.ClientID, UserID: info.UserID, Scopes: info.Scopes, ExpiresAt: info.ExpiresAt}, nil
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
