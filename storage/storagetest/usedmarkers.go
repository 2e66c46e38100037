package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func usedMarkerTests() []namedTest {
	return []namedTest{
		{"MarkOnce", testMarkUsedOnce},
		{"ExpiredMarkReplaced", testMarkUsedAfterExpiry},
		{"KeysIndependent", testMarkUsedKeysIndependent},
		{"Parallel", testMarkUsedParallel},
		{"DeleteExpired", testMarkUsedDeleteExpired},
		{"EmptyKeyRefused", testMarkUsedEmptyKey},
	}
}

func testMarkUsedOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "first mark", s.MarkUsed(ctx, "state-1", at(10*time.Minute), t0()))
	assertErrorIs(t, "second mark (a replay)", s.MarkUsed(ctx, "state-1", at(10*time.Minute), at(time.Second)), storage.ErrConflict)
	// The last instant before expiry still counts as a replay, whatever
	// expiry the replay asks for.
	assertErrorIs(t, "mark just before expiry", s.MarkUsed(ctx, "state-1", at(time.Hour), at(10*time.Minute-time.Millisecond)), storage.ErrConflict)
}

// An expired mark is replaced, and the replacement holds until its own expiry.
func testMarkUsedAfterExpiry(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "first mark", s.MarkUsed(ctx, "jti-1", at(time.Minute), t0()))
	mustNot(t, "mark at expiry", s.MarkUsed(ctx, "jti-1", at(time.Hour), at(time.Minute)))
	assertErrorIs(t, "mark during the replacement's life", s.MarkUsed(ctx, "jti-1", at(2*time.Hour), at(30*time.Minute)), storage.ErrConflict)
	mustNot(t, "mark after the replacement expired", s.MarkUsed(ctx, "jti-1", at(3*time.Hour), at(2*time.Hour)))
}

func testMarkUsedKeysIndependent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "mark a", s.MarkUsed(ctx, "a", at(time.Hour), t0()))
	mustNot(t, "mark b", s.MarkUsed(ctx, "b", at(time.Hour), t0()))
	mustNot(t, "mark A (keys are case-sensitive)", s.MarkUsed(ctx, "A", at(time.Hour), t0()))
	assertErrorIs(t, "mark a again", s.MarkUsed(ctx, "a", at(time.Hour), t0()), storage.ErrConflict)
	assertErrorIs(t, "mark b again", s.MarkUsed(ctx, "b", at(time.Hour), t0()), storage.ErrConflict)
}

// Concurrent presentations of one value: exactly one is accepted.
func testMarkUsedParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.MarkUsed(ctx, "state-raced", at(10*time.Minute), at(time.Duration(i)*time.Millisecond))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)

	var ok, conflict int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, storage.ErrConflict):
			conflict++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflict != parallelism-1 {
		t.Errorf("%d marks succeeded and %d conflicted; want 1 and %d", ok, conflict, parallelism-1)
	}
}

// DeleteExpired sweeps expired marks (counted) and keeps live ones.
func testMarkUsedDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	now := at(time.Hour)
	mustNot(t, "mark expired", s.MarkUsed(ctx, "expired", now.Add(-time.Minute), t0()))
	mustNot(t, "mark live", s.MarkUsed(ctx, "live", now.Add(time.Minute), t0()))

	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	if removed != 1 {
		t.Errorf("DeleteExpired removed %d rows, want 1 (the expired mark)", removed)
	}
	removed, err = s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired again", err)
	if removed != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0: the live mark must stay", removed)
	}

	// The swept key may be marked again; the kept one is still a replay.
	mustNot(t, "mark the swept key", s.MarkUsed(ctx, "expired", now.Add(time.Hour), now))
	assertErrorIs(t, "mark the live key", s.MarkUsed(ctx, "live", now.Add(time.Hour), now), storage.ErrConflict)
}

func testMarkUsedEmptyKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	if err := s.MarkUsed(ctx, "", at(time.Hour), t0()); err == nil {
		t.Fatal("MarkUsed accepted an empty key")
	}
	if err := s.MarkUsed(ctx, "", at(time.Hour), t0()); err == nil || errors.Is(err, storage.ErrConflict) {
		t.Errorf("second MarkUsed with an empty key: %v, want a plain error, not a replay verdict", err)
	}
}
