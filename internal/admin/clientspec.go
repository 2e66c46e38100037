package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/op/clientkeys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// ClientSpec is a client as an administrator describes it: on the command
// line, in the clients file, through the admin API. Client validates it;
// it is the one place the rules for clients live.
type ClientSpec struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	Type                   string   `json:"type"`
	Public                 bool     `json:"public"`
	AuthMethod             string   `json:"auth_method"`
	GrantTypes             []string `json:"grant_types"`
	AccessToken            string   `json:"access_token"`
	RequireConsent         bool     `json:"require_consent"`
	RequireMFA             bool     `json:"require_mfa"`
	Resources              []string `json:"resources"`
	// AllowedScopes: scopes beyond the OpenID Connect ones the client may
	// ask for, such as gatehouse:admin.
	AllowedScopes []string `json:"allowed_scopes"`
	// Back-channel logout (OIDC Back-Channel Logout 1.0) and what an SSO
	// session's end does to this client's offline tokens.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required"`
	OfflineSurvivesLogout            bool   `json:"offline_survives_logout"`
	// RequirePAR (pushed authorization requests, RFC 9126): sign-ins start
	// only from a request_uri of the PAR endpoint.
	RequirePAR bool `json:"require_par"`
	// RequireDPoP (DPoP, RFC 9449): the client's token requests must carry
	// a DPoP proof, so all its access tokens are sender-constrained.
	RequireDPoP bool `json:"require_dpop"`
	// private_key_jwt (RFC 7523 §2.2): the client's public signing keys,
	// as a JWKS document or the URL that serves one; exactly one of the two
	// for that auth method, neither for the others.
	JWKS    json.RawMessage `json:"jwks"`
	JWKSURI string          `json:"jwks_uri"`
	// IDTokenSigningAlg (OIDC Dynamic Client Registration 1.0 §2's
	// id_token_signed_response_alg): the algorithm of the client's ID
	// tokens, JWT access tokens and logout tokens, RS256, ES256 or EdDSA;
	// "" for the instance default (GATEHOUSE_SIGNING_ALG).
	IDTokenSigningAlg string `json:"id_token_signed_response_alg"`
}

// clientIDPattern keeps IDs safe everywhere they travel (URLs, Basic auth,
// token internals that use ':' as a separator).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Grant types a client may have.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantDeviceCode is RFC 8628's device authorization grant, stored as
	// its URN (the grant_type the token endpoint sees); GrantDeviceCodeShort
	// is what the CLI and the clients file may write instead.
	GrantDeviceCode      = "urn:ietf:params:oauth:grant-type:device_code"
	GrantDeviceCodeShort = "device_code"
)

// GrantTypes are the grant types a client may have, as stored (the
// console offers these).
func GrantTypes() []string {
	return []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}
}

// Client validates the spec and builds the stored client (created and
// updated at now). It does not set the secret; callers do. A mistake is an
// *Error (CodeInvalid) naming the field.
func (s ClientSpec) Client(now time.Time) (*storage.Client, error) {
	c := &storage.Client{
		ID: s.ID, Name: strings.TrimSpace(s.Name), CreatedAt: now, UpdatedAt: now,
		RedirectURIs: s.RedirectURIs, PostLogoutRedirectURIs: s.PostLogoutRedirectURIs,
		RequireConsent: s.RequireConsent, RequireMFA: s.RequireMFA, Resources: s.Resources,
		AllowedScopes: s.AllowedScopes, BackchannelLogoutURI: s.BackchannelLogoutURI, BackchannelLogoutSessionRequired: s.BackchannelLogoutSessionRequired,
		OfflineSurvivesLogout: s.OfflineSurvivesLogout, RequirePAR: s.RequirePAR,
		RequireDPoP: s.RequireDPoP, IDTokenSignedResponseAlg: s.IDTokenSigningAlg,
	}
	if c.ID == "" {
		c.ID = newClientID()
	}
	if !clientIDPattern.MatchString(c.ID) {
		return nil, invalid("id", "client id %q: use 1–128 letters, digits, '.', '_' or '-'", c.ID)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if err := checkClientName(c.Name); err != nil {
		return nil, err
	}
	c.AppType = s.Type
	if c.AppType == "" {
		c.AppType = storage.AppTypeWeb
	}
	if !slices.Contains([]string{storage.AppTypeWeb, storage.AppTypeNative, storage.AppTypeSPA}, c.AppType) {
		return nil, invalid("type", "type %q: use web, native or spa", s.Type)
	}
	if err := s.authMethod(c); err != nil {
		return nil, err
	}
	if err := s.clientKeys(c); err != nil {
		return nil, err
	}
	if err := s.grants(c); err != nil {
		return nil, err
	}
	if err := checkURIs(c); err != nil {
		return nil, err
	}
	if err := checkAllowedScopes(c.AllowedScopes); err != nil {
		return nil, err
	}
	if c.IDTokenSignedResponseAlg != "" && keys.CheckAlgorithm(c.IDTokenSignedResponseAlg) != nil {
		return nil, invalid("id_token_signed_response_alg", "ID token signing algorithm %q: use %s, or nothing for the server's default",
			c.IDTokenSignedResponseAlg, strings.Join(keys.Algorithms(), ", "))
	}
	switch s.AccessToken {
	case "", storage.AccessTokenOpaque:
		c.AccessTokenFormat = storage.AccessTokenOpaque
	case storage.AccessTokenJWT:
		c.AccessTokenFormat = storage.AccessTokenJWT
	default:
		return nil, invalid("access_token", "access token %q: use opaque or jwt", s.AccessToken)
	}
	return c, nil
}

func (s ClientSpec) authMethod(c *storage.Client) error {
	switch {
	case s.Public && s.AuthMethod != "" && s.AuthMethod != storage.AuthMethodNone:
		return invalid("auth_method", "auth method %q: a public client has no secret (auth method none)", s.AuthMethod)
	case s.Public:
		c.AuthMethod = storage.AuthMethodNone
	case s.AuthMethod == "":
		c.AuthMethod = storage.AuthMethodBasic
	case s.AuthMethod == storage.AuthMethodBasic || s.AuthMethod == storage.AuthMethodPost || s.AuthMethod == storage.AuthMethodPrivateKeyJWT:
		c.AuthMethod = s.AuthMethod
	case s.AuthMethod == storage.AuthMethodNone:
		return invalid("auth_method", "auth method none: use --public")
	default:
		return invalid("auth_method", "auth method %q: use client_secret_basic, client_secret_post or private_key_jwt", s.AuthMethod)
	}
	return nil
}

// clientKeys checks the keys of a private_key_jwt client (one method per
// client: it has keys and no secret, the others a secret and no keys). A
// JWKS must hold public keys only and is stored normalised; a jwks_uri
// follows the rules of the other client URIs.
func (s ClientSpec) clientKeys(c *storage.Client) error {
	doc := bytes.TrimSpace(s.JWKS)
	hasJWKS := len(doc) > 0 && !bytes.Equal(doc, []byte("null"))
	if c.AuthMethod != storage.AuthMethodPrivateKeyJWT {
		if hasJWKS || s.JWKSURI != "" {
			return invalid("jwks", "jwks and jwks_uri are for auth method private_key_jwt")
		}
		return nil
	}
	switch {
	case hasJWKS && s.JWKSURI != "":
		return invalid("jwks", "give jwks or jwks_uri, not both")
	case s.JWKSURI != "":
		if err := clientkeys.ValidateURI(s.JWKSURI); err != nil {
			return invalid("jwks_uri", "jwks_uri %q: %v", s.JWKSURI, err)
		}
		c.JWKSURI = s.JWKSURI
	case hasJWKS:
		norm, err := clientkeys.Normalize(doc)
		if err != nil {
			return invalid("jwks", "jwks: %v", err)
		}
		c.JWKS = norm
	default:
		return invalid("jwks", "auth method private_key_jwt needs the client's public keys: jwks or jwks_uri")
	}
	return nil
}

func (s ClientSpec) grants(c *storage.Client) error {
	c.GrantTypes = s.GrantTypes
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	var grants []string
	for _, g := range c.GrantTypes {
		if g == GrantDeviceCodeShort {
			g = GrantDeviceCode // one spelling in the store
		}
		if !slices.Contains(GrantTypes(), g) {
			return invalid("grant_types", "grant type %q: use authorization_code, refresh_token, client_credentials or device_code", g)
		}
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	c.GrantTypes = grants
	if slices.Contains(c.GrantTypes, GrantClientCredentials) && c.AuthMethod == storage.AuthMethodNone {
		return invalid("grant_types", "grant type client_credentials needs a confidential client")
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return invalid("redirect_uris", "at least one redirect URI is required for the authorization_code grant")
	}
	return nil
}

// checkURIs checks every URI of c: redirects, resources, back-channel.
func checkURIs(c *storage.Client) error {
	for _, u := range c.RedirectURIs {
		if err := CheckRedirectURI(u, c.AppType); err != nil {
			return invalid("redirect_uris", "redirect URI %q: %v", u, err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := CheckRedirectURI(u, c.AppType); err != nil {
			return invalid("post_logout_redirect_uris", "post-logout redirect URI %q: %v", u, err)
		}
	}
	for _, u := range c.Resources {
		if err := checkResource(u); err != nil {
			return invalid("resources", "resource %q: %v", u, err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := backchannel.ValidateURI(c.BackchannelLogoutURI); err != nil {
			return invalid("backchannel_logout_uri", "back-channel logout URI %q: %v", c.BackchannelLogoutURI, err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		return invalid("backchannel_logout_session_required", "backchannel-logout-session-required needs a back-channel logout URI")
	}
	return nil
}

// specOf describes a stored client as a spec, so an update can change some
// fields and validate the whole like a new client.
func specOf(c *storage.Client) ClientSpec {
	return ClientSpec{
		ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		Type: c.AppType, Public: c.AuthMethod == storage.AuthMethodNone, AuthMethod: c.AuthMethod,
		GrantTypes: c.GrantTypes, AccessToken: c.AccessTokenFormat, RequireConsent: c.RequireConsent,
		RequireMFA: c.RequireMFA, Resources: c.Resources, AllowedScopes: c.AllowedScopes, BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired, OfflineSurvivesLogout: c.OfflineSurvivesLogout,
		RequirePAR:        c.RequirePAR,
		RequireDPoP:       c.RequireDPoP,
		JWKS:              jwksOf(c),
		JWKSURI:           c.JWKSURI,
		IDTokenSigningAlg: c.IDTokenSignedResponseAlg,
	}
}

// jwksOf is the client's stored JWKS as JSON, nil when it has none.
func jwksOf(c *storage.Client) json.RawMessage {
	if c.JWKS == "" {
		return nil
	}
	return json.RawMessage(c.JWKS)
}

// oidcScopes are granted by the usual rules to every client; listing one
// as an allowed scope would suggest otherwise, so it is refused.
var oidcScopes = []string{"openid", "profile", "email", "offline_access", "phone", "address"}

// IsOpenIDScope reports whether scope is an OpenID Connect scope, which
// every client may ask for and none lists as an allowed scope.
func IsOpenIDScope(scope string) bool { return slices.Contains(oidcScopes, scope) }

// scopeTokenPattern is RFC 6749 §3.3's scope-token: printable ASCII
// without space, '"' or '\'.
var scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`)

// maxClientName bounds a client's display name, in characters.
const maxClientName = 100

// checkClientName: the name is shown to users on the consent and device
// pages ("Approve Living Room TV?"), so it must read as what it is: not
// too long to show, and without control or bidirectional-formatting
// characters, which could make it display as another app's name (a
// right-to-left override reverses what follows it).
func checkClientName(name string) error {
	if utf8.RuneCountInString(name) > maxClientName {
		return invalid("name", "name: at most %d characters", maxClientName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return invalid("name", "name: control, invalid and text-direction characters are not allowed")
		}
	}
	return nil
}

// checkAllowedScopes: each a scope token, listed once, not an OpenID
// Connect scope; of the reserved gatehouse: names only ScopeAdmin exists.
func checkAllowedScopes(scopes []string) error {
	for i, sc := range scopes {
		switch {
		case !scopeTokenPattern.MatchString(sc):
			return invalid("allowed_scopes", "allowed scope %q: use 1–128 printable characters without spaces, quotes or backslashes", sc)
		case slices.Contains(oidcScopes, sc):
			return invalid("allowed_scopes", "allowed scope %q: OpenID Connect scopes need not be listed", sc)
		// Case-insensitively: a resource server or proxy that folds case
		// must not see GATEHOUSE:admin as the admin scope.
		case IsReservedScope(sc) && sc != storage.ScopeAdmin:
			return invalid("allowed_scopes", "allowed scope %q: the only gatehouse: scope is %s", sc, storage.ScopeAdmin)
		case slices.Contains(scopes[:i], sc):
			return invalid("allowed_scopes", "allowed scope %q is listed twice", sc)
		}
	}
	return nil
}

// checkResource: an RFC 8707 resource indicator is an absolute URI without a
// fragment (§2); https, or http on a loopback host for development.
func checkResource(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopbackHost(u.Hostname())) {
		return errors.New("must be https (http only on localhost or a loopback address)")
	}
	return nil
}

// IsReservedScope reports whether sc is in Gatehouse's own gatehouse:
// namespace, in any letter case.
func IsReservedScope(sc string) bool {
	return len(sc) >= len("gatehouse:") && strings.EqualFold(sc[:len("gatehouse:")], "gatehouse:")
}

// CheckRedirectURI: absolute, no fragment; https, or http on a loopback host
// (local development), or a private-use scheme for native apps (RFC 8252).
func CheckRedirectURI(raw, appType string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	// The authorization endpoint compares the string as registered and takes
	// only a lower-case http:// or https:// for one: HTTPS://… would never match.
	if (u.Scheme == "https" || u.Scheme == "http") && !strings.HasPrefix(raw, u.Scheme+":") {
		return errors.New("write the scheme in lower case (" + u.Scheme + ":)")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("must name a host")
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("http is allowed only for localhost and loopback addresses; use https")
		}
	default:
		if appType != storage.AppTypeNative {
			return errors.New("custom schemes are allowed only for native clients")
		}
		// RFC 8252 §7.1: a private-use scheme is a reverse domain name the
		// app's maker controls (com.example.app). That also keeps out
		// javascript:, data:, file: and every other scheme a browser or
		// the OS gives a meaning of its own.
		if !strings.Contains(u.Scheme, ".") {
			return errors.New("a native app's custom scheme must be a reverse domain name, such as com.example.app: (RFC 8252 §7.1)")
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newClientID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "gh-" + hex.EncodeToString(b)
}

// NewClientSecret returns a new random client secret (32 bytes, base64url).
func NewClientSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashClientSecret is what the store keeps of a client secret: its SHA-256
// (the secret is random and high-entropy; docs/design.md).
func HashClientSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
