package storagetest

import (
	"context"
	"errors"
	"slices"
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
	assertErrorIs(t, "UpdateUserRole", s.UpdateUserRole(ctx, "nobody", "admin", t0()), storage.ErrNotFound)
	assertErrorIs(t, "SetUserEmailVerified", s.SetUserEmailVerified(ctx, "nobody", true, t0()), storage.ErrNotFound)
	assertErrorIs(t, "UpdateUserEmail", s.UpdateUserEmail(ctx, "nobody", "new@example.com", true, t0()), storage.ErrNotFound)
	assertErrorIs(t, "DeleteUser", s.DeleteUser(ctx, "nobody"), storage.ErrNotFound)
}

func testUserList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	users, err := s.ListUsers(ctx)
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
	users, err = s.ListUsers(ctx)
	mustNot(t, "list users", err)
	if len(users) != len(want) {
		t.Fatalf("ListUsers returned %d users, want %d", len(users), len(want))
	}
	// The contract promises no order, so match by ID.
	for _, w := range want {
		i := slices.IndexFunc(users, func(u storage.User) bool { return u.ID == w.ID })
		if i < 0 {
			t.Errorf("ListUsers lacks %s", w.ID)
			continue
		}
		assertEqual(t, "ListUsers["+w.ID+"]", &users[i], w)
	}
}

func testUserUpdates(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newUser("u1", "someone@example.com")
	want.EmailVerified = false
	mustNot(t, "create user", s.CreateUser(ctx, want))

	mustNot(t, "update password", s.UpdateUserPassword(ctx, "u1", "$2b$10$newhash", at(time.Minute)))
	want.PasswordHash, want.UpdatedAt = "$2b$10$newhash", at(time.Minute)
	got, err := s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after UpdateUserPassword", got, want)

	mustNot(t, "update role", s.UpdateUserRole(ctx, "u1", "admin", at(2*time.Minute)))
	want.Role, want.UpdatedAt = "admin", at(2*time.Minute)
	got, err = s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after UpdateUserRole", got, want)

	mustNot(t, "verify email", s.SetUserEmailVerified(ctx, "u1", true, at(3*time.Minute)))
	want.EmailVerified, want.UpdatedAt = true, at(3*time.Minute)
	got, err = s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after SetUserEmailVerified(true)", got, want)

	mustNot(t, "unverify email", s.SetUserEmailVerified(ctx, "u1", false, at(4*time.Minute)))
	want.EmailVerified, want.UpdatedAt = false, at(4*time.Minute)
	got, err = s.GetUser(ctx, "u1")
	mustNot(t, "get user", err)
	assertEqual(t, "after SetUserEmailVerified(false)", got, want)
}

func testUserUpdateEmail(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := *sd.alice

	mustNot(t, "update email", s.UpdateUserEmail(ctx, "alice", "alice.new@example.com", false, at(time.Minute)))
	want.Email, want.EmailVerified, want.UpdatedAt = "alice.new@example.com", false, at(time.Minute)
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
	want.EmailVerified, want.UpdatedAt = true, at(2*time.Minute)

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
