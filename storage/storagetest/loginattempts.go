package storagetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// The lockout policy the login-attempt tests pass to RegisterLoginAttempt.
const (
	threshold = 5
	lockFor   = 15 * time.Minute
)

func loginAttemptTests() []namedTest {
	return []namedTest{
		{"ThresholdLocks", testLoginThresholdLocks},
		{"LockedDoesNotCount", testLoginLockedDoesNotCount},
		{"ExpiredLockStartsFreshCount", testLoginExpiredLock},
		{"ClearResetsCount", testLoginClearResetsCount},
		{"ClearLiftsLock", testLoginClearLiftsLock},
		{"KeysAreIndependent", testLoginKeysIndependent},
		{"UnknownEmailSameAsKnown", testLoginUnknownEmail},
		{"Parallel", testLoginParallel},
		{"LoginLocks", testLoginLocks},
	}
}

// attempt registers one attempt on key at now under the suite's policy.
func attempt(t *testing.T, s storage.Store, key string, now time.Time) storage.LoginAttempt {
	t.Helper()
	a, err := s.RegisterLoginAttempt(context.Background(), key, now, threshold, lockFor)
	mustNot(t, "register login attempt on "+key, err)
	return a
}

// assertAttempt compares an outcome with the expected one.
func assertAttempt(t *testing.T, what string, got, want storage.LoginAttempt) {
	t.Helper()
	assertEqual(t, what, got, want)
}

// lockKey makes threshold failed attempts on key, one second apart from
// start, and returns the outcome of the last one, which locks the key.
func lockKey(t *testing.T, s storage.Store, key string, start time.Time) storage.LoginAttempt {
	t.Helper()
	var last storage.LoginAttempt
	for i := range threshold {
		last = attempt(t, s, key, start.Add(time.Duration(i)*time.Second))
	}
	return last
}

func testLoginThresholdLocks(t *testing.T, s storage.Store) {
	for i := 1; i < threshold; i++ {
		now := at(time.Duration(i) * time.Second)
		got := attempt(t, s, "someone@example.com", now)
		assertAttempt(t, "attempt below the threshold", got, storage.LoginAttempt{Allowed: true, Failures: i})
	}
	// The attempt that makes threshold failures is still let through, and
	// locks the key from its own time on, should its password be wrong too.
	now := at(threshold * time.Second)
	got := attempt(t, s, "someone@example.com", now)
	assertAttempt(t, "attempt reaching the threshold", got,
		storage.LoginAttempt{Allowed: true, Failures: threshold, LockedUntil: now.Add(lockFor)})

	got = attempt(t, s, "someone@example.com", now.Add(time.Millisecond))
	assertAttempt(t, "attempt after the lock", got,
		storage.LoginAttempt{Allowed: false, Failures: threshold, LockedUntil: now.Add(lockFor)})
}

func testLoginLockedDoesNotCount(t *testing.T, s storage.Store) {
	locked := lockKey(t, s, "someone@example.com", t0())
	until := locked.LockedUntil
	// Right after locking, half-way and one millisecond before the end.
	for _, now := range []time.Time{at(threshold * time.Second), until.Add(-lockFor / 2), until.Add(-time.Millisecond)} {
		for range 3 {
			got := attempt(t, s, "someone@example.com", now)
			assertAttempt(t, "attempt on a locked key at "+now.Format(time.StampMilli), got,
				storage.LoginAttempt{Allowed: false, Failures: threshold, LockedUntil: until})
		}
	}
}

func testLoginExpiredLock(t *testing.T, s storage.Store) {
	locked := lockKey(t, s, "someone@example.com", t0())
	// LockedUntil is the first instant the key is free again.
	got := attempt(t, s, "someone@example.com", locked.LockedUntil)
	assertAttempt(t, "attempt when the lock ends", got, storage.LoginAttempt{Allowed: true, Failures: 1})

	// The fresh count locks again after threshold failures in all.
	start := locked.LockedUntil.Add(time.Second)
	for i := 2; i < threshold; i++ {
		got = attempt(t, s, "someone@example.com", start)
		assertAttempt(t, "attempt of the fresh count", got, storage.LoginAttempt{Allowed: true, Failures: i})
	}
	got = attempt(t, s, "someone@example.com", start)
	assertAttempt(t, "attempt reaching the threshold again", got,
		storage.LoginAttempt{Allowed: true, Failures: threshold, LockedUntil: start.Add(lockFor)})

	// Long after the lock ended (and before any sweep) the count is fresh too.
	got = attempt(t, s, "someone@example.com", start.Add(365*24*time.Hour))
	assertAttempt(t, "attempt a year after the lock", got, storage.LoginAttempt{Allowed: true, Failures: 1})
}

func testLoginClearResetsCount(t *testing.T, s storage.Store) {
	ctx := context.Background()
	for i := 1; i < threshold; i++ {
		attempt(t, s, "someone@example.com", at(time.Duration(i)*time.Second))
	}
	mustNot(t, "clear", s.ClearLoginFailures(ctx, "someone@example.com"))
	got := attempt(t, s, "someone@example.com", at(time.Minute))
	assertAttempt(t, "attempt after clearing", got, storage.LoginAttempt{Allowed: true, Failures: 1})

	// Clearing a key without a record (or twice) is no error.
	mustNot(t, "clear an unknown key", s.ClearLoginFailures(ctx, "nobody@example.com"))
	mustNot(t, "clear", s.ClearLoginFailures(ctx, "someone@example.com"))
	mustNot(t, "clear again", s.ClearLoginFailures(ctx, "someone@example.com"))
}

// testLoginClearLiftsLock covers both callers of ClearLoginFailures: the
// attempt that reached the threshold succeeding, and `users unlock` on a key
// locked earlier.
func testLoginClearLiftsLock(t *testing.T, s storage.Store) {
	ctx := context.Background()
	locked := lockKey(t, s, "someone@example.com", t0())
	now := locked.LockedUntil.Add(-lockFor / 2)
	mustNot(t, "clear a key locked by the last attempt", s.ClearLoginFailures(ctx, "someone@example.com"))
	got := attempt(t, s, "someone@example.com", now)
	assertAttempt(t, "attempt after clearing a fresh lock", got, storage.LoginAttempt{Allowed: true, Failures: 1})

	locked = lockKey(t, s, "other@example.com", now)
	later := locked.LockedUntil.Add(-time.Minute)
	if got := attempt(t, s, "other@example.com", later); got.Allowed {
		t.Fatalf("key not locked before unlocking: %+v", got)
	}
	mustNot(t, "unlock", s.ClearLoginFailures(ctx, "other@example.com"))
	got = attempt(t, s, "other@example.com", later)
	assertAttempt(t, "attempt after unlocking", got, storage.LoginAttempt{Allowed: true, Failures: 1})
}

func testLoginKeysIndependent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	locked := lockKey(t, s, "a@example.com", t0())
	now := at(time.Minute)
	attempt(t, s, "b@example.com", now)
	got := attempt(t, s, "b@example.com", now)
	assertAttempt(t, "other key while the first is locked", got, storage.LoginAttempt{Allowed: true, Failures: 2})
	// Keys are compared exactly: the store does not normalise them.
	got = attempt(t, s, "A@example.com", now)
	assertAttempt(t, "key differing in case", got, storage.LoginAttempt{Allowed: true, Failures: 1})

	mustNot(t, "clear the other key", s.ClearLoginFailures(ctx, "b@example.com"))
	got = attempt(t, s, "a@example.com", now)
	assertAttempt(t, "first key after clearing the other", got,
		storage.LoginAttempt{Allowed: false, Failures: threshold, LockedUntil: locked.LockedUntil})
}

// testLoginUnknownEmail checks that a key with an account behind it and one
// without go through the same states: lockout must not reveal which is which.
func testLoginUnknownEmail(t *testing.T, s storage.Store) {
	seedStore(t, s)
	ctx := context.Background()
	run := func(key string) []storage.LoginAttempt {
		var out []storage.LoginAttempt
		for i := range threshold + 2 {
			out = append(out, attempt(t, s, key, at(time.Duration(i)*time.Second)))
		}
		mustNot(t, "clear "+key, s.ClearLoginFailures(ctx, key))
		return append(out, attempt(t, s, key, at(time.Minute)))
	}
	known, unknown := run("alice@example.com"), run("ghost@example.com")
	for i := range known {
		assertAttempt(t, "unknown email vs known", unknown[i], known[i])
	}
	if !known[threshold-1].Allowed || known[threshold].Allowed {
		t.Errorf("known email: attempts %+v; want a lock after %d", known, threshold)
	}
}

// testLoginParallel is the race of GHSA-7h8m-vrxx-vr4m: many password guesses
// on one key at once must not get more than threshold checks through.
func testLoginParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	now := t0()
	results := make(chan storage.LoginAttempt, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := s.RegisterLoginAttempt(ctx, "victim@example.com", now, threshold, lockFor)
			if err != nil {
				t.Errorf("parallel attempt failed: %v", err)
				return
			}
			results <- a
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	allowed := map[int]int{} // how many allowed attempts reported each failure count
	nAllowed, denied := 0, 0
	for r := range results {
		if r.Allowed {
			allowed[r.Failures]++
			nAllowed++
			continue
		}
		denied++
		assertAttempt(t, "denied parallel attempt", r,
			storage.LoginAttempt{Allowed: false, Failures: threshold, LockedUntil: now.Add(lockFor)})
	}
	if nAllowed != threshold || denied != parallelism-threshold {
		t.Errorf("%d allowed (failure counts %v) and %d denied; want %d allowed and %d denied",
			nAllowed, allowed, denied, threshold, parallelism-threshold)
	}
	for i := 1; i <= threshold; i++ {
		if allowed[i] != 1 {
			t.Errorf("%d allowed attempts counted %d failures; want exactly one", allowed[i], i)
		}
	}
	got := attempt(t, s, "victim@example.com", now.Add(time.Second))
	assertAttempt(t, "attempt after the race", got,
		storage.LoginAttempt{Allowed: false, Failures: threshold, LockedUntil: now.Add(lockFor)})
}

// testLoginLocks: LoginLocks reports the keys locked at now with the lock's
// end, leaves out keys with failures but no lock, expired locks, cleared
// and unknown keys, and changes no count.
func testLoginLocks(t *testing.T, s storage.Store) {
	ctx := context.Background()
	locked := lockKey(t, s, "locked@example.com", t0())
	attempt(t, s, "failing@example.com", t0())
	lockKey(t, s, "cleared@example.com", t0())
	mustNot(t, "clear", s.ClearLoginFailures(ctx, "cleared@example.com"))
	keys := []string{"locked@example.com", "failing@example.com", "cleared@example.com", "unknown@example.com"}

	got, err := s.LoginLocks(ctx, keys, at(time.Minute))
	mustNot(t, "login locks", err)
	if len(got) != 1 || !got["locked@example.com"].Truncate(precision).Equal(locked.LockedUntil.Truncate(precision)) {
		t.Fatalf("LoginLocks = %v, want only locked@example.com until %v", got, locked.LockedUntil)
	}
	if u := got["locked@example.com"]; u.Location() != time.UTC {
		t.Errorf("lock end in %v, want UTC", u.Location())
	}
	got, err = s.LoginLocks(ctx, keys, locked.LockedUntil)
	mustNot(t, "login locks at the lock's end", err)
	if len(got) != 0 {
		t.Errorf("LoginLocks when the lock has ended = %v, want none", got)
	}
	got, err = s.LoginLocks(ctx, nil, t0())
	mustNot(t, "login locks of no keys", err)
	if len(got) != 0 {
		t.Errorf("LoginLocks(nil) = %v", got)
	}
	// Reading changed nothing: the next attempt on the failing key is its second.
	a := attempt(t, s, "failing@example.com", at(2*time.Minute))
	assertAttempt(t, "attempt after LoginLocks", a, storage.LoginAttempt{Allowed: true, Failures: 2})
}
