package adminapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// sessionJSON is a sign-in session as the API shows it (the CLI's form):
// never the cookie or its hash.
type sessionJSON struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	Expired       bool      `json:"expired"`
	AuthTime      time.Time `json:"auth_time"`
	AMR           []string  `json:"amr"`
	Upstream      string    `json:"upstream,omitempty"`
	Device        string    `json:"device"`
	IP            string    `json:"ip"`
	UserAgent     string    `json:"user_agent"`
	Apps          []appJSON `json:"apps"`
}

// appJSON is an app that received tokens in a session.
type appJSON struct {
	ClientID string `json:"client_id"`
	Name     string `json:"name,omitempty"` // "" when the client is gone
}

func toSessionJSON(s *admin.Session) sessionJSON {
	apps := make([]appJSON, 0, len(s.Apps))
	for _, x := range s.Apps {
		apps = append(apps, appJSON{ClientID: x.ClientID, Name: x.Name})
	}
	return sessionJSON{ID: s.ID, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, IdleExpiresAt: s.IdleExpiresAt,
		ExpiresAt: s.ExpiresAt, Expired: s.Expired, AuthTime: s.AuthTime, AMR: list(s.AMR), Upstream: s.Upstream,
		Device: s.Device, IP: s.IP, UserAgent: s.UserAgent, Apps: apps}
}

// listSessions: GET /users/{id}/sessions, newest first. The list is
// complete.
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	all, err := a.svc.Sessions(r.Context(), actorOf(r), chi.URLParam(r, "id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]sessionJSON, 0, len(all))
	for i := range all {
		items = append(items, toSessionJSON(&all[i]))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []sessionJSON `json:"items"`
	}{items})
}

// signOut: DELETE /users/{id}/sessions (every session and refresh token of
// the user) or DELETE /users/{id}/sessions/{sid} (that one). Neither
// changes the account, so neither takes If-Match.
func (a *API) signOut(w http.ResponseWriter, r *http.Request) {
	n, err := a.svc.SignOut(r.Context(), actorOf(r), chi.URLParam(r, "id"), chi.URLParam(r, "sid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Ended int `json:"sessions_ended"`
	}{n})
}

// setPassword: POST /users/{id}/password {"password"} with If-Match. The
// password policy's refusal is a 422 with field "password"; the user's
// sessions end.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if !decode(w, r, &body) {
		return
	}
	u, _, err := a.svc.SetPassword(r.Context(), actorOf(r), chi.URLParam(r, "id"), body.Password, version)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeUser(w, http.StatusOK, u)
}
