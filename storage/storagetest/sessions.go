package storagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func sessionTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testSessionCreateAndGet},
		{"DuplicateConflicts", testSessionDuplicate},
		{"NotFound", testSessionNotFound},
		{"WithUser", testSessionWithUser},
		{"Touch", testSessionTouch},
		{"Delete", testSessionDelete},
		{"DeleteByUser", testSessionDeleteByUser},
		{"DeleteStopsCodesInFlight", testSessionDeleteStopsCodes},
		{"UpdateAuth", testSessionUpdateAuth},
		{"ListByUser", testSessionListByUser},
		{"ListExpired", testSessionListExpired},
		{"Renew", testSessionRenew},
		{"UserAgentCleaned", testSessionUserAgentCleaned},
	}
}

func testSessionCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := seedStore(t, s).aliceSession
	got, err := s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	assertEqual(t, "GetSession", got, want)
	got, err = s.GetSessionByTokenHash(ctx, want.TokenHash)
	mustNot(t, "get session by token hash", err)
	assertEqual(t, "GetSessionByTokenHash", got, want)

	// A session signed in with Gatehouse's own password has no upstream.
	pwd := newSession("bob-session", "bob")
	pwd.IDP = ""
	mustNot(t, "create password session", s.CreateSession(ctx, pwd))
	got, err = s.GetSession(ctx, pwd.ID)
	mustNot(t, "get password session", err)
	assertEqual(t, "GetSession(password)", got, pwd)
}

// testSessionWithUser: the joined read returns what GetSessionByTokenHash,
// GetUser and HasSecondFactor do, for a user without a second factor, with
// TOTP, with a passkey, and disabled (whom the caller must refuse).
func testSessionWithUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	bobs := newSession("bob-session", "bob")
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobs))
	check := func(what string, sess *storage.Session, wantFactor bool) {
		t.Helper()
		got, err := s.GetSessionWithUser(ctx, sess.TokenHash)
		mustNot(t, what+": get session with user", err)
		wantS, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
		mustNot(t, what+": get session", err)
		assertEqual(t, what+": session", got.Session, wantS)
		wantU, err := s.GetUser(ctx, sess.UserID)
		mustNot(t, what+": get user", err)
		assertEqual(t, what+": user", got.User, wantU)
		if got.HasSecondFactor != wantFactor {
			t.Errorf("%s: HasSecondFactor = %v, want %v", what, got.HasSecondFactor, wantFactor)
		}
	}
	check("no second factor", sd.aliceSession, false)
	mustNot(t, "set alice's TOTP", s.SetTOTP(ctx, newTOTP("alice")))
	check("alice with TOTP", sd.aliceSession, true)
	check("bob beside alice's TOTP", bobs, false)
	mustNot(t, "add bob's passkey", s.CreateWebAuthnCredential(ctx, newCredential([]byte("bob-key"), "bob")))
	check("bob with a passkey", bobs, true)
	mustNot(t, "delete alice's TOTP", s.DeleteTOTP(ctx, "alice"))
	check("alice's TOTP deleted", sd.aliceSession, false)

	u, err := s.GetUser(ctx, "bob")
	mustNot(t, "get bob", err)
	u.DisabledAt = ptrTo(at(time.Minute))
	mustNot(t, "disable bob", s.UpdateUser(ctx, u))
	check("bob disabled", bobs, true)

	// Expired sessions are returned too: the caller decides (Session.Live).
	expired := newSession("expired-session", "alice")
	expired.ExpiresAt, expired.IdleExpiresAt = at(-30*time.Second), at(-30*time.Second)
	mustNot(t, "create an expired session", s.CreateSession(ctx, expired))
	check("expired session", expired, false)

	_, err = s.GetSessionWithUser(ctx, hash("nope"))
	assertErrorIs(t, "GetSessionWithUser(unknown)", err, storage.ErrNotFound)
	mustNot(t, "delete alice", s.DeleteUser(ctx, "alice"))
	_, err = s.GetSessionWithUser(ctx, sd.aliceSession.TokenHash)
	assertErrorIs(t, "GetSessionWithUser(user deleted)", err, storage.ErrNotFound)
}

func testSessionDuplicate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	existing := seedStore(t, s).aliceSession

	sameID := newSession(existing.ID, "bob")
	sameID.TokenHash = hash("another cookie")
	assertErrorIs(t, "session with a taken ID", s.CreateSession(ctx, sameID), storage.ErrConflict)

	sameCookie := newSession("other-id", "bob")
	sameCookie.TokenHash = existing.TokenHash
	assertErrorIs(t, "session with a taken token hash", s.CreateSession(ctx, sameCookie), storage.ErrConflict)
}

func testSessionNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetSession(ctx, "nope")
	assertErrorIs(t, "GetSession", err, storage.ErrNotFound)
	_, err = s.GetSessionByTokenHash(ctx, hash("nope"))
	assertErrorIs(t, "GetSessionByTokenHash", err, storage.ErrNotFound)
	assertErrorIs(t, "TouchSession", s.TouchSession(ctx, "nope", t0(), at(time.Hour)), storage.ErrNotFound)
	assertErrorIs(t, "DeleteSession", s.DeleteSession(ctx, "nope"), storage.ErrNotFound)
	mustNot(t, "DeleteSessionsByUser(nobody)", s.DeleteSessionsByUser(ctx, "nobody"))
}

func testSessionTouch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := seedStore(t, s).aliceSession
	lastSeen, idle := at(10*time.Minute), at(70*time.Minute)
	mustNot(t, "touch session", s.TouchSession(ctx, want.ID, lastSeen, idle))
	want.LastSeenAt, want.IdleExpiresAt = lastSeen, idle
	got, err := s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	assertEqual(t, "after TouchSession", got, want)

	// Never past the absolute expiry (at(24h) in the fixture).
	mustNot(t, "touch session past its end", s.TouchSession(ctx, want.ID, at(time.Hour), at(48*time.Hour)))
	got, err = s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	if !got.IdleExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("idle expiry %v after touching past the absolute expiry %v", got.IdleExpiresAt, want.ExpiresAt)
	}
	// Never revived: idle-expired (here at the absolute end) is ended.
	assertErrorIs(t, "touch an expired session", s.TouchSession(ctx, want.ID, at(25*time.Hour), at(49*time.Hour)), storage.ErrNotFound)
	assertErrorIs(t, "touch an unknown session", s.TouchSession(ctx, "nope", at(time.Minute), at(time.Hour)), storage.ErrNotFound)
}

func testSessionDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sess := seedStore(t, s).aliceSession
	other := newSession("alice-2", "alice")
	mustNot(t, "create second session", s.CreateSession(ctx, other))

	mustNot(t, "delete session", s.DeleteSession(ctx, sess.ID))
	_, err := s.GetSession(ctx, sess.ID)
	assertErrorIs(t, "GetSession after delete", err, storage.ErrNotFound)
	_, err = s.GetSessionByTokenHash(ctx, sess.TokenHash)
	assertErrorIs(t, "GetSessionByTokenHash after delete", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, other.ID)
	mustNot(t, "other session survives", err)
}

func testSessionDeleteByUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	second := newSession("alice-2", "alice")
	bobs := newSession("bob-1", "bob")
	mustNot(t, "create alice's second session", s.CreateSession(ctx, second))
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobs))

	mustNot(t, "delete alice's sessions", s.DeleteSessionsByUser(ctx, "alice"))
	for _, id := range []string{sd.aliceSession.ID, second.ID} {
		_, err := s.GetSession(ctx, id)
		assertErrorIs(t, "GetSession("+id+")", err, storage.ErrNotFound)
	}
	_, err := s.GetSession(ctx, bobs.ID)
	mustNot(t, "bob's session survives", err)
	_, err = s.GetUser(ctx, "alice")
	mustNot(t, "alice herself survives", err)
}

// Ending a session removes its completed auth requests whose code was not
// redeemed (signing out stops a code in flight) and keeps redeemed ones (a
// replay is still recognised); requests of other sessions stay.
func testSessionDeleteStopsCodes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	other := newSession("alice-2", "alice")
	bobs := newSession("bob-1", "bob")
	mustNot(t, "create alice's second session", s.CreateSession(ctx, other))
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobs))
	completed := func(id, userID, sessionID string) {
		r := newAuthRequest(id, "web")
		r.Done, r.UserID, r.SessionID, r.AuthTime = true, userID, sessionID, t0()
		mustNot(t, "create completed auth request "+id, s.CreateAuthRequest(ctx, r))
		mustNot(t, "save code of "+id, s.SaveAuthCode(ctx, id, hash("code-"+id), at(time.Minute)))
	}
	completed("in-flight", "alice", sd.aliceSession.ID)
	completed("redeemed", "alice", sd.aliceSession.ID)
	completed("other-session", "alice", other.ID)
	completed("bobs", "bob", bobs.ID)
	_, err := s.RedeemAuthCode(ctx, hash("code-redeemed"), at(time.Second))
	mustNot(t, "redeem", err)

	mustNot(t, "delete session", s.DeleteSession(ctx, sd.aliceSession.ID))
	_, err = s.GetAuthRequest(ctx, "in-flight")
	assertErrorIs(t, "unredeemed request of the deleted session", err, storage.ErrNotFound)
	for _, id := range []string{"redeemed", "other-session", "bobs"} {
		_, err := s.GetAuthRequest(ctx, id)
		mustNot(t, id+" survives", err)
	}

	mustNot(t, "delete alice's sessions", s.DeleteSessionsByUser(ctx, "alice"))
	_, err = s.GetAuthRequest(ctx, "other-session")
	assertErrorIs(t, "unredeemed request of a user whose sessions ended", err, storage.ErrNotFound)
	for _, id := range []string{"redeemed", "bobs"} {
		_, err := s.GetAuthRequest(ctx, id)
		mustNot(t, id+" survives", err)
	}
}

// UpdateSessionAuth replaces AMR and AuthTime (step-up) and nothing else.
func testSessionUpdateAuth(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := seedStore(t, s).aliceSession
	bobs := newSession("bob-session", "bob")
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobs))

	mustNot(t, "step up", s.UpdateSessionAuth(ctx, want.ID, []string{"pwd", "hwk", "user", "mfa"}, at(5*time.Minute)))
	want.AMR, want.AuthTime = []string{"pwd", "hwk", "user", "mfa"}, at(5*time.Minute)
	got, err := s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	assertEqual(t, "after UpdateSessionAuth", got, want)
	got, err = s.GetSessionByTokenHash(ctx, want.TokenHash)
	mustNot(t, "get session by token hash", err)
	assertEqual(t, "by token hash after UpdateSessionAuth", got, want)

	// A fresh sign-in with fewer methods replaces the list, it does not merge.
	mustNot(t, "fresh authentication", s.UpdateSessionAuth(ctx, want.ID, []string{"otp"}, at(10*time.Minute)))
	want.AMR, want.AuthTime = []string{"otp"}, at(10*time.Minute)
	got, err = s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	assertEqual(t, "after a second UpdateSessionAuth", got, want)
	mustNot(t, "no methods", s.UpdateSessionAuth(ctx, want.ID, nil, at(11*time.Minute)))
	want.AMR, want.AuthTime = nil, at(11*time.Minute)
	got, err = s.GetSession(ctx, want.ID)
	mustNot(t, "get session", err)
	assertEqual(t, "after UpdateSessionAuth without methods", got, want)

	got, err = s.GetSession(ctx, bobs.ID)
	mustNot(t, "get bob's session", err)
	assertEqual(t, "another session", got, bobs)
	assertErrorIs(t, "UpdateSessionAuth(nope)", s.UpdateSessionAuth(ctx, "nope", []string{"pwd"}, t0()), storage.ErrNotFound)
}

// The user's sessions, newest first, every field; other users' stay out.
func testSessionListByUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	newer := newSession("alice-2", "alice")
	newer.CreatedAt = at(time.Minute)
	mustNot(t, "create alice's second session", s.CreateSession(ctx, newer))
	mustNot(t, "create bob's session", s.CreateSession(ctx, newSession("bob-1", "bob")))
	list, err := s.ListSessionsByUser(ctx, "alice")
	mustNot(t, "ListSessionsByUser", err)
	if len(list) != 2 || list[0].ID != newer.ID || list[1].ID != sd.aliceSession.ID {
		t.Fatalf("alice's sessions: %+v", list)
	}
	if list[0].IDP != newer.IDP || list[0].UserAgent != newer.UserAgent || list[0].IP != newer.IP || len(list[0].AMR) != len(newer.AMR) || list[0].CreatedAt.Sub(newer.CreatedAt).Abs() >= time.Millisecond {
		t.Fatalf("session fields: %+v, want %+v", list[0], *newer)
	}
	none, err := s.ListSessionsByUser(ctx, "nobody")
	mustNot(t, "ListSessionsByUser(nobody)", err)
	if len(none) != 0 {
		t.Fatalf("sessions of an unknown user: %+v", none)
	}
}

// Sessions past either expiry are listed, earliest absolute expiry first, up
// to the limit; live ones never. DeleteExpired leaves them: they are ended one
// by one so that their apps are told.
func testSessionListExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s) // alice-session: idle until at(1h), absolute at(24h)
	now := at(2 * time.Hour)
	idle := newSession("idle", "bob") // idle-expired at(1h) like the seed
	idle.ExpiresAt = at(12 * time.Hour)
	absolute := newSession("absolute", "bob")
	absolute.ExpiresAt, absolute.IdleExpiresAt = at(90*time.Minute), at(3*time.Hour)
	live := newSession("live", "bob")
	live.ExpiresAt, live.IdleExpiresAt = at(48*time.Hour), at(3*time.Hour)
	for _, sess := range []*storage.Session{idle, absolute, live} {
		mustNot(t, "create session "+sess.ID, s.CreateSession(ctx, sess))
	}
	ids := func(list []storage.Session) []string {
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	list, err := s.ListExpiredSessions(ctx, now, 10)
	mustNot(t, "ListExpiredSessions", err)
	assertEqual(t, "expired sessions", ids(list), []string{"absolute", "idle", "alice-session"})
	list, err = s.ListExpiredSessions(ctx, now, 2)
	mustNot(t, "ListExpiredSessions(limit 2)", err)
	assertEqual(t, "expired sessions, limit 2", ids(list), []string{"absolute", "idle"})
	list, err = s.ListExpiredSessions(ctx, at(30*time.Minute), 10)
	mustNot(t, "ListExpiredSessions(before any expiry)", err)
	if len(list) != 0 {
		t.Errorf("expired sessions before any expiry: %v", ids(list))
	}
	_, err = s.DeleteExpired(ctx, now)
	mustNot(t, "DeleteExpired", err)
	_, err = s.GetSession(ctx, "idle")
	mustNot(t, "an expired session survives DeleteExpired", err)
}

// RenewSession replaces a live session in place (same ID and CreatedAt, and
// the codes in flight survive); another user's, an expired or an unknown
// session is not found.
func testSessionRenew(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s) // alice-session: idle until at(1h), absolute at(24h)
	ar := newAuthRequest("ar-in-flight", "web")
	ar.SessionID, ar.UserID = sd.aliceSession.ID, "alice"
	mustNot(t, "create a completed request of the session", s.CreateAuthRequest(ctx, ar))

	renewed := *sd.aliceSession
	renewed.TokenHash = hash("a new cookie")
	renewed.AuthTime, renewed.AMR, renewed.IDP = at(30*time.Minute), []string{"pwd"}, ""
	renewed.LastSeenAt, renewed.ExpiresAt, renewed.IdleExpiresAt = at(30*time.Minute), at(48*time.Hour), at(3*time.Hour)
	renewed.UserAgent, renewed.IP = "Renewed/1.0 (another browser)", "203.0.113.9"
	mustNot(t, "renew", s.RenewSession(ctx, &renewed, at(30*time.Minute)))
	got, err := s.GetSession(ctx, renewed.ID)
	mustNot(t, "get renewed session", err)
	assertEqual(t, "renewed session", got, &renewed)
	_, err = s.GetSessionByTokenHash(ctx, sd.aliceSession.TokenHash)
	assertErrorIs(t, "the old cookie after renewal", err, storage.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, ar.ID)
	mustNot(t, "a code in flight survives renewal", err)

	other := renewed
	other.UserID = "bob"
	assertErrorIs(t, "renew as another user", s.RenewSession(ctx, &other, at(time.Hour)), storage.ErrNotFound)
	assertErrorIs(t, "renew an idle-expired session", s.RenewSession(ctx, &renewed, at(3*time.Hour)), storage.ErrNotFound)
	unknown := renewed
	unknown.ID = "nope"
	assertErrorIs(t, "renew an unknown session", s.RenewSession(ctx, &unknown, at(time.Hour)), storage.ErrNotFound)
}

// Whatever User-Agent a browser sends, the session is stored (PostgreSQL
// refuses invalid UTF-8) with a user agent of valid UTF-8, without control
// characters, at most storage.MaxSessionUserAgent bytes cut on a character
// boundary.
func testSessionUserAgentCleaned(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	for i, c := range []struct{ sent, want string }{
		{"Mozilla/5.0\x00 (X11;\n Linux)\xff", "Mozilla/5.0 (X11; Linux)\uFFFD"},
		// "é" would take bytes 512 and 513: it goes whole.
		{strings.Repeat("a", storage.MaxSessionUserAgent-1) + "é" + strings.Repeat("b", 100), strings.Repeat("a", storage.MaxSessionUserAgent-1)},
		{strings.Repeat("c", storage.MaxSessionUserAgent), strings.Repeat("c", storage.MaxSessionUserAgent)},
	} {
		sess := newSession(fmt.Sprintf("ua-%d", i), "bob")
		sess.UserAgent = c.sent
		mustNot(t, "create session", s.CreateSession(ctx, sess))
		got, err := s.GetSession(ctx, sess.ID)
		mustNot(t, "get session", err)
		if got.UserAgent != c.want {
			t.Errorf("user agent %d stored as %q (%d bytes), want %q", i, got.UserAgent, len(got.UserAgent), c.want)
		}
	}
}
