package adminapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

type actorKey struct{}

// authorize admits a request with a live bearer access token carrying
// storage.ScopeAdmin, and puts its actor in the context: the token's
// client, or its user, with the request's IP and user agent.
func (a *API) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			unauthorized(w, "an access token is required (Authorization: Bearer)")
			return
		}
		tok, err := a.verify.Verify(r.Context(), raw)
		if errors.Is(err, ErrDPoPBoundToken) {
			unauthorized(w, "the access token is bound to a DPoP key (RFC 9449); the admin API takes bearer tokens only: request one without a DPoP proof")
			return
		}
		if errors.Is(err, ErrInvalidToken) {
			unauthorized(w, "the access token is invalid or expired")
			return
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !slices.Contains(tok.Scopes, storage.ScopeAdmin) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+storage.ScopeAdmin+`"`)
			writeProblem(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope", "the access token lacks the scope "+storage.ScopeAdmin)
			return
		}
		actor := admin.Actor{ClientID: tok.ClientID, UserID: tok.UserID, IP: a.ip(r), UserAgent: r.UserAgent()}
		if tok.UserID != "" && !a.isAdmin(w, r, actor) {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)))
	})
}

func actorOf(r *http.Request) admin.Actor {
	a, _ := r.Context().Value(actorKey{}).(admin.Actor)
	return a
}

// bearer is the token of an "Authorization: Bearer" header (RFC 6750 §2.1;
// the scheme is case-insensitive).
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

func unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeProblem(w, http.StatusUnauthorized, "invalid_token", "Unauthorized", detail)
}

// isAdmin: a user's token serves only while the user has the admin role
// (Config.AdminRole), checked per request: op checked it when it issued
// the scope, but a user demoted since must be stopped at once.
func (a *API) isAdmin(w http.ResponseWriter, r *http.Request, actor admin.Actor) bool {
	u, err := a.svc.GetUser(r.Context(), actor, actor.UserID)
	if errors.Is(err, admin.ErrNotFound) {
		unauthorized(w, "the access token's user no longer exists")
		return false
	}
	if err != nil {
		a.writeError(w, r, err)
		return false
	}
	if u.Role != a.adminRole {
		writeProblem(w, http.StatusForbidden, "forbidden", "Forbidden", "the admin API is for users with the role "+a.adminRole)
		return false
	}
	return true
}
