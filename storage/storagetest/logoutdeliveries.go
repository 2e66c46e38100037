package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func logoutDeliveryTests() []namedTest {
	return []namedTest{
		{"RoundTrip", testLogoutDeliveryRoundTrip},
		{"EnqueueAllOrNone", testLogoutDeliveryEnqueueAtomic},
		{"ClaimDueOnly", testLogoutDeliveryClaimDue},
		{"ClaimOrderAndLimit", testLogoutDeliveryClaimOrder},
		{"ClaimLease", testLogoutDeliveryClaimLease},
		{"ClaimConcurrent", testLogoutDeliveryClaimConcurrent},
		{"ClaimRefusesNonPositive", testLogoutDeliveryClaimArgs},
		{"Complete", testLogoutDeliveryComplete},
		{"RetryThenGiveUp", testLogoutDeliveryRetryGiveUp},
		{"NotFound", testLogoutDeliveryNotFound},
		{"ListFiltersAndOrder", testLogoutDeliveryList},
		{"ListDefaultLimit", testLogoutDeliveryListDefaultLimit},
		{"CountPending", testLogoutDeliveryCountPending},
		{"ClientsOfSession", testClientsOfSession},
		{"DeleteExpired", testLogoutDeliveryDeleteExpired},
		{"ClientCascadesUserDoesNot", testLogoutDeliveryDeletes},
	}
}

// newLogoutDelivery is a fresh pending delivery to clientID, made at created
// and due then.
func newLogoutDelivery(id, clientID, userID string, created time.Time) storage.LogoutDelivery {
	return storage.LogoutDelivery{
		ID:            id,
		ClientID:      clientID,
		URI:           "https://" + clientID + ".example/backchannel-logout",
		Token:         "eyJhbGciOiJFUzI1NiIsInR5cCI6ImxvZ291dCtqd3QifQ.payload-of-" + id + ".sig",
		UserID:        userID,
		SessionID:     "session-of-" + userID,
		Reason:        "logout",
		CreatedAt:     created,
		NextAttemptAt: created,
		ExpiresAt:     created.Add(24 * time.Hour),
	}
}

// listDeliveries lists with f and fails t on an error.
func listDeliveries(t *testing.T, s storage.Store, f storage.LogoutDeliveryFilter) []storage.LogoutDelivery {
	t.Helper()
	ds, err := s.ListLogoutDeliveries(context.Background(), f)
	mustNot(t, fmt.Sprintf("list logout deliveries %+v", f), err)
	return ds
}

// getDelivery finds the delivery id by listing everything.
func getDelivery(t *testing.T, s storage.Store, id string) *storage.LogoutDelivery {
	t.Helper()
	for _, d := range listDeliveries(t, s, storage.LogoutDeliveryFilter{Limit: 1000}) {
		if d.ID == id {
			return &d
		}
	}
	t.Fatalf("delivery %s is not listed", id)
	return nil
}

func deliveryIDs(ds []storage.LogoutDelivery) []string {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func assertIDs(t *testing.T, what string, got []storage.LogoutDelivery, want ...string) {
	t.Helper()
	if ids := deliveryIDs(got); !slices.Equal(ids, want) {
		t.Errorf("%s: got %q, want %q", what, ids, want)
	}
}

// Every field comes back as written, for a pending, a delivered and a
// given-up delivery, whether or not its user exists: account deletion
// enqueues logouts for a user about to vanish.
func testLogoutDeliveryRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	pending := newLogoutDelivery("d-pending", "web", "alice", t0())
	delivered := storage.LogoutDelivery{
		ID: "d-delivered", ClientID: "spa", URI: "http://127.0.0.1:8081/bc", Token: "a.b.c",
		UserID: "deleted-user", SessionID: "gone-session", Reason: "account_deleted",
		CreatedAt: at(-time.Hour), Attempts: 3, NextAttemptAt: at(-10 * time.Minute),
		ExpiresAt: at(23 * time.Hour), LastAttemptAt: at(-5 * time.Minute), LastStatus: 200,
		LastError: "503 Service Unavailable", DeliveredAt: ptrTo(at(-5 * time.Minute)),
	}
	gaveUp := storage.LogoutDelivery{
		ID: "d-gave-up", ClientID: "web", URI: "https://web.example/bc", Token: "x.y.z",
		UserID: "bob", SessionID: "bob-session", Reason: "password_reset",
		CreatedAt: at(-2 * time.Hour), Attempts: 1, NextAttemptAt: at(-2 * time.Hour),
		ExpiresAt: at(22 * time.Hour), LastAttemptAt: at(-time.Hour), LastStatus: 404,
		LastError: "404 Not Found", GaveUpAt: ptrTo(at(-time.Hour)),
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{pending, delivered, gaveUp}))
	for _, want := range []storage.LogoutDelivery{pending, delivered, gaveUp} {
		assertEqual(t, want.ID, getDelivery(t, s, want.ID), &want)
	}
	mustNot(t, "enqueue nothing", s.EnqueueLogoutDeliveries(ctx, nil))
	if n := len(listDeliveries(t, s, storage.LogoutDeliveryFilter{})); n != 3 {
		t.Errorf("%d deliveries listed, want 3", n)
	}
}

// A batch is stored whole or not at all: a duplicate ID (within the batch or
// against a stored delivery), an unknown client or an empty ID stores none.
func testLogoutDeliveryEnqueueAtomic(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	a, b := newLogoutDelivery("a", "web", "alice", t0()), newLogoutDelivery("b", "spa", "alice", t0())
	assertErrorIs(t, "batch repeating an ID", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{a, b, a}), storage.ErrConflict)
	assertIDs(t, "after the refused batch", listDeliveries(t, s, storage.LogoutDeliveryFilter{}))

	mustNot(t, "enqueue a", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{a}))
	assertErrorIs(t, "batch with a stored ID", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{b, a}), storage.ErrConflict)
	assertIDs(t, "after the batch with a stored ID", listDeliveries(t, s, storage.LogoutDeliveryFilter{}), "a")

	stray := newLogoutDelivery("c", "no-such-client", "alice", t0())
	assertErrorIs(t, "batch with an unknown client", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{b, stray}), storage.ErrNotFound)
	assertIDs(t, "after the batch with an unknown client", listDeliveries(t, s, storage.LogoutDeliveryFilter{}), "a")

	blank := newLogoutDelivery("", "web", "alice", t0())
	if err := s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{b, blank}); err == nil {
		t.Error("a batch with an empty ID was accepted")
	}
	assertIDs(t, "after the batch with an empty ID", listDeliveries(t, s, storage.LogoutDeliveryFilter{}), "a")

	// The refused batches left nothing behind that blocks a good one.
	mustNot(t, "enqueue b", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{b}))
}

// A claim takes pending deliveries due at now (NextAttemptAt <= now), leases
// them to now+lease, and leaves everything else alone.
func testLogoutDeliveryClaimDue(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	now := at(time.Hour)
	overdue := newLogoutDelivery("overdue", "web", "alice", t0())
	overdue.NextAttemptAt = now.Add(-time.Minute)
	dueNow := newLogoutDelivery("due-now", "spa", "alice", at(time.Minute))
	dueNow.NextAttemptAt = now
	later := newLogoutDelivery("later", "web", "alice", at(2*time.Minute))
	later.NextAttemptAt = now.Add(time.Millisecond)
	delivered := newLogoutDelivery("delivered", "web", "alice", t0())
	delivered.NextAttemptAt, delivered.DeliveredAt = t0(), ptrTo(at(time.Minute))
	gaveUp := newLogoutDelivery("gave-up", "web", "alice", t0())
	gaveUp.NextAttemptAt, gaveUp.GaveUpAt = t0(), ptrTo(at(time.Minute))
	// Past its expiry but not given up: claimed, so the sender gives it up.
	expired := newLogoutDelivery("expired", "web", "bob", at(-48*time.Hour))
	all := []storage.LogoutDelivery{overdue, dueNow, later, delivered, gaveUp, expired}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, all))

	const lease = 2 * time.Minute
	got, err := s.ClaimLogoutDeliveries(ctx, now, 10, lease)
	mustNot(t, "claim", err)
	assertIDs(t, "claimed", got, "expired", "overdue", "due-now")
	for _, d := range got {
		assertTimeEqual(t, "returned NextAttemptAt of "+d.ID, d.NextAttemptAt, now.Add(lease))
		stored := getDelivery(t, s, d.ID)
		assertTimeEqual(t, "stored NextAttemptAt of "+d.ID, stored.NextAttemptAt, now.Add(lease))
		if stored.Attempts != 0 {
			t.Errorf("%s: a claim counted an attempt (%d)", d.ID, stored.Attempts)
		}
	}
	// The claim returns the rows as stored, apart from the lease.
	want := expired
	want.NextAttemptAt = now.Add(lease)
	assertEqual(t, "claimed expired delivery", &got[0], &want)
	for _, d := range []storage.LogoutDelivery{later, delivered, gaveUp} {
		assertEqual(t, "unclaimed "+d.ID, getDelivery(t, s, d.ID), &d)
	}
}

// Claims take the oldest first (CreatedAt, then ID), whatever the order of
// insertion or of due times, and at most limit.
func testLogoutDeliveryClaimOrder(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	now := at(time.Hour)
	mk := func(id string, created, due time.Duration) storage.LogoutDelivery {
		d := newLogoutDelivery(id, "web", "alice", at(created))
		d.NextAttemptAt = at(due)
		return d
	}
	// Due times run against creation order; "c2a" and "c2B" share a time
	// and go in byte order ("c2B" first).
	batch := []storage.LogoutDelivery{
		mk("c3", 3*time.Minute, 0),
		mk("c2a", 2*time.Minute, time.Minute),
		mk("c1", time.Minute, 10*time.Minute),
		mk("c2B", 2*time.Minute, 2*time.Minute),
		mk("c4", 4*time.Minute, -time.Hour),
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))
	got, err := s.ClaimLogoutDeliveries(ctx, now, 2, time.Minute)
	mustNot(t, "first claim", err)
	assertIDs(t, "first claim (limit 2)", got, "c1", "c2B")
	got, err = s.ClaimLogoutDeliveries(ctx, now, 2, time.Minute)
	mustNot(t, "second claim", err)
	assertIDs(t, "second claim (limit 2)", got, "c2a", "c3")
	got, err = s.ClaimLogoutDeliveries(ctx, now, 2, time.Minute)
	mustNot(t, "third claim", err)
	assertIDs(t, "third claim", got, "c4")
	got, err = s.ClaimLogoutDeliveries(ctx, now, 2, time.Minute)
	mustNot(t, "fourth claim", err)
	assertIDs(t, "fourth claim", got)
}

// A claimed delivery is not claimed again while its lease lasts, and is once
// it has run out (a sender that crashed mid-send loses nothing). A retry's
// next attempt time works the same way.
func testLogoutDeliveryClaimLease(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{newLogoutDelivery("d", "web", "alice", t0())}))
	const lease = time.Minute
	claim := func(now time.Time, want ...string) {
		t.Helper()
		got, err := s.ClaimLogoutDeliveries(ctx, now, 10, lease)
		mustNot(t, "claim", err)
		assertIDs(t, fmt.Sprintf("claim at t0%+v", now.Sub(t0())), got, want...)
	}
	claim(t0(), "d")
	claim(t0())                           // the same tick, or another instance
	claim(at(lease - time.Millisecond))   // the lease's last instant
	claim(at(lease), "d")                 // run out: the sender is presumed gone
	claim(at(lease + time.Second))        // leased again, from at(lease)
	claim(at(2*lease - time.Millisecond)) // still within the second lease
	claim(at(2*lease), "d")

	next := at(time.Hour)
	mustNot(t, "retry", s.RetryLogoutDelivery(ctx, "d", at(2*lease+time.Second), 503, "503 Service Unavailable", next))
	claim(at(3 * lease)) // the lease would have run out; the retry's time governs
	claim(next.Add(-time.Millisecond))
	claim(next, "d")
}

// Ten claimers at once never get the same delivery, and between them take
// every due one (they could take more than there are).
func testLogoutDeliveryClaimConcurrent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	const (
		claimers   = 10
		deliveries = 25
		limit      = 3
		lease      = time.Minute
	)
	var batch []storage.LogoutDelivery
	for i := range deliveries {
		batch = append(batch, newLogoutDelivery(fmt.Sprintf("d%02d", i), "web", "alice", at(time.Duration(i)*time.Millisecond)))
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))
	now := at(time.Hour)

	results := make([][]storage.LogoutDelivery, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = s.ClaimLogoutDeliveries(ctx, now, limit, lease)
		}()
	}
	close(start)
	wg.Wait()

	seen := map[string]int{}
	for i := range claimers {
		mustNot(t, fmt.Sprintf("claimer %d", i), errs[i])
		if len(results[i]) > limit {
			t.Errorf("claimer %d got %d deliveries, limit %d", i, len(results[i]), limit)
		}
		for _, d := range results[i] {
			seen[d.ID]++
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("delivery %s was claimed %d times at once", id, n)
		}
	}
	if len(seen) != deliveries {
		t.Errorf("the claimers took %d distinct deliveries, want all %d", len(seen), deliveries)
	}

	got, err := s.ClaimLogoutDeliveries(ctx, now, 100, lease)
	mustNot(t, "claim during the leases", err)
	assertIDs(t, "claim during the leases", got)
	got, err = s.ClaimLogoutDeliveries(ctx, now.Add(lease), 100, lease)
	mustNot(t, "claim after the leases", err)
	if len(got) != deliveries {
		t.Errorf("claim after the leases got %d deliveries, want %d", len(got), deliveries)
	}
}

// A non-positive limit or lease is a caller's mistake; a zero lease would
// let every caller take the same deliveries.
func testLogoutDeliveryClaimArgs(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{newLogoutDelivery("d", "web", "alice", t0())}))
	if _, err := s.ClaimLogoutDeliveries(ctx, t0(), 0, time.Minute); err == nil {
		t.Error("ClaimLogoutDeliveries accepted limit 0")
	}
	if _, err := s.ClaimLogoutDeliveries(ctx, t0(), 10, 0); err == nil {
		t.Error("ClaimLogoutDeliveries accepted lease 0")
	}
	// Neither refused call leased the delivery.
	got, err := s.ClaimLogoutDeliveries(ctx, t0(), 10, time.Minute)
	mustNot(t, "claim", err)
	assertIDs(t, "claim after the refused calls", got, "d")
}

// assertFinished checks that every transition of a finished delivery is
// refused with ErrConflict and changes nothing.
func assertFinished(t *testing.T, s storage.Store, id string) {
	t.Helper()
	ctx := context.Background()
	before := getDelivery(t, s, id)
	later := at(100 * time.Hour)
	assertErrorIs(t, "complete "+id+" again", s.CompleteLogoutDelivery(ctx, id, later, 200), storage.ErrConflict)
	assertErrorIs(t, "retry "+id, s.RetryLogoutDelivery(ctx, id, later, 503, "late", later), storage.ErrConflict)
	assertErrorIs(t, "give up "+id, s.GiveUpLogoutDelivery(ctx, id, later, 410, "late"), storage.ErrConflict)
	assertEqual(t, id+" after refused transitions", getDelivery(t, s, id), before)
	got, err := s.ClaimLogoutDeliveries(ctx, at(1000*time.Hour), 100, time.Minute)
	mustNot(t, "claim", err)
	if slices.Contains(deliveryIDs(got), id) {
		t.Errorf("finished delivery %s was claimed", id)
	}
}

// Completing records the attempt and ends the delivery; the last failure's
// text stays for the record.
func testLogoutDeliveryComplete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	d := newLogoutDelivery("d", "web", "alice", t0())
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{d}))
	mustNot(t, "retry", s.RetryLogoutDelivery(ctx, "d", at(time.Second), 0, "dial tcp: connection refused", at(time.Minute)))
	mustNot(t, "complete", s.CompleteLogoutDelivery(ctx, "d", at(time.Minute+time.Second), 204))

	want := d
	want.Attempts = 2
	want.NextAttemptAt = at(time.Minute)
	want.LastAttemptAt = at(time.Minute + time.Second)
	want.LastStatus = 204
	want.LastError = "dial tcp: connection refused"
	want.DeliveredAt = ptrTo(at(time.Minute + time.Second))
	assertEqual(t, "after complete", getDelivery(t, s, "d"), &want)
	assertFinished(t, s, "d")
}

// Retries count attempts and move the next attempt; giving up ends the
// delivery with the last failure.
func testLogoutDeliveryRetryGiveUp(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	d := newLogoutDelivery("d", "web", "alice", t0())
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{d}))

	mustNot(t, "first retry", s.RetryLogoutDelivery(ctx, "d", at(time.Second), 503, "503 Service Unavailable", at(time.Minute)))
	want := d
	want.Attempts, want.LastAttemptAt, want.LastStatus = 1, at(time.Second), 503
	want.LastError, want.NextAttemptAt = "503 Service Unavailable", at(time.Minute)
	assertEqual(t, "after the first retry", getDelivery(t, s, "d"), &want)
	assertIDs(t, "pending after a retry", listDeliveries(t, s, storage.LogoutDeliveryFilter{State: storage.DeliveryPending}), "d")

	mustNot(t, "second retry", s.RetryLogoutDelivery(ctx, "d", at(time.Minute+5*time.Second), 0, "timeout", at(3*time.Minute)))
	want.Attempts, want.LastAttemptAt, want.LastStatus = 2, at(time.Minute+5*time.Second), 0
	want.LastError, want.NextAttemptAt = "timeout", at(3*time.Minute)
	assertEqual(t, "after the second retry", getDelivery(t, s, "d"), &want)

	mustNot(t, "give up", s.GiveUpLogoutDelivery(ctx, "d", at(3*time.Minute+time.Second), 404, "404 Not Found"))
	want.Attempts, want.LastAttemptAt, want.LastStatus = 3, at(3*time.Minute+time.Second), 404
	want.LastError, want.GaveUpAt = "404 Not Found", ptrTo(at(3*time.Minute+time.Second))
	assertEqual(t, "after giving up", getDelivery(t, s, "d"), &want)
	assertIDs(t, "given up", listDeliveries(t, s, storage.LogoutDeliveryFilter{State: storage.DeliveryGaveUp}), "d")
	assertIDs(t, "pending after giving up", listDeliveries(t, s, storage.LogoutDeliveryFilter{State: storage.DeliveryPending}))
	assertFinished(t, s, "d")
}

func testLogoutDeliveryNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{newLogoutDelivery("d", "web", "alice", t0())}))
	assertErrorIs(t, "complete unknown", s.CompleteLogoutDelivery(ctx, "nope", t0(), 200), storage.ErrNotFound)
	assertErrorIs(t, "retry unknown", s.RetryLogoutDelivery(ctx, "nope", t0(), 503, "x", at(time.Minute)), storage.ErrNotFound)
	assertErrorIs(t, "give up unknown", s.GiveUpLogoutDelivery(ctx, "nope", t0(), 404, "x"), storage.ErrNotFound)
	d := getDelivery(t, s, "d")
	if d.Attempts != 0 || d.DeliveredAt != nil || d.GaveUpAt != nil {
		t.Errorf("the known delivery changed: %+v", d)
	}
}

// Lists are newest first (CreatedAt, then ID, descending, in byte order:
// "4a" before "4B") and filter by client, user and state, alone or
// together, up to Limit.
func testLogoutDeliveryList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	mk := func(id, client, user string, created time.Duration, state string) storage.LogoutDelivery {
		d := newLogoutDelivery(id, client, user, at(created))
		switch state {
		case storage.DeliveryDelivered:
			d.DeliveredAt = ptrTo(at(created + time.Second))
		case storage.DeliveryGaveUp:
			d.GaveUpAt = ptrTo(at(created + time.Second))
		}
		return d
	}
	batch := []storage.LogoutDelivery{
		mk("1", "web", "alice", time.Minute, storage.DeliveryDelivered),
		mk("2", "spa", "alice", 2*time.Minute, storage.DeliveryPending),
		mk("3", "web", "bob", 3*time.Minute, storage.DeliveryGaveUp),
		mk("4a", "web", "alice", 4*time.Minute, storage.DeliveryPending),
		mk("4B", "spa", "bob", 4*time.Minute, storage.DeliveryDelivered),
		mk("5", "web", "deleted-user", 5*time.Minute, storage.DeliveryPending),
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))

	cases := []struct {
		f    storage.LogoutDeliveryFilter
		want []string
	}{
		{storage.LogoutDeliveryFilter{}, []string{"5", "4a", "4B", "3", "2", "1"}},
		{storage.LogoutDeliveryFilter{ClientID: "web"}, []string{"5", "4a", "3", "1"}},
		{storage.LogoutDeliveryFilter{UserID: "alice"}, []string{"4a", "2", "1"}},
		{storage.LogoutDeliveryFilter{UserID: "deleted-user"}, []string{"5"}},
		{storage.LogoutDeliveryFilter{State: storage.DeliveryPending}, []string{"5", "4a", "2"}},
		{storage.LogoutDeliveryFilter{State: storage.DeliveryDelivered}, []string{"4B", "1"}},
		{storage.LogoutDeliveryFilter{State: storage.DeliveryGaveUp}, []string{"3"}},
		{storage.LogoutDeliveryFilter{ClientID: "web", UserID: "alice"}, []string{"4a", "1"}},
		{storage.LogoutDeliveryFilter{ClientID: "spa", State: storage.DeliveryDelivered}, []string{"4B"}},
		{storage.LogoutDeliveryFilter{ClientID: "web", UserID: "alice", State: storage.DeliveryPending}, []string{"4a"}},
		{storage.LogoutDeliveryFilter{UserID: "bob", State: storage.DeliveryPending}, nil},
		{storage.LogoutDeliveryFilter{ClientID: "nobody"}, nil},
		{storage.LogoutDeliveryFilter{Limit: 2}, []string{"5", "4a"}},
		{storage.LogoutDeliveryFilter{ClientID: "web", Limit: 3}, []string{"5", "4a", "3"}},
		{storage.LogoutDeliveryFilter{Limit: -1}, []string{"5", "4a", "4B", "3", "2", "1"}},
	}
	for _, c := range cases {
		assertIDs(t, fmt.Sprintf("list %+v", c.f), listDeliveries(t, s, c.f), c.want...)
	}
	if _, err := s.ListLogoutDeliveries(ctx, storage.LogoutDeliveryFilter{State: "lost"}); err == nil {
		t.Error("ListLogoutDeliveries accepted an unknown state")
	}
}

// The pending count includes due and waiting deliveries, not delivered or
// given-up ones, follows each outcome, and stops at its limit.
func testLogoutDeliveryCountPending(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	count := func(what string, limit, want int) {
		t.Helper()
		n, err := s.CountPendingLogoutDeliveries(ctx, limit)
		mustNot(t, what, err)
		if n != want {
			t.Errorf("%s: %d pending, want %d", what, n, want)
		}
	}
	count("empty outbox", 10, 0)
	waiting := newLogoutDelivery("waiting", "web", "alice", t0())
	waiting.NextAttemptAt = at(time.Hour) // not due yet: pending all the same
	delivered := newLogoutDelivery("delivered", "web", "bob", t0())
	delivered.DeliveredAt = ptrTo(at(time.Second))
	gaveUp := newLogoutDelivery("gave-up", "spa", "bob", t0())
	gaveUp.GaveUpAt = ptrTo(at(time.Second))
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, []storage.LogoutDelivery{
		newLogoutDelivery("due-1", "web", "alice", t0()), newLogoutDelivery("due-2", "spa", "alice", t0()),
		waiting, delivered, gaveUp,
	}))
	count("due and waiting", 10, 3)
	count("at the limit", 3, 3)
	count("past the limit", 2, 2)
	mustNot(t, "complete", s.CompleteLogoutDelivery(ctx, "due-1", at(time.Second), 200))
	mustNot(t, "retry", s.RetryLogoutDelivery(ctx, "due-2", at(time.Second), 503, "HTTP status 503", at(time.Minute)))
	count("after delivering one and retrying one", 10, 2)
	mustNot(t, "give up", s.GiveUpLogoutDelivery(ctx, "due-2", at(time.Minute), 503, "retries ended"))
	count("after giving one up", 10, 1)
	for _, limit := range []int{0, -1} {
		if _, err := s.CountPendingLogoutDeliveries(ctx, limit); err == nil {
			t.Errorf("CountPendingLogoutDeliveries accepted limit %d", limit)
		}
	}
}

// Without a Limit a list stops at DefaultLogoutDeliveryLimit, newest first.
func testLogoutDeliveryListDefaultLimit(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	n := storage.DefaultLogoutDeliveryLimit + 5
	var batch []storage.LogoutDelivery
	for i := range n {
		batch = append(batch, newLogoutDelivery(fmt.Sprintf("d%03d", i), "web", "alice", at(time.Duration(i)*time.Second)))
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))
	got := listDeliveries(t, s, storage.LogoutDeliveryFilter{})
	if len(got) != storage.DefaultLogoutDeliveryLimit {
		t.Fatalf("listed %d deliveries, want %d", len(got), storage.DefaultLogoutDeliveryLimit)
	}
	if got[0].ID != fmt.Sprintf("d%03d", n-1) || got[len(got)-1].ID != fmt.Sprintf("d%03d", n-storage.DefaultLogoutDeliveryLimit) {
		t.Errorf("listed %s … %s, want the newest %d", got[0].ID, got[len(got)-1].ID, storage.DefaultLogoutDeliveryLimit)
	}
	if all := listDeliveries(t, s, storage.LogoutDeliveryFilter{Limit: n + 10}); len(all) != n {
		t.Errorf("with a larger Limit listed %d, want %d", len(all), n)
	}
}

// ClientsOfSession names each client granted tokens in the session once, in
// order, revoked grants included; other sessions and session-less grants do
// not count.
func testClientsOfSession(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	mustNot(t, "create client api", s.CreateClient(ctx, newClient("api")))
	sid := sd.aliceSession.ID
	grants := []*storage.Grant{
		newGrant("g1", "alice", "web", sid),
		newGrant("g2", "alice", "web", sid),
		newGrant("g3", "alice", "api", sid),
		newGrant("g4", "bob", "spa", "bob-session"),
		newGrant("g5", "alice", "spa", ""), // client credentials, say: no session
	}
	for _, g := range grants {
		mustNot(t, "create grant "+g.ID, s.CreateGrant(ctx, g))
	}
	check := func(what, sessionID string, want ...string) {
		t.Helper()
		got, err := s.ClientsOfSession(ctx, sessionID)
		mustNot(t, what, err)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	check("alice's session", sid, "api", "web")
	check("bob's session", "bob-session", "spa")
	check("unknown session", "nope")
	check("empty session ID", "")

	// Signing out revokes the grants; their clients still need telling.
	mustNot(t, "revoke by session", s.RevokeGrantsBySession(ctx, sid, at(time.Minute)))
	check("alice's session after revocation", sid, "api", "web")
}

// DeleteExpired removes deliveries delivered or given up more than
// LogoutDeliveryRetention ago, counted, and keeps recent ones and every
// pending one, however old.
func testLogoutDeliveryDeleteExpired(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	now := at(30 * 24 * time.Hour)
	cutoff := now.Add(-storage.LogoutDeliveryRetention)
	mk := func(id string, finished time.Time, state string) storage.LogoutDelivery {
		d := newLogoutDelivery(id, "web", "alice", finished.Add(-time.Hour))
		switch state {
		case storage.DeliveryDelivered:
			d.DeliveredAt = ptrTo(finished)
		case storage.DeliveryGaveUp:
			d.GaveUpAt = ptrTo(finished)
		}
		return d
	}
	batch := []storage.LogoutDelivery{
		mk("old-delivered", cutoff.Add(-time.Millisecond), storage.DeliveryDelivered),
		mk("old-gave-up", cutoff.Add(-24*time.Hour), storage.DeliveryGaveUp),
		mk("delivered-at-cutoff", cutoff, storage.DeliveryDelivered),
		mk("recent-delivered", cutoff.Add(time.Hour), storage.DeliveryDelivered),
		mk("recent-gave-up", now.Add(-time.Minute), storage.DeliveryGaveUp),
		// Pending for weeks, long past its expiry: the sender gives it up
		// (and says so); the sweep never drops unfinished work unseen.
		mk("old-pending", now.Add(-20*24*time.Hour), storage.DeliveryPending),
	}
	// Sweep the seeded rows (alice's session has expired by now) first, so
	// the count below is the deliveries'.
	_, err := s.DeleteExpired(ctx, now)
	mustNot(t, "sweep the seed", err)
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))

	removed, err := s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired", err)
	if removed != 2 {
		t.Errorf("DeleteExpired removed %d rows, want 2 (old-delivered, old-gave-up)", removed)
	}
	left := deliveryIDs(listDeliveries(t, s, storage.LogoutDeliveryFilter{}))
	slices.Sort(left)
	if want := []string{"delivered-at-cutoff", "old-pending", "recent-delivered", "recent-gave-up"}; !slices.Equal(left, want) {
		t.Errorf("deliveries after DeleteExpired: %q, want %q", left, want)
	}
	removed, err = s.DeleteExpired(ctx, now)
	mustNot(t, "delete expired again", err)
	if removed != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0", removed)
	}
}

// Deleting a client removes its deliveries (there is no one to tell);
// deleting a user keeps theirs, which are how the user's apps learn of it.
func testLogoutDeliveryDeletes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	batch := []storage.LogoutDelivery{
		newLogoutDelivery("web-alice", "web", "alice", t0()),
		newLogoutDelivery("spa-alice", "spa", "alice", at(time.Second)),
		newLogoutDelivery("spa-bob", "spa", "bob", at(2*time.Second)),
	}
	mustNot(t, "enqueue", s.EnqueueLogoutDeliveries(ctx, batch))
	mustNot(t, "delete user alice", s.DeleteUser(ctx, "alice"))
	assertIDs(t, "after deleting alice", listDeliveries(t, s, storage.LogoutDeliveryFilter{}), "spa-bob", "spa-alice", "web-alice")
	mustNot(t, "delete client spa", s.DeleteClient(ctx, "spa"))
	assertIDs(t, "after deleting spa", listDeliveries(t, s, storage.LogoutDeliveryFilter{}), "web-alice")
	got, err := s.ClaimLogoutDeliveries(ctx, at(time.Hour), 10, time.Minute)
	mustNot(t, "claim", err)
	assertIDs(t, "claim after the deletes", got, "web-alice")
}
