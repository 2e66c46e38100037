package storagetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func signingKeyTests() []namedTest {
	return []namedTest{
		{"CreateAndList", testSigningKeyCreateAndList},
		{"Rotate", testSigningKeyRotate},
		{"RotateStaleActiveConflicts", testSigningKeyRotateStaleActive},
		{"RotateStaleNextConflicts", testSigningKeyRotateStaleNext},
	}
}

// activeAndNext creates the key pair a running deployment has.
func activeAndNext(t *testing.T, s storage.Store) (active, next *storage.SigningKey) {
	t.Helper()
	ctx := context.Background()
	active, next = newSigningKey("k1", storage.KeyActive), newSigningKey("k2", storage.KeyNext)
	next.CreatedAt = at(-24 * time.Hour)
	mustNot(t, "create active key", s.CreateSigningKey(ctx, active))
	mustNot(t, "create next key", s.CreateSigningKey(ctx, next))
	return active, next
}

// assertKeys fails t unless the store holds exactly want (matched by ID).
func assertKeys(t *testing.T, s storage.Store, want ...*storage.SigningKey) {
	t.Helper()
	keys, err := s.ListSigningKeys(context.Background())
	mustNot(t, "list signing keys", err)
	if len(keys) != len(want) {
		t.Errorf("ListSigningKeys returned %d keys, want %d", len(keys), len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(keys, func(k storage.SigningKey) bool { return k.ID == w.ID })
		if i < 0 {
			t.Errorf("ListSigningKeys lacks %s", w.ID)
			continue
		}
		assertEqual(t, "key "+w.ID, &keys[i], w)
	}
}

func testSigningKeyCreateAndList(t *testing.T, s storage.Store) {
	keys, err := s.ListSigningKeys(context.Background())
	mustNot(t, "list keys of an empty store", err)
	if len(keys) != 0 {
		t.Fatalf("empty store lists %d keys", len(keys))
	}
	active, next := activeAndNext(t, s)
	retired := newSigningKey("k0", storage.KeyRetired)
	retired.ActivatedAt, retired.RetiredAt, retired.RemoveAfter = ptrTo(at(-72*time.Hour)), ptrTo(at(-24*time.Hour)), ptrTo(at(time.Hour))
	mustNot(t, "create retired key", s.CreateSigningKey(context.Background(), retired))
	assertKeys(t, s, active, next, retired)

	assertErrorIs(t, "key with a taken ID", s.CreateSigningKey(context.Background(), newSigningKey("k0", storage.KeyRetired)), storage.ErrConflict)
}

func testSigningKeyRotate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	active, next := activeAndNext(t, s)
	newNext := newSigningKey("k3", storage.KeyNext)
	newNext.CreatedAt = t0()
	now, removeAfter := t0(), at(25*time.Hour)

	mustNot(t, "rotate", s.RotateSigningKeys(ctx, active.ID, next.ID, newNext, now, removeAfter))
	active.State, active.RetiredAt, active.RemoveAfter = storage.KeyRetired, &now, &removeAfter
	next.State, next.ActivatedAt = storage.KeyActive, &now
	assertKeys(t, s, active, next, newNext)

	// The next rotation builds on this one.
	newerNext := newSigningKey("k4", storage.KeyNext)
	later := at(24 * time.Hour)
	mustNot(t, "rotate again", s.RotateSigningKeys(ctx, next.ID, newNext.ID, newerNext, later, at(49*time.Hour)))
}

// testSigningKeyRotateStaleActive is the second of two processes rotating at once.
func testSigningKeyRotateStaleActive(t *testing.T, s storage.Store) {
	ctx := context.Background()
	active, next := activeAndNext(t, s)
	newNext := newSigningKey("k3", storage.KeyNext)
	now, removeAfter := t0(), at(25*time.Hour)
	mustNot(t, "first rotation", s.RotateSigningKeys(ctx, active.ID, next.ID, newNext, now, removeAfter))

	err := s.RotateSigningKeys(ctx, active.ID, next.ID, newSigningKey("k3-other", storage.KeyNext), at(time.Second), at(26*time.Hour))
	assertErrorIs(t, "second rotation from the same keys", err, storage.ErrConflict)

	active.State, active.RetiredAt, active.RemoveAfter = storage.KeyRetired, &now, &removeAfter
	next.State, next.ActivatedAt = storage.KeyActive, &now
	assertKeys(t, s, active, next, newNext) // the losing rotation left no trace
}

// testSigningKeyRotateStaleNext checks that a rotation failing on its second step
// undoes its first: the active key must not end up retired with nothing active.
func testSigningKeyRotateStaleNext(t *testing.T, s storage.Store) {
	ctx := context.Background()
	active, next := activeAndNext(t, s)
	err := s.RotateSigningKeys(ctx, active.ID, "not-next", newSigningKey("k3", storage.KeyNext), t0(), at(time.Hour))
	assertErrorIs(t, "rotation with a stale next key", err, storage.ErrConflict)
	err = s.RotateSigningKeys(ctx, active.ID, active.ID, newSigningKey("k3", storage.KeyNext), t0(), at(time.Hour))
	assertErrorIs(t, "rotation naming the active key as next", err, storage.ErrConflict)
	assertKeys(t, s, active, next)
}
