package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

// The SSO session cookie holds 32 random bytes (base64url); the store keeps only
// their SHA-256. The cookie value changes at every sign-in (session fixation).

func hashToken(v string) []byte {
	s := sha256.Sum256([]byte(v))
	return s[:]
}

// sessionFromCookie returns the stored session the browser's cookie names, in
// whatever state it is (expired included), or nil.
func (h *Handler) sessionFromCookie(ctx context.Context, r *http.Request) (*storage.Session, error) {
	th := h.cookieTokenHash(r)
	if th == nil {
		return nil, nil
	}
	s, err := h.store.GetSessionByTokenHash(ctx, th)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return s, err
}

// cookieTokenHash is the stored form (Session.TokenHash) of the browser's
// session cookie, or nil when it has no well-formed one.
func (h *Handler) cookieTokenHash(r *http.Request) []byte {
	c, err := r.Cookie(h.cookieName(SessionCookie))
	if err != nil {
		return nil
	}
	raw, err := b64.DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		return nil
	}
	return hashToken(c.Value)
}

// currentSession returns the browser's live session and its user, or nils
// when there is none (no cookie, unknown, expired, user deleted or
// disabled). An error is a store failure. Using the session moves its idle
// expiry forward.
func (h *Handler) currentSession(ctx context.Context, r *http.Request) (*storage.Session, *storage.User, error) {
	su, err := h.currentSignIn(ctx, r)
	if su == nil {
		return nil, nil, err
	}
	return su.Session, su.User, nil
}

// currentSignIn is currentSession with whether the user has a second
// factor, all read in one statement (Store.GetSessionWithUser): what an
// SSO sign-in decides on (SilentSignIn).
func (h *Handler) currentSignIn(ctx context.Context, r *http.Request) (*storage.SessionWithUser, error) {
	th := h.cookieTokenHash(r)
	if th == nil {
		return nil, nil
	}
	su, err := h.store.GetSessionWithUser(ctx, th)
	if errors.Is(err, storage.ErrNotFound) { // unknown, or its user deleted
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, now := su.Session, h.now()
	if !s.Live(now) {
		return nil, nil
	}
	if su.User.Disabled() {
		// Disabling ends the user's sessions; one started by a sign-in
		// that passed its checks just before is signed out here.
		return nil, nil
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		idle := h.idleExpiry(now, s.ExpiresAt)
		if err := h.store.TouchSession(ctx, s.ID, now, idle); err != nil {
			// Not fatal: the session stays valid until its old idle expiry.
			h.log.WarnContext(ctx, "touch session", "session_id", s.ID, "err", err)
		} else {
			s.LastSeenAt, s.IdleExpiresAt = now, idle
		}
	}
	return su, nil
}

func (h *Handler) idleExpiry(now, absolute time.Time) time.Time {
	idle := now.Add(h.cfg.SessionIdle)
	if idle.After(absolute) {
		return absolute
	}
	return idle
}

// startSession replaces the browser's session (if any) with a new one for
// user, authenticated now by amr (through upstream idp, "" for Gatehouse's
// own password), and sets the cookie. Registration, password reset and other
// sign-in methods finish through here too.
//
// A new cookie value always (a planted cookie never becomes the signed-in
// session). The session ID — the sid apps hold — is kept when the same user
// signs in again (prompt=login, a fresh sign-in for max_age), so signing out
// later still reaches the apps of the earlier sign-in; another user's
// session in this browser ends, and its apps are told.
func (h *Handler) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, user *storage.User, amr []string, idp string) (*storage.Session, error) {
	now := h.now()
	token := randomToken(32)
	s := &storage.Session{
		ID:         randomToken(16),
		TokenHash:  hashToken(token),
		UserID:     user.ID,
		AuthTime:   now,
		AMR:        amr,
		IDP:        idp,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(h.cfg.SessionMax),
		// Where it was signed in from, for the session list; the store
		// cleans and clips the user agent.
		UserAgent: r.UserAgent(),
		IP:        h.clientAddr(r),
	}
	s.IdleExpiresAt = h.idleExpiry(now, s.ExpiresAt)
	old, err := h.sessionFromCookie(ctx, r)
	if err != nil {
		return nil, err
	}
	renewed := false
	if old != nil && old.UserID == user.ID {
		// Renewed in place: the sid stays and codes in flight survive. An
		// expired one (ErrNotFound) is ended below like any other.
		s.ID, s.CreatedAt = old.ID, old.CreatedAt
		switch err := h.store.RenewSession(ctx, s, now); {
		case err == nil:
			renewed = true
		case errors.Is(err, storage.ErrNotFound):
			s.ID, s.CreatedAt = randomToken(16), now
		default:
			return nil, err
		}
	}
	if old != nil && !renewed {
		reason := "replaced"
		if old.UserID == user.ID {
			reason = "expired"
		}
		if _, err := h.flow.EndSession(ctx, old, reason); err != nil {
			return nil, err
		}
	}
	if !renewed {
		if err := h.store.CreateSession(ctx, s); err != nil {
			return nil, err
		}
	}
	// The cookie lives as long as the session can (SessionMax), so the
	// browser keeps it across restarts; the server enforces the idle and
	// absolute expiries either way.
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName(SessionCookie),
		Value:    token,
		Path:     "/",
		MaxAge:   int(h.cfg.SessionMax / time.Second),
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return s, nil
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName(SessionCookie),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// cookieName adds the __Host- prefix on https: the browser then accepts the
// cookie only from this host, Secure, for path /, so a sibling subdomain
// cannot plant a session (logging the victim into an attacker's account) or
// a known CSRF value.
func (h *Handler) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

// secondStepSession replaces sess, whose user has just proved a second
// factor m, with a new session (a new cookie value) that records it: a
// session cookie planted before the second step — by someone who knew the
// password — must not become the victim's two-factor session. The ID (the
// sid apps of a step-up already hold), sign-in time, absolute expiry and
// where it was signed in from stay those of sess.
// secondStepFailed answers a secondStepSession that failed: a session
// that ended meanwhile (signed out in another tab, ended by an admin or by
// expiry) sends the browser to sign in again, as a missing session does;
// anything else is ours.
func (h *Handler) secondStepFailed(w http.ResponseWriter, r *http.Request, fc *flowContext, err error, attrs ...any) {
	if errors.Is(err, storage.ErrNotFound) {
		http.Redirect(w, r, fc.next.loginURL(), http.StatusSeeOther)
		return
	}
	h.internalError(w, r, "second factor: update session", err, attrs...)
}

func (h *Handler) secondStepSession(ctx context.Context, w http.ResponseWriter, sess *storage.Session, m ...string) (*storage.Session, error) {
	now := h.now()
	token := randomToken(32)
	s := &storage.Session{
		ID:         sess.ID,
		TokenHash:  hashToken(token),
		UserID:     sess.UserID,
		AuthTime:   sess.AuthTime,
		AMR:        authn.AddFactor(sess.AMR, m...),
		IDP:        sess.IDP,
		LastSeenAt: now,
		ExpiresAt:  sess.ExpiresAt,
		UserAgent:  sess.UserAgent,
		IP:         sess.IP,
	}
	s.IdleExpiresAt = h.idleExpiry(now, s.ExpiresAt)
	s.CreatedAt = sess.CreatedAt
	// In place: the session ended meanwhile (ErrNotFound) is an error, the
	// user signs in again.
	if err := h.store.RenewSession(ctx, s, now); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName(SessionCookie),
		Value:    token,
		Path:     "/",
		MaxAge:   max(int(s.ExpiresAt.Sub(now)/time.Second), 1),
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return s, nil
}
