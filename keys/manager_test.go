package keys

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

func TestNewManagerValidates(t *testing.T) {
	store := newTestStore(t)
	if _, err := NewManager(store, []byte("short"), Config{}, nil); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := NewManager(store, testSecret, Config{Algorithm: "HS256"}, nil); err == nil {
		t.Error("HS256 was accepted")
	}
	if _, err := NewManager(nil, testSecret, Config{}, nil); err == nil {
		t.Error("a nil store was accepted")
	}
	m, err := NewManager(store, testSecret, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 0 || m.Active().Signer != nil || len(m.PublicKeys()) != 0 {
		t.Error("a manager before Init should be empty")
	}
}

func TestInitCreatesActiveAndNext(t *testing.T) {
	for _, def := range algorithms {
		t.Run(string(def), func(t *testing.T) {
			store := newTestStore(t)
			m := newTestManager(t, store, Config{Algorithm: string(def)})
			mustInit(t, m)
			assertComplete(t, store)

			// Every algorithm signs with its own active key; the default
			// algorithm's is Active and leads the published set.
			published := publishedIDs(m)
			for i, alg := range m.Algorithms() {
				states := keysByStateOf(t, store, alg)
				active, next := states[storage.KeyActive][0], states[storage.KeyNext][0]
				if got := m.ActiveFor(alg); got.ID != active || got.Algorithm != alg {
					t.Fatalf("ActiveFor(%s) = %s %s, want %s", alg, got.ID, got.Algorithm, active)
				}
				if published[i] != active || published[nAlgs+i] != next {
					t.Fatalf("published = %v, want the %s active key at %d and its next at %d", published, alg, i, nAlgs+i)
				}
				signAndVerifyAlg(t, m, m, alg)
			}
			if got := m.Algorithms(); len(got) != nAlgs || got[0] != def {
				t.Fatalf("Algorithms = %v, want %d with %s first", got, nAlgs, def)
			}
			if got := m.Active(); got.Algorithm != def || got.ID != m.ActiveFor(def).ID {
				t.Fatalf("Active = %s %s, want the %s key", got.ID, got.Algorithm, def)
			}
			if m.Version() != 1 {
				t.Fatalf("Version = %d, want 1", m.Version())
			}
			if got := m.ActiveFor("HS256"); got.Signer != nil {
				t.Fatal("ActiveFor an unsupported algorithm returned a key")
			}
			signAndVerify(t, m, m)
		})
	}
}

// TestInitCompletesAnOlderStore: a store from before per-client algorithms
// holds keys of one algorithm only; Init adds the others' without touching
// those, which keep signing.
func TestInitCompletesAnOlderStore(t *testing.T) {
	store := newTestStore(t)
	s := mustSealer(t, testSecret)
	now := time.Now().UTC()
	active, err := newStoredKey(s, "RS256", now)
	if err != nil {
		t.Fatal(err)
	}
	active.State, active.ActivatedAt = storage.KeyActive, &now
	next, err := newStoredKey(s, "RS256", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*storage.SigningKey{active, next} {
		if err := store.CreateSigningKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	m := newTestManager(t, store, Config{})
	mustInit(t, m)
	assertComplete(t, store)
	if m.Active().ID != active.ID {
		t.Fatalf("Active = %s, want the stored RS256 key %s", m.Active().ID, active.ID)
	}
	if !contains(publishedIDs(m), next.ID) {
		t.Fatal("the stored next key is not published")
	}
}

func TestInitIsIdempotent(t *testing.T) {
	store := newTestStore(t)
	m1 := newTestManager(t, store, Config{})
	mustInit(t, m1)
	v := m1.Version()
	mustInit(t, m1)
	if m1.Version() != v {
		t.Errorf("a second Init changed Version from %d to %d", v, m1.Version())
	}

	m2 := newTestManager(t, store, Config{})
	mustInit(t, m2)
	assertComplete(t, store)
	if m1.Active().ID != m2.Active().ID {
		t.Fatalf("managers disagree on the active key: %s vs %s", m1.Active().ID, m2.Active().ID)
	}
	signAndVerify(t, m1, m2)
}

func TestConcurrentInit(t *testing.T) {
	store := newTestStore(t)
	const n = 8
	managers := make([]*Manager, n)
	for i := range managers {
		managers[i] = newTestManager(t, store, Config{Algorithm: "ES256"})
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range managers {
		wg.Go(func() { errs[i] = m.Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Init %d: %v", i, err)
		}
	}
	assertComplete(t, store)
	for _, m := range managers[1:] {
		for _, alg := range algorithms {
			if m.ActiveFor(alg).ID != managers[0].ActiveFor(alg).ID {
				t.Fatalf("managers disagree on the active %s key", alg)
			}
		}
	}
}

func TestRotate(t *testing.T) {
	clock := newTestClock()
	store := newTestStore(t)
	cfg := Config{Algorithm: "ES256", RetainAfterRetire: 2 * time.Hour, Now: clock.Now}
	m1 := newTestManager(t, store, cfg)
	m2 := newTestManager(t, store, cfg)
	mustInit(t, m1)
	mustInit(t, m2)
	type chain struct{ active, next string }
	before := map[jose.SignatureAlgorithm]chain{}
	for _, alg := range algorithms {
		st := keysByStateOf(t, store, alg)
		before[alg] = chain{st[storage.KeyActive][0], st[storage.KeyNext][0]}
	}
	v1, v2 := m1.Version(), m2.Version()

	clock.Advance(time.Hour)
	if err := m1.Rotate(context.Background()); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	// Every algorithm rotated: its next key signs, its active key is retired
	// (and stays published for RetainAfterRetire), and it has a new next key.
	published := publishedIDs(m1)
	for _, alg := range algorithms {
		old := before[alg]
		states := keysByStateOf(t, store, alg)
		if got := states[storage.KeyActive]; len(got) != 1 || got[0] != old.next {
			t.Fatalf("%s active keys = %v, want the old next key %s", alg, got, old.next)
		}
		if got := states[storage.KeyRetired]; len(got) != 1 || got[0] != old.active {
			t.Fatalf("%s retired keys = %v, want the old active key %s", alg, got, old.active)
		}
		if got := states[storage.KeyNext]; len(got) != 1 || got[0] == old.next {
			t.Fatalf("%s next keys = %v, want one new key", alg, got)
		}
		if m1.ActiveFor(alg).ID != old.next {
			t.Fatalf("m1 signs %s with %s, want %s", alg, m1.ActiveFor(alg).ID, old.next)
		}
		for _, id := range []string{old.next, states[storage.KeyNext][0], old.active} {
			if !contains(published, id) {
				t.Fatalf("%s key %s is not published: %v", alg, id, published)
			}
		}
	}
	for _, k := range listKeys(t, store) {
		if k.State == storage.KeyRetired {
			want := clock.Now().Add(2 * time.Hour)
			if k.RemoveAfter == nil || !k.RemoveAfter.Equal(want) {
				t.Errorf("RemoveAfter of %s = %v, want %v", k.Algorithm, k.RemoveAfter, want)
			}
		}
	}
	def := before[jose.ES256]
	if len(published) != 3*nAlgs || published[0] != def.next {
		t.Fatalf("published = %v, want %d keys, the ES256 active one first", published, 3*nAlgs)
	}
	if m1.Version() == v1 {
		t.Fatal("Version did not change on rotation")
	}

	// m2 keeps its snapshot until it loads; tokens m1 signs with the former next
	// keys still verify on m2 because next keys are published before they sign.
	if m2.Active().ID != def.active || m2.Version() != v2 {
		t.Fatal("m2 changed without Load")
	}
	for _, alg := range algorithms {
		signAndVerifyAlg(t, m1, m2, alg)
	}
	if err := m2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m2.Active().ID != def.next || m2.Version() == v2 {
		t.Fatalf("after Load m2 signs with %s (version %d), want %s and a new version", m2.Active().ID, m2.Version(), def.next)
	}
	// Tokens signed before the rotation still verify: the retired keys are published.
	for _, alg := range algorithms {
		signAndVerifyAlg(t, m2, m1, alg)
	}
}

func TestRotateLosesRaceToAnotherProcess(t *testing.T) {
	base := newTestStore(t)
	cfg := Config{Algorithm: "ES256"}
	other := newTestManager(t, base, cfg)
	mustInit(t, other)

	// Between this manager reading the keys and rotating, another process rotates.
	hooked := &hookStore{Store: base}
	var conflict error
	hooked.beforeRotate = func() {
		hooked.beforeRotate = nil
		if err := other.Rotate(context.Background()); err != nil {
			t.Errorf("other Rotate: %v", err)
		}
	}
	hooked.afterRotate = func(err error) { conflict = err }
	m := newTestManager(t, hooked, cfg)
	mustInit(t, m)
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatalf("Rotate after losing the race: %v", err)
	}
	if !errors.Is(conflict, storage.ErrConflict) {
		t.Fatalf("store returned %v, want ErrConflict", conflict)
	}
	for _, alg := range algorithms {
		states := keysByStateOf(t, base, alg)
		if len(states[storage.KeyRetired]) != 1 || len(states[storage.KeyActive]) != 1 || len(states[storage.KeyNext]) != 1 {
			t.Fatalf("%s keys by state = %v, want exactly one rotation", alg, states)
		}
		if m.ActiveFor(alg).ID != other.ActiveFor(alg).ID {
			t.Fatalf("the loser did not load the winner's %s rotation", alg)
		}
	}
}

func TestRotateIfDue(t *testing.T) {
	clock := newTestClock()
	store := newTestStore(t)
	m := newTestManager(t, store, Config{Algorithm: "ES256", RotationPeriod: 24 * time.Hour, Now: clock.Now})
	mustInit(t, m)
	first := m.Active().ID
	ctx := context.Background()

	clock.Advance(24*time.Hour - time.Second)
	if rotated, err := m.RotateIfDue(ctx); err != nil || rotated {
		t.Fatalf("RotateIfDue before the period = %v, %v; want false", rotated, err)
	}
	clock.Advance(time.Second)
	if rotated, err := m.RotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("RotateIfDue at the period = %v, %v; want true", rotated, err)
	}
	second := m.Active().ID
	if second == first {
		t.Fatal("the active key did not change")
	}
	// The period restarts with the new key's activation.
	if rotated, err := m.RotateIfDue(ctx); err != nil || rotated {
		t.Fatalf("RotateIfDue right after rotating = %v, %v; want false", rotated, err)
	}
	clock.Advance(24 * time.Hour)
	if rotated, err := m.RotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("RotateIfDue one period later = %v, %v; want true", rotated, err)
	}
	if m.Active().ID == second {
		t.Fatal("the active key did not change on the second rotation")
	}
}

func TestWrongSecret(t *testing.T) {
	store := newTestStore(t)
	mustInit(t, newTestManager(t, store, Config{Algorithm: "ES256"}))
	kid := keysByStateOf(t, store, jose.ES256)[storage.KeyActive][0] // the default's is opened first

	m, err := NewManager(store, []byte("a-different-secret-0123456789"), Config{Algorithm: "ES256"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Init(context.Background())
	if !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("Init with the wrong secret: %v, want ErrWrongSecret", err)
	}
	if want := "cannot decrypt signing key " + kid + ": wrong GATEHOUSE_SECRET?"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	if m.Active().Signer != nil || m.Version() != 0 {
		t.Fatal("a manager that failed to decrypt has a signer")
	}
}

func TestRetiredKeyDroppedAfterRemoveAfter(t *testing.T) {
	clock := newTestClock()
	store := newTestStore(t)
	m := newTestManager(t, store, Config{Algorithm: "ES256", RetainAfterRetire: time.Hour, Now: clock.Now})
	mustInit(t, m)
	retired := m.Active().ID
	ctx := context.Background()
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Hour - time.Second)
	if _, err := store.DeleteExpired(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if !contains(publishedIDs(m), retired) {
		t.Fatal("the retired key left JWKS before RemoveAfter")
	}

	v := m.Version()
	clock.Advance(time.Second)
	if _, err := store.DeleteExpired(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if contains(publishedIDs(m), retired) {
		t.Fatal("the retired key is still published after RemoveAfter")
	}
	if len(m.PublicKeys()) != 2*nAlgs || m.Version() == v {
		t.Fatalf("published %v at version %d (was %d), want the active and next keys at a new version", publishedIDs(m), m.Version(), v)
	}
	for _, k := range listKeys(t, store) {
		if k.ID == retired {
			t.Fatal("DeleteExpired kept the retired key")
		}
	}
}

// TestDefaultAlgorithmChangeIsImmediate: every algorithm has keys whatever
// the default, so another default signs at once, with a key published since
// it was created, and creates nothing.
func TestDefaultAlgorithmChangeIsImmediate(t *testing.T) {
	store := newTestStore(t)
	first := newTestManager(t, store, Config{Algorithm: "RS256"})
	mustInit(t, first)
	published := publishedIDs(first)

	m := newTestManager(t, store, Config{Algorithm: "EdDSA"})
	mustInit(t, m)
	assertComplete(t, store)
	got := m.Active()
	if got.Algorithm != jose.EdDSA || got.ID != first.ActiveFor(jose.EdDSA).ID {
		t.Fatalf("with the default switched to EdDSA the active key is %s %s, want the stored EdDSA key", got.ID, got.Algorithm)
	}
	if !contains(published, got.ID) {
		t.Fatal("the key that signs now was not published before")
	}
	if ids := publishedIDs(m); ids[0] != got.ID {
		t.Fatalf("published = %v, want the EdDSA key first", ids)
	}
	signAndVerify(t, m, first)
}

// TestUnknownAlgorithmIgnored: keys of an algorithm this version does not
// sign with (a newer version's) are left out, not a failed load.
func TestUnknownAlgorithmIgnored(t *testing.T) {
	store := newTestStore(t)
	m := newTestManager(t, store, Config{})
	mustInit(t, m)
	v := m.Version()
	now := time.Now().UTC()
	future := &storage.SigningKey{ID: "future", Algorithm: "ES384", State: storage.KeyActive,
		PrivateKey: []byte("sealed"), PublicKey: []byte("public"), CreatedAt: now, ActivatedAt: &now}
	if err := store.CreateSigningKey(context.Background(), future); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatalf("Load with a key of an unknown algorithm: %v", err)
	}
	if contains(publishedIDs(m), "future") || m.Version() != v {
		t.Fatal("a key of an unknown algorithm was published")
	}
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatalf("Rotate with a key of an unknown algorithm: %v", err)
	}
}

func TestLoadFailureKeepsSnapshot(t *testing.T) {
	hooked := &hookStore{Store: newTestStore(t)}
	m := newTestManager(t, hooked, Config{Algorithm: "ES256"})
	mustInit(t, m)
	before, v := m.Active().ID, m.Version()

	hooked.listErr = errors.New("database is down")
	if err := m.Load(context.Background()); err == nil {
		t.Fatal("Load succeeded with a failing store")
	}
	if m.Active().ID != before || m.Active().Signer == nil || m.Version() != v {
		t.Fatal("a failed Load changed the snapshot")
	}
}

func TestReadersDuringRotation(t *testing.T) {
	// For the race detector: hot-path readers run while keys rotate and reload.
	store := newTestStore(t)
	m := newTestManager(t, store, Config{Algorithm: "ES256"})
	mustInit(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				a := m.Active()
				if a.Signer == nil || a.ID == "" {
					t.Error("empty active key")
					return
				}
				if len(m.PublicKeys()) < 2 {
					t.Error("fewer than two published keys")
					return
				}
				_ = m.Version()
			}
		})
	}
	for range 5 {
		if err := m.Rotate(ctx); err != nil {
			t.Error(err)
		}
		if err := m.Load(ctx); err != nil {
			t.Error(err)
		}
	}
	cancel()
	wg.Wait()
}
