package registration

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Metadata is the client metadata of RFC 7591 §2 (and OpenID Connect's
// application_type, post-logout and back-channel logout fields) that
// Gatehouse keeps. ClientID and ClientSecret come with an RFC 7592 update.
type Metadata struct {
	RedirectURIs                     []string `json:"redirect_uris"`
	TokenEndpointAuthMethod          string   `json:"token_endpoint_auth_method"`
	GrantTypes                       []string `json:"grant_types"`
	ResponseTypes                    []string `json:"response_types"`
	ApplicationType                  string   `json:"application_type"`
	ClientName                       string   `json:"client_name"`
	Scope                            string   `json:"scope"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required"`
	// IDTokenSignedResponseAlg (OpenID Connect Dynamic Client Registration
	// 1.0 §2) signs the client's ID tokens, and its JWT access tokens and
	// logout tokens too.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`

	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Application types of OpenID Connect Dynamic Client Registration.
const (
	appWeb    = "web"
	appNative = "native"
)

// spec is the admin service's description of the client m asks for. The
// rules the admin service applies (URIs, grants against the auth method,
// scope tokens) are checked when it builds the client; here only what is
// the endpoint's own.
func (m *Metadata) spec() (admin.ClientSpec, error) {
	spec := admin.ClientSpec{
		Name: m.ClientName, RedirectURIs: m.RedirectURIs, PostLogoutRedirectURIs: m.PostLogoutRedirectURIs,
		GrantTypes: m.GrantTypes, BackchannelLogoutURI: m.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: m.BackchannelLogoutSessionRequired,
		// Whoever registers is a third party to the users: always ask them.
		RequireConsent: true,
	}
	switch m.TokenEndpointAuthMethod {
	case "", storage.AuthMethodBasic:
		spec.AuthMethod = storage.AuthMethodBasic
	case storage.AuthMethodPost:
		spec.AuthMethod = storage.AuthMethodPost
	case storage.AuthMethodNone:
		spec.Public = true
	default:
		return spec, invalidMetadata("token_endpoint_auth_method %q: use client_secret_basic, client_secret_post or none", m.TokenEndpointAuthMethod)
	}
	switch m.ApplicationType {
	case "", appWeb:
		spec.Type = storage.AppTypeWeb
		if spec.Public { // a web app without a secret runs in the browser
			spec.Type = storage.AppTypeSPA
		}
	case appNative:
		spec.Type = storage.AppTypeNative
	default:
		return spec, invalidMetadata("application_type %q: use web or native", m.ApplicationType)
	}
	if len(spec.GrantTypes) == 0 {
		spec.GrantTypes = []string{admin.GrantAuthorizationCode}
	}
	if len(m.ResponseTypes) > 0 && !slices.Equal(m.ResponseTypes, []string{"code"}) {
		return spec, invalidMetadata("response_types %q: only [\"code\"] is supported", m.ResponseTypes)
	}
	if len(m.RedirectURIs) > maxURIs || len(m.PostLogoutRedirectURIs) > maxURIs {
		return spec, invalidMetadata("at most %d redirect_uris and %d post_logout_redirect_uris", maxURIs, maxURIs)
	}
	if m.BackchannelLogoutURI != "" {
		if err := externalURI(m.BackchannelLogoutURI); err != nil {
			return spec, err
		}
	}
	// The specification's default is RS256, whatever this server's default
	// for the clients an administrator makes: a relying party that
	// registered without naming one verifies RS256.
	spec.IDTokenSigningAlg = m.IDTokenSignedResponseAlg
	if spec.IDTokenSigningAlg == "" {
		spec.IDTokenSigningAlg = "RS256"
	}
	if !slices.Contains(admin.SigningAlgorithms(), spec.IDTokenSigningAlg) {
		return spec, invalidMetadata("id_token_signed_response_alg %q: use %s", spec.IDTokenSigningAlg, strings.Join(admin.SigningAlgorithms(), ", "))
	}
	scopes, err := allowedScopes(m.Scope)
	if err != nil {
		return spec, err
	}
	spec.AllowedScopes = scopes
	return spec, nil
}

// maxURIs bounds a registration's redirect and post-logout URIs: a tool
// needs a few; an administrator can list more.
const maxURIs = 20

// externalURI is the rule for a back-channel logout URI that arrives
// through the endpoint: https to a host that is not an internal one. An
// administrator may point a client at a receiver on Gatehouse's own
// machine or network (backchannel.ValidateURI allows it), but whoever holds
// an initial access token must not make Gatehouse POST to its loopback
// services or private network. Names are judged as written (localhost, and
// the .localhost, .local and .internal domains); what a public name
// resolves to is not checked — an attacker who controls DNS for a name
// could still point it inside, which is why the URI must be https (the
// receiver needs a certificate for that name).
func externalURI(raw string) error {
	if err := backchannel.ValidateURI(raw); err != nil {
		return invalidMetadata("%v", err)
	}
	u, _ := url.Parse(raw) // ValidateURI parsed it
	if u.Scheme != "https" {
		return invalidMetadata("backchannel_logout_uri must use https")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsUnspecified() || ip.IsMulticast() || sharedAddressSpace.Contains(ip) {
			return invalidMetadata("backchannel_logout_uri must not name a loopback, private or link-local address")
		}
		return nil
	}
	for _, internal := range []string{"localhost", ".localhost", ".local", ".internal", ".home.arpa"} {
		if host == strings.TrimPrefix(internal, ".") || strings.HasSuffix(host, internal) {
			return invalidMetadata("backchannel_logout_uri must not name an internal host (%s)", host)
		}
	}
	return nil
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range, internal like
// RFC 1918's but not among net.IP.IsPrivate's.
var sharedAddressSpace = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

// allowedScopes are the scopes of a registration's scope value beyond the
// OpenID Connect ones, which every client may ask for anyway. The reserved
// gatehouse: scopes are never granted this way: administering Gatehouse is
// for clients an admin made.
func allowedScopes(scope string) ([]string, error) {
	var out []string
	for _, sc := range strings.Fields(scope) {
		switch {
		case admin.IsReservedScope(sc):
			return nil, invalidMetadata("scope %q cannot be registered; ask an administrator", sc)
		case admin.IsOpenIDScope(sc), slices.Contains(out, sc):
		default:
			out = append(out, sc)
		}
	}
	return out, nil
}

// openToAll reports whether a client may be registered without an initial
// access token in loopback mode, and why not: every redirect URI on a
// loopback address, only the code and refresh grants (no client_credentials,
// which would let anyone mint tokens with no user behind them, and no device
// grant), and no back-channel logout URI (Gatehouse would call it).
func openToAll(spec admin.ClientSpec) error {
	if len(spec.RedirectURIs) == 0 {
		return invalidRedirect("without an initial access token, a client needs a loopback redirect URI")
	}
	// Only grants whose tokens reach the user's own machine: the code flow
	// redirects to loopback, but a device grant's tokens go to whoever
	// polls (anyone could phish an approval with a client named as they
	// like), and client_credentials has no user at all.
	for _, g := range spec.GrantTypes {
		if g != admin.GrantAuthorizationCode && g != admin.GrantRefreshToken {
			return invalidMetadata("without an initial access token only the authorization_code and refresh_token grants can be registered, not %s", g)
		}
	}
	for _, u := range append(slices.Clone(spec.RedirectURIs), spec.PostLogoutRedirectURIs...) {
		if !loopbackURI(u) {
			return invalidRedirect("without an initial access token only loopback URIs (http://127.0.0.1, http://localhost, http://[::1]) may be registered, not %q", u)
		}
	}
	// Gatehouse itself calls a back-channel logout URI, so a loopback one
	// would be Gatehouse's own loopback services, not the user's machine.
	if spec.BackchannelLogoutURI != "" {
		return invalidMetadata("without an initial access token a backchannel_logout_uri cannot be registered")
	}
	return nil
}

// loopbackURI: http on 127.0.0.1, localhost or [::1], any port.
func loopbackURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// Information is the client information response (RFC 7591 §3.2.1, RFC
// 7592 §3): the metadata as stored, and how to manage the registration.
type Information struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`

	ClientName                       string   `json:"client_name"`
	ApplicationType                  string   `json:"application_type"`
	RedirectURIs                     []string `json:"redirect_uris"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	TokenEndpointAuthMethod          string   `json:"token_endpoint_auth_method"`
	GrantTypes                       []string `json:"grant_types"`
	ResponseTypes                    []string `json:"response_types"`
	Scope                            string   `json:"scope,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
	IDTokenSignedResponseAlg         string   `json:"id_token_signed_response_alg,omitempty"`
}

// information describes client c; secret is set only when it has just been
// issued.
func (h *Handler) information(c *admin.Client, secret, regToken string) *Information {
	info := &Information{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationAccessToken: regToken, RegistrationClientURI: h.cfg.Issuer + Path + "/" + url.PathEscape(c.ID),
		ClientName: c.Name, ApplicationType: appWeb, RedirectURIs: nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, TokenEndpointAuthMethod: c.AuthMethod,
		GrantTypes: c.GrantTypes, ResponseTypes: []string{}, Scope: strings.Join(c.AllowedScopes, " "),
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		IDTokenSignedResponseAlg: c.IDTokenSigningAlg,
	}
	if c.Type == storage.AppTypeNative {
		info.ApplicationType = appNative
	}
	if c.HasSecret {
		never := int64(0) // secrets do not expire (RFC 7591 §3.2.1: 0)
		info.ClientSecretExpiresAt = &never
	}
	if slices.Contains(c.GrantTypes, admin.GrantAuthorizationCode) {
		info.ResponseTypes = []string{"code"}
	}
	return info
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
