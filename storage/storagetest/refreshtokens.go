package storagetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// grace is the reuse window the rotation tests pass to RotateRefreshToken.
const grace = 30 * time.Second

func refreshTokenTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testRefreshTokenCreateAndGet},
		{"GetWithGrant", testRefreshTokenWithGrant},
		{"RotateStoresSuccessor", testRotateStoresSuccessor},
		{"RotateAgainWithinGraceReissues", testRotateWithinGrace},
		{"RotateAfterGraceRevokesGrant", testRotateAfterGrace},
		{"RotateRevokedGrant", testRotateRevokedGrant},
		{"RotateUnknownParent", testRotateUnknownParent},
		{"RotateParallel", testRotateParallel},
	}
}

// grantWithToken seeds the store and creates grant "g1" for alice with the
// refresh token whose secret is "rt0".
func grantWithToken(t *testing.T, s storage.Store) *storage.RefreshToken {
	t.Helper()
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create grant", s.CreateGrant(ctx, newGrant("g1", "alice", "web", sd.aliceSession.ID)))
	rt := newRefreshToken("rt0", "g1")
	mustNot(t, "create refresh token", s.CreateRefreshToken(ctx, rt))
	return rt
}

// successorOf is the token that rotates parent at now.
func successorOf(parent *storage.RefreshToken, secret string, now time.Time) *storage.RefreshToken {
	return &storage.RefreshToken{
		Hash:       hash(secret),
		GrantID:    parent.GrantID,
		ParentHash: parent.Hash,
		Scopes:     parent.Scopes,
		CreatedAt:  now,
		ExpiresAt:  now.Add(24 * time.Hour),
	}
}

func testRefreshTokenCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := grantWithToken(t, s)
	got, err := s.GetRefreshToken(ctx, hash("rt0"))
	mustNot(t, "get refresh token", err)
	assertEqual(t, "GetRefreshToken", got, want)

	assertErrorIs(t, "second token with the same hash", s.CreateRefreshToken(ctx, want), storage.ErrConflict)
	_, err = s.GetRefreshToken(ctx, hash("unknown"))
	assertErrorIs(t, "GetRefreshToken(unknown)", err, storage.ErrNotFound)
}

// testRefreshTokenWithGrant: the joined read returns what the separate
// reads do, for a token of a live grant and of a revoked one, and of a
// disabled user (whom the caller must refuse).
func testRefreshTokenWithGrant(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := grantWithToken(t, s)
	for _, revoke := range []bool{false, true} {
		if revoke {
			mustNot(t, "revoke grant", s.RevokeGrant(ctx, "g1", at(time.Minute)))
			u, err := s.GetUser(ctx, "alice")
			mustNot(t, "get user", err)
			u.DisabledAt = ptrTo(at(time.Minute))
			mustNot(t, "disable user", s.UpdateUser(ctx, u))
		}
		got, err := s.GetRefreshTokenWithGrant(ctx, hash("rt0"))
		mustNot(t, "get refresh token with grant", err)
		assertEqual(t, "GetRefreshTokenWithGrant token", got.Token, want)
		wantG, err := s.GetGrant(ctx, "g1")
		mustNot(t, "get grant", err)
		assertEqual(t, "GetRefreshTokenWithGrant grant", got.Grant, wantG)
		wantU, err := s.GetUser(ctx, "alice")
		mustNot(t, "get user", err)
		assertEqual(t, "GetRefreshTokenWithGrant user", got.User, wantU)
		if revoke && (got.Grant.RevokedAt == nil || got.User.DisabledAt == nil) {
			t.Errorf("GetRefreshTokenWithGrant: grant revoked and user disabled, got RevokedAt %v, DisabledAt %v", got.Grant.RevokedAt, got.User.DisabledAt)
		}
	}
	_, err := s.GetRefreshTokenWithGrant(ctx, hash("unknown"))
	assertErrorIs(t, "GetRefreshTokenWithGrant(unknown)", err, storage.ErrNotFound)
}

func testRotateStoresSuccessor(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	now := at(time.Hour)
	successor := successorOf(parent, "rt1", now)

	outcome, err := s.RotateRefreshToken(ctx, parent.Hash, successor, now, grace)
	mustNot(t, "rotate", err)
	if outcome != storage.Rotated {
		t.Errorf("outcome %v, want Rotated", outcome)
	}

	gotParent, err := s.GetRefreshToken(ctx, parent.Hash)
	mustNot(t, "get parent", err)
	parent.RotatedAt = &now
	assertEqual(t, "rotated parent", gotParent, parent)

	gotSuccessor, err := s.GetRefreshToken(ctx, successor.Hash)
	mustNot(t, "get successor", err)
	assertEqual(t, "successor", gotSuccessor, successor)

	// The successor is current and rotates in turn.
	outcome, err = s.RotateRefreshToken(ctx, successor.Hash, successorOf(successor, "rt2", at(2*time.Hour)), at(2*time.Hour), grace)
	mustNot(t, "rotate successor", err)
	if outcome != storage.Rotated {
		t.Errorf("rotating the successor: outcome %v, want Rotated", outcome)
	}
}

func testRotateWithinGrace(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	now := at(time.Hour)
	_, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt1", now), now, grace)
	mustNot(t, "rotate", err)

	for _, retry := range []time.Time{now, now.Add(grace / 2), now.Add(grace)} {
		// A different successor proves the store keeps the first one and stores nothing.
		outcome, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt-other", retry), retry, grace)
		mustNot(t, "rotate again within grace", err)
		if outcome != storage.ReissuedInGrace {
			t.Errorf("rotating again %v after the rotation: outcome %v, want ReissuedInGrace", retry.Sub(now), outcome)
		}
	}
	_, err = s.GetRefreshToken(ctx, hash("rt-other"))
	assertErrorIs(t, "successor offered within grace", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("rt1"))
	mustNot(t, "first successor stays", err)
	assertNotRevoked(t, s, "g1")
}

func testRotateAfterGrace(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	now := at(time.Hour)
	_, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt1", now), now, grace)
	mustNot(t, "rotate", err)

	late := now.Add(grace + time.Millisecond)
	outcome, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt-late", late), late, grace)
	assertErrorIs(t, "rotating again after grace", err, storage.ErrTokenReused)
	if outcome == storage.Rotated || outcome == storage.ReissuedInGrace {
		t.Errorf("reuse after grace reported outcome %v", outcome)
	}
	assertRevokedAt(t, s, "g1", late)
	_, err = s.GetRefreshToken(ctx, hash("rt-late"))
	assertErrorIs(t, "successor offered after grace", err, storage.ErrNotFound)

	// The whole family is dead now, including the legitimate successor.
	_, err = s.RotateRefreshToken(ctx, hash("rt1"), successorOf(parent, "rt2", late), late, grace)
	assertErrorIs(t, "rotating the successor of a reused token", err, storage.ErrRevoked)
}

func testRotateRevokedGrant(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	mustNot(t, "revoke grant", s.RevokeGrant(ctx, "g1", t0()))
	now := at(time.Minute)
	_, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt1", now), now, grace)
	assertErrorIs(t, "rotating a token of a revoked grant", err, storage.ErrRevoked)
	_, err = s.GetRefreshToken(ctx, hash("rt1"))
	assertErrorIs(t, "successor of a revoked grant", err, storage.ErrNotFound)
}

func testRotateUnknownParent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	unknown := &storage.RefreshToken{Hash: hash("unknown"), GrantID: "g1", Scopes: parent.Scopes}
	_, err := s.RotateRefreshToken(ctx, unknown.Hash, successorOf(unknown, "rt1", t0()), t0(), grace)
	assertErrorIs(t, "rotating an unknown token", err, storage.ErrNotFound)
}

// testRotateParallel is the network-retry race: many requests present the same
// parent with the same (deterministic) successor at once.
func testRotateParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	parent := grantWithToken(t, s)
	now := at(time.Hour)

	type result struct {
		outcome storage.RotateOutcome
		err     error
	}
	results := make(chan result, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outcome, err := s.RotateRefreshToken(ctx, parent.Hash, successorOf(parent, "rt1", now), now, grace)
			results <- result{outcome, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	counts := map[storage.RotateOutcome]int{}
	for r := range results {
		if r.err != nil {
			t.Errorf("parallel rotation failed: %v", r.err)
			continue
		}
		counts[r.outcome]++
	}
	if counts[storage.Rotated] != 1 || counts[storage.ReissuedInGrace] != parallelism-1 {
		t.Errorf("outcomes %v; want 1 Rotated and %d ReissuedInGrace", counts, parallelism-1)
	}
	_, err := s.GetRefreshToken(ctx, hash("rt1"))
	mustNot(t, "get successor", err)
	assertNotRevoked(t, s, "g1")
}
