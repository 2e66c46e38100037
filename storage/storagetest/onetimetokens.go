package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func oneTimeTokenTests() []namedTest {
	return []namedTest{
		{"CreateAndConsume", testOneTimeTokenCreateAndConsume},
		{"ConsumeOnce", testOneTimeTokenConsumeOnce},
		{"ConsumeNotFound", testOneTimeTokenNotFound},
		{"Expiry", testOneTimeTokenExpiry},
		{"CreateReplacesSameKind", testOneTimeTokenReplaces},
		{"CreateErrors", testOneTimeTokenCreateErrors},
		{"DeletedWithUser", testOneTimeTokenDeletedWithUser},
		{"ConsumeParallel", testOneTimeTokenParallel},
	}
}

func newOneTimeToken(secret, kind, userID string) *storage.OneTimeToken {
	return &storage.OneTimeToken{
		Hash:      hash(secret),
		Kind:      kind,
		UserID:    userID,
		Email:     userID + "@example.com",
		CreatedAt: t0(),
		ExpiresAt: at(time.Hour),
	}
}

func createToken(t *testing.T, s storage.Store, tok *storage.OneTimeToken) {
	t.Helper()
	mustNot(t, "create one-time token", s.CreateOneTimeToken(context.Background(), tok))
}

// assertConsumed consumes tok at now and checks it comes back marked used.
func assertConsumed(t *testing.T, s storage.Store, what string, tok *storage.OneTimeToken, now time.Time) {
	t.Helper()
	got, err := s.ConsumeOneTimeToken(context.Background(), tok.Hash, tok.Kind, now)
	if err != nil {
		t.Errorf("%s: consume: %v", what, err)
		return
	}
	want := *tok
	want.UsedAt = &now
	assertEqual(t, what, got, &want)
}

// assertNotConsumable checks that consuming hash as kind at now is ErrNotFound.
func assertNotConsumable(t *testing.T, s storage.Store, what string, hash []byte, kind string, now time.Time) {
	t.Helper()
	got, err := s.ConsumeOneTimeToken(context.Background(), hash, kind, now)
	assertErrorIs(t, what, err, storage.ErrNotFound)
	if got != nil {
		t.Errorf("%s: returned a token along with the error: %+v", what, got)
	}
}

func testOneTimeTokenCreateAndConsume(t *testing.T, s storage.Store) {
	seedStore(t, s)
	// A change_email token carries the new address, not the account's.
	tok := newOneTimeToken("ott", storage.TokenChangeEmail, "alice")
	tok.Email = "alice.new@example.com"
	createToken(t, s, tok)
	assertConsumed(t, s, "ConsumeOneTimeToken", tok, at(time.Minute))
}

func testOneTimeTokenConsumeOnce(t *testing.T, s storage.Store) {
	seedStore(t, s)
	tok := newOneTimeToken("ott", storage.TokenVerifyEmail, "alice")
	createToken(t, s, tok)
	assertConsumed(t, s, "first consumption", tok, at(time.Minute))
	assertNotConsumable(t, s, "second consumption", tok.Hash, tok.Kind, at(time.Minute))
	assertNotConsumable(t, s, "later consumption", tok.Hash, tok.Kind, at(2*time.Minute))
}

func testOneTimeTokenNotFound(t *testing.T, s storage.Store) {
	seedStore(t, s)
	tok := newOneTimeToken("ott", storage.TokenResetPassword, "alice")
	createToken(t, s, tok)
	now := at(time.Minute)
	assertNotConsumable(t, s, "unknown token", hash("unknown"), storage.TokenResetPassword, now)
	assertNotConsumable(t, s, "token of another kind", tok.Hash, storage.TokenVerifyEmail, now)
	assertNotConsumable(t, s, "token of another kind", tok.Hash, storage.TokenChangeEmail, now)
	// Presenting it as the wrong kind did not use it up.
	assertConsumed(t, s, "token of the right kind", tok, now)
}

func testOneTimeTokenExpiry(t *testing.T, s storage.Store) {
	seedStore(t, s)
	justBefore := newOneTimeToken("ott-alice", storage.TokenVerifyEmail, "alice")
	atExpiry := newOneTimeToken("ott-bob", storage.TokenVerifyEmail, "bob")
	createToken(t, s, justBefore)
	createToken(t, s, atExpiry)
	// ExpiresAt is the first instant the token no longer works.
	assertNotConsumable(t, s, "token at ExpiresAt", atExpiry.Hash, atExpiry.Kind, atExpiry.ExpiresAt)
	assertNotConsumable(t, s, "token after ExpiresAt", atExpiry.Hash, atExpiry.Kind, atExpiry.ExpiresAt.Add(time.Hour))
	assertConsumed(t, s, "token a millisecond before ExpiresAt", justBefore, justBefore.ExpiresAt.Add(-time.Millisecond))
}

func testOneTimeTokenReplaces(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	first := newOneTimeToken("ott-1", storage.TokenResetPassword, "alice")
	used := newOneTimeToken("ott-used", storage.TokenVerifyEmail, "alice")
	otherKind := newOneTimeToken("ott-other-kind", storage.TokenChangeEmail, "alice")
	otherUser := newOneTimeToken("ott-bob", storage.TokenResetPassword, "bob")
	for _, tok := range []*storage.OneTimeToken{first, used, otherKind, otherUser} {
		createToken(t, s, tok)
	}
	_, err := s.ConsumeOneTimeToken(ctx, used.Hash, used.Kind, t0())
	mustNot(t, "consume", err)

	now := at(time.Minute)
	second := newOneTimeToken("ott-2", storage.TokenResetPassword, "alice")
	second.CreatedAt, second.ExpiresAt = now, now.Add(time.Hour)
	createToken(t, s, second)
	third := newOneTimeToken("ott-3", storage.TokenResetPassword, "alice")
	third.CreatedAt, third.ExpiresAt = now, now.Add(time.Hour)
	createToken(t, s, third)
	// Replacing a used token works the same.
	newVerify := newOneTimeToken("ott-verify-2", storage.TokenVerifyEmail, "alice")
	createToken(t, s, newVerify)

	assertNotConsumable(t, s, "token replaced twice", first.Hash, first.Kind, now)
	assertNotConsumable(t, s, "token replaced once", second.Hash, second.Kind, now)
	assertConsumed(t, s, "newest token of the kind", third, now)
	assertConsumed(t, s, "token replacing a used one", newVerify, now)
	assertConsumed(t, s, "the user's token of another kind", otherKind, now)
	assertConsumed(t, s, "another user's token of the kind", otherUser, now)

	// The old hash is free again once its token is gone.
	reissued := newOneTimeToken("ott-1", storage.TokenResetPassword, "bob")
	mustNot(t, "reuse the hash of a replaced token", s.CreateOneTimeToken(ctx, reissued))
	assertConsumed(t, s, "token with a replaced token's hash", reissued, now)
}

func testOneTimeTokenCreateErrors(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	tok := newOneTimeToken("ott", storage.TokenVerifyEmail, "alice")
	createToken(t, s, tok)

	sameHash := newOneTimeToken("ott", storage.TokenResetPassword, "bob")
	assertErrorIs(t, "token with a taken hash", s.CreateOneTimeToken(ctx, sameHash), storage.ErrConflict)
	sameHash = newOneTimeToken("ott", storage.TokenResetPassword, "alice")
	assertErrorIs(t, "token of another kind with a taken hash", s.CreateOneTimeToken(ctx, sameHash), storage.ErrConflict)

	orphan := newOneTimeToken("ott-orphan", storage.TokenVerifyEmail, "nobody")
	if err := s.CreateOneTimeToken(ctx, orphan); err == nil {
		t.Error("CreateOneTimeToken accepted a token of an unknown user")
	}
	assertNotConsumable(t, s, "token of an unknown user", orphan.Hash, orphan.Kind, at(time.Minute))

	// The failed creations left the existing token alone.
	assertConsumed(t, s, "existing token", tok, at(time.Minute))
}

func testOneTimeTokenDeletedWithUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	alices := newOneTimeToken("ott-alice", storage.TokenResetPassword, "alice")
	bobs := newOneTimeToken("ott-bob", storage.TokenResetPassword, "bob")
	createToken(t, s, alices)
	createToken(t, s, bobs)
	mustNot(t, "delete alice", s.DeleteUser(ctx, "alice"))
	assertNotConsumable(t, s, "token of a deleted user", alices.Hash, alices.Kind, at(time.Minute))
	assertConsumed(t, s, "another user's token", bobs, at(time.Minute))

	// Were alice's token still stored, its hash would clash.
	reissued := newOneTimeToken("ott-alice", storage.TokenVerifyEmail, "bob")
	mustNot(t, "reuse the hash of a deleted user's token", s.CreateOneTimeToken(ctx, reissued))
}

// testOneTimeTokenParallel is a link clicked many times at once (or replayed
// by an attacker racing the user): exactly one click may use it.
func testOneTimeTokenParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	tok := newOneTimeToken("ott", storage.TokenResetPassword, "alice")
	createToken(t, s, tok)
	now := at(time.Minute)

	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.ConsumeOneTimeToken(ctx, tok.Hash, tok.Kind, now)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)

	consumed, notFound := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			consumed++
		case errors.Is(err, storage.ErrNotFound):
			notFound++
		default:
			t.Errorf("parallel consumption failed: %v", err)
		}
	}
	if consumed != 1 || notFound != parallelism-1 {
		t.Errorf("%d consumptions succeeded and %d found nothing; want 1 and %d", consumed, notFound, parallelism-1)
	}
}
