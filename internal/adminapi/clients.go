package adminapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// clientJSON is a client as the API shows it: whether it has a secret,
// never the secret or its hash.
type clientJSON struct {
	ID                               string   `json:"id"`
	Name                             string   `json:"name"`
	Type                             string   `json:"type"`
	AuthMethod                       string   `json:"auth_method"`
	HasSecret                        bool     `json:"has_secret"`
	GrantTypes                       []string `json:"grant_types"`
	RedirectURIs                     []string `json:"redirect_uris"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris"`
	AccessToken                      string   `json:"access_token"`
	RequireConsent                   bool     `json:"require_consent"`
	RequireMFA                       bool     `json:"require_mfa"`
	Resources                        []string `json:"resources"`
	AllowedScopes                    []string `json:"allowed_scopes"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required"`
	OfflineSurvivesLogout            bool     `json:"offline_survives_logout"`
	RequirePAR                       bool     `json:"require_par"` // pushed authorization requests (RFC 9126)
	RequireDPoP                      bool     `json:"require_dpop"`
	// private_key_jwt keys.
	JWKSURI string          `json:"jwks_uri"`
	JWKS    json.RawMessage `json:"jwks"`
	// IDTokenSigningAlg signs the client's tokens; "" is the default.
	IDTokenSigningAlg string    `json:"id_token_signed_response_alg"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// withSecret is a client with its new secret: the answer of a create or a
// rotation, the one time the secret is shown.
type withSecret struct {
	clientJSON
	ClientSecret string `json:"client_secret,omitempty"`
}

func toClientJSON(c *admin.Client) clientJSON {
	return clientJSON{
		ID: c.ID, Name: c.Name, Type: c.Type, AuthMethod: c.AuthMethod, HasSecret: c.HasSecret,
		GrantTypes: list(c.GrantTypes), RedirectURIs: list(c.RedirectURIs), PostLogoutRedirectURIs: list(c.PostLogoutRedirectURIs),
		AccessToken: c.AccessTokenFormat, RequireConsent: c.RequireConsent, RequireMFA: c.RequireMFA,
		Resources: list(c.Resources), AllowedScopes: list(c.AllowedScopes), BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired, OfflineSurvivesLogout: c.OfflineSurvivesLogout,
		RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP, JWKSURI: c.JWKSURI, JWKS: c.JWKS,
		IDTokenSigningAlg: c.IDTokenSigningAlg, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// list is s, or [] for nil: lists are always arrays in the API.
func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeClient answers with the client (and a new secret, when not "") and
// its version as the ETag.
func writeClient(w http.ResponseWriter, status int, c *admin.Client, secret string) {
	w.Header().Set("ETag", etag(c.Version))
	if secret == "" {
		writeJSON(w, status, toClientJSON(c))
		return
	}
	writeJSON(w, status, withSecret{toClientJSON(c), secret})
}

// listClients: GET /clients. Deployments have few clients, and the
// service lists them all: the list is complete, without paging.
func (a *API) listClients(w http.ResponseWriter, r *http.Request) {
	all, err := a.svc.ListClients(r.Context(), actorOf(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]clientJSON, 0, len(all))
	for i := range all {
		items = append(items, toClientJSON(&all[i]))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []clientJSON `json:"items"`
	}{items})
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.GetClient(r.Context(), actorOf(r), chi.URLParam(r, "id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeClient(w, http.StatusOK, c, "")
}

// createClient: POST /clients with an admin.ClientSpec (the clients file's
// form). A confidential client's secret is in the answer, and only there.
func (a *API) createClient(w http.ResponseWriter, r *http.Request) {
	var spec admin.ClientSpec
	if !decode(w, r, &spec) {
		return
	}
	c, secret, err := a.svc.CreateClient(r.Context(), actorOf(r), spec)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/clients/"+c.ID)
	writeClient(w, http.StatusCreated, c, secret)
}

// clientPatch is the body of PATCH /clients/{id}: the fields given change
// (a list given as [] is emptied; null or absent leaves it).
type clientPatch struct {
	Name                             *string   `json:"name"`
	RedirectURIs                     *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs           *[]string `json:"post_logout_redirect_uris"`
	GrantTypes                       *[]string `json:"grant_types"`
	AccessToken                      *string   `json:"access_token"`
	Resources                        *[]string `json:"resources"`
	AllowedScopes                    *[]string `json:"allowed_scopes"`
	RequireConsent                   *bool     `json:"require_consent"`
	RequireMFA                       *bool     `json:"require_mfa"`
	BackchannelLogoutURI             *string   `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired *bool     `json:"backchannel_logout_session_required"`
	OfflineSurvivesLogout            *bool     `json:"offline_survives_logout"`
	RequirePAR                       *bool     `json:"require_par"` // pushed authorization requests (RFC 9126)
	RequireDPoP                      *bool     `json:"require_dpop"`
	// AuthMethod switches a confidential client between the secret
	// methods and private_key_jwt (admin.ClientUpdate says what goes with
	// the switch).
	AuthMethod *string `json:"auth_method"`
	// private_key_jwt keys: giving one replaces the other.
	JWKSURI *string          `json:"jwks_uri"`
	JWKS    *json.RawMessage `json:"jwks"`
	// IDTokenSigningAlg: RS256, ES256, EdDSA, or "" for the default.
	IDTokenSigningAlg *string `json:"id_token_signed_response_alg"`
}

func (p clientPatch) update() admin.ClientUpdate {
	return admin.ClientUpdate{
		Name: p.Name, RedirectURIs: p.RedirectURIs, PostLogoutRedirectURIs: p.PostLogoutRedirectURIs,
		GrantTypes: p.GrantTypes, AccessTokenFormat: p.AccessToken, Resources: p.Resources, AllowedScopes: p.AllowedScopes,
		RequireConsent: p.RequireConsent, RequireMFA: p.RequireMFA, BackchannelLogoutURI: p.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: p.BackchannelLogoutSessionRequired, OfflineSurvivesLogout: p.OfflineSurvivesLogout,
		RequirePAR:  p.RequirePAR,
		RequireDPoP: p.RequireDPoP,
		AuthMethod:  p.AuthMethod,
		JWKSURI:     p.JWKSURI,
		JWKS:        p.JWKS,

		IDTokenSigningAlg: p.IDTokenSigningAlg,
	}
}

// patchClient: PATCH /clients/{id} with If-Match; the result is checked
// like a new client and written in one compare-and-set.
func (a *API) patchClient(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	var p clientPatch
	if !decode(w, r, &p) {
		return
	}
	if p == (clientPatch{}) {
		writeProblem(w, http.StatusUnprocessableEntity, string(admin.CodeInvalid), "Invalid input", "give at least one setting to change")
		return
	}
	c, err := a.svc.UpdateClient(r.Context(), actorOf(r), chi.URLParam(r, "id"), p.update(), version)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeClient(w, http.StatusOK, c, "")
}

// rotateSecret: POST /clients/{id}/secret with If-Match. The new secret is
// in the answer, and only there; the old one stops working at once.
func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	c, secret, err := a.svc.RotateSecret(r.Context(), actorOf(r), chi.URLParam(r, "id"), version)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeClient(w, http.StatusOK, c, secret)
}

// deleteClient: DELETE /clients/{id} with If-Match.
func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	if err := a.svc.DeleteClient(r.Context(), actorOf(r), chi.URLParam(r, "id"), version); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
