package login

import (
	"html/template"
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

// What pages outside this package (the admin console, login/console) use,
// so they look, sign in, step up and defend forms exactly as these pages
// do: one session check, one CSRF rule, one layout.

// Pages wraps a handler of pages in the middleware of this package's own:
// route labels for metrics, the friendly 500 on a panic, and the security
// headers (CSP, no framing, no caching, no referrer).
func (h *Handler) Pages(next http.Handler) http.Handler {
	return h.recoverer(h.securityHeaders(next))
}

// Forms guards form posts as this package's own are guarded: refused when
// sent cross-origin (Sec-Fetch-Site / Origin) or without this browser's
// CSRF token, the body capped and parsed into r.PostForm.
func (h *Handler) Forms(next http.Handler) http.Handler {
	return h.crossOrigin.Handler(h.checkForm(next))
}

// CSRFToken is the value of a form's hidden "csrf" field for this browser
// (setting the CSRF cookie if the browser has none: call it before
// writing the response).
func (h *Handler) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	return h.csrfToken(w, r)
}

// CSRFField is the name of the hidden field that carries CSRFToken.
const CSRFField = csrfField

// RenderBody renders a page in this package's layout (brand, styles,
// logo) with body, already-escaped HTML from the caller's own template,
// as its content. wide gives the wider card of the account page.
func (h *Handler) RenderBody(w http.ResponseWriter, r *http.Request, status int, title string, wide bool, body template.HTML) {
	h.render(w, r, status, "embed", &view{Title: title, Wide: wide, Body: body})
}

// RenderMessage renders a message page with a way on: link (with
// linkText) when given, else the account or sign-in page.
func (h *Handler) RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message, link, linkText string) {
	if link == "" {
		h.renderMessage(w, r, status, title, message, h.wayOn(r)...)
		return
	}
	h.renderMessage(w, r, status, title, message, linkView{Href: link, Text: linkText})
}

// InternalError logs err (with attrs) and renders the generic 500 page
// naming the request ID, as this package's pages do.
func (h *Handler) InternalError(w http.ResponseWriter, r *http.Request, what string, err error, attrs ...any) {
	h.internalError(w, r, what, err, attrs...)
}

// StrongSession returns the browser's session and user for a page that
// needs a user allowed by allowed, signed in with two factors. Otherwise
// it answers and returns ok=false:
//   - no session: to the sign-in page, coming back to ret;
//   - a user allowed refuses: 403 with a plain message (the page exists;
//     saying so tells nothing an attacker could not see);
//   - a session with one factor, of a user who has a second one: to the
//     second-factor page (step-up, no password again), back to ret;
//   - a user with no second factor: a page saying to set one up first.
//
// ret must be a same-site path (safeReturn); anything else returns to the
// account page.
func (h *Handler) StrongSession(w http.ResponseWriter, r *http.Request, ret string, allowed func(*storage.User) bool, forbidden string) (*storage.Session, *storage.User, bool) {
	ret = safeReturn(ret)
	if ret == "" {
		ret = defaultReturn
	}
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return nil, nil, false
	}
	if user == nil {
		http.Redirect(w, r, next{Return: ret}.loginURL(), http.StatusSeeOther)
		return nil, nil, false
	}
	if !allowed(user) {
		h.renderMessage(w, r, http.StatusForbidden, "Not available", forbidden, linkView{Href: defaultReturn, Text: "Go to your account"})
		return nil, nil, false
	}
	if authn.Satisfies(authn.ACRFor(sess.AMR), []string{authn.ACRMFA}) {
		return sess, user, true
	}
	f, err := h.userFactors(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return nil, nil, false
	}
	if f.canReach(authn.ACRMFA) {
		http.Redirect(w, r, next{Return: ret}.url("/login/factor"), http.StatusSeeOther)
		return nil, nil, false
	}
	h.renderMessage(w, r, http.StatusForbidden, "Set up a second factor first",
		"This page needs a sign-in with two factors. Add an authenticator app or a passkey to your account, then come back.",
		linkView{Href: "/account/security/setup?" + url.Values{"return": {ret}}.Encode(), Text: "Set up a second factor"})
	return nil, nil, false
}
