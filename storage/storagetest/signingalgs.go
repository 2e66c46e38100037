package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Per-client signing algorithms: every algorithm has its own active and next
// key, and a client's algorithm must be read back as written (a backend that
// lost it would sign the client's tokens in an algorithm it refuses).
func signingAlgorithmTests() []namedTest {
	return []namedTest{
		{"ClientAlgorithm", testClientSigningAlgorithm},
		{"ActiveAndNextPerAlgorithm", testKeysPerAlgorithm},
		{"RotateOneAlgorithm", testRotateOneAlgorithm},
		{"RotateAcrossAlgorithmsConflicts", testRotateAcrossAlgorithms},
	}
}

func testClientSigningAlgorithm(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := newClient("c1")
	c.IDTokenSignedResponseAlg = "ES256"
	mustNot(t, "create client", s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	if got.IDTokenSignedResponseAlg != "ES256" {
		t.Fatalf("IDTokenSignedResponseAlg = %q after create, want ES256", got.IDTokenSignedResponseAlg)
	}
	for _, want := range []string{"EdDSA", "", "RS256"} {
		c.IDTokenSignedResponseAlg = want
		c.Version = 0
		mustNot(t, "update client", s.UpdateClient(ctx, c))
		got, err := s.GetClient(ctx, "c1")
		mustNot(t, "get client", err)
		if got.IDTokenSignedResponseAlg != want {
			t.Fatalf("GetClient after UpdateClient: IDTokenSignedResponseAlg = %q, want %q", got.IDTokenSignedResponseAlg, want)
		}
		list, err := s.ListClients(ctx)
		mustNot(t, "list clients", err)
		if len(list) != 1 || list[0].IDTokenSignedResponseAlg != want {
			t.Fatalf("ListClients after UpdateClient: IDTokenSignedResponseAlg of %+v, want %q", list, want)
		}
	}
}

// keyOf is newSigningKey for another algorithm.
func keyOf(id, alg, state string) *storage.SigningKey {
	k := newSigningKey(id, state)
	k.Algorithm = alg
	return k
}

// testKeysPerAlgorithm: one active and one next key per algorithm, not one
// in all; a second of either state in the same algorithm is a conflict.
func testKeysPerAlgorithm(t *testing.T, s storage.Store) {
	ctx := context.Background()
	var want []*storage.SigningKey
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		for _, state := range []string{storage.KeyActive, storage.KeyNext} {
			k := keyOf(alg+"-"+state, alg, state)
			mustNot(t, "create "+k.ID, s.CreateSigningKey(ctx, k))
			want = append(want, k)
		}
	}
	assertKeys(t, s, want...)
	for _, state := range []string{storage.KeyActive, storage.KeyNext} {
		err := s.CreateSigningKey(ctx, keyOf("ES256-second-"+state, "ES256", state))
		assertErrorIs(t, "a second "+state+" ES256 key", err, storage.ErrConflict)
	}
	// Retired keys are not limited.
	for _, id := range []string{"old-1", "old-2"} {
		k := keyOf(id, "ES256", storage.KeyRetired)
		k.RetiredAt, k.RemoveAfter = ptrTo(at(-time.Hour)), ptrTo(at(time.Hour))
		mustNot(t, "create retired "+id, s.CreateSigningKey(ctx, k))
	}
}

// testRotateOneAlgorithm: rotating one algorithm's keys leaves the others'.
func testRotateOneAlgorithm(t *testing.T, s storage.Store) {
	ctx := context.Background()
	rsActive, rsNext := keyOf("rs-a", "RS256", storage.KeyActive), keyOf("rs-n", "RS256", storage.KeyNext)
	edActive, edNext := keyOf("ed-a", "EdDSA", storage.KeyActive), keyOf("ed-n", "EdDSA", storage.KeyNext)
	for _, k := range []*storage.SigningKey{rsActive, rsNext, edActive, edNext} {
		mustNot(t, "create "+k.ID, s.CreateSigningKey(ctx, k))
	}
	newNext := keyOf("ed-n2", "EdDSA", storage.KeyNext)
	now, removeAfter := t0(), at(25*time.Hour)
	mustNot(t, "rotate EdDSA", s.RotateSigningKeys(ctx, edActive.ID, edNext.ID, newNext, now, removeAfter))
	edActive.State, edActive.RetiredAt, edActive.RemoveAfter = storage.KeyRetired, &now, &removeAfter
	edNext.State, edNext.ActivatedAt = storage.KeyActive, &now
	assertKeys(t, s, rsActive, rsNext, edActive, edNext, newNext)
}

// testRotateAcrossAlgorithms: a rotation that would promote another
// algorithm's key, or retire one, is refused and leaves no trace, so the
// chains of two algorithms never mix.
func testRotateAcrossAlgorithms(t *testing.T, s storage.Store) {
	ctx := context.Background()
	rsActive, rsNext := keyOf("rs-a", "RS256", storage.KeyActive), keyOf("rs-n", "RS256", storage.KeyNext)
	esActive, esNext := keyOf("es-a", "ES256", storage.KeyActive), keyOf("es-n", "ES256", storage.KeyNext)
	for _, k := range []*storage.SigningKey{rsActive, rsNext, esActive, esNext} {
		mustNot(t, "create "+k.ID, s.CreateSigningKey(ctx, k))
	}
	err := s.RotateSigningKeys(ctx, rsActive.ID, esNext.ID, keyOf("rs-n2", "RS256", storage.KeyNext), t0(), at(time.Hour))
	assertErrorIs(t, "promoting another algorithm's next key", err, storage.ErrConflict)
	err = s.RotateSigningKeys(ctx, esActive.ID, rsNext.ID, keyOf("rs-n3", "RS256", storage.KeyNext), t0(), at(time.Hour))
	assertErrorIs(t, "retiring another algorithm's active key", err, storage.ErrConflict)
	assertKeys(t, s, rsActive, rsNext, esActive, esNext)
}
