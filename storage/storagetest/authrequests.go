package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// parallelism is how many goroutines race in the concurrency tests.
const parallelism = 20

func authRequestTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testAuthRequestCreateAndGet},
		{"WithoutMaxAge", testAuthRequestWithoutMaxAge},
		{"NotFound", testAuthRequestNotFound},
		{"WithUser", testAuthRequestWithUser},
		{"CreateCompletedOnce", testAuthRequestComplete},
		{"RedeemCodeOnce", testRedeemAuthCodeOnce},
		{"CreateWithCode", testAuthRequestCreateWithCode},
		{"RedeemCodeAndCreateGrant", testRedeemCodeAndCreateGrant},
		{"RedeemCodeAndCreateGrantParallel", testRedeemCodeAndCreateGrantParallel},
		{"RedeemCodeParallel", testRedeemAuthCodeParallel},
		{"Delete", testAuthRequestDelete},
	}
}

func testAuthRequestCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	want := newAuthRequest("ar1", "web")
	mustNot(t, "create auth request", s.CreateAuthRequest(ctx, want))
	got, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "GetAuthRequest", got, want)
	if got.Done || got.CodeUsedAt != nil || !got.AuthTime.IsZero() || !got.CodeExpiresAt.IsZero() {
		t.Errorf("new auth request is not pristine: %+v", got)
	}
}

func testAuthRequestWithoutMaxAge(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	want := newAuthRequest("ar1", "spa")
	want.MaxAge, want.Prompt, want.LoginHint, want.HintSubject, want.Resources = nil, nil, "", "", nil
	mustNot(t, "create auth request", s.CreateAuthRequest(ctx, want))
	got, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "GetAuthRequest", got, want)

	zero := int64(0) // max_age=0 is meaningful (always re-authenticate): not the same as absent
	want.ID, want.MaxAge = "ar2", &zero
	mustNot(t, "create auth request with max_age=0", s.CreateAuthRequest(ctx, want))
	got, err = s.GetAuthRequest(ctx, "ar2")
	mustNot(t, "get auth request", err)
	assertEqual(t, "GetAuthRequest(max_age=0)", got, want)
}

func testAuthRequestNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetAuthRequest(ctx, "nope")
	assertErrorIs(t, "GetAuthRequest", err, storage.ErrNotFound)
	assertErrorIs(t, "SaveAuthCode", s.SaveAuthCode(ctx, "nope", hash("code"), at(time.Minute)), storage.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("unknown code"), t0())
	assertErrorIs(t, "RedeemAuthCode", err, storage.ErrNotFound)
	assertErrorIs(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, "nope"), storage.ErrNotFound)
}

// testAuthRequestWithUser: the joined read returns what GetAuthRequest and
// GetUser do for a completed request (with and without max_age, which the
// backends read through a nullable column), and ErrNotFound for a request
// nobody has signed in for, an unknown one, and one whose user is gone.
func testAuthRequestWithUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	pending := newAuthRequest("pending", "web")
	mustNot(t, "create pending auth request", s.CreateAuthRequest(ctx, pending))
	_, err := s.GetAuthRequestWithUser(ctx, "pending")
	assertErrorIs(t, "GetAuthRequestWithUser(nobody signed in)", err, storage.ErrNotFound)

	for _, maxAge := range []*int64{ptrTo(int64(600)), nil} {
		want := newAuthRequest("done", "web")
		if maxAge == nil {
			want.ID = "done-without-max-age"
		}
		want.MaxAge = maxAge
		want.Done, want.UserID, want.SessionID = true, "alice", sd.aliceSession.ID
		want.AuthTime, want.AMR, want.IDP = at(time.Minute), []string{"pwd", "mfa"}, "corp"
		mustNot(t, "create completed auth request", s.CreateAuthRequest(ctx, want))
		got, err := s.GetAuthRequestWithUser(ctx, want.ID)
		mustNot(t, "get auth request with user", err)
		wantR, err := s.GetAuthRequest(ctx, want.ID)
		mustNot(t, "get auth request", err)
		assertEqual(t, "GetAuthRequestWithUser request", got.Request, wantR)
		assertEqual(t, "GetAuthRequestWithUser request (as created)", got.Request, want)
		assertEqual(t, "GetAuthRequestWithUser user", got.User, sd.alice)
	}

	_, err = s.GetAuthRequestWithUser(ctx, "nope")
	assertErrorIs(t, "GetAuthRequestWithUser(unknown)", err, storage.ErrNotFound)
	mustNot(t, "delete alice", s.DeleteUser(ctx, "alice"))
	_, err = s.GetAuthRequestWithUser(ctx, "done")
	assertErrorIs(t, "GetAuthRequestWithUser(user deleted)", err, storage.ErrNotFound)
}

// A request is stored once the user has signed in for it (/authorize
// stores nothing), completion fields included; the unique ID makes the
// completion single: a second one, for anyone, is ErrConflict.
func testAuthRequestComplete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := newAuthRequest("ar1", "web")
	want.Done, want.UserID, want.SessionID = true, "alice", sd.aliceSession.ID
	want.AuthTime, want.AMR, want.IDP = at(time.Minute), []string{"pwd", "mfa"}, "corp"
	mustNot(t, "create completed auth request", s.CreateAuthRequest(ctx, want))

	got, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "completed auth request", got, want)

	other := *want
	other.UserID = "bob"
	assertErrorIs(t, "second completion", s.CreateAuthRequest(ctx, &other), storage.ErrConflict)
	got, err = s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "after a refused second completion", got, want)
}

// completedRequestWithCode creates auth request id for alice and gives it a code.
func completedRequestWithCode(t *testing.T, s storage.Store, sd seed, id string, codeHash []byte) *storage.AuthRequest {
	t.Helper()
	ctx := context.Background()
	r := newAuthRequest(id, "web")
	r.Done, r.UserID, r.SessionID, r.AuthTime, r.AMR = true, "alice", sd.aliceSession.ID, t0(), []string{"pwd"}
	r.IDP = sd.aliceSession.IDP
	mustNot(t, "create completed auth request", s.CreateAuthRequest(ctx, r))
	mustNot(t, "save auth code", s.SaveAuthCode(ctx, id, codeHash, at(time.Minute)))
	assertErrorIs(t, "second SaveAuthCode", s.SaveAuthCode(ctx, id, hash("another code"), at(time.Minute)), storage.ErrConflict)
	r.CodeExpiresAt = at(time.Minute)
	return r
}

func testRedeemAuthCodeOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := completedRequestWithCode(t, s, seedStore(t, s), "ar1", hash("code"))

	got, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "after SaveAuthCode", got, want)

	redeemedAt := at(10 * time.Second)
	got, err = s.RedeemAuthCode(ctx, hash("code"), redeemedAt)
	mustNot(t, "first redemption", err)
	want.CodeUsedAt = &redeemedAt
	assertEqual(t, "first RedeemAuthCode", got, want)

	got, err = s.RedeemAuthCode(ctx, hash("code"), at(20*time.Second))
	assertErrorIs(t, "second redemption", err, storage.ErrCodeReused)
	if got == nil {
		t.Fatal("second redemption returned no auth request; the caller needs it to revoke the grant")
	}
	assertEqual(t, "second RedeemAuthCode", got, want) // CodeUsedAt stays at the first use

	_, err = s.RedeemAuthCode(ctx, hash("other code"), redeemedAt)
	assertErrorIs(t, "redeeming an unknown code", err, storage.ErrNotFound)
}

// testAuthRequestCreateWithCode: a request stored with its code in one write
// (op.Finish) is redeemed like one whose code SaveAuthCode attached, and
// takes no second code.
func testAuthRequestCreateWithCode(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	r := newAuthRequest("ar1", "web")
	r.Done, r.UserID, r.SessionID, r.AuthTime, r.AMR = true, "alice", sd.aliceSession.ID, t0(), []string{"pwd"}
	r.IDP = sd.aliceSession.IDP
	r.CodeHash, r.CodeExpiresAt = hash("code"), at(time.Minute)
	mustNot(t, "create auth request with its code", s.CreateAuthRequest(ctx, r))
	assertErrorIs(t, "SaveAuthCode after", s.SaveAuthCode(ctx, "ar1", hash("another code"), at(time.Minute)), storage.ErrConflict)
	redeemedAt := at(10 * time.Second)
	got, err := s.RedeemAuthCode(ctx, hash("code"), redeemedAt)
	mustNot(t, "redeem", err)
	want := *r
	want.CodeHash, want.CodeUsedAt = nil, &redeemedAt // never read back
	assertEqual(t, "RedeemAuthCode", got, &want)
	_, err = s.RedeemAuthCode(ctx, hash("code"), at(20*time.Second))
	assertErrorIs(t, "second redemption", err, storage.ErrCodeReused)
}

// storeWithCode stores a completed request id of alice whose code's hash is
// code's, live until at(time.Minute).
func storeWithCode(t *testing.T, s storage.Store, sd seed, id, code string) {
	t.Helper()
	r := newAuthRequest(id, "web")
	r.Done, r.UserID, r.SessionID, r.AuthTime, r.AMR = true, "alice", sd.aliceSession.ID, t0(), []string{"pwd"}
	r.CodeHash, r.CodeExpiresAt = hash(code), at(time.Minute)
	mustNot(t, "create auth request with its code", s.CreateAuthRequest(context.Background(), r))
}

// testRedeemCodeAndCreateGrant: the code is spent and the grant (with its
// refresh token) stored together; a used, unknown or expired code stores
// nothing.
func testRedeemCodeAndCreateGrant(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	storeWithCode(t, s, sd, "ar1", "code")
	g, rt := newGrant("ar1", "alice", "web", sd.aliceSession.ID), newRefreshToken("rt1", "ar1")
	mustNot(t, "redeem and create", s.RedeemCodeAndCreateGrant(ctx, hash("code"), at(10*time.Second), g, rt))
	got, err := s.GetGrant(ctx, "ar1")
	mustNot(t, "get grant", err)
	assertEqual(t, "grant", got, g)
	_, err = s.GetRefreshToken(ctx, hash("rt1"))
	mustNot(t, "get refresh token", err)
	ar, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	if ar.CodeUsedAt == nil || ar.CodeUsedAt.Sub(at(10*time.Second)).Abs() >= time.Millisecond {
		t.Errorf("code_used_at = %v, want %v", ar.CodeUsedAt, at(10*time.Second))
	}

	again := newGrant("ar1", "alice", "web", "")
	assertErrorIs(t, "second redemption", s.RedeemCodeAndCreateGrant(ctx, hash("code"), at(20*time.Second), again, nil), storage.ErrCodeReused)
	got, err = s.GetGrant(ctx, "ar1")
	mustNot(t, "get grant after the second redemption", err)
	assertEqual(t, "grant after the second redemption", got, g)

	assertErrorIs(t, "unknown code", s.RedeemCodeAndCreateGrant(ctx, hash("nope"), at(20*time.Second), newGrant("ar1", "alice", "web", ""), nil), storage.ErrNotFound)
	storeWithCode(t, s, sd, "ar2", "late")
	// The code spent must be the named request's: another request's code
	// spends nothing.
	assertErrorIs(t, "another request's code", s.RedeemCodeAndCreateGrant(ctx, hash("late"), at(20*time.Second), newGrant("ar3", "alice", "web", ""), nil), storage.ErrNotFound)
	assertErrorIs(t, "expired code", s.RedeemCodeAndCreateGrant(ctx, hash("late"), at(time.Minute), newGrant("ar2", "alice", "web", sd.aliceSession.ID), nil), storage.ErrNotFound)
	_, err = s.GetGrant(ctx, "ar2")
	assertErrorIs(t, "grant of an expired code", err, storage.ErrNotFound)
	// Still redeemable in time: the refused attempt spent nothing.
	mustNot(t, "redeem in time", s.RedeemCodeAndCreateGrant(ctx, hash("late"), at(30*time.Second), newGrant("ar2", "alice", "web", sd.aliceSession.ID), nil))
}

// testRedeemCodeAndCreateGrantParallel: of concurrent redemptions exactly
// one stores its grant; the others are told the code was used.
func testRedeemCodeAndCreateGrantParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	storeWithCode(t, s, sd, "ar1", "code")
	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			g := newGrant("ar1", "alice", "web", sd.aliceSession.ID)
			g.IDP = fmt.Sprintf("racer %d", i)
			errs <- s.RedeemCodeAndCreateGrant(ctx, hash("code"), at(10*time.Second), g, nil)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrCodeReused):
			t.Errorf("a losing redemption: %v, want ErrCodeReused", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d redemptions succeeded, want 1", won)
	}
}

func testRedeemAuthCodeParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	completedRequestWithCode(t, s, seedStore(t, s), "ar1", hash("code"))

	type result struct {
		req *storage.AuthRequest
		err error
	}
	results := make(chan result, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.RedeemAuthCode(ctx, hash("code"), at(time.Duration(i)*time.Millisecond))
			results <- result{r, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	var redeemed, reused int
	for r := range results {
		switch {
		case r.err == nil:
			redeemed++
		case errors.Is(r.err, storage.ErrCodeReused):
			reused++
		default:
			t.Errorf("unexpected error: %v", r.err)
		}
		if r.req == nil || r.req.ID != "ar1" {
			t.Errorf("redemption returned request %+v (err %v), want ar1", r.req, r.err)
		}
	}
	if redeemed != 1 || reused != parallelism-1 {
		t.Errorf("%d redemptions succeeded and %d saw reuse; want 1 and %d", redeemed, reused, parallelism-1)
	}
}

func testAuthRequestDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	completedRequestWithCode(t, s, seedStore(t, s), "ar1", hash("code"))
	mustNot(t, "create second auth request", s.CreateAuthRequest(ctx, newAuthRequest("ar2", "web")))

	mustNot(t, "delete auth request", s.DeleteAuthRequest(ctx, "ar1"))
	_, err := s.GetAuthRequest(ctx, "ar1")
	assertErrorIs(t, "GetAuthRequest after delete", err, storage.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("code"), t0())
	assertErrorIs(t, "RedeemAuthCode after delete", err, storage.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "ar2")
	mustNot(t, "other auth request survives", err)
}
