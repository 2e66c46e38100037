package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// opStorage satisfies zitadel's op.Storage (and the optional interfaces for
// client credentials and request-aware claims) on top of storage.Store and
// package keys. Errors meant for the client are *oidc.Error values with safe
// descriptions; anything else would reach the client as server_error with
// err.Error() as its description.
type opStorage struct{ p *Provider }

var (
	_ zop.Storage                   = opStorage{}
	_ zop.CanSetUserinfoFromRequest = opStorage{}
)

func (s opStorage) now() time.Time { return s.p.now() }

// CreateAuthRequest is zitadel's hook for /authorize, which Gatehouse serves
// itself (authorize.go): it stores nothing, the request travels sealed
// (pending.go) until the user has signed in for it.
func (s opStorage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, hintSubject string) (zop.AuthRequest, error) {
	return authRequest{r: s.p.newAuthRequest(req, hintSubject)}, nil
}

// newAuthRequest is a validated authorization request with a fresh ID and
// its expiry.
func (p *Provider) newAuthRequest(req *oidc.AuthRequest, hintSubject string) *storage.AuthRequest {
	now := p.now()
	ar := &storage.AuthRequest{
		ID:                  randomToken(16),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              []string(req.Scopes),
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              []string(req.Prompt),
		LoginHint:           req.LoginHint,
		HintSubject:         hintSubject,
		ACRValues:           []string(req.ACRValues),
		CreatedAt:           now,
		ExpiresAt:           now.Add(p.cfg.AuthRequestTTL),
	}
	if req.MaxAge != nil {
		v := int64(*req.MaxAge)
		ar.MaxAge = &v
	}
	return ar
}

func (s opStorage) AuthRequestByID(ctx context.Context, id string) (zop.AuthRequest, error) {
	ar, err := s.p.store.GetAuthRequest(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired authorization request").WithParent(err)
		}
		return nil, fmt.Errorf("load auth request: %w", err)
	}
	if !s.now().Before(ar.ExpiresAt) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired authorization request")
	}
	return authRequest{r: ar}, nil
}

// AuthRequestByCode redeems an authorization code, exactly once. A replayed
// code revokes the grant (and so every token) issued from the first
// redemption. A code marked used whose grant does not exist is a redemption
// that failed half-way (the database went away before the tokens were
// stored): it may be retried, so a failure of ours never turns into
// invalid_grant. The grant's unique ID keeps the tokens single.
func (s opStorage) AuthRequestByCode(ctx context.Context, code string) (zop.AuthRequest, error) {
	now := s.now()
	ar, err := s.p.store.RedeemAuthCode(ctx, sha256Bytes(code), now)
	if errors.Is(err, storage.ErrCodeReused) {
		switch _, gerr := s.p.store.GetGrant(ctx, ar.ID); {
		case errors.Is(gerr, storage.ErrNotFound):
			err = nil // retry of a redemption that issued nothing
		case gerr != nil:
			return nil, fmt.Errorf("check grant of a used code: %w", gerr)
		}
	}
	switch {
	case errors.Is(err, storage.ErrCodeReused):
		return nil, s.p.codeReplayed(ctx, ar)
	case errors.Is(err, storage.ErrNotFound):
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid authorization code")
	case err != nil:
		return nil, fmt.Errorf("redeem auth code: %w", err)
	}
	if !now.Before(ar.CodeExpiresAt) || !ar.Done {
		return nil, oidc.ErrInvalidGrant().WithDescription("authorization code expired")
	}
	return authRequest{r: ar}, nil
}

func (s opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.store.SaveAuthCode(ctx, id, sha256Bytes(code), s.now().Add(s.p.cfg.CodeTTL))
}

// DeleteAuthRequest keeps the row: a replayed code must still be recognised
// (and its grant revoked) until the request expires; DeleteExpired removes it.
func (s opStorage) DeleteAuthRequest(context.Context, string) error { return nil }

// CreateAccessToken issues an access token without a refresh token.
func (s opStorage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.p.cfg.AccessTokenTTL)
	switch r := req.(type) {
	case authRequest:
		if err := s.createGrant(ctx, r, now, exp, nil); err != nil {
			return "", time.Time{}, err
		}
		return s.p.newAccessToken(r.r.ID, r.r.ClientID, r.dpop, r.r.Scopes, r.audience, now, exp), exp, nil
	case *clientCredentialsRequest:
		return s.p.newAccessToken("", r.clientID, r.dpop, r.scopes, r.audience, now, exp), exp, nil
	case *refreshRequest:
		return s.p.newAccessToken(r.grant.ID, r.grant.ClientID, r.dpop, r.scopes, r.audience, now, exp), exp, nil
	default:
		return "", time.Time{}, oidc.ErrServerError().WithParent(fmt.Errorf("unsupported token request %T", req))
	}
}

// CreateAccessAndRefreshTokens issues the first refresh token of a grant (code
// flow with offline_access) or rotates one (refresh grant).
func (s opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.p.cfg.AccessTokenTTL)
	switch r := req.(type) {
	case authRequest:
		grantExp := now.Add(s.p.cfg.RefreshTokenTTL)
		value := randomToken(32)
		rt := &storage.RefreshToken{
			Hash: sha256Bytes(value), GrantID: r.r.ID, Scopes: r.r.Scopes,
			CreatedAt: now, ExpiresAt: grantExp,
		}
		// One transaction: a failure cannot leave a grant without the
		// refresh token its client never received, which would make the
		// client's retry look like a replay (AuthRequestByCode).
		if err := s.createGrant(ctx, r, now, grantExp, rt); err != nil {
			return "", "", time.Time{}, err
		}
		return s.p.newAccessToken(r.r.ID, r.r.ClientID, r.dpop, r.r.Scopes, r.audience, now, exp), value, exp, nil
	case *refreshRequest:
		successor := successorRefreshToken(s.p.cfg.RefreshKey, current)
		next := &storage.RefreshToken{
			Hash: sha256Bytes(successor), GrantID: r.grant.ID, ParentHash: r.token.Hash,
			Scopes: r.scopes, CreatedAt: now, ExpiresAt: r.grant.ExpiresAt,
		}
		_, err := s.p.store.RotateRefreshToken(ctx, r.token.Hash, next, now, s.p.cfg.RefreshReuseGrace)
		switch {
		case errors.Is(err, storage.ErrTokenReused):
			s.p.log.WarnContext(ctx, "refresh token reused after rotation; grant revoked", "client_id", r.grant.ClientID, "grant", r.grant.ID)
			s.p.audit(ctx, storage.AuditEvent{Action: storage.AuditGrantRevoked, Actor: storage.ActorSystem, Subject: r.grant.UserID, ClientID: r.grant.ClientID, Detail: map[string]string{"grant_id": r.grant.ID, "reason": "refresh_token_reused"}})
			s.p.cfg.Metrics.refreshReused()
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token was already used")
		case errors.Is(err, storage.ErrRevoked), errors.Is(err, storage.ErrNotFound):
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
		case err != nil:
			return "", "", time.Time{}, fmt.Errorf("rotate refresh token: %w", err)
		}
		s.p.sessionUsed(ctx, r.grant.SessionID, r.grant.ClientID, now)
		return s.p.newAccessToken(r.grant.ID, r.grant.ClientID, r.dpop, r.scopes, r.audience, now, exp), successor, exp, nil
	default:
		return "", "", time.Time{}, oidc.ErrServerError().WithParent(fmt.Errorf("unsupported token request %T", req))
	}
}

// createGrant stores the grant of a redeemed code, with its first refresh
// token when rt is not nil.
func (s opStorage) createGrant(ctx context.Context, r authRequest, now, exp time.Time, rt *storage.RefreshToken) error {
	g := &storage.Grant{
		ID: r.r.ID, UserID: r.r.UserID, ClientID: r.r.ClientID, SessionID: r.r.SessionID,
		// The grant remembers the audience its first tokens were issued for,
		// so a refresh can narrow it but never widen it.
		Scopes: r.r.Scopes, Resources: r.audience, AuthTime: r.r.AuthTime, AMR: r.r.AMR, IDP: r.r.IDP,
		CreatedAt: now, ExpiresAt: exp, DPoPJKT: r.grantDPoP,
	}
	var err error
	switch {
	case r.codeHash != nil:
		err = s.p.store.RedeemCodeAndCreateGrant(ctx, r.codeHash, now, g, rt)
	case rt != nil:
		err = s.p.store.CreateGrantWithRefreshToken(ctx, g, rt)
	default:
		err = s.p.store.CreateGrant(ctx, g)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrCodeReused):
		return s.p.codeReplayed(ctx, r.r)
	case errors.Is(err, storage.ErrNotFound):
		return oidc.ErrInvalidGrant().WithDescription("authorization code expired")
	case errors.Is(err, storage.ErrConflict):
		return oidc.ErrInvalidGrant().WithDescription("authorization code was already used")
	}
	return fmt.Errorf("create grant: %w", err)
}

// codeReplayed answers a code presented again: the grant (and so every
// token) issued from its first redemption is revoked (RFC 6749 §4.1.2).
func (p *Provider) codeReplayed(ctx context.Context, ar *storage.AuthRequest) error {
	now := p.now()
	if rerr := p.store.RevokeGrant(ctx, ar.ID, now); rerr != nil && !errors.Is(rerr, storage.ErrNotFound) {
		p.log.ErrorContext(ctx, "revoke grant of replayed code", "grant", ar.ID, "err", rerr)
	}
	p.log.WarnContext(ctx, "authorization code replayed; its grant is revoked", "client_id", ar.ClientID, "grant", ar.ID)
	p.audit(ctx, storage.AuditEvent{Action: storage.AuditGrantRevoked, Actor: storage.ActorSystem, Subject: ar.UserID, ClientID: ar.ClientID, Detail: map[string]string{"grant_id": ar.ID, "reason": "code_reused"}})
	return oidc.ErrInvalidGrant().WithDescription("authorization code was already used")
}

// TokenRequestByRefreshToken loads the request behind a presented refresh
// token.
func (s opStorage) TokenRequestByRefreshToken(ctx context.Context, value string) (zop.RefreshTokenRequest, error) {
	now := s.now()
	r, err := s.p.store.GetRefreshTokenWithGrant(ctx, sha256Bytes(value))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
		}
		return nil, fmt.Errorf("load refresh token: %w", err)
	}
	rt, g := r.Token, r.Grant
	// The user came with the token (one read): issueTokens checks it is
	// active and the ID token reads its claims from the request's memo.
	rememberUser(ctx, r.User)
	if !now.Before(rt.ExpiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	// A token rotated before is not refused here: whether it is a replay or
	// a second tab within the grace window is decided atomically by the
	// store's RotateRefreshToken (CreateAccessAndRefreshTokens).
	if g.RevokedAt != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token was revoked")
	}
	return &refreshRequest{token: rt, value: value, grant: g, scopes: slices.Clone(rt.Scopes)}, nil
}

// TerminateSession is not reached: Gatehouse serves end_session itself
// (endsession.go) because the session to end is named by the ID token's sid.
func (s opStorage) TerminateSession(context.Context, string, string) error { return nil }

// GetRefreshTokenInfo and RevokeToken are zitadel's revocation hooks. They
// are not reached: server.Revocation resolves tokens itself, because
// zitadel's path hands an unrecognised string to RevokeToken as if it were a
// token ID, which would let a caller revoke by forged or guessed IDs.
func (s opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", zop.ErrInvalidRefreshToken
}

func (s opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithDescription("revocation is served by server.Revocation")
}

func (s opStorage) SigningKey(context.Context) (zop.SigningKey, error) {
	return signingKey{s.p.keys.Active()}, nil
}

func (s opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.p.signatureAlgorithms(), nil
}

func (s opStorage) KeySet(context.Context) ([]zop.Key, error) {
	pub := s.p.keys.PublicKeys()
	out := make([]zop.Key, len(pub))
	for i, k := range pub {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s opStorage) GetClientByClientID(ctx context.Context, id string) (zop.Client, error) {
	c, err := s.p.client(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
		}
		return nil, err
	}
	return c, nil
}

// AuthorizeClientIDSecret is zitadel's client-secret hook. It is not reached:
// server.VerifyClient authenticates every client (clientauth.go), the one
// place secrets are checked.
func (s opStorage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errInvalidClient("client authentication failed")
}

// SetUserinfoFromScopes does nothing: claims come from SetUserinfoFromRequest,
// which knows the session behind the request.
func (s opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	u, err := s.p.activeUser(ctx, req.GetSubject())
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errUserGone()
		}
		return fmt.Errorf("load user: %w", err)
	}
	setUserClaims(ui, u, scopes)
	if r, ok := req.(interface{ sessionID() string }); ok && r.sessionID() != "" {
		ui.AppendClaims("sid", r.sessionID())
	}
	// idp names the upstream the user signed in through (docs/design.md);
	// absent for Gatehouse's own password.
	if r, ok := req.(interface{ idp() string }); ok && r.idp() != "" {
		ui.AppendClaims("idp", r.idp())
	}
	return nil
}

// SetUserinfoFromToken serves the userinfo endpoint (see userinfo.go, which
// calls validAccessToken first and then this through userInfoFor).
func (s opStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, _, _ string) error {
	at, g, err := s.p.validAccessToken(ctx, tokenID)
	if err != nil {
		return err
	}
	return s.p.userInfoFor(ctx, ui, at, g)
}

func (s opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	at, g, err := s.p.validAccessToken(ctx, tokenID)
	if err != nil {
		return err
	}
	return s.p.introspectionFor(ctx, resp, at, g, subject)
}

// GetPrivateClaimsFromScopes is not reached: Gatehouse signs JWT access
// tokens itself (issue.go).
func (s opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

func (s opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the JWT bearer grant is not supported")
}

func (s opStorage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// clientCredentialsTokenRequest: the client acts for itself. User scopes make
// no sense without a user and are dropped; any other must be one the client
// may ask for (allowedScope), or the request fails with invalid_scope.
func clientCredentialsTokenRequest(c *storage.Client, scopes []string) (*clientCredentialsRequest, error) {
	kept := slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool {
		switch sc {
		case oidc.ScopeOpenID, oidc.ScopeOfflineAccess, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeAddress:
			return true
		}
		return false
	})
	for _, sc := range kept {
		if !allowedScope(c, sc) {
			return nil, zop.NewStatusError(oidc.ErrInvalidScope().WithDescription("this client may not ask for the scope %q", sc), http.StatusBadRequest)
		}
	}
	return &clientCredentialsRequest{clientID: c.ID, scopes: kept}, nil
}

// allowedScope: a scope beyond the OpenID Connect ones is allowed if the
// client lists it. A client that lists none may ask for any such scope
// (as before allowed scopes existed) except the reserved gatehouse: ones,
// which grant access to Gatehouse itself and must always be listed.
func allowedScope(c *storage.Client, sc string) bool {
	if slices.Contains(c.AllowedScopes, sc) {
		return true
	}
	return len(c.AllowedScopes) == 0 && !strings.HasPrefix(sc, "gatehouse:")
}

func errInvalidClient(desc string) error {
	return zop.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), 401)
}

// setUserClaims maps a user to the claims Gatehouse releases: sub, role and
// email_verified always (Auth.js reads them from the ID token), email with the
// email scope, name with profile. email_verified goes through AppendClaims
// because UserInfo's EmailVerified field is omitempty and would drop false.
func setUserClaims(ui *oidc.UserInfo, u *storage.User, scopes []string) {
	ui.Subject = u.ID
	ui.AppendClaims("role", u.Role)
	ui.AppendClaims("email_verified", u.EmailVerified)
	if slices.Contains(scopes, oidc.ScopeEmail) {
		ui.Email = u.Email
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name = u.Name
	}
}
