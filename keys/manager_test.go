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
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			store := newTestStore(t)
			m := newTestManager(t, store, Config{Algorithm: string(alg)})
			mustInit(t, m)

			states := keysByState(t, store)
			if len(states[storage.KeyActive]) != 1 || len(states[storage.KeyNext]) != 1 || len(states) != 2 {
				t.Fatalf("stored keys by state = %v, want one active and one next", states)
			}
			active, next := states[storage.KeyActive][0], states[storage.KeyNext][0]
			if got := m.Active(); got.ID != active || got.Algorithm != alg {
				t.Fatalf("Active = %s %s, want %s %s", got.ID, got.Algorithm, active, alg)
			}
			if got := publishedIDs(m); len(got) != 2 || got[0] != active || got[1] != next {
				t.Fatalf("published = %v, want [%s %s]", got, active, next)
			}
			if m.Version() != 1 {
				t.Fatalf("Version = %d, want 1", m.Version())
			}
			for _, k := range listKeys(t, store) {
				if k.Algorithm != string(alg) {
					t.Errorf("key %s has algorithm %s, want %s", k.ID, k.Algorithm, alg)
				}
			}
			signAndVerify(t, m, m)
		})
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
	if n := len(listKeys(t, store)); n != 2 {
		t.Fatalf("store holds %d keys after three Inits, want 2", n)
	}
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
		// ES256 keeps key generation cheap under the race detector.
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
	if got := len(listKeys(t, store)); got != 2 {
		t.Fatalf("store holds %d keys, want 2", got)
	}
	for _, m := range managers[1:] {
		if m.Active().ID != managers[0].Active().ID {
			t.Fatal("managers disagree on the active key")
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
	oldActive := m1.Active().ID
	oldNext := keysByState(t, store)[storage.KeyNext][0]
	v1, v2 := m1.Version(), m2.Version()

	clock.Advance(time.Hour)
	if err := m1.Rotate(context.Background()); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	states := keysByState(t, store)
	if got := states[storage.KeyActive]; len(got) != 1 || got[0] != oldNext {
		t.Fatalf("active keys = %v, want the old next key %s", got, oldNext)
	}
	if got := states[storage.KeyRetired]; len(got) != 1 || got[0] != oldActive {
		t.Fatalf("retired keys = %v, want the old active key %s", got, oldActive)
	}
	if got := states[storage.KeyNext]; len(got) != 1 || got[0] == oldNext {
		t.Fatalf("next keys = %v, want one new key", got)
	}
	newNext := states[storage.KeyNext][0]
	for _, k := range listKeys(t, store) {
		if k.ID == oldActive {
			want := clock.Now().Add(2 * time.Hour)
			if k.RemoveAfter == nil || !k.RemoveAfter.Equal(want) {
				t.Errorf("RemoveAfter = %v, want %v", k.RemoveAfter, want)
			}
		}
	}

	if m1.Active().ID != oldNext {
		t.Fatalf("m1 signs with %s, want %s", m1.Active().ID, oldNext)
	}
	if got := publishedIDs(m1); len(got) != 3 || got[0] != oldNext || got[1] != newNext || got[2] != oldActive {
		t.Fatalf("published = %v, want [%s %s %s]", got, oldNext, newNext, oldActive)
	}
	if m1.Version() == v1 {
		t.Fatal("Version did not change on rotation")
	}

	// m2 keeps its snapshot until it loads; tokens m1 signs with the former next
	// key still verify on m2 because next keys are published before they sign.
	if m2.Active().ID != oldActive || m2.Version() != v2 {
		t.Fatal("m2 changed without Load")
	}
	signAndVerify(t, m1, m2)
	if err := m2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m2.Active().ID != oldNext || m2.Version() == v2 {
		t.Fatalf("after Load m2 signs with %s (version %d), want %s and a new version", m2.Active().ID, m2.Version(), oldNext)
	}
	// Tokens signed before the rotation still verify: the retired key is published.
	signAndVerify(t, m2, m1)
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
	states := keysByState(t, base)
	if len(states[storage.KeyRetired]) != 1 || len(states[storage.KeyActive]) != 1 || len(states[storage.KeyNext]) != 1 {
		t.Fatalf("keys by state = %v, want exactly one rotation", states)
	}
	if m.Active().ID != other.Active().ID {
		t.Fatal("the loser did not load the winner's rotation")
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
	kid := keysByState(t, store)[storage.KeyActive][0]

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
	if len(m.PublicKeys()) != 2 || m.Version() == v {
		t.Fatalf("published %v at version %d (was %d), want active and next at a new version", publishedIDs(m), m.Version(), v)
	}
	for _, k := range listKeys(t, store) {
		if k.ID == retired {
			t.Fatal("DeleteExpired kept the retired key")
		}
	}
}

func TestAlgorithmChangeTakesEffectOverTwoRotations(t *testing.T) {
	store := newTestStore(t)
	mustInit(t, newTestManager(t, store, Config{Algorithm: "RS256"}))

	m := newTestManager(t, store, Config{Algorithm: "ES256"})
	mustInit(t, m)
	ctx := context.Background()
	if got := m.Active().Algorithm; got != jose.RS256 {
		t.Fatalf("after switching the configuration the active key is %s; want the stored RS256 key kept", got)
	}
	if n := len(listKeys(t, store)); n != 2 {
		t.Fatalf("Init created keys for the new algorithm: %d keys", n)
	}

	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Active().Algorithm; got != jose.RS256 {
		t.Fatalf("after one rotation the active key is %s, want the published RS256 next key", got)
	}
	for _, k := range listKeys(t, store) {
		if k.State == storage.KeyNext && k.Algorithm != "ES256" {
			t.Fatalf("the new next key is %s, want ES256", k.Algorithm)
		}
	}
	signAndVerify(t, m, m)

	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Active().Algorithm; got != jose.ES256 {
		t.Fatalf("after two rotations the active key is %s, want ES256", got)
	}
	signAndVerify(t, m, m)
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
