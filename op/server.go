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

// server is zitadel's LegacyServer with the methods Gatehouse must do
// differently at the token and revocation endpoints.
type server struct {
	*zop.LegacyServer
	p *Provider
}

// VerifyClient enforces each client's registered authentication method and
// answers failures with 401 (zitadel would use 400).
func (s *server) VerifyClient(ctx context.Context, r *zop.Request[zop.ClientCredentials]) (zop.Client, error) {
	return s.p.authenticateRequestClient(ctx, r.Header, r.Form)
}

// CodeExchange is zitadel's, with PKCE made strict: when the authorization
// request carried a code_challenge the code_verifier is required, whatever the
// client type (the library only checks it when sent or for public clients,
// which allows a downgrade by omitting it).
func (s *server) CodeExchange(ctx context.Context, r *zop.ClientRequest[oidc.AccessTokenRequest]) (*zop.Response, error) {
	authReq, err := zop.AuthRequestByCode(ctx, s.p.zp.Storage(), r.Data.Code)
	if err != nil {
		return nil, err
	}
	if r.Client.GetID() != authReq.GetClientID() {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	}
	if r.Data.RedirectURI != authReq.GetRedirectURI() {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	}
	if ch := authReq.GetCodeChallenge(); ch != nil {
		if r.Data.CodeVerifier == "" {
			return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier is required")
		}
		sum := sha256.Sum256([]byte(r.Data.CodeVerifier))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(want), []byte(ch.Challenge)) != 1 {
			return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier does not match the code_challenge")
		}
	} else if r.Data.CodeVerifier != "" {
		return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier sent but the authorization request had no code_challenge")
	}
	resp, err := zop.CreateTokenResponse(ctx, authReq, r.Client, s.p.zp, true, r.Data.Code, "")
	if err != nil {
		return nil, err
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
	p := s.p
	token, clientID, now := r.Data.Token, r.Client.GetID(), p.now()
	notYours := zop.RevocationError(oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client"))
	if r.Data.TokenTypeHint != "access_token" {
		rt, err := p.store.GetRefreshToken(ctx, sha256Bytes(token))
		switch {
		case err == nil:
			g, err := p.store.GetGrant(ctx, rt.GrantID)
			if errors.Is(err, storage.ErrNotFound) {
				return zop.NewResponse(nil), nil
			}
			if err != nil {
				return nil, zop.RevocationError(oidc.ErrServerError().WithParent(err))
			}
			if g.ClientID != clientID {
				return nil, notYours
			}
			if err := p.store.RevokeGrant(ctx, g.ID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, zop.RevocationError(oidc.ErrServerError().WithParent(err))
			}
			return zop.NewResponse(nil), nil
		case !errors.Is(err, storage.ErrNotFound):
			return nil, zop.RevocationError(oidc.ErrServerError().WithParent(err))
		}
	}
	tokenID, _, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		return zop.NewResponse(nil), nil
	}
	at, err := decodeAccessToken(tokenID)
	if err != nil {
		return zop.NewResponse(nil), nil
	}
	if at.ClientID != clientID {
		return nil, notYours
	}
	if now.Before(at.expiresAt()) {
		if err := p.store.DenyAccessToken(ctx, at.ID, at.expiresAt()); err != nil {
			return nil, zop.RevocationError(oidc.ErrServerError().WithParent(err))
		}
	}
	return zop.NewResponse(nil), nil
}
