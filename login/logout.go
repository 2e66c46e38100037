package login

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse-id/gatehouse/storage"
)

// getLogout asks the user to confirm signing out. The OP's end_session
// endpoint sends the browser here when the request did not prove the user
// wants to leave (no valid id_token_hint). With nobody signed in there is
// nothing to confirm: the browser goes on to the app (a registered
// post_logout_redirect_uri) or sees that it is signed out.
func (h *Handler) getLogout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := &view{
		Title:                 "Sign out",
		ClientID:              q.Get("client_id"),
		PostLogoutRedirectURI: q.Get("post_logout_redirect_uri"),
		State:                 q.Get("state"),
	}
	hint := q.Get("logout_hint")
	if len(v.ClientID)+len(v.PostLogoutRedirectURI)+len(v.State)+len(hint) > 8<<10 {
		h.renderError(w, r, http.StatusBadRequest, "Bad request", "This sign-out link is too long.", "")
		return
	}
	_, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	target, err := h.postLogoutTarget(r, v.ClientID, v.PostLogoutRedirectURI, v.State)
	if err != nil {
		h.internalError(w, r, "load client", err, "client_id", v.ClientID)
		return
	}
	if user == nil {
		if target != "" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		h.renderMessage(w, r, http.StatusOK, "Signed out", "You are not signed in.", linkView{Href: "/login?return=" + url.QueryEscape(defaultReturn), Text: "Sign in"})
		return
	}
	v.SignedInAs = user.Email
	if v.ClientID != "" {
		if c, err := h.store.GetClient(r.Context(), v.ClientID); err == nil {
			v.ClientName = c.Name
		}
	}
	// RP-Initiated Logout 1.0 logout_hint: the app says whom it means. When
	// that is not who is signed in here, say so; the choice stays the
	// user's (the hint is unauthenticated).
	if hint != "" && !hintNames(hint, user) {
		v.Lead = "The app asked to sign out a different account."
	}
	h.allowFormAction(w, target)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, http.StatusOK, "logout", v)
}

// hintNames reports whether a logout_hint names user: by email or by the
// subject identifier apps receive.
func hintNames(hint string, user *storage.User) bool {
	return NormalizeEmail(hint) == user.Email || hint == user.ID
}

// postLogout ends the browser's session and the grants issued from it.
func (h *Handler) postLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, err := h.sessionFromCookie(ctx, r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	if sess != nil {
		ended, err := h.flow.EndSession(ctx, sess, "logout")
		if err != nil {
			h.internalError(w, r, "sign-out", err, "session_id", sess.ID)
			return
		}
		if ended {
			h.log.InfoContext(ctx, "signed out", "user_id", sess.UserID, "session_id", sess.ID)
			h.audit(r, storage.AuditEvent{Action: storage.AuditSessionEnded, Actor: sess.UserID, Subject: sess.UserID, Detail: map[string]string{"session_id": sess.ID, "via": "sign_out"}})
		}
	}
	h.clearSessionCookie(w)

	f := r.PostForm
	target, err := h.postLogoutTarget(r, f.Get("client_id"), f.Get("post_logout_redirect_uri"), f.Get("state"))
	if err != nil {
		h.internalError(w, r, "load client", err, "client_id", f.Get("client_id"))
		return
	}
	if target != "" {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	h.renderMessage(w, r, http.StatusOK, "Signed out", "You have been signed out.", linkView{Href: "/login?return=" + url.QueryEscape(defaultReturn), Text: "Sign in again"})
}

// postLogoutTarget returns where to send the browser after sign-out:
// redirectURI with state appended when it is exactly one of clientID's
// registered post-logout redirect URIs, otherwise "".
func (h *Handler) postLogoutTarget(r *http.Request, clientID, redirectURI, state string) (string, error) {
	if clientID == "" || redirectURI == "" {
		return "", nil
	}
	c, err := h.store.GetClient(r.Context(), clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !slices.Contains(c.PostLogoutRedirectURIs, redirectURI) {
		h.log.InfoContext(r.Context(), "sign-out: post_logout_redirect_uri not registered", "client_id", clientID)
		return "", nil
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", nil
	}
	if state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
