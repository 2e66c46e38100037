package op

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// SessionEnder is the one place that ends SSO sessions. Ending a session
// means, in this order:
//
//  1. queue a logout token for each of its apps with a back-channel logout
//     URI (first, so a crash after it can at worst tell an app twice, never
//     forget to tell it; RPs treat logout as idempotent);
//  2. revoke the tokens that end with it (see EndSession and EndUserSessions
//     for which);
//  3. delete the session, and the codes issued in it but not yet redeemed.
//
// The server (Provider), the login UI (through login.Flow) and the CLI use
// it, so what ends at sign-out cannot differ between them.
type SessionEnder struct {
	store  storage.Store
	minter *backchannel.Minter
	now    func() time.Time
	log    *slog.Logger
	// queued is called after deliveries were queued (the server wakes its
	// delivery worker); nil for none.
	queued func()
}

// NewSessionEnder returns a SessionEnder signing logout tokens with minter.
// queued, when not nil, is called whenever deliveries were queued.
func NewSessionEnder(store storage.Store, minter *backchannel.Minter, now func() time.Time, log *slog.Logger, queued func()) *SessionEnder {
	return &SessionEnder{store: store, minter: minter, now: now, log: log, queued: queued}
}

// EndSession ends one session (sign-out, RP-initiated logout, "sign out" in
// the session list, expiry). Its grants are revoked except offline_access
// grants of clients with OfflineSurvivesLogout (OpenID Connect Core §11);
// the user's other sessions are untouched. reason is recorded with the
// deliveries ("logout", "expired", …). A session that is already gone is
// not an error and queues nothing: ended reports whether this call ended it.
func (e *SessionEnder) EndSession(ctx context.Context, sess *storage.Session, reason string) (ended bool, err error) {
	return e.endSession(ctx, sess.ID, reason, nil)
}

// endSession ends session id if it still exists and, when due is not nil,
// due says its current row should still end (the caller's copy may be
// stale: another path may have ended it, or a sign-in renewed it).
func (e *SessionEnder) endSession(ctx context.Context, id, reason string, due func(*storage.Session) bool) (bool, error) {
	sess, err := e.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("end session: %w", err)
	}
	if due != nil && !due(sess) {
		return false, nil
	}
	e.notify(ctx, []storage.Session{*sess}, reason)
	if err := e.store.RevokeGrantsBySession(ctx, sess.ID, e.now()); err != nil {
		return false, fmt.Errorf("end session: revoke grants: %w", err)
	}
	if err := e.store.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, fmt.Errorf("end session: delete: %w", err)
	}
	// A code redeemed just before the delete may have created its grant
	// after the first revocation; the delete stops any later code, so this
	// second pass leaves no live grant of the ended session behind.
	if err := e.store.RevokeGrantsBySession(ctx, sess.ID, e.now()); err != nil {
		return false, fmt.Errorf("end session: revoke grants: %w", err)
	}
	return true, nil
}

// EndUserSessions ends every session of the user and revokes every grant,
// offline ones too: what follows a password change or reset, a second-factor
// reset, account deletion or an admin's sign-out, after which nothing issued
// before may go on. It returns how many sessions ended.
func (e *SessionEnder) EndUserSessions(ctx context.Context, userID, reason string) (int, error) {
	list, err := e.store.ListSessionsByUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("end sessions: list: %w", err)
	}
	e.notify(ctx, list, reason)
	if err := e.store.RevokeGrantsByUser(ctx, userID, e.now()); err != nil {
		return 0, fmt.Errorf("end sessions: revoke grants: %w", err)
	}
	if err := e.store.DeleteSessionsByUser(ctx, userID); err != nil {
		return 0, fmt.Errorf("end sessions: delete: %w", err)
	}
	return len(list), nil
}

// expiryBatch and expiryBatches bound one EndExpiredSessions run; the rest
// waits for the next one.
const (
	expiryBatch   = 200
	expiryBatches = 50
)

// EndExpiredSessions ends the sessions past their idle or absolute expiry,
// as EndSession does (reason "expired"), and returns how many. The cleanup
// job calls it under its lock: expired sessions are not swept silently.
func (e *SessionEnder) EndExpiredSessions(ctx context.Context) (int, error) {
	total := 0
	for range expiryBatches {
		list, err := e.store.ListExpiredSessions(ctx, e.now(), expiryBatch)
		if err != nil {
			return total, fmt.Errorf("end expired sessions: %w", err)
		}
		// A session renewed by a sign-in since it was listed is live
		// again: ending it now would sign out the user who just signed in.
		now := e.now()
		expired := func(s *storage.Session) bool { return !s.Live(now) }
		for i := range list {
			ended, err := e.endSession(ctx, list[i].ID, "expired", expired)
			if err != nil {
				return total, err
			}
			if ended {
				total++
			}
		}
		if len(list) < expiryBatch {
			break
		}
	}
	return total, nil
}

// notify queues the logout tokens for sessions. A failure is logged, never
// returned: a sign-out must not fail because an app could not be told.
func (e *SessionEnder) notify(ctx context.Context, sessions []storage.Session, reason string) {
	queued := 0
	for i := range sessions {
		n, err := QueueSessionLogout(ctx, e.store, e.minter, e.now(), &sessions[i], reason)
		if err != nil {
			e.log.ErrorContext(ctx, "back-channel logout not queued", "session_id", sessions[i].ID, "user_id", sessions[i].UserID, "reason", reason, "err", err)
			continue
		}
		if n > 0 {
			e.log.InfoContext(ctx, "back-channel logout queued", "session_id", sessions[i].ID, "clients", n, "reason", reason)
		}
		queued += n
	}
	if queued > 0 && e.queued != nil {
		e.queued()
	}
}

// touchEvery throttles refresh-driven session touches to one write a minute
// per session and instance, as the login UI does for page views.
const touchEvery = time.Minute

// maxTouched bounds the throttle's memory; it starts over when full (a few
// more writes, never unbounded growth).
const maxTouched = 10000

// sessionTouches remembers when each session was last touched here.
type sessionTouches struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether sessionID should be touched at now, and if so records it.
func (st *sessionTouches) due(sessionID string, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if t, ok := st.last[sessionID]; ok && now.Sub(t) < touchEvery {
		return false
	}
	if st.last == nil || len(st.last) >= maxTouched {
		st.last = make(map[string]time.Time)
	}
	st.last[sessionID] = now
	return true
}

// sessionUsed records a refresh in sessionID as activity: a user busy in
// an app that refreshes its tokens keeps the SSO session (and so the app's
// refresh tokens, which end with it) alive, up to its absolute expiry. A
// client allowed to keep offline access past sign-out refreshes for work
// done without the user, which is no sign of the user, so its refreshes do
// not count. Throttled; a failure is logged, never returned (the refresh
// succeeded).
func (p *Provider) sessionUsed(ctx context.Context, sessionID, clientID string, now time.Time) {
	if sessionID == "" || p.cfg.SessionIdle <= 0 {
		return
	}
	if c, err := p.client(ctx, clientID); err != nil || c.c.OfflineSurvivesLogout {
		return
	}
	if !p.touched.due(sessionID, now) {
		return
	}
	err := p.store.TouchSession(ctx, sessionID, now, now.Add(p.cfg.SessionIdle))
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // ended or expired: nothing to keep alive
		p.log.WarnContext(ctx, "touch session on refresh", "session_id", sessionID, "err", err)
	}
}
