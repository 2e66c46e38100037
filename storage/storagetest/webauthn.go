package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func webAuthnTests() []namedTest {
	return []namedTest{
		{"RoundTrip", testWebAuthnRoundTrip},
		{"DuplicateIDConflicts", testWebAuthnDuplicateID},
		{"UnknownUser", testWebAuthnUnknownUser},
		{"ListOrder", testWebAuthnListOrder},
		{"UseCounterRule", testWebAuthnUseCounter},
		{"UseParallelOneWinner", testWebAuthnUseParallel},
		{"DeleteScopedToUser", testWebAuthnDelete},
		{"UserHandle", testWebAuthnUserHandle},
		{"UserHandleParallel", testWebAuthnUserHandleParallel},
	}
}

// newCredential is a fully populated credential of userID whose ID is id.
func newCredential(id []byte, userID string) *storage.WebAuthnCredential {
	return &storage.WebAuthnCredential{
		ID:              id,
		UserID:          userID,
		Name:            "Key of " + userID,
		PublicKey:       []byte("COSE key of " + string(id)),
		AttestationType: "packed",
		AAGUID:          []byte{0xad, 0xce, 0x00, 0x02, 0x35, 0xbc, 0xc6, 0x0a, 0x64, 0x8b, 0x0b, 0x25, 0xf1, 0xf0, 0x55, 0x03},
		SignCount:       7,
		Transports:      []string{"usb", "nfc", "hybrid"},
		UserVerified:    true,
		BackupEligible:  true,
		BackupState:     false,
		CreatedAt:       t0(),
	}
}

func createCredential(t *testing.T, s storage.Store, c *storage.WebAuthnCredential) {
	t.Helper()
	mustNot(t, fmt.Sprintf("create credential %x of %s", c.ID, c.UserID), s.CreateWebAuthnCredential(context.Background(), c))
}

// assertCredential fails t unless want.ID is stored as want.
func assertCredential(t *testing.T, s storage.Store, what string, want *storage.WebAuthnCredential) {
	t.Helper()
	got, err := s.GetWebAuthnCredential(context.Background(), want.ID)
	if err != nil {
		t.Errorf("%s: GetWebAuthnCredential(%x): %v", what, want.ID, err)
		return
	}
	assertEqual(t, what, got, want)
}

func assertNoCredential(t *testing.T, s storage.Store, what string, id []byte) {
	t.Helper()
	_, err := s.GetWebAuthnCredential(context.Background(), id)
	assertErrorIs(t, what, err, storage.ErrNotFound)
}

// assertCredentials fails t unless the user's credentials are want, in order.
func assertCredentials(t *testing.T, s storage.Store, what, userID string, want ...*storage.WebAuthnCredential) {
	t.Helper()
	got, err := s.ListWebAuthnCredentials(context.Background(), userID)
	if err != nil {
		t.Errorf("%s: ListWebAuthnCredentials(%s): %v", what, userID, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d credentials, want %d: %+v", what, len(got), len(want), got)
		return
	}
	for i := range got {
		assertEqual(t, fmt.Sprintf("%s[%d]", what, i), &got[i], want[i])
	}
}

func testWebAuthnRoundTrip(t *testing.T, s storage.Store) {
	seedStore(t, s)
	// Binary IDs: a NUL byte and bytes that are not UTF-8 must survive.
	fullID := []byte{0x00, 0xff, 0x10, 0x80, 'k'}
	assertNoCredential(t, s, "GetWebAuthnCredential before any", fullID)

	full := newCredential(fullID, "alice")
	full.SignCount = math.MaxUint32 // beyond a signed 32-bit column
	full.BackupState = true
	full.LastUsedAt = at(time.Minute)
	createCredential(t, s, full)
	assertCredential(t, s, "credential with every field set", full)

	// A security key without attestation: no AAGUID, no transports, every
	// flag false, no counter, never used.
	minimal := &storage.WebAuthnCredential{
		ID:        []byte{0x01},
		UserID:    "alice",
		PublicKey: []byte{0xa5, 0x01, 0x02},
		CreatedAt: at(time.Second),
	}
	createCredential(t, s, minimal)
	assertCredential(t, s, "minimal credential", minimal)

	assertNoCredential(t, s, "a prefix of an ID", fullID[:4])
	assertNoCredential(t, s, "an ID with a byte more", append(bytes.Clone(fullID), 0x00))
}

func testWebAuthnDuplicateID(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	alices := newCredential([]byte("credential-1"), "alice")
	createCredential(t, s, alices)

	bobs := newCredential([]byte("credential-1"), "bob")
	bobs.Name, bobs.PublicKey = "Bob's key", []byte("bob's public key")
	assertErrorIs(t, "credential ID of another user's", s.CreateWebAuthnCredential(ctx, bobs), storage.ErrConflict)
	again := newCredential([]byte("credential-1"), "alice")
	again.Name = "renamed"
	assertErrorIs(t, "credential ID registered twice", s.CreateWebAuthnCredential(ctx, again), storage.ErrConflict)

	assertCredential(t, s, "first credential after the conflicts", alices)
	assertCredentials(t, s, "bob's credentials", "bob")
}

func testWebAuthnUnknownUser(t *testing.T, s storage.Store) {
	seedStore(t, s)
	orphan := newCredential([]byte("credential-1"), "nobody")
	assertErrorIs(t, "credential of an unknown user", s.CreateWebAuthnCredential(context.Background(), orphan), storage.ErrNotFound)
	assertNoCredential(t, s, "credential of an unknown user", orphan.ID)

	alices := newCredential([]byte("credential-1"), "alice")
	createCredential(t, s, alices)
	assertCredential(t, s, "credential after the failed one", alices)
}

// testWebAuthnListOrder: CreatedAt, then ID in byte order (0x7f before 0x80,
// a prefix before its extensions), on every backend.
func testWebAuthnListOrder(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	late := newCredential([]byte{0x00}, "alice")
	late.CreatedAt = at(time.Hour)
	high := newCredential([]byte{0x80}, "alice")
	low := newCredential([]byte{0x7f, 0xff}, "alice")
	prefix := newCredential([]byte{0x7f}, "alice")
	early := newCredential([]byte{0xff}, "alice")
	early.CreatedAt = at(-time.Hour)
	bobs := newCredential([]byte{0x01}, "bob")
	for _, c := range []*storage.WebAuthnCredential{late, high, bobs, low, early, prefix} {
		createCredential(t, s, c)
	}
	assertCredentials(t, s, "alice's credentials", "alice", early, prefix, low, high, late)
	assertCredentials(t, s, "bob's credentials", "bob", bobs)

	mustNot(t, "create carol", s.CreateUser(ctx, newUser("carol", "carol@example.com")))
	assertCredentials(t, s, "credentials of a user without any", "carol")
	assertCredentials(t, s, "credentials of an unknown user", "nobody")
}

// testWebAuthnUseCounter walks the signature-counter rule: both counts zero
// is an authenticator without a counter (fine); otherwise the new count must
// be above the stored one, or it is a clone (refused, nothing changed).
func testWebAuthnUseCounter(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	c := newCredential([]byte("credential-1"), "alice")
	c.SignCount = 0
	createCredential(t, s, c)
	other := newCredential([]byte("credential-2"), "alice")
	createCredential(t, s, other)

	use := func(n uint32, backup bool, d time.Duration) error {
		return s.UseWebAuthnCredential(ctx, c.ID, n, backup, at(d))
	}
	mustNot(t, "use 0 after 0", use(0, true, time.Minute))
	c.BackupState, c.LastUsedAt = true, at(time.Minute)
	assertCredential(t, s, "after 0 → 0", c)
	mustNot(t, "use 0 after 0 again", use(0, false, 2*time.Minute))
	c.BackupState, c.LastUsedAt = false, at(2*time.Minute)
	assertCredential(t, s, "after 0 → 0 again", c)

	mustNot(t, "use 5 after 0", use(5, false, 3*time.Minute))
	c.SignCount, c.LastUsedAt = 5, at(3*time.Minute)
	assertCredential(t, s, "after 0 → 5", c)
	mustNot(t, "use 6 after 5", use(6, true, 4*time.Minute))
	c.SignCount, c.BackupState, c.LastUsedAt = 6, true, at(4*time.Minute)
	assertCredential(t, s, "after 5 → 6", c)

	assertErrorIs(t, "use 6 after 6", use(6, false, 5*time.Minute), storage.ErrConflict)
	assertCredential(t, s, "after a refused 6 → 6", c)
	assertErrorIs(t, "use 3 after 6", use(3, false, 6*time.Minute), storage.ErrConflict)
	assertCredential(t, s, "after a refused 6 → 3", c)

	// An authenticator that stops counting is let through, but the stored
	// count stays, so a clone that counts below it is still refused.
	mustNot(t, "use 0 after 6", use(0, false, 7*time.Minute))
	c.BackupState, c.LastUsedAt = false, at(7*time.Minute)
	assertCredential(t, s, "after 6 → 0", c)
	assertErrorIs(t, "use 4 after 6 → 0", use(4, false, 8*time.Minute), storage.ErrConflict)
	mustNot(t, "use 7 after 6 → 0", use(7, false, 9*time.Minute))
	c.SignCount, c.LastUsedAt = 7, at(9*time.Minute)
	assertCredential(t, s, "after 6 → 0 → 7", c)

	// The whole uint32 range.
	mustNot(t, "use the largest count", use(math.MaxUint32, false, 10*time.Minute))
	c.SignCount, c.LastUsedAt = math.MaxUint32, at(10*time.Minute)
	assertCredential(t, s, "after the largest count", c)
	assertErrorIs(t, "use the largest count again", use(math.MaxUint32, false, 11*time.Minute), storage.ErrConflict)
	assertErrorIs(t, "use 1<<31 after the largest", use(1<<31, false, 11*time.Minute), storage.ErrConflict)
	assertCredential(t, s, "after refused uses of large counts", c)

	assertCredential(t, s, "another credential of the user", other)
	assertErrorIs(t, "use an unknown credential", s.UseWebAuthnCredential(ctx, []byte("nope"), 1, false, t0()), storage.ErrNotFound)
	assertErrorIs(t, "use an unknown credential with count 0", s.UseWebAuthnCredential(ctx, []byte("nope"), 0, false, t0()), storage.ErrNotFound)
}

// testWebAuthnUseParallel: one assertion replayed (or a clone racing the
// original) with one counter value: exactly one use is recorded.
func testWebAuthnUseParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	c := newCredential([]byte("credential-1"), "alice")
	c.SignCount = 5
	createCredential(t, s, c)

	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.UseWebAuthnCredential(ctx, c.ID, 6, true, at(time.Duration(i)*time.Millisecond))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	ok, conflict := countOutcomes(t, errs, storage.ErrConflict)
	if ok != 1 || conflict != parallelism-1 {
		t.Errorf("%d uses succeeded and %d conflicted; want 1 and %d", ok, conflict, parallelism-1)
	}
	got, err := s.GetWebAuthnCredential(ctx, c.ID)
	mustNot(t, "get credential", err)
	if got.SignCount != 6 || !got.BackupState || got.LastUsedAt.IsZero() {
		t.Errorf("after the race: SignCount %d, BackupState %v, LastUsedAt %v; want 6, true, set", got.SignCount, got.BackupState, got.LastUsedAt)
	}
}

// countOutcomes drains errs, counting nil and errors that are want; any
// other error fails t.
func countOutcomes(t *testing.T, errs <-chan error, want error) (ok, matched int) {
	t.Helper()
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, want):
			matched++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	return ok, matched
}

func testWebAuthnDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	first := newCredential([]byte("alice-1"), "alice")
	second := newCredential([]byte("alice-2"), "alice")
	second.CreatedAt = at(time.Minute)
	bobs := newCredential([]byte("bob-1"), "bob")
	for _, c := range []*storage.WebAuthnCredential{first, second, bobs} {
		createCredential(t, s, c)
	}

	assertErrorIs(t, "bob deletes alice's credential", s.DeleteWebAuthnCredential(ctx, "bob", first.ID), storage.ErrNotFound)
	assertCredential(t, s, "alice's credential after bob's attempt", first)
	assertErrorIs(t, "delete for an unknown user", s.DeleteWebAuthnCredential(ctx, "nobody", first.ID), storage.ErrNotFound)
	assertErrorIs(t, "delete an unknown credential", s.DeleteWebAuthnCredential(ctx, "alice", []byte("nope")), storage.ErrNotFound)

	mustNot(t, "alice deletes her first credential", s.DeleteWebAuthnCredential(ctx, "alice", first.ID))
	assertNoCredential(t, s, "deleted credential", first.ID)
	assertCredentials(t, s, "alice's credentials after the delete", "alice", second)
	assertCredential(t, s, "bob's credential", bobs)
	assertErrorIs(t, "delete again", s.DeleteWebAuthnCredential(ctx, "alice", first.ID), storage.ErrNotFound)

	// The ID is free again.
	reused := newCredential(first.ID, "bob")
	createCredential(t, s, reused)
	assertCredential(t, s, "a deleted credential's ID registered again", reused)
}

func testWebAuthnUserHandle(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	aliceHandle := hash("alice's handle")
	_, err := s.GetUserByWebAuthnHandle(ctx, aliceHandle)
	assertErrorIs(t, "GetUserByWebAuthnHandle before any", err, storage.ErrNotFound)

	got, err := s.WebAuthnUserHandle(ctx, "alice", aliceHandle)
	mustNot(t, "alice's first handle", err)
	if !bytes.Equal(got, aliceHandle) {
		t.Errorf("first WebAuthnUserHandle = %x, want the candidate %x", got, aliceHandle)
	}
	got, err = s.WebAuthnUserHandle(ctx, "alice", hash("another candidate"))
	mustNot(t, "alice's handle again", err)
	if !bytes.Equal(got, aliceHandle) {
		t.Errorf("second WebAuthnUserHandle = %x, want the stored %x", got, aliceHandle)
	}
	u, err := s.GetUserByWebAuthnHandle(ctx, aliceHandle)
	mustNot(t, "GetUserByWebAuthnHandle(alice's)", err)
	assertEqual(t, "user by alice's handle", u, sd.alice)
	_, err = s.GetUserByWebAuthnHandle(ctx, hash("another candidate"))
	assertErrorIs(t, "a candidate that was not stored", err, storage.ErrNotFound)
	_, err = s.GetUserByWebAuthnHandle(ctx, aliceHandle[:16])
	assertErrorIs(t, "a prefix of a handle", err, storage.ErrNotFound)

	// A handle belongs to one user.
	_, err = s.WebAuthnUserHandle(ctx, "bob", aliceHandle)
	assertErrorIs(t, "bob with alice's handle as candidate", err, storage.ErrConflict)
	bobHandle := []byte{0x00, 0xff, 0x01}
	got, err = s.WebAuthnUserHandle(ctx, "bob", bobHandle)
	mustNot(t, "bob's handle", err)
	if !bytes.Equal(got, bobHandle) {
		t.Errorf("bob's handle = %x, want %x", got, bobHandle)
	}
	u, err = s.GetUserByWebAuthnHandle(ctx, bobHandle)
	mustNot(t, "GetUserByWebAuthnHandle(bob's)", err)
	assertEqual(t, "user by bob's handle", u, sd.bob)

	_, err = s.WebAuthnUserHandle(ctx, "nobody", hash("nobody's"))
	assertErrorIs(t, "handle of an unknown user", err, storage.ErrNotFound)
	_, err = s.GetUserByWebAuthnHandle(ctx, hash("nobody's"))
	assertErrorIs(t, "the unknown user's candidate", err, storage.ErrNotFound)

	mustNot(t, "create carol", s.CreateUser(ctx, newUser("carol", "carol@example.com")))
	for _, bad := range [][]byte{nil, {}, bytes.Repeat([]byte{1}, storage.MaxWebAuthnUserHandle+1)} {
		if _, err := s.WebAuthnUserHandle(ctx, "carol", bad); err == nil {
			t.Errorf("WebAuthnUserHandle accepted a candidate of %d bytes", len(bad))
		}
	}
	longest := bytes.Repeat([]byte{2}, storage.MaxWebAuthnUserHandle)
	got, err = s.WebAuthnUserHandle(ctx, "carol", longest)
	mustNot(t, "carol's handle of the longest length", err)
	if !bytes.Equal(got, longest) {
		t.Errorf("carol's handle = %x, want %x", got, longest)
	}
}

// testWebAuthnUserHandleParallel: a user's first registrations race, each
// with its own random candidate; all must get the one handle stored.
func testWebAuthnUserHandleParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	type result struct {
		handle []byte
		err    error
	}
	results := make(chan result, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	candidates := make(map[string]bool)
	for i := range parallelism {
		candidate := hash(fmt.Sprintf("candidate %d", i))
		candidates[string(candidate)] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h, err := s.WebAuthnUserHandle(ctx, "alice", candidate)
			results <- result{h, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	var stored []byte
	for r := range results {
		if r.err != nil {
			t.Errorf("parallel WebAuthnUserHandle: %v", r.err)
			continue
		}
		if stored == nil {
			stored = r.handle
		}
		if !bytes.Equal(r.handle, stored) {
			t.Errorf("parallel callers got different handles: %x and %x", r.handle, stored)
		}
	}
	if !candidates[string(stored)] {
		t.Fatalf("the handle %x is none of the candidates", stored)
	}
	u, err := s.GetUserByWebAuthnHandle(ctx, stored)
	mustNot(t, "GetUserByWebAuthnHandle(stored)", err)
	assertEqual(t, "user by the stored handle", u, sd.alice)
	for c := range candidates {
		if c == string(stored) {
			continue
		}
		if _, err := s.GetUserByWebAuthnHandle(ctx, []byte(c)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a losing candidate %x: got %v, want ErrNotFound", c, err)
		}
	}
}

// testDeleteMFA: every factor of the user goes, the handle stays, other
// users keep theirs.
func testDeleteMFA(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	handles := map[string][]byte{}
	for _, user := range []string{"alice", "bob"} {
		createCredential(t, s, newCredential([]byte(user+"-1"), user))
		createCredential(t, s, newCredential([]byte(user+"-2"), user))
		mustNot(t, "set TOTP of "+user, s.SetTOTP(ctx, newTOTP(user)))
		mustNot(t, "recovery codes of "+user, s.ReplaceRecoveryCodes(ctx, user, recoveryHashes(user, 10), t0()))
		h, err := s.WebAuthnUserHandle(ctx, user, hash("handle of "+user))
		mustNot(t, "handle of "+user, err)
		handles[user] = h
	}

	mustNot(t, "DeleteMFA(alice)", s.DeleteMFA(ctx, "alice"))
	assertCredentials(t, s, "alice's credentials", "alice")
	assertNoCredential(t, s, "alice's first credential", []byte("alice-1"))
	_, err := s.GetTOTP(ctx, "alice")
	assertErrorIs(t, "alice's TOTP", err, storage.ErrNotFound)
	assertRecoveryCodes(t, s, "alice's recovery codes", "alice", 0)
	_, err = s.UseRecoveryCode(ctx, "alice", recoveryHashes("alice", 10)[0], t0())
	assertErrorIs(t, "use one of alice's deleted codes", err, storage.ErrNotFound)
	h, err := s.WebAuthnUserHandle(ctx, "alice", hash("a new candidate"))
	mustNot(t, "alice's handle after DeleteMFA", err)
	if !bytes.Equal(h, handles["alice"]) {
		t.Errorf("alice's handle after DeleteMFA = %x, want the old %x", h, handles["alice"])
	}
	u, err := s.GetUserByWebAuthnHandle(ctx, handles["alice"])
	if err != nil || u.ID != "alice" {
		t.Errorf("GetUserByWebAuthnHandle(alice's) after DeleteMFA = %v, %v; want alice", u, err)
	}

	if got, err := s.ListWebAuthnCredentials(ctx, "bob"); err != nil || len(got) != 2 {
		t.Errorf("bob's credentials after alice's DeleteMFA: %d, %v; want 2", len(got), err)
	}
	_, err = s.GetTOTP(ctx, "bob")
	mustNot(t, "bob's TOTP survives", err)
	assertRecoveryCodes(t, s, "bob's recovery codes", "bob", 10)

	mustNot(t, "DeleteMFA of a user without factors", s.DeleteMFA(ctx, "alice"))
	mustNot(t, "DeleteMFA of an unknown user", s.DeleteMFA(ctx, "nobody"))
}
