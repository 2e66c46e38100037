package storagetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func totpTests() []namedTest {
	return []namedTest{
		{"RoundTrip", testTOTPRoundTrip},
		{"ReplaceResets", testTOTPReplace},
		{"UseStepRule", testTOTPUseStep},
		{"UseStepParallel", testTOTPUseStepParallel},
		{"Delete", testTOTPDelete},
		{"HasSecondFactor", testHasSecondFactor},
	}
}

// testHasSecondFactor: a TOTP factor or a passkey counts, each alone; an
// unknown user has none.
func testHasSecondFactor(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	check := func(what, userID string, want bool) {
		t.Helper()
		got, err := s.HasSecondFactor(ctx, userID)
		mustNot(t, what, err)
		if got != want {
			t.Errorf("%s: HasSecondFactor(%s) = %v, want %v", what, userID, got, want)
		}
	}
	check("before any", "alice", false)
	check("unknown user", "nobody", false)
	mustNot(t, "set alice's TOTP", s.SetTOTP(ctx, newTOTP("alice")))
	check("with TOTP", "alice", true)
	check("bob beside alice's TOTP", "bob", false)
	mustNot(t, "add bob's passkey", s.CreateWebAuthnCredential(ctx, newCredential([]byte("bob-key"), "bob")))
	check("with a passkey", "bob", true)
	mustNot(t, "delete alice's TOTP", s.DeleteTOTP(ctx, "alice"))
	check("TOTP deleted", "alice", false)
}

func newTOTP(userID string) *storage.TOTPFactor {
	return &storage.TOTPFactor{
		UserID:    userID,
		SecretEnc: append([]byte{0x00, 0xff}, "sealed TOTP secret of "+userID...),
		CreatedAt: t0(),
	}
}

// assertTOTP fails t unless want.UserID's factor is stored as want.
func assertTOTP(t *testing.T, s storage.Store, what string, want *storage.TOTPFactor) {
	t.Helper()
	got, err := s.GetTOTP(context.Background(), want.UserID)
	if err != nil {
		t.Errorf("%s: GetTOTP(%s): %v", what, want.UserID, err)
		return
	}
	assertEqual(t, what, got, want)
}

func testTOTPRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	_, err := s.GetTOTP(ctx, "alice")
	assertErrorIs(t, "GetTOTP before any", err, storage.ErrNotFound)

	fresh := newTOTP("alice")
	mustNot(t, "set alice's TOTP", s.SetTOTP(ctx, fresh))
	assertTOTP(t, s, "TOTP never used", fresh)

	// Every field as given, a step beyond 32 bits and a last use included.
	used := newTOTP("bob")
	used.LastStep, used.LastUsedAt = 1<<40+3, at(time.Minute)
	mustNot(t, "set bob's TOTP", s.SetTOTP(ctx, used))
	assertTOTP(t, s, "TOTP with a last use", used)
	assertTOTP(t, s, "alice's TOTP beside bob's", fresh)

	assertErrorIs(t, "TOTP of an unknown user", s.SetTOTP(ctx, newTOTP("nobody")), storage.ErrNotFound)
	_, err = s.GetTOTP(ctx, "nobody")
	assertErrorIs(t, "GetTOTP(nobody)", err, storage.ErrNotFound)
}

// testTOTPReplace: enrolling again replaces the secret and resets the step,
// so the new secret's codes are judged on their own.
func testTOTPReplace(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "set TOTP", s.SetTOTP(ctx, newTOTP("alice")))
	mustNot(t, "use step 100", s.UseTOTPStep(ctx, "alice", 100, at(time.Minute)))

	replaced := newTOTP("alice")
	replaced.SecretEnc, replaced.CreatedAt = []byte("a new sealed secret"), at(time.Hour)
	mustNot(t, "replace TOTP", s.SetTOTP(ctx, replaced))
	assertTOTP(t, s, "after the replacement", replaced)
	mustNot(t, "use step 50 with the new secret", s.UseTOTPStep(ctx, "alice", 50, at(2*time.Hour)))
	replaced.LastStep, replaced.LastUsedAt = 50, at(2*time.Hour)
	assertTOTP(t, s, "after a use of the new secret", replaced)
}

// testTOTPUseStep: a step is accepted once, and never after a later one.
func testTOTPUseStep(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	f := newTOTP("alice")
	mustNot(t, "set alice's TOTP", s.SetTOTP(ctx, f))
	bobs := newTOTP("bob")
	mustNot(t, "set bob's TOTP", s.SetTOTP(ctx, bobs))

	mustNot(t, "step 100", s.UseTOTPStep(ctx, "alice", 100, at(time.Minute)))
	f.LastStep, f.LastUsedAt = 100, at(time.Minute)
	assertTOTP(t, s, "after step 100", f)
	assertErrorIs(t, "step 100 again", s.UseTOTPStep(ctx, "alice", 100, at(2*time.Minute)), storage.ErrConflict)
	assertErrorIs(t, "step 99 after 100", s.UseTOTPStep(ctx, "alice", 99, at(2*time.Minute)), storage.ErrConflict)
	assertErrorIs(t, "step 0 after 100", s.UseTOTPStep(ctx, "alice", 0, at(2*time.Minute)), storage.ErrConflict)
	assertTOTP(t, s, "after refused steps", f)
	mustNot(t, "step 101", s.UseTOTPStep(ctx, "alice", 101, at(3*time.Minute)))
	f.LastStep, f.LastUsedAt = 101, at(3*time.Minute)
	assertTOTP(t, s, "after step 101", f)

	// Steps are per user.
	assertTOTP(t, s, "bob's TOTP after alice's uses", bobs)
	mustNot(t, "bob's step 100", s.UseTOTPStep(ctx, "bob", 100, at(4*time.Minute)))

	mustNot(t, "create carol", s.CreateUser(ctx, newUser("carol", "carol@example.com")))
	assertErrorIs(t, "step of a user without TOTP", s.UseTOTPStep(ctx, "carol", 100, t0()), storage.ErrNotFound)
	assertErrorIs(t, "step of an unknown user", s.UseTOTPStep(ctx, "nobody", 100, t0()), storage.ErrNotFound)
}

// testTOTPUseStepParallel: one code submitted many times at once (a replay
// racing the user) is accepted exactly once.
func testTOTPUseStepParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "set TOTP", s.SetTOTP(ctx, newTOTP("alice")))

	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.UseTOTPStep(ctx, "alice", 100, at(time.Duration(i)*time.Millisecond))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	ok, conflict := countOutcomes(t, errs, storage.ErrConflict)
	if ok != 1 || conflict != parallelism-1 {
		t.Errorf("%d uses of step 100 succeeded and %d conflicted; want 1 and %d", ok, conflict, parallelism-1)
	}
	got, err := s.GetTOTP(ctx, "alice")
	mustNot(t, "get TOTP", err)
	if got.LastStep != 100 {
		t.Errorf("LastStep after the race = %d, want 100", got.LastStep)
	}
}

func testTOTPDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "set alice's TOTP", s.SetTOTP(ctx, newTOTP("alice")))
	bobs := newTOTP("bob")
	mustNot(t, "set bob's TOTP", s.SetTOTP(ctx, bobs))

	mustNot(t, "delete alice's TOTP", s.DeleteTOTP(ctx, "alice"))
	_, err := s.GetTOTP(ctx, "alice")
	assertErrorIs(t, "GetTOTP after delete", err, storage.ErrNotFound)
	assertErrorIs(t, "UseTOTPStep after delete", s.UseTOTPStep(ctx, "alice", 100, t0()), storage.ErrNotFound)
	assertErrorIs(t, "delete again", s.DeleteTOTP(ctx, "alice"), storage.ErrNotFound)
	assertErrorIs(t, "delete for an unknown user", s.DeleteTOTP(ctx, "nobody"), storage.ErrNotFound)
	assertTOTP(t, s, "bob's TOTP", bobs)
}
