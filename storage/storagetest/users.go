package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func userTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testUserCreateAndGet},
		{"DuplicateEmailConflicts", testUserDuplicateEmail},
		{"DuplicateIDConflicts", testUserDuplicateID},
		{"NotFound", testUserNotFound},
		{"List", testUserList},
		{"Updates", testUserUpdates},
		{"UpdateEmail", testUserUpdateEmail},
		{"DeleteCascades", testUserDeleteCascades},
		{"UpdateUserReplacesFields", testUpdateUser},
		{"UpdateUserCompareAndSet", testUpdateUserCompareAndSet},
		{"UpdateUserConcurrent", testUpdateUserConcurrent},
		{"DisabledRoundTrip", testUserDisabled},
		{"SearchPages", testSearchUsersPages},
		{"SearchFilters", testSearchUsersFilters},
	}
}

func testUserCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newUser("u1", "someone@example.com")
	mustNot(t, "create user", s.CreateUser(ctx, want))

	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "GetUser", got, want)

	got, err = s.GetUserByEmail(ctx, "someone@example.com")
	mustNot(t, "get user by email", err)
	assertEqual(t, "GetUserByEmail", got, want)
}

func testUserDuplicateEmail(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create first user", s.CreateUser(ctx, newUser("u1", "same@example.com")))
	err := s.CreateUser(ctx, newUser("u2", "same@example.com"))
	assertErrorIs(t, "second user with the same email", err, storage.ErrConflict)
	if _, err := s.GetUser(ctx, "u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the conflicting user was stored anyway (GetUser: %v)", err)
	}
}

func testUserDuplicateID(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create first user", s.CreateUser(ctx, newUser("u1", "one@example.com")))
	err := s.CreateUser(ctx, newUser("u1", "two@example.com"))
	assertErrorIs(t, "second user with the same ID", err, storage.ErrConflict)
}

func testUserNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetUser(ctx, "nobody")
	assertErrorIs(t, "GetUser", err, storage.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "nobody@example.com")
	assertErrorIs(t, "GetUserByEmail", err, storage.ErrNotFound)
	assertErrorIs(t, "UpdateUserPassword", s.UpdateUserPassword(ctx, "nobody", "$2a$x", t0()), storage.ErrNotFound)
	ghost := newUser("nobody", "nobody@example.com")
	ghost.Version = 1
	assertErrorIs(t, "UpdateUser", s.UpdateUser(ctx, ghost), storage.ErrNotFound)
	assertErrorIs(t, "SetUserEmailVerified", s.SetUserEmailVerified(ctx, "nobody", true, t0()), storage.ErrNotFound)
	assertErrorIs(t, "UpdateUserEmail", s.UpdateUserEmail(ctx, "nobody", "new@example.com", true, t0()), storage.ErrNotFound)
	assertErrorIs(t, "DeleteUser", s.DeleteUser(ctx, "nobody"), storage.ErrNotFound)
}

func testUserList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	all := storage.UserQuery{Limit: 100}
	users, err := s.SearchUsers(ctx, all)
	mustNot(t, "list users of an empty store", err)
	if len(users) != 0 {
		t.Fatalf("empty store lists %d users", len(users))
	}
	want := []*storage.User{
		newUser("u3", "carol@example.com"),
		newUser("u1", "alice@example.com"),
		newUser("u2", "bob@example.com"),
	}
	for _, u := range want {
		mustNot(t, "create user "+u.ID, s.CreateUser(ctx, u))
	}
	users, err = s.SearchUsers(ctx, all)
	mustNot(t, "list users", err)
	if len(users) != len(want) {
		t.Fatalf("SearchUsers returned %d users, want %d", len(users), len(want))
	}
	// Every field read back, in the order of the addresses.
	for i, id := range []string{"u1", "u2", "u3"} {
		w := want[slices.IndexFunc(want, func(u *storage.User) bool { return u.ID == id })]
		assertEqual(t, "SearchUsers["+id+"]", &users[i], w)
	}
}

func testUserUpdates(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newUser("u1", "someone@example.com")
	want.EmailVerified = false
	mustNot(t, "create user", s.CreateUser(ctx, want))

	if want.Version != 1 {
		t.Fatalf("CreateUser set Version %d, want 1", want.Version)
	}

	// Every change adds one to the version.
	mustNot(t, "update password", s.UpdateUserPassword(ctx, "u1", "$2b$10$newhash", at(time.Minute)))
	want.PasswordHash, want.UpdatedAt, want.Version = "$2b$10$newhash", at(time.Minute), 2
	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after UpdateUserPassword", got, want)

	mustNot(t, "verify email", s.SetUserEmailVerified(ctx, "u1", true, at(3*time.Minute)))
	want.EmailVerified, want.UpdatedAt, want.Version = true, at(3*time.Minute), 3
	got, err = s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after SetUserEmailVerified(true)", got, want)

	mustNot(t, "unverify email", s.SetUserEmailVerified(ctx, "u1", false, at(4*time.Minute)))
	want.EmailVerified, want.UpdatedAt, want.Version = false, at(4*time.Minute), 4
	got, err = s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after SetUserEmailVerified(false)", got, want)
}

func testUserUpdateEmail(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := *sd.alice

	mustNot(t, "update email", s.UpdateUserEmail(ctx, "alice", "alice.new@example.com", false, at(time.Minute)))
	want.Email, want.EmailVerified, want.UpdatedAt, want.Version = "alice.new@example.com", false, at(time.Minute), 2
	got, err := s.GetUser(ctx, "alice")
	mustNot(t, "get user", err)
	assertEqual(t, "after UpdateUserEmail", got, &want)
	got, err = s.GetUserByEmail(ctx, "alice.new@example.com")
	mustNot(t, "get user by the new email", err)
	assertEqual(t, "GetUserByEmail(new address)", got, &want)
	_, err = s.GetUserByEmail(ctx, "alice@example.com")
	assertErrorIs(t, "GetUserByEmail(old address)", err, storage.ErrNotFound)

	// Setting the address the user already has is no conflict.
	mustNot(t, "verify the same email", s.UpdateUserEmail(ctx, "alice", "alice.new@example.com", true, at(2*time.Minute)))
	want.EmailVerified, want.UpdatedAt, want.Version = true, at(2*time.Minute), 3

	// Another user's address conflicts and changes nothing.
	err = s.UpdateUserEmail(ctx, "alice", "bob@example.com", false, at(3*time.Minute))
	assertErrorIs(t, "UpdateUserEmail to another user's address", err, storage.ErrConflict)
	got, err = s.GetUser(ctx, "alice")
	mustNot(t, "get user", err)
	assertEqual(t, "after a conflicting UpdateUserEmail", got, &want)
	got, err = s.GetUser(ctx, "bob")
	mustNot(t, "get bob", err)
	assertEqual(t, "bob after a conflicting UpdateUserEmail", got, sd.bob)

	// The old address is free for someone else.
	mustNot(t, "reuse the old address", s.CreateUser(ctx, newUser("carol", "alice@example.com")))
}

// testUserDeleteCascades checks that DeleteUser removes the user's sessions,
// grants (with their refresh tokens), consents, passkeys, WebAuthn user
// handle, TOTP and recovery codes, and nobody else's.
func testUserDeleteCascades(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	bobSession := newSession("bob-session", "bob")
	mustNot(t, "create bob's session", s.CreateSession(ctx, bobSession))
	for _, g := range []*storage.Grant{
		newGrant("alice-grant", "alice", "web", sd.aliceSession.ID),
		newGrant("bob-grant", "bob", "web", bobSession.ID),
	} {
		mustNot(t, "create grant "+g.ID, s.CreateGrant(ctx, g))
		mustNot(t, "create refresh token of "+g.ID, s.CreateRefreshToken(ctx, newRefreshToken("rt-"+g.ID, g.ID)))
		mustNot(t, "save consent for "+g.UserID, s.SaveConsent(ctx, &storage.Consent{
			UserID: g.UserID, ClientID: "web", Scopes: []string{"openid"}, GrantedAt: t0(),
		}))
	}

	handles := map[string][]byte{}
	for _, user := range []string{"alice", "bob"} {
		createCredential(t, s, newCredential([]byte("credential of "+user), user))
		h, err := s.WebAuthnUserHandle(ctx, user, hash("handle of "+user))
		mustNot(t, "handle of "+user, err)
		handles[user] = h
		mustNot(t, "TOTP of "+user, s.SetTOTP(ctx, newTOTP(user)))
		mustNot(t, "recovery codes of "+user, s.ReplaceRecoveryCodes(ctx, user, recoveryHashes(user, 10), t0()))
	}

	mustNot(t, "delete alice", s.DeleteUser(ctx, "alice"))

	assertNoCredential(t, s, "alice's credential", []byte("credential of alice"))
	assertCredentials(t, s, "alice's credentials", "alice")
	_, err := s.GetUserByWebAuthnHandle(ctx, handles["alice"])
	assertErrorIs(t, "GetUserByWebAuthnHandle(alice's)", err, storage.ErrNotFound)
	_, err = s.GetTOTP(ctx, "alice")
	assertErrorIs(t, "GetTOTP(alice)", err, storage.ErrNotFound)
	assertRecoveryCodes(t, s, "alice's recovery codes", "alice", 0)

	// Were alice's rows still stored, a new account with her ID would find
	// them; it starts with none, and her old handle and credential ID are free.
	mustNot(t, "create a new alice", s.CreateUser(ctx, newUser("alice", "alice@example.com")))
	_, err = s.GetTOTP(ctx, "alice")
	assertErrorIs(t, "GetTOTP(new alice)", err, storage.ErrNotFound)
	assertRecoveryCodes(t, s, "new alice's recovery codes", "alice", 0)
	assertCredentials(t, s, "new alice's credentials", "alice")
	h, err := s.WebAuthnUserHandle(ctx, "alice", hash("new alice's handle"))
	mustNot(t, "new alice's handle", err)
	if string(h) != string(hash("new alice's handle")) {
		t.Errorf("new alice's handle = %x, want her own candidate, not the deleted account's", h)
	}
	mustNot(t, "create carol", s.CreateUser(ctx, newUser("carol", "carol@example.com")))
	h, err = s.WebAuthnUserHandle(ctx, "carol", handles["alice"])
	mustNot(t, "carol takes the deleted account's handle", err)
	if string(h) != string(handles["alice"]) {
		t.Errorf("carol's handle = %x, want the deleted account's %x", h, handles["alice"])
	}
	createCredential(t, s, newCredential([]byte("credential of alice"), "bob"))
	mustNot(t, "delete the new alice", s.DeleteUser(ctx, "alice"))

	_, err = s.GetUser(ctx, "alice")
	assertErrorIs(t, "GetUser(alice)", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, sd.aliceSession.ID)
	assertErrorIs(t, "GetSession(alice's)", err, storage.ErrNotFound)
	_, err = s.GetSessionByTokenHash(ctx, sd.aliceSession.TokenHash)
	assertErrorIs(t, "GetSessionByTokenHash(alice's)", err, storage.ErrNotFound)
	_, err = s.GetGrant(ctx, "alice-grant")
	assertErrorIs(t, "GetGrant(alice's)", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("rt-alice-grant"))
	assertErrorIs(t, "GetRefreshToken(alice's)", err, storage.ErrNotFound)
	_, err = s.GetConsent(ctx, "alice", "web")
	assertErrorIs(t, "GetConsent(alice's)", err, storage.ErrNotFound)

	_, err = s.GetUser(ctx, "bob")
	mustNot(t, "bob survives", err)
	_, err = s.GetSession(ctx, bobSession.ID)
	mustNot(t, "bob's session survives", err)
	_, err = s.GetGrant(ctx, "bob-grant")
	mustNot(t, "bob's grant survives", err)
	_, err = s.GetRefreshToken(ctx, hash("rt-bob-grant"))
	mustNot(t, "bob's refresh token survives", err)
	_, err = s.GetConsent(ctx, "bob", "web")
	mustNot(t, "bob's consent survives", err)
	assertCredential(t, s, "bob's credential survives", newCredential([]byte("credential of bob"), "bob"))
	u, err := s.GetUserByWebAuthnHandle(ctx, handles["bob"])
	if err != nil || u.ID != "bob" {
		t.Errorf("GetUserByWebAuthnHandle(bob's) = %v, %v; want bob", u, err)
	}
	assertTOTP(t, s, "bob's TOTP survives", newTOTP("bob"))
	assertRecoveryCodes(t, s, "bob's recovery codes survive", "bob", 10)
}

// testUpdateUser: UpdateUser writes name, role, verified flag, password hash
// and DisabledAt, leaves ID, email and CreatedAt, and returns the new version.
func testUpdateUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newUser("u1", "someone@example.com")
	mustNot(t, "create user", s.CreateUser(ctx, want))

	change := *want
	change.Email = "ignored@example.com"          // changes only through UpdateUserEmail
	change.CreatedAt = at(time.Hour)              // never changes
	change.Name, change.Role = "Renamed", "ADMIN" // written
	change.EmailVerified = !want.EmailVerified
	change.PasswordHash = "$2b$12$other"
	change.DisabledAt = ptrTo(at(2 * time.Minute))
	change.UpdatedAt = at(2 * time.Minute)
	mustNot(t, "update user", s.UpdateUser(ctx, &change))
	if change.Version != 2 {
		t.Errorf("UpdateUser left Version %d, want 2", change.Version)
	}
	want.Name, want.Role, want.EmailVerified, want.PasswordHash = change.Name, change.Role, change.EmailVerified, change.PasswordHash
	want.DisabledAt, want.UpdatedAt, want.Version = change.DisabledAt, change.UpdatedAt, 2
	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after UpdateUser", got, want)
}

// testUpdateUserCompareAndSet: an update from a stale read is refused with
// ErrConflict and changes nothing; one from the current version goes through.
func testUpdateUserCompareAndSet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	u := newUser("u1", "someone@example.com")
	mustNot(t, "create user", s.CreateUser(ctx, u))
	first, second := *u, *u // two admins read version 1

	first.Role, first.UpdatedAt = "ADMIN", at(time.Minute)
	mustNot(t, "first update", s.UpdateUser(ctx, &first))
	second.Name, second.UpdatedAt = "Overwrite", at(2*time.Minute)
	assertErrorIs(t, "update from a stale version", s.UpdateUser(ctx, &second), storage.ErrConflict)
	if second.Version != 1 {
		t.Errorf("a refused update changed the caller's Version to %d", second.Version)
	}
	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after the refused update", got, &first)

	// A change made by another method also makes a read stale.
	mustNot(t, "set password", s.UpdateUserPassword(ctx, "u1", "$2b$12$x", at(3*time.Minute)))
	first.Name = "Stale"
	assertErrorIs(t, "update after a password change", s.UpdateUser(ctx, &first), storage.ErrConflict)

	// Re-read, change, write: accepted.
	fresh, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	fresh.Name, fresh.UpdatedAt = "Fresh", at(4*time.Minute)
	mustNot(t, "update from the current version", s.UpdateUser(ctx, fresh))
	if fresh.Version != 4 { // created, updated, password set, updated
		t.Errorf("Version after three changes = %d, want 4", fresh.Version)
	}
}

// testUpdateUserConcurrent: of several updates from the same version, exactly
// one succeeds; the others get ErrConflict.
func testUpdateUserConcurrent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	u := newUser("u1", "someone@example.com")
	mustNot(t, "create user", s.CreateUser(ctx, u))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *u
			c.Name, c.UpdatedAt = fmt.Sprintf("writer %d", i), at(time.Minute)
			errs[i] = s.UpdateUser(ctx, &c)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent updates from one version succeeded, want exactly 1", won)
	}
	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	if got.Version != 2 {
		t.Errorf("Version after one successful update = %d, want 2", got.Version)
	}
}

// testUserDisabled: DisabledAt is stored by CreateUser and UpdateUser and read
// back by every way of reading users, both ways.
func testUserDisabled(t *testing.T, s storage.Store) {
	ctx := context.Background()
	disabled := newUser("u1", "disabled@example.com")
	disabled.DisabledAt = ptrTo(at(-time.Minute))
	mustNot(t, "create a disabled user", s.CreateUser(ctx, disabled))
	enabled := newUser("u2", "enabled@example.com")
	mustNot(t, "create an enabled user", s.CreateUser(ctx, enabled))

	check := func(what string, want ...*storage.User) {
		t.Helper()
		for _, w := range want {
			got, err := s.GetUser(ctx, w.ID)
			mustNot(t, what+": get user", err)
			assertEqual(t, what+": GetUser("+w.ID+")", got, w)
			got, err = s.GetUserByEmail(ctx, w.Email)
			mustNot(t, what+": get user by email", err)
			assertEqual(t, what+": GetUserByEmail("+w.ID+")", got, w)
		}
		list, err := s.SearchUsers(ctx, storage.UserQuery{Limit: 10})
		mustNot(t, what+": search users", err)
		if len(list) != len(want) {
			t.Fatalf("%s: SearchUsers returned %d users, want %d", what, len(list), len(want))
		}
		for i := range list {
			j := slices.IndexFunc(want, func(u *storage.User) bool { return u.ID == list[i].ID })
			if j < 0 {
				t.Fatalf("%s: SearchUsers returned unknown user %s", what, list[i].ID)
			}
			assertEqual(t, what+": SearchUsers", &list[i], want[j])
		}
	}
	check("created", disabled, enabled)
	if !disabled.Disabled() || enabled.Disabled() {
		t.Fatal("User.Disabled does not follow DisabledAt")
	}

	disabled.DisabledAt, disabled.UpdatedAt = nil, at(time.Minute)
	mustNot(t, "enable", s.UpdateUser(ctx, disabled))
	enabled.DisabledAt, enabled.UpdatedAt = ptrTo(at(time.Minute)), at(time.Minute)
	mustNot(t, "disable", s.UpdateUser(ctx, enabled))
	check("after enabling one and disabling the other", disabled, enabled)
}

// testSearchUsersPages: pages follow (email, id) in byte order, continue
// after the cursor without skipping or repeating, and end with a short page.
func testSearchUsersPages(t *testing.T, s storage.Store) {
	ctx := context.Background()
	empty, err := s.SearchUsers(ctx, storage.UserQuery{Limit: 5})
	mustNot(t, "search an empty store", err)
	if len(empty) != 0 {
		t.Fatalf("empty store: %d users", len(empty))
	}
	// Byte order: digits < upper case < '_' < lower case; '.' < letters.
	emails := []string{"zed@example.com", "a.b@example.com", "ab@example.com", "a_b@example.com", "0@example.com",
		"aa@example.com", "b@example.com", "ab@example.org", "abc@example.com"}
	for i, e := range emails {
		mustNot(t, "create "+e, s.CreateUser(ctx, newUser(fmt.Sprintf("u%02d", i), e)))
	}
	want := slices.Clone(emails)
	slices.Sort(want) // Go compares strings byte by byte
	for _, limit := range []int{1, 2, 4, len(emails), len(emails) + 3} {
		var got []string
		q := storage.UserQuery{Limit: limit}
		for pages := 0; ; pages++ {
			if pages > len(emails)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := s.SearchUsers(ctx, q)
			mustNot(t, "search users", err)
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			for _, u := range page {
				got = append(got, u.Email)
			}
			if len(page) < limit {
				break
			}
			last := page[len(page)-1]
			q.AfterEmail, q.AfterID = last.Email, last.ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages gave\n %q\nwant\n %q", limit, got, want)
		}
	}
	// A cursor between two users (the last one deleted meanwhile) still
	// continues after it.
	page, err := s.SearchUsers(ctx, storage.UserQuery{AfterEmail: "ab@example.comm", AfterID: "", Limit: 2})
	mustNot(t, "search after a gone cursor", err)
	if len(page) != 2 || page[0].Email != "ab@example.org" || page[1].Email != "abc@example.com" {
		t.Errorf("after a cursor between users: %v", page)
	}
	_, err = s.SearchUsers(ctx, storage.UserQuery{})
	if err == nil {
		t.Error("SearchUsers with no limit: no error")
	}
}

// testSearchUsersFilters: Search matches an email prefix or a name
// substring, ignoring ASCII case in the name, and combines with paging.
func testSearchUsersFilters(t *testing.T, s storage.Store) {
	ctx := context.Background()
	users := []struct{ id, email, name string }{
		{"u1", "alice@example.com", "Alice Liddell"},
		{"u2", "alfred@example.com", "Alfred Pennyworth"},
		{"u3", "bob@example.com", "Bob (ALICE's friend)"},
		{"u4", "carol@alice.example", "Carol"},
		{"u5", "dave@example.com", "100% dave_"},
	}
	for _, u := range users {
		nu := newUser(u.id, u.email)
		nu.Name = u.name
		mustNot(t, "create "+u.id, s.CreateUser(ctx, nu))
	}
	cases := []struct {
		search string
		want   []string
	}{
		{"al", []string{"u2", "u1", "u3"}},    // email prefix; "al" in "Alfred", "Alice", "ALICE"
		{"alice", []string{"u1", "u3"}},       // carol@alice… is not a prefix match, her name has none
		{"alice@example.com", []string{"u1"}}, // a whole address
		{"liddell", []string{"u1"}},           // name, other case
		{"ALFRED", []string{"u2"}},            // upper-case search finds a lower-case name letter by letter
		{"nobody", nil},                       // nothing
		{"%", []string{"u5"}},                 // no wildcards: "%" is a character
		{"_", []string{"u5"}},                 // nor "_"
		{"example.com", nil},                  // not a prefix of any address, in no name
	}
	for _, c := range cases {
		list, err := s.SearchUsers(ctx, storage.UserQuery{Search: c.search, Limit: 10})
		mustNot(t, "search "+c.search, err)
		var got []string
		for _, u := range list {
			got = append(got, u.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Search %q: got %v, want %v", c.search, got, c.want)
		}
	}
	// Paging within a search.
	page, err := s.SearchUsers(ctx, storage.UserQuery{Search: "al", Limit: 2})
	mustNot(t, "first page", err)
	if len(page) != 2 {
		t.Fatalf("first page of \"al\": %d users", len(page))
	}
	rest, err := s.SearchUsers(ctx, storage.UserQuery{Search: "al", AfterEmail: page[1].Email, AfterID: page[1].ID, Limit: 2})
	mustNot(t, "second page", err)
	if len(rest) != 1 || rest[0].ID != "u3" {
		t.Errorf("second page of \"al\": %v, want u3 only", rest)
	}
}
