package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func grantTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testGrantCreateAndGet},
		{"NotFound", testGrantNotFound},
		{"Revoke", testGrantRevoke},
		{"RevokeBySession", testGrantRevokeBySession},
		{"RevokeByUser", testGrantRevokeByUser},
		{"CreateWithRefreshTokenBothOrNeither", testGrantWithRefreshToken},
	}
}

func testGrantCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := newGrant("g1", "alice", "web", sd.aliceSession.ID)
	mustNot(t, "create grant", s.CreateGrant(ctx, want))
	got, err := s.GetGrant(ctx, "g1")
	mustNot(t, "get grant", err)
	assertEqual(t, "GetGrant", got, want)
	assertErrorIs(t, "second grant with the same ID", s.CreateGrant(ctx, want), storage.ErrConflict)

	// A grant for no particular resource (no RFC 8707 indicator).
	plain := newGrant("g2", "alice", "spa", sd.aliceSession.ID)
	plain.Resources, plain.IDP = nil, "" // and signed in with the password
	mustNot(t, "create grant without resources", s.CreateGrant(ctx, plain))
	got, err = s.GetGrant(ctx, "g2")
	mustNot(t, "get grant without resources", err)
	assertEqual(t, "GetGrant(no resources)", got, plain)
}

func testGrantNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetGrant(ctx, "nope")
	assertErrorIs(t, "GetGrant", err, storage.ErrNotFound)
	assertErrorIs(t, "RevokeGrant", s.RevokeGrant(ctx, "nope", t0()), storage.ErrNotFound)
	// Bulk revocations that match nothing are not errors.
	mustNot(t, "RevokeGrantsBySession(unknown)", s.RevokeGrantsBySession(ctx, "nope", t0()))
	mustNot(t, "RevokeGrantsByUser(unknown)", s.RevokeGrantsByUser(ctx, "nope", t0()))
}

func testGrantRevoke(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := newGrant("g1", "alice", "web", sd.aliceSession.ID)
	mustNot(t, "create grant", s.CreateGrant(ctx, want))
	mustNot(t, "create other grant", s.CreateGrant(ctx, newGrant("g2", "alice", "web", sd.aliceSession.ID)))

	mustNot(t, "revoke grant", s.RevokeGrant(ctx, "g1", at(time.Minute)))
	want.RevokedAt = ptrTo(at(time.Minute))
	got, err := s.GetGrant(ctx, "g1")
	mustNot(t, "get revoked grant", err)
	assertEqual(t, "after RevokeGrant", got, want)

	// Revoking again succeeds; the first revocation time is the one that counts.
	mustNot(t, "revoke grant again", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	got, err = s.GetGrant(ctx, "g1")
	mustNot(t, "get revoked grant", err)
	assertEqual(t, "after second RevokeGrant", got, want)

	assertNotRevoked(t, s, "g2")
}

// testGrantRevokeBySession: a session's grants end with it, except
// offline_access ones of a client allowed to keep them (OfflineSurvivesLogout,
// on in the fixtures' clients).
func testGrantRevokeBySession(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	strict := newClient("strict")
	strict.OfflineSurvivesLogout = false
	mustNot(t, "create strict client", s.CreateClient(ctx, strict))
	other := newSession("alice-other-session", "alice")
	mustNot(t, "create second session", s.CreateSession(ctx, other))
	online := newGrant("g1", "alice", "web", sd.aliceSession.ID)
	online.Scopes = []string{"openid", "email"}
	mustNot(t, "create g1 (no offline_access)", s.CreateGrant(ctx, online))
	mustNot(t, "create g2 (offline, client keeps it)", s.CreateGrant(ctx, newGrant("g2", "alice", "spa", sd.aliceSession.ID)))
	mustNot(t, "create g3 (other session)", s.CreateGrant(ctx, newGrant("g3", "alice", "web", other.ID)))
	mustNot(t, "create g4 (offline, client does not keep it)", s.CreateGrant(ctx, newGrant("g4", "alice", "strict", sd.aliceSession.ID)))

	mustNot(t, "revoke by session", s.RevokeGrantsBySession(ctx, sd.aliceSession.ID, at(time.Minute)))
	assertRevokedAt(t, s, "g1", at(time.Minute))
	assertNotRevoked(t, s, "g2")
	assertNotRevoked(t, s, "g3")
	assertRevokedAt(t, s, "g4", at(time.Minute))

	// A user-wide revocation takes offline grants too.
	mustNot(t, "revoke by user", s.RevokeGrantsByUser(ctx, "alice", at(time.Hour)))
	assertRevokedAt(t, s, "g2", at(time.Hour))
}

func testGrantRevokeByUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	bobSession := newSession("bob-session", "bob")
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobSession))
	mustNot(t, "create g1", s.CreateGrant(ctx, newGrant("g1", "alice", "web", sd.aliceSession.ID)))
	mustNot(t, "create g2", s.CreateGrant(ctx, newGrant("g2", "alice", "spa", sd.aliceSession.ID)))
	mustNot(t, "create g3", s.CreateGrant(ctx, newGrant("g3", "bob", "web", bobSession.ID)))
	mustNot(t, "revoke g2 early", s.RevokeGrant(ctx, "g2", t0()))

	mustNot(t, "revoke by user", s.RevokeGrantsByUser(ctx, "alice", at(time.Minute)))
	assertRevokedAt(t, s, "g1", at(time.Minute))
	assertRevokedAt(t, s, "g2", t0()) // already revoked: keeps its time
	assertNotRevoked(t, s, "g3")
}

func assertRevokedAt(t *testing.T, s storage.Store, grantID string, want time.Time) {
	t.Helper()
	g, err := s.GetGrant(context.Background(), grantID)
	mustNot(t, "get grant "+grantID, err)
	if g.RevokedAt == nil {
		t.Errorf("grant %s is not revoked", grantID)
		return
	}
	assertTimeEqual(t, "grant "+grantID+" RevokedAt", *g.RevokedAt, want)
}

func assertNotRevoked(t *testing.T, s storage.Store, grantID string) {
	t.Helper()
	g, err := s.GetGrant(context.Background(), grantID)
	mustNot(t, "get grant "+grantID, err)
	if g.RevokedAt != nil {
		t.Errorf("grant %s was revoked at %v; it should be live", grantID, *g.RevokedAt)
	}
}

// A grant and its first refresh token are stored together or not at all: a
// second grant with the same ID stores neither it nor its token.
func testGrantWithRefreshToken(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	g := newGrant("g1", "alice", "web", sd.aliceSession.ID)
	rt := newRefreshToken("first", "g1")
	mustNot(t, "create grant with refresh token", s.CreateGrantWithRefreshToken(ctx, g, rt))
	gotG, err := s.GetGrant(ctx, "g1")
	mustNot(t, "get grant", err)
	assertEqual(t, "grant", gotG, g)
	gotRT, err := s.GetRefreshToken(ctx, rt.Hash)
	mustNot(t, "get refresh token", err)
	if gotRT.GrantID != "g1" {
		t.Errorf("refresh token belongs to grant %q, want g1", gotRT.GrantID)
	}

	again := newRefreshToken("second", "g1")
	assertErrorIs(t, "second grant with the same ID", s.CreateGrantWithRefreshToken(ctx, g, again), storage.ErrConflict)
	_, err = s.GetRefreshToken(ctx, again.Hash)
	assertErrorIs(t, "the refused grant's refresh token", err, storage.ErrNotFound)
}
