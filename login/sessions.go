package login

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/storage"
)

// "Where you're signed in": the account page lists the user's live
// sessions — device, address, when, and the apps used in each — and ends
// any other one, or all others, through Flow.EndSession, so their apps get
// back-channel logout as at a sign-out there. This browser's own session
// is not offered: the page's Sign out button ends it.

const (
	// msgSessionGone answers a session ID that is not one of the user's
	// sessions, whether it never existed, has ended or is someone else's:
	// one answer, so the form cannot be used to learn anything.
	msgSessionGone = "That session has already ended."
	// msgSessionIsThis answers a post naming this browser's own session.
	msgSessionIsThis = "This is the session you are using. To sign out of this browser, use Sign out at the bottom of the page."
	// endedRemotely is the reason recorded with the logout deliveries.
	endedRemotely = "signed_out_remotely"
	// maxListedSessions bounds the list (and the look-ups behind it); the
	// rest are counted, and "Sign out of all other sessions" ends them too.
	maxListedSessions = 50
)

// SessionApp is an app (client) that received tokens in a session.
type SessionApp struct {
	ClientID string `json:"client_id"`
	Name     string `json:"name,omitempty"` // "" if the client is gone
}

// Label is what a person calls the app: its name, else its client ID.
func (a SessionApp) Label() string {
	if a.Name != "" {
		return a.Name
	}
	return a.ClientID
}

// SessionApps lists the apps that received tokens in the session, by name
// (then client ID). The account page and `gatehouse users sessions` both
// use it.
func SessionApps(ctx context.Context, st storage.Store, sessionID string) ([]SessionApp, error) {
	ids, err := st.ClientsOfSession(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("apps of session: %w", err)
	}
	apps := make([]SessionApp, 0, len(ids))
	for _, id := range ids {
		a := SessionApp{ClientID: id}
		c, err := st.GetClient(ctx, id)
		switch {
		case err == nil:
			a.Name = c.Name
		case !errors.Is(err, storage.ErrNotFound):
			return nil, fmt.Errorf("apps of session: client %s: %w", id, err)
		}
		apps = append(apps, a)
	}
	slices.SortFunc(apps, func(a, b SessionApp) int {
		return cmp.Or(strings.Compare(a.Label(), b.Label()), strings.Compare(a.ClientID, b.ClientID))
	})
	return apps, nil
}

// sessionView is one row of the session list.
type sessionView struct {
	ID         string
	Device     string
	IP         string
	Created    string
	LastActive string
	Apps       string // names, comma-separated; "" for none
	Current    bool   // this browser's session
}

// accountSessions fills the session list: the user's live sessions, newest
// first. The browser's own one is told by its cookie's hash, so the list
// needs no second look-up; the comparison is constant-time as for any
// cookie value.
func (h *Handler) accountSessions(r *http.Request, user *storage.User, v *view) error {
	ctx := r.Context()
	list, err := h.store.ListSessionsByUser(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	now := h.now()
	cur := h.cookieTokenHash(r)
	for i := range list {
		s := &list[i]
		if !s.Live(now) {
			continue
		}
		current := cur != nil && subtle.ConstantTimeCompare(s.TokenHash, cur) == 1
		if !current {
			v.OtherSessions++
		}
		if len(v.Sessions) >= maxListedSessions && !current {
			v.MoreSessions++
			continue
		}
		apps, err := SessionApps(ctx, h.store, s.ID)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(apps))
		for _, a := range apps {
			names = append(names, a.Label())
		}
		v.Sessions = append(v.Sessions, sessionView{
			ID: s.ID, Device: DeviceName(s.UserAgent), IP: s.IP,
			Created: s.CreatedAt.UTC().Format(timeFormat), LastActive: s.LastSeenAt.UTC().Format(timeFormat),
			Apps: strings.Join(names, ", "), Current: current,
		})
	}
	return nil
}

// postEndSession ends one other session of the signed-in user.
func (h *Handler) postEndSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, user, ok := h.accountUser(w, r)
	if !ok || !h.sessionFormAllowed(w, r, user) {
		return
	}
	id := r.PostForm.Get("session")
	if id == sess.ID {
		h.renderAccount(w, r, http.StatusBadRequest, user, &view{Error: msgSessionIsThis})
		return
	}
	target, err := h.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && target.UserID != user.ID) {
		h.renderAccount(w, r, http.StatusConflict, user, &view{Error: msgSessionGone})
		return
	}
	if err != nil {
		h.internalError(w, r, "session list: load session", err, "user_id", user.ID)
		return
	}
	ended, err := h.endOtherSession(r, user, target)
	if err != nil {
		h.internalError(w, r, "session list: end session", err, "user_id", user.ID)
		return
	}
	if !ended {
		h.renderAccount(w, r, http.StatusConflict, user, &view{Error: msgSessionGone})
		return
	}
	http.Redirect(w, r, "/account?notice=session-ended", http.StatusSeeOther)
}

// postEndOtherSessions ends every session of the signed-in user but this
// browser's.
func (h *Handler) postEndOtherSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, user, ok := h.accountUser(w, r)
	if !ok || !h.sessionFormAllowed(w, r, user) {
		return
	}
	list, err := h.store.ListSessionsByUser(ctx, user.ID)
	if err != nil {
		h.internalError(w, r, "session list: list sessions", err, "user_id", user.ID)
		return
	}
	for i := range list {
		if list[i].ID == sess.ID {
			continue
		}
		if _, err := h.endOtherSession(r, user, &list[i]); err != nil {
			h.internalError(w, r, "session list: end session", err, "user_id", user.ID)
			return
		}
	}
	http.Redirect(w, r, "/account?notice=sessions-ended", http.StatusSeeOther)
}

// sessionFormAllowed spends the account forms' per-user rate limit (ending
// sessions writes to the store and queues deliveries), or answers.
func (h *Handler) sessionFormAllowed(w http.ResponseWriter, r *http.Request, user *storage.User) bool {
	if ok, wait := h.allow(r.Context(), limitKey{h.rules.accountUser, user.ID}); !ok {
		status, msg := tooMany(w, wait)
		h.renderAccount(w, r, status, user, &view{Error: msg})
		return false
	}
	return true
}

// endOtherSession ends s, one of user's sessions, from the session list,
// and records it. ended is false when it had already ended.
func (h *Handler) endOtherSession(r *http.Request, user *storage.User, s *storage.Session) (bool, error) {
	ctx := r.Context()
	ended, err := h.flow.EndSession(ctx, s, endedRemotely)
	if err != nil || !ended {
		return false, err
	}
	h.log.InfoContext(ctx, "session ended from the session list", "user_id", user.ID, "session_id", s.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSessionEnded, Actor: user.ID, Subject: user.ID,
		Detail: map[string]string{"session_id": s.ID, "via": "session_list"}})
	return true, nil
}
