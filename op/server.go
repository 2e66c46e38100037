package op

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// server is zitadel's LegacyServer with the token and revocation endpoints
// done Gatehouse's way. Every method calls the storage adapter directly
// rather than through zitadel's helpers, which label any storage error
// invalid_grant, and ends in publicError, so that only verdicts on the
// request reach the client as 4xx (failure.go).
type server struct {
	*zop.LegacyServer
	p *Provider
}

// VerifyClient is the one client-authentication path of the token,
// revocation and introspection endpoints (clientauth.go).
func (s *server) VerifyClient(ctx context.Context, r *zop.Request[zop.ClientCredentials]) (zop.Client, error) {
	c, err := s.p.authenticateRequestClient(ctx, r.Header, r.Form)
	if err != nil {
		return nil, s.p.publicError(ctx, "authenticate client", err)
	}
	return c, nil
}

func (s *server) CodeExchange(ctx context.Context, r *zop.ClientRequest[oidc.AccessTokenRequest]) (*zop.Response, error) {
	resp, err := s.codeExchange(ctx, r)
	if err != nil {
		return nil, s.p.publicError(ctx, "token: authorization_code", err)
	}
	return zop.NewResponse(resp), nil
}

// codeExchange redeems a code. Everything the client presents is checked
// before the code is used up: a code sent by another client, with another
// redirect_uri or a wrong code_verifier is refused and stays redeemable by
// the client it was issued to. PKCE is strict: when the authorization request
// carried a code_challenge the code_verifier is required, whatever the client
// type (zitadel only checks it when sent or for public clients, which allows a
// downgrade by omitting it).
func (s *server) codeExchange(ctx context.Context, r *zop.ClientRequest[oidc.AccessTokenRequest]) (*oidc.AccessTokenResponse, error) {
	p := s.p
	badCode := oidc.ErrInvalidGrant().WithDescription("invalid authorization code")
	id, err := p.zp.Crypto().Decrypt(r.Data.Code) // the code seals its request's ID
	if err != nil {
		return nil, badCode
	}
	// The request with its user, in one read: the ID token's claims need
	// the user (activeUser, through the request's memo).
	found, err := p.store.GetAuthRequestWithUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) { // unknown, nobody signed in for it, or the user deleted
		return nil, badCode
	}
	if err != nil {
		return nil, err
	}
	pending := found.Request
	if !pending.Done || pending.UserID == "" { // a code belongs only to a completed sign-in
		return nil, badCode
	}
	rememberUser(ctx, found.User)
	if r.Client.GetID() != pending.ClientID {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	}
	if r.Data.RedirectURI != pending.RedirectURI {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	}
	aud, err := p.audience(r.Client.(*client), pending.Resources, r.Form["resource"])
	if err != nil {
		return nil, err
	}
	if pending.CodeChallenge != "" {
		if r.Data.CodeVerifier == "" {
			return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier is required")
		}
		sum := sha256.Sum256([]byte(r.Data.CodeVerifier))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(want), []byte(pending.CodeChallenge)) != 1 {
			return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier does not match the code_challenge")
		}
	} else if r.Data.CodeVerifier != "" {
		return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier sent but the authorization request had no code_challenge")
	}
	c := r.Client.(*client)
	// Last of the checks, as it spends the proof: a code bound by dpop_jkt
	// needs a proof with that key (RFC 9449 §10).
	jkt, err := p.tokenDPoP(ctx, c, pending.DPoPJKT)
	if err != nil {
		return nil, err
	}
	// The code is spent in the transaction that stores its grant
	// (createGrant → Store.RedeemCodeAndCreateGrant): one write for the
	// exchange, and a failure leaves the code unspent for the client's retry.
	authReq := authRequest{r: pending, codeHash: sha256Bytes(r.Data.Code)}
	authReq.dpop = jkt
	if c.AuthMethod() == oidc.AuthMethodNone {
		// A public client's refresh tokens are bound to the key too (RFC
		// 9449 §5); a confidential client's are bound by its credentials.
		authReq.grantDPoP = jkt
	}
	return p.issueTokens(ctx, authReq, r.Client.(*client), aud, r.Data.Code, "")
}

func (s *server) RefreshToken(ctx context.Context, r *zop.ClientRequest[oidc.RefreshTokenRequest]) (*zop.Response, error) {
	resp, err := s.refreshToken(ctx, r)
	if err != nil {
		return nil, s.p.publicError(ctx, "token: refresh_token", err)
	}
	return zop.NewResponse(resp), nil
}

// refreshToken checks the token's owner and scopes before rotating, so a
// token presented by another client is refused without being spent. Reuse
// of a rotated token is decided in one place: the store's atomic
// RotateRefreshToken (reached through CreateAccessAndRefreshTokens).
func (s *server) refreshToken(ctx context.Context, r *zop.ClientRequest[oidc.RefreshTokenRequest]) (*oidc.AccessTokenResponse, error) {
	found, err := opStorage{s.p}.TokenRequestByRefreshToken(ctx, r.Data.RefreshToken)
	if err != nil {
		return nil, err
	}
	req := found.(*refreshRequest)
	if r.Client.GetID() != req.GetClientID() {
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token was issued to another client")
	}
	if err := zop.ValidateRefreshTokenScopes(r.Data.Scopes, req); err != nil {
		return nil, err
	}
	aud, err := s.p.audience(r.Client.(*client), req.grant.Resources, r.Form["resource"])
	if err != nil {
		return nil, err
	}
	if req.dpop, err = s.p.tokenDPoP(ctx, r.Client.(*client), req.grant.DPoPJKT); err != nil {
		return nil, err
	}
	return s.p.issueTokens(ctx, req, r.Client.(*client), aud, "", r.Data.RefreshToken)
}

// ClientCredentialsExchange issues a token to a confidential client acting
// for itself; VerifyClient has authenticated it and zitadel has checked the
// grant type and refused public clients.
func (s *server) ClientCredentialsExchange(ctx context.Context, r *zop.ClientRequest[oidc.ClientCredentialsRequest]) (*zop.Response, error) {
	req, err := clientCredentialsTokenRequest(r.Client.(*client).c, r.Data.Scope)
	if err != nil {
		return nil, err
	}
	aud, err := s.p.audience(r.Client.(*client), nil, r.Form["resource"])
	if err == nil {
		req.dpop, err = s.p.tokenDPoP(ctx, r.Client.(*client), "")
	}
	var resp *oidc.AccessTokenResponse
	if err == nil {
		resp, err = s.p.issueTokens(ctx, req, r.Client.(*client), aud, "", "")
	}
	if err != nil {
		return nil, s.p.publicError(ctx, "token: client_credentials", err)
	}
	return zop.NewResponse(resp), nil
}

// Revocation implements RFC 7009 on real tokens only: a refresh token is
// found by its hash, an access token by decrypting (opaque) or verifying
// (JWT) it. Revoking a refresh token revokes its grant, and with it every
// access token issued from it; revoking an access token puts it on the
// deny-list. A token of another client is refused; an unknown one is not an
// error (§2.2).
func (s *server) Revocation(ctx context.Context, r *zop.ClientRequest[oidc.RevocationRequest]) (*zop.Response, error) {
	if err := s.revoke(ctx, r.Data.Token, r.Data.TokenTypeHint, r.Client.GetID()); err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.UnauthorizedClient {
			return nil, zop.RevocationError(err)
		}
		return nil, s.p.publicError(ctx, "revoke token", err)
	}
	return zop.NewResponse(nil), nil
}

func (s *server) revoke(ctx context.Context, token, hint, clientID string) error {
	p := s.p
	now := p.now()
	notYours := oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	if hint != "access_token" {
		rt, err := p.store.GetRefreshToken(ctx, sha256Bytes(token))
		switch {
		case err == nil:
			g, err := p.store.GetGrant(ctx, rt.GrantID)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if g.ClientID != clientID {
				return notYours
			}
			if err := p.store.RevokeGrant(ctx, g.ID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			return nil
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	tokenID, _, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		return nil
	}
	at, err := decodeAccessToken(tokenID)
	if err != nil {
		return nil
	}
	if at.ClientID != clientID {
		return notYours
	}
	if now.Before(at.expiresAt()) {
		return p.store.DenyAccessToken(ctx, at.ID, at.expiresAt())
	}
	return nil
}
