package op

import (
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/op/clientkeys"
)

// cachedDoc is a JSON document rendered once per signing-key-set version:
// discovery and JWKS are the hottest unauthenticated paths and change only
// when keys do.
type cachedDoc struct {
	version uint64
	body    []byte
}

// discoveryDocument is zitadel's discovery configuration plus what the
// library's struct lacks: RFC 9207's flag, RFC 9126's PAR metadata and RFC
// 9449's DPoP algorithms.
type discoveryDocument struct {
	*oidc.DiscoveryConfiguration
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// Pushed authorization requests (RFC 9126 §5).
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`
	// DPoP (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

func (p *Provider) discoveryJSON() []byte {
	v := p.keys.Version()
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.discovery.body != nil && p.discovery.version == v {
		return p.discovery.body
	}
	iss := p.cfg.Issuer
	algs := make([]string, 0, 2)
	for _, a := range p.signatureAlgorithms() {
		algs = append(algs, string(a))
	}
	// private_key_jwt is always on: it widens nothing until an administrator
	// registers a client for it (op/clientassertion.go).
	authMethods := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodPrivateKeyJWT}
	doc := discoveryDocument{
		DiscoveryConfiguration: &oidc.DiscoveryConfiguration{
			Issuer:                                    iss,
			AuthorizationEndpoint:                     iss + pathAuthorize,
			TokenEndpoint:                             iss + pathToken,
			IntrospectionEndpoint:                     iss + pathIntrospect,
			UserinfoEndpoint:                          iss + pathUserinfo,
			RevocationEndpoint:                        iss + pathRevoke,
			EndSessionEndpoint:                        iss + pathEndSession,
			JwksURI:                                   iss + pathKeys,
			ScopesSupported:                           supportedScopes,
			ResponseTypesSupported:                    []string{string(oidc.ResponseTypeCode)},
			ResponseModesSupported:                    []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)},
			GrantTypesSupported:                       []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials, oidc.GrantTypeDeviceCode},
			DeviceAuthorizationEndpoint:               iss + pathDeviceAuthorization,
			SubjectTypesSupported:                     []string{"public"},
			IDTokenSigningAlgValuesSupported:          algs,
			TokenEndpointAuthMethodsSupported:         append(authMethods, oidc.AuthMethodNone),
			RevocationEndpointAuthMethodsSupported:    append(authMethods, oidc.AuthMethodNone),
			IntrospectionEndpointAuthMethodsSupported: authMethods,
			ClaimsSupported:                           supportedClaims,
			ACRValuesSupported:                        p.acrValues(),
			CodeChallengeMethodsSupported:             []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256},
			ClaimsParameterSupported:                  false,
			RequestParameterSupported:                 false,
			RequestURIParameterSupported:              false,
			BackChannelLogoutSupported:                true,
			BackChannelLogoutSessionSupported:         true,
			RegistrationEndpoint:                      p.cfg.RegistrationEndpoint,
		},
		AuthorizationResponseIssParameterSupported: true,
		PushedAuthorizationRequestEndpoint:         iss + pathPAR,
		RequirePushedAuthorizationRequests:         p.cfg.RequirePAR,
		DPoPSigningAlgValuesSupported:              dpopAlgNames(),
	}
	assertionAlgs := make([]string, 0, len(clientkeys.Algorithms))
	for _, a := range clientkeys.Algorithms {
		assertionAlgs = append(assertionAlgs, string(a))
	}
	doc.TokenEndpointAuthSigningAlgValuesSupported = assertionAlgs
	doc.RevocationEndpointAuthSigningAlgValuesSupported = assertionAlgs
	doc.IntrospectionEndpointAuthSigningAlgValuesSupported = assertionAlgs
	body, err := json.Marshal(doc)
	if err != nil {
		panic("marshal discovery document: " + err.Error()) // static types; cannot fail
	}
	p.discovery = cachedDoc{version: v, body: body}
	return body
}

func (p *Provider) jwksJSON() []byte {
	v := p.keys.Version()
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.jwks.body != nil && p.jwks.version == v {
		return p.jwks.body
	}
	set := jose.JSONWebKeySet{}
	for _, k := range p.keys.PublicKeys() {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		panic("marshal JWKS: " + err.Error()) // only valid public keys reach here
	}
	p.jwks = cachedDoc{version: v, body: body}
	return body
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeCachedJSON(w, p.discoveryJSON())
}

func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeCachedJSON(w, p.jwksJSON())
}

func writeCachedJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Short enough that a rotated-in key (published a full period ahead anyway)
	// reaches every RP long before it signs.
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// acrValues are the acr values this server can reach.
func (p *Provider) acrValues() []string {
	var out []string
	for _, v := range authn.ACRValues() {
		if v == authn.ACRPhishingResistant && p.cfg.NoPasskeys {
			continue
		}
		out = append(out, v)
	}
	return out
}
