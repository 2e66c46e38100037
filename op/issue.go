package op

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Gatehouse mints its token responses itself (zitadel's CreateTokenResponse
// cannot): access tokens are opaque, or RFC 9068 JWTs with typ at+jwt whose
// aud is the resource they are for (RFC 8707), never the client; ID tokens
// carry no client_id (aud and azp name the client).

// tokenRequest is what tokens are minted for: a redeemed code
// (authRequest), a refresh (*refreshRequest) or a client acting for itself
// (*clientCredentialsRequest).
type tokenRequest interface {
	zop.TokenRequest
	GetClientID() string
}

// issueTokens mints the response for req, with access tokens for aud
// (audience, checked before anything was spent). code is the redeemed code
// (for c_hash), presented the refresh token being rotated.
func (p *Provider) issueTokens(ctx context.Context, req tokenRequest, c *client, aud []string, code, presented string) (*oidc.AccessTokenResponse, error) {
	s := opStorage{p}
	// A user's tokens need a user who may still have them: checked before
	// anything is spent, so a refresh for a disabled account rotates
	// nothing. The ID token and a JWT access token read the user again for
	// their claims; an opaque token without openid would not, hence here.
	// The same user decides whether the tokens may carry the admin scope
	// (admin.go).
	if _, ok := req.(zop.IDTokenRequest); ok {
		u, err := p.activeUser(ctx, req.GetSubject())
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errUserGone()
		} else if err != nil {
			return nil, fmt.Errorf("load user: %w", err)
		}
		switch r := req.(type) {
		case authRequest:
			r.r.Scopes = p.grantedUserScopes(r.r.Scopes, c.c, u, r.r.AMR)
		case *refreshRequest:
			r.scopes = p.grantedUserScopes(r.scopes, c.c, u, r.grant.AMR)
		}
	}
	var tokenID, refresh string
	var exp time.Time
	var err error
	switch r := req.(type) {
	case authRequest:
		r.audience = aud
		if slices.Contains(r.r.Scopes, oidc.ScopeOfflineAccess) && c.hasGrant(oidc.GrantTypeRefreshToken) {
			tokenID, refresh, exp, err = s.CreateAccessAndRefreshTokens(ctx, r, "")
		} else {
			tokenID, exp, err = s.CreateAccessToken(ctx, r)
		}
	case *refreshRequest:
		r.audience = aud
		tokenID, refresh, exp, err = s.CreateAccessAndRefreshTokens(ctx, r, presented)
	case *clientCredentialsRequest:
		r.audience = aud
		tokenID, exp, err = s.CreateAccessToken(ctx, r)
	default:
		err = fmt.Errorf("op: cannot issue tokens for %T", req)
	}
	if err != nil {
		return nil, err
	}
	var access string
	if c.AccessTokenType() == zop.AccessTokenTypeJWT {
		access, err = p.signAccessToken(ctx, req, c, tokenID, aud)
	} else {
		access, err = p.zp.Crypto().Encrypt(tokenID + ":" + req.GetSubject())
	}
	if err != nil {
		return nil, fmt.Errorf("mint access token: %w", err)
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    tokenType(dpopOf(req)),
		ExpiresIn:    uint64(max(exp.Sub(p.now()), 0) / time.Second),
		Scope:        req.GetScopes(),
	}
	if idr, ok := req.(zop.IDTokenRequest); ok {
		if resp.IDToken, err = p.signIDToken(ctx, idr, c, access, code); err != nil {
			return nil, err
		}
	}
	p.countIssued(req, resp, c.AccessTokenType() == zop.AccessTokenTypeJWT)
	return resp, nil
}

// dpopOf is the DPoP key req's access token is bound to, or "".
func dpopOf(req tokenRequest) string {
	switch r := req.(type) {
	case authRequest:
		return r.dpop
	case *refreshRequest:
		return r.dpop
	case *clientCredentialsRequest:
		return r.dpop
	}
	return ""
}

// countIssued counts the tokens of a response about to be sent.
func (p *Provider) countIssued(req tokenRequest, resp *oidc.AccessTokenResponse, jwt bool) {
	grant := "authorization_code"
	switch r := req.(type) {
	case authRequest:
		if r.device {
			grant = "device_code"
		}
	case *refreshRequest:
		grant = "refresh_token"
	case *clientCredentialsRequest:
		grant = "client_credentials"
	}
	m := p.cfg.Metrics
	if jwt {
		m.tokenIssued(grant, "access_jwt")
	} else {
		m.tokenIssued(grant, "access_opaque")
	}
	if resp.IDToken != "" {
		m.tokenIssued(grant, "id")
	}
	if resp.RefreshToken != "" {
		m.tokenIssued(grant, "refresh")
	}
}

// audience picks an access token's aud: the resources the token request
// names, each among those granted at authorization (or, without a grant,
// registered for the client); else those granted; else the client's first
// registered resource; else the configured default (Config.AccessTokenAudience).
func (p *Provider) audience(c *client, granted, requested []string) ([]string, error) {
	requested = slices.Compact(slices.Sorted(slices.Values(requested)))
	if len(requested) > 0 {
		allowed := granted
		if len(allowed) == 0 {
			allowed = c.c.Resources
		}
		for _, r := range requested {
			if !slices.Contains(allowed, r) {
				return nil, errInvalidTarget(r)
			}
		}
		return requested, nil
	}
	if len(granted) > 0 {
		return granted, nil
	}
	if len(c.c.Resources) > 0 {
		return c.c.Resources[:1], nil
	}
	return []string{p.cfg.AccessTokenAudience}, nil
}

// errInvalidTarget is RFC 8707's error for a resource the client may not ask for.
func errInvalidTarget(resource string) *oidc.Error {
	e := oidc.ErrInvalidRequest().WithDescription("the resource %q is not registered for this client", resource)
	e.ErrorType = "invalid_target"
	return e
}

// jwtAccessToken is the payload of an RFC 9068 access token.
type jwtAccessToken struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience any    `json:"aud"` // a string, or an array for several resources
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	// JWTID is the token's record (tokens.go), which userinfo,
	// introspection and revocation read back under the signature.
	JWTID    string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Role     string `json:"role,omitempty"`
	// Cnf names the DPoP key the token is bound to (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is RFC 7800's cnf claim with RFC 9449's JWK thumbprint.
type confirmation struct {
	JKT string `json:"jkt"`
}

// signAccessToken signs an RFC 9068 access token for the record tokenID, in
// c's algorithm: the one the client registered for its ID tokens
// (id_token_signed_response_alg) signs all its tokens, as a client that
// chose a cheap signature for speed wants.
func (p *Provider) signAccessToken(ctx context.Context, req tokenRequest, c *client, tokenID string, aud []string) (string, error) {
	at, err := decodeAccessToken(tokenID)
	if err != nil {
		return "", err
	}
	claims := jwtAccessToken{
		Issuer: p.cfg.Issuer, Subject: req.GetSubject(), Audience: audienceClaim(aud),
		Expiry: at.Expiry, IssuedAt: at.IssuedAt, JWTID: tokenID, ClientID: req.GetClientID(),
		Scope: strings.Join(req.GetScopes(), " "),
	}
	if at.JKT != "" {
		claims.Cnf = &confirmation{JKT: at.JKT}
	}
	if idr, ok := req.(zop.IDTokenRequest); ok { // a user's token
		u, err := p.activeUser(ctx, req.GetSubject())
		if errors.Is(err, storage.ErrNotFound) {
			return "", errUserGone()
		}
		if err != nil {
			return "", fmt.Errorf("load user: %w", err)
		}
		claims.Role = u.Role
		if t := idr.GetAuthTime(); !t.IsZero() {
			claims.AuthTime = t.Unix()
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return p.sign(c.signingAlg(), payload, "at+jwt")
}

// errUserGone refuses a code or refresh token whose user was deleted or
// disabled since it was issued: invalid_grant, the answer to a grant that
// no longer holds (RFC 6749 §5.2), which makes an app sign the user out.
func errUserGone() *oidc.Error {
	return oidc.ErrInvalidGrant().WithDescription("the user account is no longer active")
}

func audienceClaim(aud []string) any {
	if len(aud) == 1 {
		return aud[0]
	}
	return aud
}

// signingKey returns the active key of alg ("" for the default algorithm).
func (p *Provider) signingKey(alg jose.SignatureAlgorithm) (keys.ActiveKey, error) {
	k := p.keys.ActiveFor(alg)
	if k.Signer == nil {
		if alg == "" {
			return k, errors.New("no signing key loaded")
		}
		return k, fmt.Errorf("no %s signing key loaded", alg)
	}
	return k, nil
}

// sign signs payload with the active key of alg ("" for the default
// algorithm) as a compact JWS of type typ.
func (p *Provider) sign(alg jose.SignatureAlgorithm, payload []byte, typ jose.ContentType) (string, error) {
	k, err := p.signingKey(alg)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.Algorithm, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: string(k.Algorithm)}},
		(&jose.SignerOptions{}).WithType(typ),
	)
	if err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}

// signIDToken mints the ID token: zitadel's claims (at_hash, c_hash, nonce,
// auth_time, amr, azp) and Gatehouse's user claims, without client_id,
// signed in the client's algorithm (id_token_signed_response_alg).
func (p *Provider) signIDToken(ctx context.Context, req zop.IDTokenRequest, c *client, accessToken, code string) (string, error) {
	var nonce string
	if ar, ok := req.(authRequest); ok {
		nonce = ar.GetNonce()
	}
	exp := p.now().Add(c.IDTokenLifetime())
	var acr string
	if a, ok := req.(interface{ GetACR() string }); ok {
		acr = a.GetACR()
	}
	claims := oidc.NewIDTokenClaims(p.cfg.Issuer, req.GetSubject(), []string{c.GetID()}, exp, req.GetAuthTime(), nonce, acr, req.GetAMR(), c.GetID(), 0)
	claims.ClientID = "" // aud and azp name the client; client_id belongs to access tokens
	claims.IssuedAt = oidc.FromTime(p.now())
	key, err := p.signingKey(c.signingAlg())
	if err != nil {
		return "", err
	}
	// at_hash and c_hash use the hash of the signature's algorithm (SHA-512
	// for EdDSA, as go-oidc and node-openid-client expect).
	alg := key.Algorithm
	if accessToken != "" {
		h, err := oidc.ClaimHash(accessToken, alg)
		if err != nil {
			return "", err
		}
		claims.AccessTokenHash = h
	}
	if code != "" {
		h, err := oidc.ClaimHash(code, alg)
		if err != nil {
			return "", err
		}
		claims.CodeHash = h
	}
	ui := new(oidc.UserInfo)
	if err := (opStorage{p}).SetUserinfoFromRequest(ctx, ui, req, req.GetScopes()); err != nil {
		return "", err
	}
	claims.SetUserInfo(ui)
	signer, err := zop.SignerFromKey(signingKey{key})
	if err != nil {
		return "", err
	}
	return crypto.Sign(claims, signer)
}
