package op

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
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
