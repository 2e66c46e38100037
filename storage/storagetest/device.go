package storagetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func deviceTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testDeviceCreateAndGet},
		{"UniqueCodes", testDeviceUniqueCodes},
		{"UnknownClient", testDeviceUnknownClient},
		{"DecideOnce", testDeviceDecideOnce},
		{"DecideExpired", testDeviceDecideExpired},
		{"PollCompareAndSet", testDevicePoll},
		{"RedeemOnce", testDeviceRedeemOnce},
		{"RedeemParallel", testDeviceRedeemParallel},
		{"DeleteExpired", testDeviceDeleteExpired},
		{"DeleteUserCascades", testDeviceDeleteUser},
	}
}

func newDevice(id, userCode, clientID string) *storage.DeviceAuthorization {
	return &storage.DeviceAuthorization{
		ID: id, DeviceCodeHash: hash("device-" + id), UserCode: userCode, ClientID: clientID,
		Scopes: []string{"openid", "offline_access"}, CreatedAt: t0(), ExpiresAt: at(10 * time.Minute),
		Interval: 5, State: storage.DevicePending,
	}
}

func approval(sd seed) *storage.DeviceAuthorization {
	return &storage.DeviceAuthorization{
		State: storage.DeviceApproved, UserID: sd.alice.ID, SessionID: sd.aliceSession.ID,
		AuthTime: at(time.Minute), AMR: []string{"pwd", "otp"}, IDP: "github",
	}
}

func testDeviceCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	d := newDevice("d1", "BCDFGHJK", "web")
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, d))
	got, err := s.GetDeviceAuthorization(ctx, hash("device-d1"))
	mustNot(t, "get by device code", err)
	assertEqual(t, "by device code", got, d)
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
	mustNot(t, "get by user code", err)
	assertEqual(t, "by user code", got, d)
	_, err = s.GetDeviceAuthorization(ctx, hash("device-other"))
	assertErrorIs(t, "unknown device code", err, storage.ErrNotFound)
	_, err = s.GetDeviceAuthorizationByUserCode(ctx, "bcdfghjk")
	assertErrorIs(t, "user codes are stored normalised; the store matches exactly", err, storage.ErrNotFound)
}

func testDeviceUniqueCodes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	assertErrorIs(t, "same user code", s.CreateDeviceAuthorization(ctx, newDevice("d2", "BCDFGHJK", "web")), storage.ErrConflict)
	same := newDevice("d3", "LMNPQRST", "web")
	same.DeviceCodeHash = hash("device-d1")
	assertErrorIs(t, "same device code", s.CreateDeviceAuthorization(ctx, same), storage.ErrConflict)
	assertErrorIs(t, "same ID", s.CreateDeviceAuthorization(ctx, newDevice("d1", "VWXZBCDF", "web")), storage.ErrConflict)
}

func testDeviceUnknownClient(t *testing.T, s storage.Store) {
	seedStore(t, s)
	assertErrorIs(t, "unknown client", s.CreateDeviceAuthorization(context.Background(), newDevice("d1", "BCDFGHJK", "nobody")), storage.ErrNotFound)
}

func testDeviceDecideOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	mustNot(t, "approve", s.DecideDeviceAuthorization(ctx, "d1", approval(sd), at(2*time.Minute)))
	deny := &storage.DeviceAuthorization{State: storage.DeviceDenied, UserID: sd.bob.ID}
	assertErrorIs(t, "a second decision", s.DecideDeviceAuthorization(ctx, "d1", deny, at(3*time.Minute)), storage.ErrNotFound)
	got, err := s.GetDeviceAuthorization(ctx, hash("device-d1"))
	mustNot(t, "get", err)
	want := newDevice("d1", "BCDFGHJK", "web")
	a := approval(sd)
	want.State, want.UserID, want.SessionID, want.AuthTime, want.AMR, want.IDP = a.State, a.UserID, a.SessionID, a.AuthTime, a.AMR, a.IDP
	want.DecidedAt = ptrTo(at(2 * time.Minute))
	assertEqual(t, "approved", got, want)
	assertErrorIs(t, "unknown request", s.DecideDeviceAuthorization(ctx, "nope", approval(sd), at(time.Minute)), storage.ErrNotFound)

	// A denial needs no sign-in fields.
	mustNot(t, "create d2", s.CreateDeviceAuthorization(ctx, newDevice("d2", "LMNPQRST", "web")))
	mustNot(t, "deny", s.DecideDeviceAuthorization(ctx, "d2", &storage.DeviceAuthorization{State: storage.DeviceDenied, UserID: sd.bob.ID}, at(time.Minute)))
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, "LMNPQRST")
	mustNot(t, "get d2", err)
	if got.State != storage.DeviceDenied || got.UserID != sd.bob.ID {
		t.Errorf("denied request: state %q user %q", got.State, got.UserID)
	}
}

func testDeviceDecideExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	assertErrorIs(t, "approve at expiry", s.DecideDeviceAuthorization(ctx, "d1", approval(sd), at(10*time.Minute)), storage.ErrNotFound)
}

func testDevicePoll(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	mustNot(t, "first poll", s.RecordDevicePoll(ctx, "d1", 0, 5, at(time.Second)))
	assertErrorIs(t, "a poll that read the count before the first", s.RecordDevicePoll(ctx, "d1", 0, 10, at(2*time.Second)), storage.ErrConflict)
	mustNot(t, "second poll", s.RecordDevicePoll(ctx, "d1", 1, 10, at(3*time.Second)))
	got, err := s.GetDeviceAuthorization(ctx, hash("device-d1"))
	mustNot(t, "get", err)
	if got.Polls != 2 || got.Interval != 10 {
		t.Errorf("polls %d interval %d, want 2 and 10", got.Polls, got.Interval)
	}
	assertEqual(t, "last polled", got.LastPolledAt, ptrTo(at(3*time.Second)))
	assertErrorIs(t, "unknown request", s.RecordDevicePoll(ctx, "nope", 0, 5, at(time.Second)), storage.ErrNotFound)
}

func testDeviceRedeemOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	assertErrorIs(t, "redeem a pending request", s.RedeemDeviceAuthorization(ctx, "d1", at(time.Minute)), storage.ErrNotFound)
	mustNot(t, "approve", s.DecideDeviceAuthorization(ctx, "d1", approval(sd), at(time.Minute)))
	mustNot(t, "redeem", s.RedeemDeviceAuthorization(ctx, "d1", at(2*time.Minute)))
	assertErrorIs(t, "redeem again", s.RedeemDeviceAuthorization(ctx, "d1", at(3*time.Minute)), storage.ErrConflict)
	got, err := s.GetDeviceAuthorization(ctx, hash("device-d1"))
	mustNot(t, "get", err)
	assertEqual(t, "redeemed at", got.RedeemedAt, ptrTo(at(2*time.Minute)))
	assertErrorIs(t, "redeem unknown", s.RedeemDeviceAuthorization(ctx, "nope", at(time.Minute)), storage.ErrNotFound)

	mustNot(t, "create d2", s.CreateDeviceAuthorization(ctx, newDevice("d2", "LMNPQRST", "web")))
	mustNot(t, "deny d2", s.DecideDeviceAuthorization(ctx, "d2", &storage.DeviceAuthorization{State: storage.DeviceDenied}, at(time.Minute)))
	assertErrorIs(t, "redeem a denied request", s.RedeemDeviceAuthorization(ctx, "d2", at(2*time.Minute)), storage.ErrNotFound)
}

// Concurrent redemptions of one device code: exactly one succeeds.
func testDeviceRedeemParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	mustNot(t, "approve", s.DecideDeviceAuthorization(ctx, "d1", approval(sd), at(time.Minute)))
	errs := make(chan error, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.RedeemDeviceAuthorization(ctx, "d1", at(2*time.Minute))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
			continue
		}
		assertErrorIs(t, "a losing redemption", err, storage.ErrConflict)
	}
	if ok != 1 {
		t.Errorf("%d redemptions succeeded, want 1", ok)
	}
}

func testDeviceDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "create live", s.CreateDeviceAuthorization(ctx, newDevice("live", "BCDFGHJK", "web")))
	old := newDevice("old", "LMNPQRST", "web")
	old.ExpiresAt = at(time.Minute)
	mustNot(t, "create old", s.CreateDeviceAuthorization(ctx, old))
	if _, err := s.DeleteExpired(ctx, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetDeviceAuthorization(ctx, hash("device-old"))
	assertErrorIs(t, "expired request", err, storage.ErrNotFound)
	_, err = s.GetDeviceAuthorization(ctx, hash("device-live"))
	mustNot(t, "live request", err)
	// The expired request's user code is free again.
	mustNot(t, "reuse the user code", s.CreateDeviceAuthorization(ctx, newDevice("new", "LMNPQRST", "web")))
}

func testDeviceDeleteUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create", s.CreateDeviceAuthorization(ctx, newDevice("d1", "BCDFGHJK", "web")))
	mustNot(t, "approve", s.DecideDeviceAuthorization(ctx, "d1", approval(sd), at(time.Minute)))
	mustNot(t, "delete alice", s.DeleteUser(ctx, sd.alice.ID))
	_, err := s.GetDeviceAuthorization(ctx, hash("device-d1"))
	assertErrorIs(t, "approved by a deleted user", err, storage.ErrNotFound)
}
