package keys

import (
	"context"
	"testing"
	"time"
)

func TestRunRotatesWhenDue(t *testing.T) {
	clock := newTestClock()
	hooked := &hookStore{Store: newTestStore(t)}
	m := newTestManager(t, hooked, Config{Algorithm: "ES256", RotationPeriod: time.Hour, Now: clock.Now})
	mustInit(t, m)
	before := m.Active().ID
	clock.Advance(time.Hour)

	rotated := make(chan error, nAlgs) // one rotation per algorithm
	hooked.afterRotate = func(err error) { rotated <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A long interval: only the tick Run does at start can rotate.
		m.Run(ctx, time.Hour)
	}()
	for range nAlgs {
		select {
		case err := <-rotated:
			if err != nil {
				t.Fatalf("RotateSigningKeys: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not rotate every key that was due")
		}
	}
	cancel()
	<-done
	// The Load after rotating may have seen the cancelled context; the store is
	// the evidence that Run rotated.
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Active().ID == before {
		t.Fatal("Run did not rotate the active key")
	}
	if n := len(listKeys(t, hooked)); n != 3*nAlgs {
		t.Fatalf("store holds %d keys, want %d after one rotation", n, 3*nAlgs)
	}
}

func TestTickWithoutLockOnlyLoads(t *testing.T) {
	clock := newTestClock()
	store := newTestStore(t)
	cfg := Config{Algorithm: "ES256", RotationPeriod: time.Hour, Now: clock.Now}
	m1 := newTestManager(t, store, cfg)
	m2 := newTestManager(t, store, cfg)
	mustInit(t, m1)
	mustInit(t, m2)
	ctx := context.Background()
	if err := m2.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour) // m2's new key is due too, but m1 cannot get the lock.

	ran, err := store.WithLock(ctx, lockName, func(ctx context.Context) error {
		m1.tick(ctx)
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("WithLock = %v, %v", ran, err)
	}
	if m1.Active().ID != m2.Active().ID {
		t.Fatal("tick did not load the rotation done by another manager")
	}
	if n := len(listKeys(t, store)); n != 3*nAlgs {
		t.Fatalf("store holds %d keys, want %d: tick rotated without the lock", n, 3*nAlgs)
	}
}
