package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func maintenanceTests() []namedTest {
	return []namedTest{
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredOneTimeTokens", testDeleteExpiredOneTimeTokens},
		{"DeleteExpiredLoginAttempts", testDeleteExpiredLoginAttempts},
		{"WithLockRuns", testWithLockRuns},
		{"WithLockExcludes", testWithLockExcludes},
		{"Ping", testPing},
	}
}

// testDeleteExpired creates one expired and one live row of every kind
// DeleteExpired sweeps, then sweeps at "now".
func testDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	now := at(30 * time.Minute) // the seeded session is still live then
	before, after := now.Add(-time.Minute), now.Add(time.Minute)

	// Auth requests: expired (no code ever issued) and live.
	expiredReq, liveReq := newAuthRequest("ar-expired", "web"), newAuthRequest("ar-live", "web")
	expiredReq.ExpiresAt, liveReq.ExpiresAt = before, after
	mustNot(t, "create expired auth request", s.CreateAuthRequest(ctx, expiredReq))
	mustNot(t, "create live auth request", s.CreateAuthRequest(ctx, liveReq))

	// Sessions: past the absolute end, past the idle end, and live.
	absolute, idle := newSession("s-absolute", "alice"), newSession("s-idle", "alice")
	absolute.ExpiresAt, absolute.IdleExpiresAt = before, after
	idle.ExpiresAt, idle.IdleExpiresAt = after.Add(time.Hour), before
	mustNot(t, "create absolutely expired session", s.CreateSession(ctx, absolute))
	mustNot(t, "create idle expired session", s.CreateSession(ctx, idle))
	liveSession := newSession("s-live", "bob")
	liveSession.ExpiresAt, liveSession.IdleExpiresAt = after, after
	mustNot(t, "create live session", s.CreateSession(ctx, liveSession))

	// Grants: one expired, one live holding an expired and a live refresh token.
	expiredGrant, liveGrant := newGrant("g-expired", "alice", "web", ""), newGrant("g-live", "alice", "web", "")
	expiredGrant.ExpiresAt, liveGrant.ExpiresAt = before, after
	mustNot(t, "create expired grant", s.CreateGrant(ctx, expiredGrant))
	mustNot(t, "create live grant", s.CreateGrant(ctx, liveGrant))
	expiredRT, liveRT := newRefreshToken("rt-expired", "g-live"), newRefreshToken("rt-live", "g-live")
	expiredRT.ExpiresAt, liveRT.ExpiresAt = before, after
	mustNot(t, "create expired refresh token", s.CreateRefreshToken(ctx, expiredRT))
	mustNot(t, "create live refresh token", s.CreateRefreshToken(ctx, liveRT))

	// Deny-list entries.
	mustNot(t, "deny expired token", s.DenyAccessToken(ctx, "jti-expired", before))
	mustNot(t, "deny live token", s.DenyAccessToken(ctx, "jti-live", after))

	// Keys: retired past RemoveAfter, retired but still published, and active.
	gone, kept := newSigningKey("k-gone", storage.KeyRetired), newSigningKey("k-kept", storage.KeyRetired)
	gone.RetiredAt, gone.RemoveAfter = ptrTo(before.Add(-time.Hour)), ptrTo(before)
	kept.RetiredAt, kept.RemoveAfter = ptrTo(before.Add(-time.Hour)), ptrTo(after)
	for _, k := range []*storage.SigningKey{gone, kept, newSigningKey("k-active", storage.KeyActive)} {
		mustNot(t, "create key "+k.ID, s.CreateSigningKey(ctx, k))
	}

	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	// ar-expired, g-expired, rt-expired, jti-expired, k-gone; expired
	// sessions stay for ListExpiredSessions (their apps are told first).
	if removed != 5 {
		t.Errorf("DeleteExpired removed %d rows, want 5", removed)
	}

	expectGone := map[string]error{}
	expectKept := map[string]error{}
	_, expectGone["auth request ar-expired"] = s.GetAuthRequest(ctx, "ar-expired")
	_, expectKept["auth request ar-live"] = s.GetAuthRequest(ctx, "ar-live")
	_, expectKept["session s-absolute"] = s.GetSession(ctx, "s-absolute")
	_, expectKept["session s-idle"] = s.GetSession(ctx, "s-idle")
	_, expectKept["session s-live"] = s.GetSession(ctx, "s-live")
	_, expectKept["seeded session"] = s.GetSession(ctx, sd.aliceSession.ID)
	_, expectGone["grant g-expired"] = s.GetGrant(ctx, "g-expired")
	_, expectKept["grant g-live"] = s.GetGrant(ctx, "g-live")
	_, expectGone["refresh token rt-expired"] = s.GetRefreshToken(ctx, expiredRT.Hash)
	_, expectKept["refresh token rt-live"] = s.GetRefreshToken(ctx, liveRT.Hash)
	for what, err := range expectGone {
		assertErrorIs(t, what+" after DeleteExpired", err, storage.ErrNotFound)
	}
	for what, err := range expectKept {
		mustNot(t, what+" survives DeleteExpired", err)
	}
	assertDenied(t, s, "jti-expired", false)
	assertDenied(t, s, "jti-live", true)

	keys, err := s.ListSigningKeys(ctx)
	mustNot(t, "list keys", err)
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if len(ids) != 2 || !containsAll(ids, "k-kept", "k-active") {
		t.Errorf("keys after DeleteExpired: %v, want k-kept and k-active", ids)
	}

	removed, err = s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired again", err)
	if removed != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0", removed)
	}
}

// testDeleteExpiredOneTimeTokens: expired tokens go whether used or not; live
// ones stay, used or not. The store has no getter for tokens, so the removed
// count tells the used ones apart, and consuming the live unused one shows it
// survived.
func testDeleteExpiredOneTimeTokens(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	now := at(30 * time.Minute)
	before, after := now.Add(-time.Minute), now.Add(time.Minute)

	expiredUnused := newOneTimeToken("expired-unused", storage.TokenVerifyEmail, "alice")
	expiredUsed := newOneTimeToken("expired-used", storage.TokenResetPassword, "alice")
	liveUsed := newOneTimeToken("live-used", storage.TokenChangeEmail, "alice")
	expiresNow := newOneTimeToken("expires-now", storage.TokenVerifyEmail, "bob")
	liveUnused := newOneTimeToken("live-unused", storage.TokenResetPassword, "bob")
	expiredUnused.ExpiresAt, expiredUsed.ExpiresAt, liveUsed.ExpiresAt = before, before, after
	expiresNow.ExpiresAt, liveUnused.ExpiresAt = now, after
	for _, tok := range []*storage.OneTimeToken{expiredUnused, expiredUsed, liveUsed, expiresNow, liveUnused} {
		createToken(t, s, tok)
	}
	for _, tok := range []*storage.OneTimeToken{expiredUsed, liveUsed} {
		_, err := s.ConsumeOneTimeToken(ctx, tok.Hash, tok.Kind, t0())
		mustNot(t, "consume a token before the sweep", err)
	}

	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	// expired-unused, expired-used, expires-now.
	if removed != 3 {
		t.Errorf("DeleteExpired removed %d rows, want 3", removed)
	}
	assertConsumed(t, s, "live unused token after DeleteExpired", liveUnused, now)
	removed, err = s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired again", err)
	if removed != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0", removed)
	}
}

// testDeleteExpiredLoginAttempts: a key's row goes once it is not locked and
// its last attempt is over a day old. Rows are seen only through
// RegisterLoginAttempt, so the removed count and a probe attempt on each kept
// key (whose count goes on) check the sweep.
func testDeleteExpiredLoginAttempts(t *testing.T, s storage.Store) {
	ctx := context.Background()
	now := at(72 * time.Hour)
	register := func(key string, when time.Time, limit int, lock time.Duration) {
		t.Helper()
		_, err := s.RegisterLoginAttempt(ctx, key, when, limit, lock)
		mustNot(t, "register attempt on "+key, err)
	}
	const noLock = 100
	register("stale", now.Add(-25*time.Hour), noLock, time.Hour)
	register("a-day-old", now.Add(-24*time.Hour), noLock, time.Hour)
	register("recent", now.Add(-time.Hour), noLock, time.Hour)
	// Threshold 1 locks at the first attempt.
	register("locked", now.Add(-25*time.Hour), 1, 48*time.Hour)            // until now+23h
	register("lock-expired", now.Add(-26*time.Hour), 1, time.Hour)         // until now-25h
	register("lock-ends-now", now.Add(-25*time.Hour), 1, 25*time.Hour)     // until now
	register("lock-expired-recently", now.Add(-time.Hour), 1, time.Minute) // touched an hour ago

	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	// stale, lock-expired, lock-ends-now.
	if removed != 3 {
		t.Errorf("DeleteExpired removed %d rows, want 3", removed)
	}
	removed, err = s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired again", err)
	if removed != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0", removed)
	}

	probe := func(key string) storage.LoginAttempt {
		t.Helper()
		a, err := s.RegisterLoginAttempt(ctx, key, now, noLock, time.Hour)
		mustNot(t, "probe "+key, err)
		return a
	}
	for key, failures := range map[string]int{"stale": 1, "a-day-old": 2, "recent": 2} {
		if got := probe(key); !got.Allowed || got.Failures != failures {
			t.Errorf("attempt on %q after DeleteExpired: %+v; want allowed with %d failures", key, got, failures)
		}
	}
	if got := probe("locked"); got.Allowed {
		t.Errorf("attempt on a locked key after DeleteExpired was allowed: %+v", got)
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, v := range list {
			found = found || v == w
		}
		if !found {
			return false
		}
	}
	return true
}

func testWithLockRuns(t *testing.T, s storage.Store) {
	ctx := context.Background()
	called := false
	ran, err := s.WithLock(ctx, "job", func(ctx context.Context) error {
		called = true
		return nil
	})
	mustNot(t, "WithLock", err)
	if !ran || !called {
		t.Errorf("WithLock on a free lock: ran=%v, fn called=%v; want both", ran, called)
	}

	boom := errors.New("boom")
	ran, err = s.WithLock(ctx, "job", func(ctx context.Context) error { return boom })
	if !ran || !errors.Is(err, boom) {
		t.Errorf("WithLock with a failing fn: ran=%v err=%v; want ran and fn's error", ran, err)
	}

	// The lock was released after the error, so it can be taken again.
	ran, err = s.WithLock(ctx, "job", func(ctx context.Context) error { return nil })
	if !ran || err != nil {
		t.Errorf("WithLock after a failed run: ran=%v err=%v; want ran", ran, err)
	}
}

func testWithLockExcludes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	holding, release := make(chan struct{}), make(chan struct{})
	type result struct {
		ran bool
		err error
	}
	first := make(chan result, 1)
	go func() {
		ran, err := s.WithLock(ctx, "job", func(ctx context.Context) error {
			close(holding)
			<-release
			return nil
		})
		first <- result{ran, err}
	}()
	<-holding

	ran, err := s.WithLock(ctx, "job", func(ctx context.Context) error {
		t.Error("fn ran while another caller held the lock")
		return nil
	})
	if ran || err != nil {
		t.Errorf("WithLock on a held lock: ran=%v err=%v; want ran=false and no error", ran, err)
	}
	ran, err = s.WithLock(ctx, "other-job", func(ctx context.Context) error { return nil })
	if !ran || err != nil {
		t.Errorf("WithLock on a different name: ran=%v err=%v; want ran", ran, err)
	}

	close(release)
	if r := <-first; !r.ran || r.err != nil {
		t.Errorf("first WithLock: ran=%v err=%v; want ran", r.ran, r.err)
	}
	ran, err = s.WithLock(ctx, "job", func(ctx context.Context) error { return nil })
	if !ran || err != nil {
		t.Errorf("WithLock after release: ran=%v err=%v; want ran", ran, err)
	}
}

func testPing(t *testing.T, s storage.Store) {
	mustNot(t, "ping", s.Ping(context.Background()))
}
