package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

var clientNotices = map[string]string{
	"updated": "The client was saved.",
	"deleted": "The client was deleted.",
}

type clientsPage struct {
	base
	Clients []admin.Client
}

func (c *Console) getClients(w http.ResponseWriter, r *http.Request) {
	list, err := c.svc.ListClients(r.Context(), current(r).actor)
	if err != nil {
		c.pages.InternalError(w, r, "console: list clients", err)
		return
	}
	p := &clientsPage{base: base{Nav: "clients", Notice: clientNotices[r.URL.Query().Get("done")]}, Clients: list}
	c.render(w, r, http.StatusOK, "Clients", "clients", &p.base, p)
}

// clientForm is the editable part of a client, as the form shows it.
type clientForm struct {
	Name                   string
	RedirectURIs           string // one per line
	PostLogoutRedirectURIs string
	BackchannelLogoutURI   string
	RequireMFA             bool
	RequireConsent         bool
	GrantTypes             []string // as stored: the device grant as its URN
	RequirePAR             bool
	RequireDPoP            bool
	// AuthMethod is the token endpoint auth method, storage.AuthMethodNone
	// for a public client; JWKSURI or JWKS its keys for private_key_jwt.
	AuthMethod string
	JWKSURI    string
	JWKS       string // JSON as typed, or the registered one indented
	// SigningAlg signs the app's ID tokens, JWT access tokens and logout
	// tokens ("" for the server's default, DefaultAlg, shown in its label).
	SigningAlg string
	DefaultAlg string
}

func formOf(cl *admin.Client) clientForm {
	return clientForm{Name: cl.Name, RedirectURIs: strings.Join(cl.RedirectURIs, "\n"),
		PostLogoutRedirectURIs: strings.Join(cl.PostLogoutRedirectURIs, "\n"), BackchannelLogoutURI: cl.BackchannelLogoutURI,
		RequireMFA: cl.RequireMFA, RequireConsent: cl.RequireConsent, GrantTypes: cl.GrantTypes,
		RequirePAR: cl.RequirePAR, RequireDPoP: cl.RequireDPoP, AuthMethod: cl.AuthMethod,
		JWKSURI: cl.JWKSURI, JWKS: indentJSON(cl.JWKS), SigningAlg: cl.IDTokenSigningAlg}
}

// indentJSON shows a registered JWKS readably (the store keeps it
// compact; the service compares keys, not spelling, so saving the
// indented form again changes nothing).
func indentJSON(doc json.RawMessage) string {
	var b bytes.Buffer
	if len(doc) == 0 || json.Indent(&b, doc, "", "  ") != nil {
		return string(doc)
	}
	return b.String()
}

func formFrom(r *http.Request) clientForm {
	f := r.PostForm
	form := clientForm{Name: f.Get("name"), RedirectURIs: f.Get("redirect_uris"), PostLogoutRedirectURIs: f.Get("post_logout_redirect_uris"),
		BackchannelLogoutURI: strings.TrimSpace(f.Get("backchannel_logout_uri")),
		RequireMFA:           f.Get("require_mfa") == "true", RequireConsent: f.Get("require_consent") == "true",
		RequirePAR: f.Get("require_par") == "true", RequireDPoP: f.Get("require_dpop") == "true",
		AuthMethod: f.Get("auth_method"), JWKSURI: strings.TrimSpace(f.Get("jwks_uri")), JWKS: f.Get("jwks"),
		SigningAlg: f.Get("id_token_signed_response_alg")}
	for _, g := range admin.GrantTypes() {
		if f.Get(grantField(g)) == "true" {
			form.GrantTypes = append(form.GrantTypes, g)
		}
	}
	return form
}

// grantLabels say what each grant type is for; the list of grant types
// is the admin service's (admin.GrantTypes), so a new one shows up here
// (by its name until it has a label).
var grantLabels = map[string]string{
	admin.GrantAuthorizationCode: "Authorization code: people sign in in a browser",
	admin.GrantRefreshToken:      "Refresh tokens: the app stays signed in",
	admin.GrantClientCredentials: "Client credentials: a service acting for itself (needs a secret or keys)",
	admin.GrantDeviceCode:        "Device authorization: TVs and command-line tools, approved at /device (RFC 8628)",
}

// grantField is a grant type's checkbox: one field each, so a form is
// plain name=value pairs like the other settings.
func grantField(g string) string {
	return "grant_" + strings.TrimPrefix(g, "urn:ietf:params:oauth:grant-type:")
}

type choice struct {
	Field, Value, Label string
	Checked             bool
}

// GrantChoices are the grant type checkboxes of the form.
func (f clientForm) GrantChoices() []choice {
	var out []choice
	for _, g := range admin.GrantTypes() {
		label := grantLabels[g]
		if label == "" {
			label = g
		}
		out = append(out, choice{Field: grantField(g), Value: "true", Label: label, Checked: slices.Contains(f.GrantTypes, g)})
	}
	return out
}

// authLabels are the auth methods the forms offer, in order.
var authLabels = []struct{ method, label string }{
	{storage.AuthMethodBasic, "Client secret, sent with HTTP Basic (client_secret_basic)"},
	{storage.AuthMethodPost, "Client secret, sent in the request body (client_secret_post)"},
	{storage.AuthMethodPrivateKeyJWT, "A JWT signed with the app's private key (private_key_jwt): no secret"},
	{storage.AuthMethodNone, "None: a public app (runs on people's devices; PKCE, no secret)"},
}

// AuthChoices are the auth methods a client may switch to: a new client
// any, a confidential one the confidential ones (a public client stays
// public, admin.ClientUpdate).
func (f clientForm) AuthChoices(withPublic bool) []choice {
	var out []choice
	for _, a := range authLabels {
		if a.method == storage.AuthMethodNone && !withPublic {
			continue
		}
		out = append(out, choice{Field: "auth_method", Value: a.method, Label: a.label, Checked: a.method == f.AuthMethod})
	}
	return out
}

// SigningAlgChoices are the options of the signing algorithm select: the
// server's default, then each algorithm (admin.SigningAlgorithms).
func (f clientForm) SigningAlgChoices() []choice {
	def := "Server default"
	if f.DefaultAlg != "" {
		def += " (" + f.DefaultAlg + ")"
	}
	out := []choice{{Field: "id_token_signed_response_alg", Value: "", Label: def, Checked: f.SigningAlg == ""}}
	for _, a := range admin.SigningAlgorithms() {
		out = append(out, choice{Field: "id_token_signed_response_alg", Value: a, Label: signingAlgLabels[a], Checked: f.SigningAlg == a})
	}
	return out
}

// signingAlgLabels say what each algorithm costs and who accepts it.
var signingAlgLabels = map[string]string{
	"RS256": "RS256: RSA, accepted by every OpenID Connect library",
	"ES256": "ES256: ECDSA P-256, about 25 times cheaper to sign",
	"EdDSA": "EdDSA: Ed25519, the cheapest to sign; check the app's library supports it",
}

// errNoGrant: a form with every grant unticked would otherwise get the
// default grants (an empty list means "the default" to the service),
// which is not what unticking them says.
var errNoGrant = &admin.Error{Code: admin.CodeInvalid, Field: "grant_types", Message: "tick at least one grant type"}

// uriLines are the non-empty lines of a text area.
func uriLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

type clientPage struct {
	base
	Client *admin.Client
	Form   clientForm
	// Secret is shown once: right after the client was created or its
	// secret rotated.
	Secret string
	// UsesSecret: the client authenticates with a secret, which can be
	// rotated (or made, if it has none).
	UsesSecret bool
}

func (c *Console) getClient(w http.ResponseWriter, r *http.Request) {
	c.showClient(w, r, http.StatusOK, chi.URLParam(r, "id"), nil, clientNotices[r.URL.Query().Get("done")], "", "")
}

// showClient renders a client's page; form, when not nil, is what the
// admin typed (kept after a refused change).
func (c *Console) showClient(w http.ResponseWriter, r *http.Request, status int, id string, form *clientForm, notice, errMsg, secret string) {
	cl, err := c.svc.GetClient(r.Context(), current(r).actor, id)
	if err != nil {
		c.fail(w, r, err, func(int, string) { c.pages.InternalError(w, r, "console: load client", err) })
		return
	}
	p := &clientPage{base: base{Nav: "clients", Notice: notice, Error: errMsg}, Client: cl, Form: formOf(cl), Secret: secret,
		UsesSecret: admin.UsesSecret(cl.AuthMethod)}
	if form != nil {
		p.Form = *form
	}
	p.Form.DefaultAlg = c.svc.DefaultSigningAlgorithm()
	c.render(w, r, status, cl.Name, "client", &p.base, p)
}

// postClient saves the settings of the form, checked by the rules every
// client passes (admin.ClientSpec), against the version the page showed.
// A client switched to a secret method gets its secret here, shown once.
func (c *Console) postClient(w http.ResponseWriter, r *http.Request) {
	ctx, in, id := r.Context(), current(r), chi.URLParam(r, "id")
	form := formFrom(r)
	refused := func(err error) {
		c.fail(w, r, err, func(status int, msg string) {
			kept := &form // what the admin typed, to correct
			if status == http.StatusConflict {
				kept = nil // someone else's change: show what is stored now
			}
			c.showClient(w, r, status, id, kept, "", msg, "")
		})
	}
	redirects, postLogout := uriLines(form.RedirectURIs), uriLines(form.PostLogoutRedirectURIs)
	u := admin.ClientUpdate{Name: &form.Name, RedirectURIs: &redirects, PostLogoutRedirectURIs: &postLogout,
		BackchannelLogoutURI: &form.BackchannelLogoutURI, RequireMFA: &form.RequireMFA, RequireConsent: &form.RequireConsent,
		GrantTypes: &form.GrantTypes, RequirePAR: &form.RequirePAR, RequireDPoP: &form.RequireDPoP}
	// A public client's page has no authentication fields: absent, they
	// stay as they are.
	if r.PostForm.Has("auth_method") {
		u.AuthMethod = &form.AuthMethod
	}
	if r.PostForm.Has("jwks_uri") {
		u.JWKSURI = &form.JWKSURI
	}
	if r.PostForm.Has("id_token_signed_response_alg") { // absent from forms older than the field
		u.IDTokenSigningAlg = &form.SigningAlg
	}
	if r.PostForm.Has("jwks") {
		doc := json.RawMessage(form.JWKS) // empty removes the registered JWKS
		u.JWKS = &doc
	}
	if len(form.GrantTypes) == 0 {
		refused(errNoGrant)
		return
	}
	version, err := formVersion(r)
	if err != nil {
		refused(err)
		return
	}
	cl, err := c.svc.UpdateClient(ctx, in.actor, id, u, version)
	if err != nil {
		refused(err)
		return
	}
	if admin.UsesSecret(cl.AuthMethod) && !cl.HasSecret {
		// Switched from keys to a secret: it cannot sign in without one.
		// The secret is in this answer only: never in a URL or a redirect.
		_, secret, err := c.svc.RotateSecret(ctx, in.actor, id, cl.Version)
		if err != nil {
			c.fail(w, r, err, func(status int, msg string) { c.showClient(w, r, status, id, nil, "", msg, "") })
			return
		}
		c.showClient(w, r, http.StatusOK, id, nil, "The client was saved. It authenticates with a secret now: copy it, it is not shown again.", "", secret)
		return
	}
	done(w, r, Prefix+"/clients/"+url.PathEscape(id), "updated")
}

var clientActions = map[string]destructive{
	"secret": {Title: "Rotate this client's secret?", Button: "Rotate secret",
		Message: "A new secret is made and shown once. The old one stops working at once: the app fails to sign anyone in until it has the new one."},
	"delete": {Title: "Delete this client?", Button: "Delete client",
		Message: "The client, its grants and its users' consents are deleted. Its refresh tokens stop working and the app can no longer sign anyone in. This cannot be undone."},
}

func (c *Console) getClientConfirm(w http.ResponseWriter, r *http.Request) {
	d, ok := clientActions[chi.URLParam(r, "action")]
	if !ok {
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", Prefix, "Back to the console")
		return
	}
	id := chi.URLParam(r, "id")
	cl, err := c.svc.GetClient(r.Context(), current(r).actor, id)
	if err != nil {
		c.fail(w, r, err, func(int, string) { c.pages.InternalError(w, r, "console: load client", err) })
		return
	}
	p := &confirmPage{base: base{Nav: "clients"}, destructive: d, Action: r.URL.Path,
		Subject: cl.Name + " (" + cl.ID + ")", Version: cl.Version, Back: Prefix + "/clients/" + url.PathEscape(id)}
	c.render(w, r, http.StatusOK, d.Title, "confirm", &p.base, p)
}

func (c *Console) postClientConfirmed(w http.ResponseWriter, r *http.Request) {
	action := chi.URLParam(r, "action")
	if _, ok := clientActions[action]; !ok {
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", Prefix, "Back to the console")
		return
	}
	if !confirmed(w, r) {
		return
	}
	ctx, in, id := r.Context(), current(r), chi.URLParam(r, "id")
	rerender := func(status int, msg string) { c.showClient(w, r, status, id, nil, "", msg, "") }
	version, err := formVersion(r)
	if err != nil {
		c.fail(w, r, err, rerender)
		return
	}
	switch action {
	case "secret":
		_, secret, err := c.svc.RotateSecret(ctx, in.actor, id, version)
		if err != nil {
			c.fail(w, r, err, rerender)
			return
		}
		// The secret is in this answer only: never in a URL or a redirect.
		c.showClient(w, r, http.StatusOK, id, nil, "The secret was rotated. Copy it now: it is not shown again.", "", secret)
	case "delete":
		if err := c.svc.DeleteClient(ctx, in.actor, id, version); err != nil {
			c.fail(w, r, err, rerender)
			return
		}
		done(w, r, Prefix+"/clients", "deleted")
	}
}

type newClientPage struct {
	base
	Form  clientForm
	Type  string
	Types []string
}

func (c *Console) getNewClient(w http.ResponseWriter, r *http.Request) {
	p := &newClientPage{base: base{Nav: "clients"}, Type: storage.AppTypeWeb, Types: appTypes(),
		Form: clientForm{AuthMethod: storage.AuthMethodBasic, GrantTypes: []string{admin.GrantAuthorizationCode, admin.GrantRefreshToken},
			DefaultAlg: c.svc.DefaultSigningAlgorithm()}}
	c.render(w, r, http.StatusOK, "New client", "client-new", &p.base, p)
}

func appTypes() []string {
	return []string{storage.AppTypeWeb, storage.AppTypeSPA, storage.AppTypeNative}
}

// postNewClient registers a client as the form describes it (resources,
// allowed scopes and the access token format are the CLI's and the
// API's) and shows its secret once.
func (c *Console) postNewClient(w http.ResponseWriter, r *http.Request) {
	form := formFrom(r)
	form.DefaultAlg = c.svc.DefaultSigningAlgorithm()
	p := &newClientPage{base: base{Nav: "clients"}, Form: form, Type: r.PostForm.Get("type"), Types: appTypes()}
	if !slices.Contains(p.Types, p.Type) {
		p.Type = storage.AppTypeWeb
	}
	refused := func(err error) {
		c.fail(w, r, err, func(status int, msg string) {
			p.Error = msg
			c.render(w, r, status, "New client", "client-new", &p.base, p)
		})
	}
	if len(form.GrantTypes) == 0 {
		refused(errNoGrant)
		return
	}
	spec := admin.ClientSpec{Name: form.Name, Type: p.Type, AuthMethod: form.AuthMethod,
		RedirectURIs: uriLines(form.RedirectURIs), PostLogoutRedirectURIs: uriLines(form.PostLogoutRedirectURIs),
		BackchannelLogoutURI: form.BackchannelLogoutURI, RequireMFA: form.RequireMFA, RequireConsent: form.RequireConsent,
		GrantTypes: form.GrantTypes, RequirePAR: form.RequirePAR, RequireDPoP: form.RequireDPoP,
		JWKSURI: form.JWKSURI, JWKS: json.RawMessage(form.JWKS), IDTokenSigningAlg: form.SigningAlg}
	if form.AuthMethod == storage.AuthMethodNone {
		spec.Public, spec.AuthMethod = true, "" // the spec's way of saying it
	}
	cl, secret, err := c.svc.CreateClient(r.Context(), current(r).actor, spec)
	if err != nil {
		refused(err)
		return
	}
	notice := "The client was created."
	if secret != "" {
		notice += " Copy its secret now: it is not shown again."
	}
	c.showClient(w, r, http.StatusCreated, cl.ID, nil, notice, "", secret)
}
