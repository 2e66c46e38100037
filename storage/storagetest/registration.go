package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func registrationTests() []namedTest {
	return []namedTest{
		{"TokenRoundTrip", testRegistrationTokenRoundTrip},
		{"TokenUsesAndExpiry", testRegistrationTokenUses},
		{"TokenLastUseParallel", testRegistrationTokenParallel},
		{"TokenDelete", testRegistrationTokenDelete},
		{"ClientRegistration", testClientRegistration},
	}
}

func newRegistrationToken(id string, expires *time.Time, maxUses int) *storage.RegistrationToken {
	return &storage.RegistrationToken{ID: id, Hash: hash("token " + id), CreatedAt: t0(), ExpiresAt: expires, MaxUses: maxUses}
}

func testRegistrationTokenRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	b := newRegistrationToken("b", ptrTo(at(time.Hour)), 3)
	a := newRegistrationToken("a", nil, 0)
	for _, tok := range []*storage.RegistrationToken{b, a} {
		mustNot(t, "create token "+tok.ID, s.CreateRegistrationToken(ctx, tok))
	}
	assertErrorIs(t, "same ID again", s.CreateRegistrationToken(ctx, newRegistrationToken("a", nil, 0)), storage.ErrConflict)
	list, err := s.ListRegistrationTokens(ctx)
	mustNot(t, "list", err)
	if len(list) != 2 {
		t.Fatalf("list: %d tokens, want 2", len(list))
	}
	assertEqual(t, "list[0] (created at, then ID)", list[0], *a)
	assertEqual(t, "list[1]", list[1], *b)
	got, err := s.GetRegistrationToken(ctx, b.Hash, t0())
	mustNot(t, "get", err)
	assertEqual(t, "get", *got, *b)
	_, err = s.GetRegistrationToken(ctx, hash("unknown"), t0())
	assertErrorIs(t, "get unknown", err, storage.ErrNotFound)
}

func testRegistrationTokenUses(t *testing.T, s storage.Store) {
	ctx := context.Background()
	twice := newRegistrationToken("twice", nil, 2)
	expiring := newRegistrationToken("expiring", ptrTo(at(time.Hour)), 0)
	for _, tok := range []*storage.RegistrationToken{twice, expiring} {
		mustNot(t, "create token "+tok.ID, s.CreateRegistrationToken(ctx, tok))
	}
	for i := 1; i <= 2; i++ {
		got, err := s.UseRegistrationToken(ctx, twice.Hash, t0())
		mustNot(t, "use", err)
		if got.Uses != i {
			t.Errorf("use %d: uses = %d", i, got.Uses)
		}
	}
	_, err := s.UseRegistrationToken(ctx, twice.Hash, t0())
	assertErrorIs(t, "third use of a two-use token", err, storage.ErrNotFound)
	_, err = s.GetRegistrationToken(ctx, twice.Hash, t0())
	assertErrorIs(t, "get a used-up token", err, storage.ErrNotFound)

	_, err = s.UseRegistrationToken(ctx, expiring.Hash, at(time.Hour-time.Millisecond))
	mustNot(t, "use just before expiry", err)
	_, err = s.UseRegistrationToken(ctx, expiring.Hash, at(time.Hour))
	assertErrorIs(t, "use at expiry", err, storage.ErrNotFound)
	_, err = s.GetRegistrationToken(ctx, expiring.Hash, at(time.Hour))
	assertErrorIs(t, "get at expiry", err, storage.ErrNotFound)
}

func testRegistrationTokenParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	once := newRegistrationToken("once", nil, 1)
	mustNot(t, "create", s.CreateRegistrationToken(ctx, once))
	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Go(func() {
			<-start
			_, err := s.UseRegistrationToken(ctx, once.Hash, t0())
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	used, notFound := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			used++
		case errors.Is(err, storage.ErrNotFound):
			notFound++
		default:
			t.Errorf("parallel use failed: %v", err)
		}
	}
	if used != 1 || notFound != parallelism-1 {
		t.Errorf("%d uses succeeded and %d found nothing; want 1 and %d", used, notFound, parallelism-1)
	}
}

func testRegistrationTokenDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tok := newRegistrationToken("gone", nil, 0)
	mustNot(t, "create", s.CreateRegistrationToken(ctx, tok))
	mustNot(t, "delete", s.DeleteRegistrationToken(ctx, "gone"))
	assertErrorIs(t, "delete again", s.DeleteRegistrationToken(ctx, "gone"), storage.ErrNotFound)
	_, err := s.UseRegistrationToken(ctx, tok.Hash, t0())
	assertErrorIs(t, "use a deleted token", err, storage.ErrNotFound)
}

func testClientRegistration(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("reg")))
	r := &storage.ClientRegistration{ClientID: "reg", TokenHash: hash("rat 1"), InitialTokenID: "tok", CreatedAt: t0()}
	assertErrorIs(t, "registration of no client",
		s.SetClientRegistration(ctx, &storage.ClientRegistration{ClientID: "nobody", TokenHash: hash("x"), CreatedAt: t0()}), storage.ErrNotFound)
	mustNot(t, "set", s.SetClientRegistration(ctx, r))
	got, err := s.GetClientRegistration(ctx, "reg")
	mustNot(t, "get", err)
	assertEqual(t, "get", *got, *r)
	r2 := &storage.ClientRegistration{ClientID: "reg", TokenHash: hash("rat 2"), CreatedAt: at(time.Minute)}
	mustNot(t, "replace", s.SetClientRegistration(ctx, r2))
	got, err = s.GetClientRegistration(ctx, "reg")
	mustNot(t, "get replaced", err)
	assertEqual(t, "get replaced", *got, *r2)
	mustNot(t, "delete client", s.DeleteClient(ctx, "reg"))
	_, err = s.GetClientRegistration(ctx, "reg")
	assertErrorIs(t, "registration after the client is deleted", err, storage.ErrNotFound)
}
