package login

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Tests of the session list's edges; cmd/gatehouse drives it end to end
// (sessionlist_test.go, browser_sessions_test.go).

// noAccountLimit lifts the account forms' rate limit, so every post here
// reaches the handler.
func noAccountLimit(c *Config) { c.AccountPerUser = RateLimit{Limit: -1} }

// storeSession stores a session of user created ago before now.
func (e *env) storeSession(user *storage.User, id, userAgent string, ago time.Duration) *storage.Session {
	e.t.Helper()
	now := e.clock.Now()
	s := &storage.Session{ID: id, TokenHash: hashToken(randomToken(32)), UserID: user.ID, AuthTime: now.Add(-ago),
		AMR: []string{amrPassword}, CreatedAt: now.Add(-ago), LastSeenAt: now.Add(-ago),
		ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour), UserAgent: userAgent, IP: "192.0.2.1"}
	if err := e.store.CreateSession(e.ctx, s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// A long list shows the newest sessions (this browser's always) and counts
// the rest; expired sessions are not listed; "Sign out of all other
// sessions" ends every other one, listed or not.
func TestSessionListCapped(t *testing.T) {
	e := newEnv(t, noAccountLimit)
	others := maxListedSessions + 2
	for i := range others {
		e.storeSession(e.alice, fmt.Sprintf("old-%02d", i), "", time.Duration(i+1)*time.Minute)
	}
	gone := e.storeSession(e.alice, "expired", "", 2*time.Hour)
	if err := e.store.TouchSession(e.ctx, gone.ID, gone.LastSeenAt, e.clock.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.signInPlain(e.client, "alice@example.com", alicePassword)

	res, csrf := e.page(e.client, "/account")
	if n := strings.Count(res.Body, `<li id="session-`); n != maxListedSessions {
		t.Fatalf("%d sessions listed, want %d", n, maxListedSessions)
	}
	// this browser's, then the 49 newest others; 3 are left.
	mustContain(t, res, "This browser", "Unknown browser", "old-48", "And 3 older sessions.")
	if strings.Contains(res.Body, `id="session-old-49"`) || strings.Contains(res.Body, `id="session-expired"`) {
		t.Fatalf("an older or expired session is listed:\n%s", res.Body)
	}

	done := e.post(e.client, "/account/sessions/end-others", url.Values{"csrf": {csrf}})
	if done.Status != http.StatusSeeOther || done.Location() != "/account?notice=sessions-ended" {
		t.Fatalf("sign out of all other sessions: %d %q", done.Status, done.Location())
	}
	left, err := e.store.ListSessionsByUser(e.ctx, e.alice.ID)
	if err != nil || len(left) != 1 {
		t.Fatalf("sessions left: %d (%v)", len(left), err)
	}
	res = e.get(e.client, done.Location())
	mustContain(t, res, "Signed out of every other session.", "This browser")
	if strings.Contains(res.Body, "/account/sessions/end-others") {
		t.Fatal("Sign out of all other sessions is offered with no other session")
	}
}

// Whatever session ID is posted, nothing but the user's own other sessions
// ends, the answer never is a 500, and this browser's own session is not
// ended from the list.
func TestSessionListEndRefusals(t *testing.T) {
	e := newEnv(t, noAccountLimit)
	bob := e.createUser("bob@example.com", alicePassword)
	bobs := e.storeSession(bob, "bob-1", "", time.Minute)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	_, csrf := e.page(e.client, "/account")
	mine, err := e.store.ListSessionsByUser(e.ctx, e.alice.ID)
	if err != nil || len(mine) != 1 {
		t.Fatalf("alice's sessions: %v %v", mine, err)
	}
	for _, id := range []string{bobs.ID, "", "nope", "\x00\xff", strings.Repeat("x", 60<<10)} {
		res := e.post(e.client, "/account/sessions/end", url.Values{"csrf": {csrf}, "session": {id}})
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, msgSessionGone) {
			t.Errorf("session %.20q: %d", id, res.Status)
		}
	}
	res := e.post(e.client, "/account/sessions/end", url.Values{"csrf": {csrf}, "session": {mine[0].ID}})
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "This is the session you are using.") {
		t.Errorf("this browser's own session: %d", res.Status)
	}
	if _, err := e.store.GetSession(e.ctx, bobs.ID); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
	if res := e.get(e.client, "/account"); res.Status != http.StatusOK {
		t.Fatalf("alice is no longer signed in: %d", res.Status)
	}
	// Without a session the forms send the browser to sign in.
	for _, p := range []string{"/account/sessions/end", "/account/sessions/end-others"} {
		other := e.newBrowser()
		_, csrf := e.page(other, "/forgot")
		res := e.post(other, p, url.Values{"csrf": {csrf}, "session": {bobs.ID}})
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login") {
			t.Errorf("%s without a session: %d %q", p, res.Status, res.Location())
		}
	}
	if _, err := e.store.GetSession(e.ctx, bobs.ID); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
}
