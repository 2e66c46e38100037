package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func pushedRequestTests() []namedTest {
	return []namedTest{
		{"CreateAndConsumeOnce", testPushedRequestOnce},
		{"Expired", testPushedRequestExpired},
		{"OtherClient", testPushedRequestOtherClient},
		{"UnknownClient", testPushedRequestUnknownClient},
		{"DuplicateHash", testPushedRequestDuplicate},
		{"Parallel", testPushedRequestParallel},
		{"DeleteExpired", testPushedRequestDeleteExpired},
		{"DeletedWithClient", testPushedRequestDeletedWithClient},
	}
}

func newPushedRequest(t *testing.T, s storage.Store, name, clientID string, expiresAt time.Time) *storage.PushedRequest {
	t.Helper()
	r := &storage.PushedRequest{
		Hash:      hash("urn:ietf:params:oauth:request_uri:" + name),
		ClientID:  clientID,
		Params:    "client_id=" + clientID + "&response_type=code&scope=openid&state=" + name,
		CreatedAt: t0(),
		ExpiresAt: expiresAt,
	}
	mustNot(t, "create pushed request "+name, s.CreatePushedRequest(context.Background(), r))
	return r
}

// A pushed request is returned, whole, to its client once.
func testPushedRequestOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	want := newPushedRequest(t, s, "one", "c1", at(time.Minute))
	got, err := s.ConsumePushedRequest(ctx, want.Hash, "c1", at(time.Second))
	mustNot(t, "consume", err)
	assertEqual(t, "ConsumePushedRequest", got, want)
	_, err = s.ConsumePushedRequest(ctx, want.Hash, "c1", at(2*time.Second))
	assertErrorIs(t, "second consume (a replay)", err, storage.ErrNotFound)
	_, err = s.ConsumePushedRequest(ctx, hash("never pushed"), "c1", at(time.Second))
	assertErrorIs(t, "consume an unknown hash", err, storage.ErrNotFound)
}

// At its expiry a pushed request is gone, used or not.
func testPushedRequestExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	r := newPushedRequest(t, s, "late", "c1", at(time.Minute))
	_, err := s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Minute))
	assertErrorIs(t, "consume at expiry", err, storage.ErrNotFound)
	r = newPushedRequest(t, s, "just-in-time", "c1", at(time.Minute))
	_, err = s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Minute-time.Millisecond))
	mustNot(t, "consume a millisecond before expiry", err)
}

// Another client cannot use a pushed request, nor use it up: it stays for
// the client that pushed it.
func testPushedRequestOtherClient(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client c1", s.CreateClient(ctx, newClient("c1")))
	mustNot(t, "create client c2", s.CreateClient(ctx, newClient("c2")))
	r := newPushedRequest(t, s, "mine", "c1", at(time.Minute))
	_, err := s.ConsumePushedRequest(ctx, r.Hash, "c2", at(time.Second))
	assertErrorIs(t, "consume by another client", err, storage.ErrNotFound)
	got, err := s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Second))
	mustNot(t, "consume by its client after the other's attempt", err)
	assertEqual(t, "ConsumePushedRequest", got, r)
}

func testPushedRequestUnknownClient(t *testing.T, s storage.Store) {
	err := s.CreatePushedRequest(context.Background(), &storage.PushedRequest{
		Hash: hash("x"), ClientID: "nobody", Params: "a=b", CreatedAt: t0(), ExpiresAt: at(time.Minute),
	})
	assertErrorIs(t, "create for an unknown client", err, storage.ErrNotFound)
}

func testPushedRequestDuplicate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	r := newPushedRequest(t, s, "dup", "c1", at(time.Minute))
	dup := *r
	dup.Params = "other"
	assertErrorIs(t, "second request with the same hash", s.CreatePushedRequest(ctx, &dup), storage.ErrConflict)
	got, err := s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Second))
	mustNot(t, "consume", err)
	if got.Params != r.Params {
		t.Errorf("Params = %q after a refused duplicate, want the first %q", got.Params, r.Params)
	}
}

// Concurrent uses of one request_uri: exactly one gets the request.
func testPushedRequestParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	r := newPushedRequest(t, s, "raced", "c1", at(time.Minute))
	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Second))
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	var ok, gone int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, storage.ErrNotFound):
			gone++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || gone != parallelism-1 {
		t.Errorf("%d consumers got the request and %d found it gone; want 1 and %d", ok, gone, parallelism-1)
	}
}

// DeleteExpired sweeps expired requests (counted) and keeps live ones.
func testPushedRequestDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	now := at(time.Hour)
	newPushedRequest(t, s, "expired", "c1", now.Add(-time.Second))
	live := newPushedRequest(t, s, "live", "c1", now.Add(time.Minute))
	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	if removed != 1 {
		t.Errorf("DeleteExpired removed %d rows, want 1 (the expired request)", removed)
	}
	_, err = s.ConsumePushedRequest(ctx, live.Hash, "c1", now)
	mustNot(t, "consume the live request after the sweep", err)
}

func testPushedRequestDeletedWithClient(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	r := newPushedRequest(t, s, "orphan", "c1", at(time.Minute))
	mustNot(t, "delete client", s.DeleteClient(ctx, "c1"))
	mustNot(t, "recreate client", s.CreateClient(ctx, newClient("c1")))
	_, err := s.ConsumePushedRequest(ctx, r.Hash, "c1", at(time.Second))
	assertErrorIs(t, "consume a request of a deleted client", err, storage.ErrNotFound)
}
