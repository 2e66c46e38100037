package op

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// endSession serves OpenID Connect RP-Initiated Logout 1.0.
//
// With a valid id_token_hint the session named by its sid claim ends even when
// the browser sends no cookie (an RP on another site, third-party cookies
// blocked), and the browser goes straight to a registered
// post_logout_redirect_uri. Without a valid hint nobody has proven that the
// user wants to leave, so the login UI asks for confirmation first.
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
	if hint != "" && isIDTokenShaped(hint) {
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
		params := map[string]string{"client_id": clientID, "post_logout_redirect_uri": redirectURI, "state": state, "logout_hint": r.Form.Get("logout_hint")}
		for k, v := range params {
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
	// The hint names the session; one already ended (by another app, by
	// expiry) makes this a no-op, not an error.
	if sid, _ := claims.Claims["sid"].(string); sid != "" {
		sess, err := p.store.GetSession(ctx, sid)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			p.failurePage(w, r, "end_session: load session", err)
			return
		case sess.UserID != claims.Subject:
			// Cannot happen with hints we signed; refuse to act on it.
			p.log.WarnContext(ctx, "end_session: id_token_hint sid names another user's session", "client_id", clientID)
		default:
			ended, err := p.sessions.EndSession(ctx, sess, "logout")
			if err != nil {
				p.failurePage(w, r, "end_session: end session", err)
				return
			}
			if ended {
				p.audit(ctx, storage.AuditEvent{Action: storage.AuditSessionEnded, Actor: claims.Subject, Subject: claims.Subject, ClientID: clientID, Detail: map[string]string{"session_id": sid, "via": "end_session"}})
			}
		}
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

// isIDTokenShaped reports whether the JWS header of a hint allows it to be an
// ID token: typ absent or "JWT", as Gatehouse's ID tokens have. Logout
// tokens (logout+jwt) and access tokens (at+jwt) are signed by the same key,
// and zitadel's hint verifier does not look at typ; neither may name a
// session to end without asking.
func isIDTokenShaped(raw string) bool {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ *string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	return h.Typ == nil || strings.EqualFold(*h.Typ, "JWT")
}
