package op

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// endSession serves OpenID Connect RP-Initiated Logout 1.0.
//
// With a valid id_token_hint the session named by its sid claim ends even when
// the browser sends no cookie (an RP on another site, third-party cookies
// blocked), and the browser goes straight to a registered
// post_logout_redirect_uri; the session's apps get a logout token, as after the
// sign-out page. Without a valid hint nobody has proven that the user wants to
// leave, so the login UI asks for confirmation first.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-out request is malformed.", "")
		return
	}
	hint := r.Form.Get("id_token_hint")
	clientID := r.Form.Get("client_id")
	redirectURI := r.Form.Get("post_logout_redirect_uri")
	state := r.Form.Get("state")

	var claims *oidc.IDTokenClaims
	if hint != "" {
		c, err := zop.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, p.zp.IDTokenHintVerifier(ctx))
		if err == nil || errors.As(err, &zop.IDTokenHintExpiredError{}) {
			claims = c
		}
		// An expired hint still names its session (RPs keep ID tokens longer
		// than their lifetime), but not one older than any session can live.
		if claims != nil && p.cfg.HintMaxAge > 0 && p.now().Sub(claims.IssuedAt.AsTime()) > p.cfg.HintMaxAge {
			claims = nil
		}
	}
	if claims != nil {
		azp := claims.AuthorizedParty
		if azp == "" && len(claims.Audience) > 0 {
			azp = claims.Audience[0]
		}
		if clientID != "" && clientID != azp {
			p.errorPage(w, r, http.StatusBadRequest, "The sign-out request is inconsistent: client_id does not match the id_token_hint.", "")
			return
		}
		clientID = azp
	}
	if redirectURI != "" {
		if clientID == "" {
			p.errorPage(w, r, http.StatusBadRequest, "A post_logout_redirect_uri needs a client_id or an id_token_hint.", "")
			return
		}
		c, err := p.client(ctx, clientID)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				p.errorPage(w, r, http.StatusBadRequest, "The application that sent you here is not registered (unknown client_id).", "")
				return
			}
			p.failurePage(w, r, "end_session: load client", err)
			return
		}
		if !slices.Contains(c.PostLogoutRedirectURIs(), redirectURI) {
			p.errorPage(w, r, http.StatusBadRequest, "The post_logout_redirect_uri is not registered for this application.", "")
			return
		}
	}
	if claims == nil {
		q := url.Values{}
		for k, v := range map[string]string{"client_id": clientID, "post_logout_redirect_uri": redirectURI, "state": state} {
			if v != "" {
				q.Set(k, v)
			}
		}
		target := p.cfg.Issuer + p.cfg.LogoutPath
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	if sid, _ := claims.Claims["sid"].(string); sid != "" {
		now := p.now()
		if err := p.store.RevokeGrantsBySession(ctx, sid, now); err != nil {
			p.failurePage(w, r, "end_session: revoke grants", err)
			return
		}
		switch err := p.store.DeleteSession(ctx, sid); {
		case err == nil:
			// This request ended the session: its apps are told
			// (back-channel logout). A session that had already ended
			// told them then.
			p.SessionEnded(ctx, &storage.Session{ID: sid, UserID: claims.Subject}, "logout")
		case !errors.Is(err, storage.ErrNotFound):
			p.failurePage(w, r, "end_session: delete session", err)
			return
		}
		p.audit(ctx, storage.AuditEvent{Action: storage.AuditSessionEnded, Actor: claims.Subject, Subject: claims.Subject, ClientID: clientID, Detail: map[string]string{"session_id": sid, "via": "end_session"}})
	}
	if redirectURI == "" {
		p.page(w, r, http.StatusOK, "Signed out", "You have been signed out.", "")
		return
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The post_logout_redirect_uri is invalid.", "")
		return
	}
	if state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}
