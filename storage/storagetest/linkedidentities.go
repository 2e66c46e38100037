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

func linkedIdentityTests() []namedTest {
	return []namedTest{
		{"RoundTrip", testLinkedIdentityRoundTrip},
		{"ConflictOnSecondLink", testLinkedIdentityConflict},
		{"UnknownUser", testLinkedIdentityUnknownUser},
		{"ListOrder", testLinkedIdentityListOrder},
		{"Touch", testLinkedIdentityTouch},
		{"Unlink", testLinkedIdentityUnlink},
		{"DeletedWithUser", testLinkedIdentityDeletedWithUser},
		{"ParallelLinkOneWinner", testLinkedIdentityParallel},
	}
}

func newLinkedIdentity(upstream, subject, userID string) *storage.LinkedIdentity {
	return &storage.LinkedIdentity{
		Upstream:  upstream,
		Subject:   subject,
		UserID:    userID,
		Email:     userID + "@" + upstream + ".example",
		CreatedAt: t0(),
	}
}

func link(t *testing.T, s storage.Store, l *storage.LinkedIdentity) {
	t.Helper()
	mustNot(t, fmt.Sprintf("link (%s, %s) to %s", l.Upstream, l.Subject, l.UserID), s.LinkIdentity(context.Background(), l))
}

// assertLinked fails t unless (want.Upstream, want.Subject) is stored as want.
func assertLinked(t *testing.T, s storage.Store, what string, want *storage.LinkedIdentity) {
	t.Helper()
	got, err := s.GetLinkedIdentity(context.Background(), want.Upstream, want.Subject)
	if err != nil {
		t.Errorf("%s: GetLinkedIdentity(%s, %s): %v", what, want.Upstream, want.Subject, err)
		return
	}
	assertEqual(t, what, got, want)
}

func assertNotLinked(t *testing.T, s storage.Store, what, upstream, subject string) {
	t.Helper()
	_, err := s.GetLinkedIdentity(context.Background(), upstream, subject)
	assertErrorIs(t, what, err, storage.ErrNotFound)
}

// assertLinks fails t unless the user's links are want, in order.
func assertLinks(t *testing.T, s storage.Store, what, userID string, want ...*storage.LinkedIdentity) {
	t.Helper()
	got, err := s.ListLinkedIdentities(context.Background(), userID)
	if err != nil {
		t.Errorf("%s: ListLinkedIdentities(%s): %v", what, userID, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d links, want %d: %+v", what, len(got), len(want), got)
		return
	}
	for i := range got {
		assertEqual(t, fmt.Sprintf("%s[%d]", what, i), &got[i], want[i])
	}
}

func testLinkedIdentityRoundTrip(t *testing.T, s storage.Store) {
	seedStore(t, s)
	assertNotLinked(t, s, "GetLinkedIdentity before any", "github", "583231")

	never := newLinkedIdentity("github", "583231", "alice")
	link(t, s, never)
	assertLinked(t, s, "link never used", never)

	used := newLinkedIdentity("corp", "00u1a2b3c4", "alice")
	used.LastUsedAt = at(time.Minute)
	link(t, s, used)
	assertLinked(t, s, "link with a last use", used)

	// The key is the pair: the same subject at another upstream, or another
	// subject at the same upstream, is a different account.
	assertNotLinked(t, s, "subject at another upstream", "corp", "583231")
	assertNotLinked(t, s, "another subject at the upstream", "github", "583232")
	assertNotLinked(t, s, "subject with a trailing space", "github", "583231 ")
}

// testLinkedIdentityConflict: an upstream account belongs to one user. A
// second link (from an attacker's session, or a double submit) must neither
// move nor duplicate it.
func testLinkedIdentityConflict(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	alices := newLinkedIdentity("github", "583231", "alice")
	link(t, s, alices)

	bobs := newLinkedIdentity("github", "583231", "bob")
	bobs.CreatedAt = at(time.Hour)
	assertErrorIs(t, "link an account linked to another user", s.LinkIdentity(ctx, bobs), storage.ErrConflict)
	again := newLinkedIdentity("github", "583231", "alice")
	again.Email = "changed@github.example"
	assertErrorIs(t, "link an account to its user again", s.LinkIdentity(ctx, again), storage.ErrConflict)

	assertLinked(t, s, "first link after the conflicts", alices)
	assertLinks(t, s, "bob's links", "bob")

	// The same subject at another upstream is someone else's account.
	other := newLinkedIdentity("corp", "583231", "bob")
	link(t, s, other)
	assertLinked(t, s, "same subject at another upstream", other)
}

func testLinkedIdentityUnknownUser(t *testing.T, s storage.Store) {
	seedStore(t, s)
	orphan := newLinkedIdentity("github", "583231", "nobody")
	assertErrorIs(t, "link to an unknown user", s.LinkIdentity(context.Background(), orphan), storage.ErrNotFound)
	assertNotLinked(t, s, "link to an unknown user", "github", "583231")

	// The failed link did not take the account.
	alices := newLinkedIdentity("github", "583231", "alice")
	link(t, s, alices)
	assertLinked(t, s, "link after the failed one", alices)
}

// testLinkedIdentityListOrder: upstream, then subject, in byte order ("Z"
// before "a", "10" before "9") on every backend, whatever the locale.
func testLinkedIdentityListOrder(t *testing.T, s storage.Store) {
	seedStore(t, s)
	github9 := newLinkedIdentity("github", "9", "alice")
	corpLower := newLinkedIdentity("corp", "b", "alice")
	corpUpper := newLinkedIdentity("corp", "Zed", "alice")
	github10 := newLinkedIdentity("github", "10", "alice")
	bobs := newLinkedIdentity("corp", "a", "bob")
	for _, l := range []*storage.LinkedIdentity{github9, corpLower, bobs, corpUpper, github10} {
		link(t, s, l)
	}
	assertLinks(t, s, "alice's links", "alice", corpUpper, corpLower, github10, github9)
	assertLinks(t, s, "bob's links", "bob", bobs)

	mustNot(t, "create carol", s.CreateUser(context.Background(), newUser("carol", "carol@example.com")))
	assertLinks(t, s, "links of a user without any", "carol")
	assertLinks(t, s, "links of an unknown user", "nobody")
}

func testLinkedIdentityTouch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	l := newLinkedIdentity("github", "583231", "alice")
	other := newLinkedIdentity("github", "777", "bob")
	link(t, s, l)
	link(t, s, other)

	mustNot(t, "touch", s.TouchLinkedIdentity(ctx, "github", "583231", at(time.Hour)))
	l.LastUsedAt = at(time.Hour)
	assertLinked(t, s, "after the first touch", l)
	mustNot(t, "touch again", s.TouchLinkedIdentity(ctx, "github", "583231", at(2*time.Hour)))
	l.LastUsedAt = at(2 * time.Hour)
	assertLinked(t, s, "after the second touch", l)
	assertLinked(t, s, "another link", other)

	assertErrorIs(t, "touch an unlinked account", s.TouchLinkedIdentity(ctx, "github", "1", at(time.Hour)), storage.ErrNotFound)
	assertErrorIs(t, "touch the subject at another upstream", s.TouchLinkedIdentity(ctx, "corp", "583231", at(time.Hour)), storage.ErrNotFound)
}

func testLinkedIdentityUnlink(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	alicesGitHub := newLinkedIdentity("github", "583231", "alice")
	alicesCorp := newLinkedIdentity("corp", "00u1", "alice")
	bobsGitHub := newLinkedIdentity("github", "777", "bob")
	for _, l := range []*storage.LinkedIdentity{alicesGitHub, alicesCorp, bobsGitHub} {
		link(t, s, l)
	}

	assertErrorIs(t, "unlink an upstream the user has no link to", s.UnlinkIdentity(ctx, "bob", "corp"), storage.ErrNotFound)
	assertErrorIs(t, "unlink for an unknown user", s.UnlinkIdentity(ctx, "nobody", "github"), storage.ErrNotFound)
	assertLinked(t, s, "alice's corp link after bob's failed unlink", alicesCorp)

	mustNot(t, "unlink alice from github", s.UnlinkIdentity(ctx, "alice", "github"))
	assertNotLinked(t, s, "unlinked account", "github", "583231")
	assertLinks(t, s, "alice's links after unlinking github", "alice", alicesCorp)
	assertLinked(t, s, "another user's link to the upstream", bobsGitHub)
	assertErrorIs(t, "unlink again", s.UnlinkIdentity(ctx, "alice", "github"), storage.ErrNotFound)

	// The account is free to be linked again, by anyone.
	relinked := newLinkedIdentity("github", "583231", "bob")
	link(t, s, relinked)
	assertLinked(t, s, "unlinked account linked to another user", relinked)
}

func testLinkedIdentityDeletedWithUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	link(t, s, newLinkedIdentity("github", "583231", "alice"))
	link(t, s, newLinkedIdentity("corp", "00u1", "alice"))
	bobs := newLinkedIdentity("github", "777", "bob")
	link(t, s, bobs)

	mustNot(t, "delete alice", s.DeleteUser(ctx, "alice"))
	assertNotLinked(t, s, "github link of a deleted user", "github", "583231")
	assertNotLinked(t, s, "corp link of a deleted user", "corp", "00u1")
	assertLinks(t, s, "links of a deleted user", "alice")
	assertLinked(t, s, "another user's link", bobs)

	// Were alice's link still stored, the account would clash.
	relinked := newLinkedIdentity("github", "583231", "bob")
	link(t, s, relinked)
	assertLinked(t, s, "a deleted user's account linked to another user", relinked)
}

// testLinkedIdentityParallel: many users finish linking the same upstream
// account at once: exactly one link is made, the rest see ErrConflict.
func testLinkedIdentityParallel(t *testing.T, s storage.Store) {
	ctx := context.Background()
	users := make([]string, parallelism)
	for i := range users {
		users[i] = fmt.Sprintf("user-%02d", i)
		mustNot(t, "create "+users[i], s.CreateUser(ctx, newUser(users[i], users[i]+"@example.com")))
	}

	type result struct {
		userID string
		err    error
	}
	results := make(chan result, parallelism)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, userID := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results <- result{userID, s.LinkIdentity(ctx, newLinkedIdentity("github", "583231", userID))}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	var winners []string
	conflicts := 0
	for r := range results {
		switch {
		case r.err == nil:
			winners = append(winners, r.userID)
		case errors.Is(r.err, storage.ErrConflict):
			conflicts++
		default:
			t.Errorf("parallel link for %s failed: %v", r.userID, r.err)
		}
	}
	if len(winners) != 1 || conflicts != parallelism-1 {
		t.Fatalf("%d links succeeded (%v) and %d conflicted; want 1 and %d", len(winners), winners, conflicts, parallelism-1)
	}
	assertLinked(t, s, "the winning link", newLinkedIdentity("github", "583231", winners[0]))
	for _, userID := range users {
		want := 0
		if userID == winners[0] {
			want = 1
		}
		got, err := s.ListLinkedIdentities(ctx, userID)
		mustNot(t, "list links of "+userID, err)
		if len(got) != want {
			t.Errorf("%s has %d links, want %d", userID, len(got), want)
		}
	}
}
