package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func recoveryCodeTests() []namedTest {
	return []namedTest{
		{"UseCountsDown", testRecoveryCodesUse},
		{"ReplaceVoidsOld", testRecoveryCodesReplace},
		{"ScopedToUser", testRecoveryCodesScoped},
		{"ReplaceAllOrNothing", testRecoveryCodesReplaceAtomic},
		{"UseParallel", testRecoveryCodesParallel},
	}
}

// recoveryHashes is a set of n code hashes; set names the set, so two sets
// share no code.
func recoveryHashes(set string, n int) [][]byte {
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = hash(fmt.Sprintf("recovery code %d of %s", i, set))
	}
	return hashes
}

func assertRecoveryCodes(t *testing.T, s storage.Store, what, userID string, want int) {
	t.Helper()
	n, err := s.CountRecoveryCodes(context.Background(), userID)
	if err != nil {
		t.Errorf("%s: CountRecoveryCodes(%s): %v", what, userID, err)
		return
	}
	if n != want {
		t.Errorf("%s: %d unused codes, want %d", what, n, want)
	}
}

// useCode fails t unless using the code succeeds with want codes remaining.
func useCode(t *testing.T, s storage.Store, what, userID string, code []byte, want int) {
	t.Helper()
	remaining, err := s.UseRecoveryCode(context.Background(), userID, code, at(time.Minute))
	if err != nil {
		t.Errorf("%s: UseRecoveryCode: %v", what, err)
		return
	}
	if remaining != want {
		t.Errorf("%s: %d remaining, want %d", what, remaining, want)
	}
}

func testRecoveryCodesUse(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	assertRecoveryCodes(t, s, "before any", "alice", 0)
	codes := recoveryHashes("first", 10)
	mustNot(t, "store codes", s.ReplaceRecoveryCodes(ctx, "alice", codes, t0()))
	assertRecoveryCodes(t, s, "after storing 10", "alice", 10)

	// Out of order: any unused code works.
	order := []int{3, 0, 9, 1, 2, 8, 4, 7, 5, 6}
	for i, c := range order {
		useCode(t, s, fmt.Sprintf("use code %d", c), "alice", codes[c], 9-i)
		assertRecoveryCodes(t, s, fmt.Sprintf("after using code %d", c), "alice", 9-i)
		if i == 0 {
			_, err := s.UseRecoveryCode(ctx, "alice", codes[c], at(2*time.Minute))
			assertErrorIs(t, "reuse a used code", err, storage.ErrNotFound)
			assertRecoveryCodes(t, s, "after a refused reuse", "alice", 9)
		}
	}
	_, err := s.UseRecoveryCode(ctx, "alice", codes[0], at(time.Hour))
	assertErrorIs(t, "reuse when all are used", err, storage.ErrNotFound)
	_, err = s.UseRecoveryCode(ctx, "alice", hash("not a code"), at(time.Hour))
	assertErrorIs(t, "an unknown code", err, storage.ErrNotFound)
}

func testRecoveryCodesReplace(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	old := recoveryHashes("old", 10)
	mustNot(t, "store old codes", s.ReplaceRecoveryCodes(ctx, "alice", old, t0()))
	useCode(t, s, "use an old code", "alice", old[0], 9)

	fresh := recoveryHashes("new", 10)
	mustNot(t, "replace codes", s.ReplaceRecoveryCodes(ctx, "alice", fresh, at(time.Hour)))
	assertRecoveryCodes(t, s, "after the replacement", "alice", 10)
	for i, c := range old {
		_, err := s.UseRecoveryCode(ctx, "alice", c, at(2*time.Hour))
		assertErrorIs(t, fmt.Sprintf("old code %d after the replacement", i), err, storage.ErrNotFound)
	}
	useCode(t, s, "use a new code", "alice", fresh[5], 9)

	// A set may include a code of the old one: it is unused again.
	mixed := append(recoveryHashes("mixed", 2), old[0])
	mustNot(t, "replace with a set including an old code", s.ReplaceRecoveryCodes(ctx, "alice", mixed, at(3*time.Hour)))
	useCode(t, s, "use the old code in the new set", "alice", old[0], 2)

	mustNot(t, "replace with none", s.ReplaceRecoveryCodes(ctx, "alice", nil, at(4*time.Hour)))
	assertRecoveryCodes(t, s, "after replacing with none", "alice", 0)
	_, err := s.UseRecoveryCode(ctx, "alice", mixed[0], at(5*time.Hour))
	assertErrorIs(t, "a code of the voided set", err, storage.ErrNotFound)
}

func testRecoveryCodesScoped(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	alices, bobs := recoveryHashes("alice", 10), recoveryHashes("bob", 5)
	mustNot(t, "store alice's codes", s.ReplaceRecoveryCodes(ctx, "alice", alices, t0()))
	mustNot(t, "store bob's codes", s.ReplaceRecoveryCodes(ctx, "bob", bobs, t0()))

	_, err := s.UseRecoveryCode(ctx, "alice", bobs[0], at(time.Minute))
	assertErrorIs(t, "alice uses bob's code", err, storage.ErrNotFound)
	assertRecoveryCodes(t, s, "bob's codes after alice tried one", "bob", 5)
	useCode(t, s, "bob uses his code", "bob", bobs[0], 4)
	assertRecoveryCodes(t, s, "alice's codes after bob used one", "alice", 10)

	// Replacing alice's set leaves bob's alone.
	mustNot(t, "replace alice's codes", s.ReplaceRecoveryCodes(ctx, "alice", recoveryHashes("alice 2", 3), at(time.Hour)))
	assertRecoveryCodes(t, s, "bob's codes after alice's replacement", "bob", 4)

	// The same code value may be in two users' sets; each use is the user's.
	shared := hash("shared")
	mustNot(t, "alice's set with the shared code", s.ReplaceRecoveryCodes(ctx, "alice", [][]byte{shared}, at(2*time.Hour)))
	mustNot(t, "bob's set with the shared code", s.ReplaceRecoveryCodes(ctx, "bob", [][]byte{shared, hash("bob's own")}, at(2*time.Hour)))
	useCode(t, s, "alice uses the shared code", "alice", shared, 0)
	useCode(t, s, "bob uses the shared code", "bob", shared, 1)

	assertErrorIs(t, "codes of an unknown user", s.ReplaceRecoveryCodes(ctx, "nobody", recoveryHashes("x", 2), t0()), storage.ErrNotFound)
	assertRecoveryCodes(t, s, "codes of an unknown user", "nobody", 0)
	_, err = s.UseRecoveryCode(ctx, "nobody", shared, t0())
	assertErrorIs(t, "use by an unknown user", err, storage.ErrNotFound)
}

// testRecoveryCodesReplaceAtomic: a replacement that fails (a repeated hash,
// an unknown user) changes nothing: the old codes still work.
func testRecoveryCodesReplaceAtomic(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	old := recoveryHashes("old", 4)
	mustNot(t, "store codes", s.ReplaceRecoveryCodes(ctx, "alice", old, t0()))

	repeated := recoveryHashes("new", 3)
	repeated = append(repeated, repeated[1])
	assertErrorIs(t, "a set repeating a code", s.ReplaceRecoveryCodes(ctx, "alice", repeated, at(time.Hour)), storage.ErrConflict)
	assertRecoveryCodes(t, s, "after the failed replacement", "alice", 4)
	useCode(t, s, "an old code after the failed replacement", "alice", old[2], 3)
	_, err := s.UseRecoveryCode(ctx, "alice", repeated[0], at(time.Hour))
	assertErrorIs(t, "a code of the failed set", err, storage.ErrNotFound)
}

// testRecoveryCodesParallel: one code submitted many times at once is used
// once.
func testRecoveryCodesParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	codes := recoveryHashes("alice", 10)
	mustNot(t, "store codes", s.ReplaceRecoveryCodes(ctx, "alice", codes, t0()))

	type result struct {
		remaining int
		err       error
	}
	results := make(chan result, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, err := s.UseRecoveryCode(ctx, "alice", codes[4], at(time.Duration(i)*time.Millisecond))
			results <- result{n, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	errs := make(chan error, parallelism)
	for r := range results {
		if r.err == nil && r.remaining != 9 {
			t.Errorf("the successful use left %d codes, want 9", r.remaining)
		}
		errs <- r.err
	}
	close(errs)
	ok, notFound := countOutcomes(t, errs, storage.ErrNotFound)
	if ok != 1 || notFound != parallelism-1 {
		t.Errorf("%d uses of one code succeeded and %d were refused; want 1 and %d", ok, notFound, parallelism-1)
	}
	assertRecoveryCodes(t, s, "after the race", "alice", 9)
}
