package op

import (
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// client adapts a storage.Client to zitadel's op.Client.
type client struct {
	c          *storage.Client
	loginURL   string // absolute URL of the login page, without query
	idTokenTTL time.Duration
}

var _ zop.Client = (*client)(nil)

// signingAlg is the algorithm of the client's ID tokens, JWT access tokens
// and logout tokens; "" means the instance default.
func (c *client) signingAlg() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(c.c.IDTokenSignedResponseAlg)
}

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

func (c *client) ApplicationType() zop.ApplicationType {
	switch c.c.AppType {
	case storage.AppTypeNative:
		return zop.ApplicationTypeNative
	case storage.AppTypeSPA:
		return zop.ApplicationTypeUserAgent
	default:
		return zop.ApplicationTypeWeb
	}
}

func (c *client) AuthMethod() oidc.AuthMethod {
	switch c.c.AuthMethod {
	case storage.AuthMethodPost:
		return oidc.AuthMethodPost
	case storage.AuthMethodNone:
		return oidc.AuthMethodNone
	case storage.AuthMethodPrivateKeyJWT:
		return oidc.AuthMethodPrivateKeyJWT
	default:
		return oidc.AuthMethodBasic
	}
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *client) hasGrant(g oidc.GrantType) bool { return slices.Contains(c.c.GrantTypes, string(g)) }

func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(authRequestID)
}

func (c *client) AccessTokenType() zop.AccessTokenType {
	if c.c.AccessTokenFormat == storage.AccessTokenJWT {
		return zop.AccessTokenTypeJWT
	}
	return zop.AccessTokenTypeBearer
}

func (c *client) IDTokenLifetime() time.Duration { return c.idTokenTTL }

// DevMode lets registered http:// redirect URIs through the library's scheme
// policy. Registration (package cmd) only accepts http:// for loopback hosts,
// and matching stays exact, so this relaxes nothing an admin did not register.
func (c *client) DevMode() bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed decides which scopes beyond the standard ones an
// authorization request keeps: storage.ScopeAdmin for a client that lists
// it (whether the user gets it is decided when tokens are issued, admin.go);
// any other is dropped.
func (c *client) IsScopeAllowed(sc string) bool {
	return sc == storage.ScopeAdmin && allowedScope(c.c, sc)
}

// IDTokenUserinfoClaimsAssertion is true so that the ID token carries email and
// name for the email/profile scopes even in the code flow: Auth.js and other
// RPs read the profile from the ID token only.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// authRequest adapts a storage.AuthRequest to zitadel's op.AuthRequest.
// audience is set when tokens are minted for it (issue.go).
type authRequest struct {
	r        *storage.AuthRequest
	audience []string
	// device: an approved device authorization (device.go), not a code.
	device bool
	// dpop is the DPoP key the access token is bound to, grantDPoP the one
	// the grant (its refresh tokens) is bound to; "" for none (dpop.go).
	dpop, grantDPoP string
	// codeHash is the hash of the code being exchanged: the grant is then
	// stored in the same transaction that spends the code
	// (Store.RedeemCodeAndCreateGrant). nil when the code was spent before
	// (device grants, AuthRequestByCode).
	codeHash []byte
}

var _ zop.AuthRequest = authRequest{}

func (a authRequest) GetID() string          { return a.r.ID }
func (a authRequest) GetACR() string         { return authn.ACRFor(a.r.AMR) }
func (a authRequest) GetAMR() []string       { return authn.ClaimAMR(a.r.AMR) }
func (a authRequest) GetAudience() []string  { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time { return a.r.AuthTime }
func (a authRequest) GetClientID() string    { return a.r.ClientID }
func (a authRequest) GetNonce() string       { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string { return a.r.RedirectURI }
func (a authRequest) GetScopes() []string    { return a.r.Scopes }
func (a authRequest) GetState() string       { return a.r.State }
func (a authRequest) GetSubject() string     { return a.r.UserID }
func (a authRequest) Done() bool             { return a.r.Done }
func (a authRequest) sessionID() string      { return a.r.SessionID }
func (a authRequest) idp() string            { return a.r.IDP }
func (a authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.r.ResponseType)
}
func (a authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.r.ResponseMode)
}

func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{
		Challenge: a.r.CodeChallenge,
		Method:    oidc.CodeChallengeMethod(a.r.CodeChallengeMethod),
	}
}

// LogValue keeps tokens, nonces and state out of the logs.
func (a authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.r.ID),
		slog.String("client_id", a.r.ClientID),
		slog.String("redirect_uri", a.r.RedirectURI),
		slog.Any("scopes", a.r.Scopes),
	)
}

// refreshRequest is the token request behind a presented refresh token.
type refreshRequest struct {
	token    *storage.RefreshToken
	value    string // the presented refresh token, needed to derive its successor
	grant    *storage.Grant
	scopes   []string
	audience []string // of the access token being minted (issue.go)
	dpop     string   // the DPoP key the access token is bound to, or ""
}

var _ zop.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return authn.ClaimAMR(r.grant.AMR) }
func (r *refreshRequest) GetACR() string              { return authn.ACRFor(r.grant.AMR) }
func (r *refreshRequest) GetAudience() []string       { return []string{r.grant.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.grant.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.grant.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.grant.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }
func (r *refreshRequest) sessionID() string           { return r.grant.SessionID }
func (r *refreshRequest) idp() string                 { return r.grant.IDP }

// clientCredentialsRequest is a client_credentials token request: the subject
// is the client itself and there is no grant behind it.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
	audience []string // of the access token being minted (issue.go)
	dpop     string   // the DPoP key the access token is bound to, or ""
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }
func (r *clientCredentialsRequest) GetClientID() string   { return r.clientID }

// signingKey adapts an active key of package keys to zitadel's op.SigningKey.
type signingKey struct{ k keys.ActiveKey }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return s.k.Algorithm }
func (s signingKey) Key() any                                    { return s.k.Signer }
func (s signingKey) ID() string                                  { return s.k.ID }

// publicKey adapts a published key to zitadel's op.Key.
type publicKey struct{ k keys.PublicKey }

func (p publicKey) ID() string                         { return p.k.ID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.Algorithm }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.Key }
