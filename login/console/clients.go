package console

import (
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
}

func formOf(cl *admin.Client) clientForm {
	return clientForm{Name: cl.Name, RedirectURIs: strings.Join(cl.RedirectURIs, "\n"),
		PostLogoutRedirectURIs: strings.Join(cl.PostLogoutRedirectURIs, "\n"), BackchannelLogoutURI: cl.BackchannelLogoutURI,
		RequireMFA: cl.RequireMFA, RequireConsent: cl.RequireConsent}
}

func formFrom(r *http.Request) clientForm {
	f := r.PostForm
	return clientForm{Name: f.Get("name"), RedirectURIs: f.Get("redirect_uris"), PostLogoutRedirectURIs: f.Get("post_logout_redirect_uris"),
		BackchannelLogoutURI: strings.TrimSpace(f.Get("backchannel_logout_uri")),
		RequireMFA:           f.Get("require_mfa") == "true", RequireConsent: f.Get("require_consent") == "true"}
}

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
	p := &clientPage{base: base{Nav: "clients", Notice: notice, Error: errMsg}, Client: cl, Form: formOf(cl), Secret: secret}
	if form != nil {
		p.Form = *form
	}
	c.render(w, r, status, cl.Name, "client", &p.base, p)
}

// postClient saves the settings of the form, checked by the rules every
// client passes (admin.ClientSpec), against the version the page showed.
func (c *Console) postClient(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	form := formFrom(r)
	redirects, postLogout := uriLines(form.RedirectURIs), uriLines(form.PostLogoutRedirectURIs)
	u := admin.ClientUpdate{Name: &form.Name, RedirectURIs: &redirects, PostLogoutRedirectURIs: &postLogout,
		BackchannelLogoutURI: &form.BackchannelLogoutURI, RequireMFA: &form.RequireMFA, RequireConsent: &form.RequireConsent}
	version, err := formVersion(r)
	if err == nil {
		_, err = c.svc.UpdateClient(r.Context(), current(r).actor, id, u, version)
	}
	if err != nil {
		c.fail(w, r, err, func(status int, msg string) {
			kept := &form // what the admin typed, to correct
			if status == http.StatusConflict {
				kept = nil // someone else's change: show what is stored now
			}
			c.showClient(w, r, status, id, kept, "", msg, "")
		})
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
	Form         clientForm
	Type         string
	Types        []string
	Confidential bool
}

func (c *Console) getNewClient(w http.ResponseWriter, r *http.Request) {
	p := &newClientPage{base: base{Nav: "clients"}, Type: storage.AppTypeWeb, Types: appTypes(), Confidential: true}
	c.render(w, r, http.StatusOK, "New client", "client-new", &p.base, p)
}

func appTypes() []string {
	return []string{storage.AppTypeWeb, storage.AppTypeSPA, storage.AppTypeNative}
}

// postNewClient registers a client for the authorization code flow (the
// CLI and the API cover the rest, such as client_credentials) and shows
// its secret once.
func (c *Console) postNewClient(w http.ResponseWriter, r *http.Request) {
	form := formFrom(r)
	p := &newClientPage{base: base{Nav: "clients"}, Form: form, Type: r.PostForm.Get("type"), Types: appTypes(),
		Confidential: r.PostForm.Get("confidential") == "true"}
	if !slices.Contains(p.Types, p.Type) {
		p.Type = storage.AppTypeWeb
	}
	spec := admin.ClientSpec{Name: form.Name, Type: p.Type, Public: !p.Confidential,
		RedirectURIs: uriLines(form.RedirectURIs), PostLogoutRedirectURIs: uriLines(form.PostLogoutRedirectURIs),
		BackchannelLogoutURI: form.BackchannelLogoutURI, RequireMFA: form.RequireMFA, RequireConsent: form.RequireConsent}
	cl, secret, err := c.svc.CreateClient(r.Context(), current(r).actor, spec)
	if err != nil {
		c.fail(w, r, err, func(status int, msg string) {
			p.Error = msg
			c.render(w, r, status, "New client", "client-new", &p.base, p)
		})
		return
	}
	notice := "The client was created."
	if secret != "" {
		notice += " Copy its secret now: it is not shown again."
	}
	c.showClient(w, r, http.StatusCreated, cl.ID, nil, notice, "", secret)
}
