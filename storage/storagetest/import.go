package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func importTests() []namedTest {
	return []namedTest{
		{"CreatesThenUnchanged", testImportCreatesThenUnchanged},
		{"UpdatesWhatDiffers", testImportUpdatesWhatDiffers},
		{"PasswordSetInGatehouseStays", testImportPasswordSetInGatehouseStays},
		{"RoleSetInGatehouseStays", testImportRoleSetInGatehouseStays},
		{"KeptIDCollisions", testImportKeptIDCollisions},
		{"LockCarriedOnce", testImportLockCarriedOnce},
		{"LinkConflict", testImportLinkConflict},
		{"DryRunWritesNothing", testImportDryRunWritesNothing},
		{"BatchIsAtomic", testImportBatchIsAtomic},
		{"DeleteUserRemovesRecord", testImportDeleteUser},
	}
}

// Bcrypt-shaped strings standing for a source's hashes (the store never
// verifies them).
const (
	importHash1 = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	importHash2 = "$2y$12$Ro0CUfOqk6cXEKf3dyaM7OhSCvnwM9s4wIX9JeLapehKK5YdLxKcm"
)

func importOpts(now time.Time) storage.ImportOptions {
	return storage.ImportOptions{Now: now, DefaultRole: "USER"}
}

// importUsers imports users and returns the outcomes, failing on an error.
func importUsers(t *testing.T, s storage.Store, opt storage.ImportOptions, users ...storage.ImportUser) []storage.ImportOutcome {
	t.Helper()
	out, err := s.ImportUsers(context.Background(), users, opt)
	mustNot(t, "import users", err)
	if len(out) != len(users) {
		t.Fatalf("%d outcomes for %d users", len(out), len(users))
	}
	return out
}

// sourceUser is a user as an Auth.js table describes them, found by email.
func sourceUser(id, email string) storage.ImportUser {
	return storage.ImportUser{
		SourceID: "src-" + id, ID: id, Email: email, Name: "Name of " + id, Role: "ADMIN",
		EmailVerified: true, PasswordHash: importHash1, CreatedAt: at(-365 * 24 * time.Hour),
		Links: []storage.ImportLink{{Upstream: "github", Subject: "1000" + id}},
	}
}

func assertOutcome(t *testing.T, what string, got storage.ImportOutcome, result storage.ImportResult, changed ...string) {
	t.Helper()
	if got.Result != result || len(got.Changed) != len(changed) {
		t.Errorf("%s: outcome %+v, want %s changing %v", what, got, result, changed)
		return
	}
	for i := range changed {
		if got.Changed[i] != changed[i] {
			t.Errorf("%s: outcome %+v, want %s changing %v", what, got, result, changed)
		}
	}
}

func getUserByEmail(t *testing.T, s storage.Store, email string) *storage.User {
	t.Helper()
	u, err := s.GetUserByEmail(context.Background(), email)
	mustNot(t, "get "+email, err)
	return u
}

func testImportCreatesThenUnchanged(t *testing.T, s storage.Store) {
	ctx := context.Background()
	byEmail := sourceUser("new-1", "one@example.com")
	byID := sourceUser("cuid-2", "two@example.com")
	byID.MatchByID = true
	byID.Role, byID.Name, byID.EmailVerified = "", "", false // the source has none
	byID.LockedUntil = at(time.Hour)
	out := importUsers(t, s, importOpts(t0()), byEmail, byID)
	assertOutcome(t, "first user", out[0], storage.ImportCreated)
	assertOutcome(t, "second user", out[1], storage.ImportCreated)
	if out[0].UserID != "new-1" || out[1].UserID != "cuid-2" || !out[1].LockCarried {
		t.Errorf("outcomes %+v", out)
	}
	if len(out[0].Linked) != 1 || out[0].Linked[0] != byEmail.Links[0] {
		t.Errorf("links made: %+v", out[0].Linked)
	}

	assertEqual(t, "created user", getUserByEmail(t, s, "one@example.com"), &storage.User{
		ID: "new-1", Email: "one@example.com", Name: "Name of new-1", Role: "ADMIN", EmailVerified: true,
		PasswordHash: importHash1, CreatedAt: byEmail.CreatedAt, UpdatedAt: t0(), Version: 1,
	})
	two := getUserByEmail(t, s, "two@example.com")
	if two.ID != "cuid-2" || two.Role != "USER" || two.Name != "" || two.EmailVerified {
		t.Errorf("user without role, name or verification: %+v", two)
	}
	link, err := s.GetLinkedIdentity(ctx, "github", "1000new-1")
	mustNot(t, "get imported link", err)
	if link.UserID != "new-1" || !link.LastUsedAt.IsZero() {
		t.Errorf("imported link %+v", link)
	}
	// The lock holds at the sign-in page's key, the address.
	a := attempt(t, s, "two@example.com", at(time.Minute))
	assertAttempt(t, "attempt on a carried lock", a, storage.LoginAttempt{LockedUntil: at(time.Hour)})

	// A second run with the same source changes nothing.
	again := importUsers(t, s, importOpts(at(2*time.Minute)), byEmail, byID)
	assertOutcome(t, "first user again", again[0], storage.ImportUnchanged)
	assertOutcome(t, "second user again", again[1], storage.ImportUnchanged)
	if u := getUserByEmail(t, s, "one@example.com"); !u.UpdatedAt.Equal(t0().Truncate(precision)) {
		t.Errorf("unchanged user was written: updated at %v", u.UpdatedAt)
	}
}

func testImportUpdatesWhatDiffers(t *testing.T, s storage.Store) {
	existing := newUser("u1", "member@example.com")
	existing.PasswordHash = ""
	mustNot(t, "create user", s.CreateUser(context.Background(), existing))

	src := sourceUser("ignored", "member@example.com")
	src.Links = nil
	// A row the source has not verified does not join an account no import
	// gave: anyone can sign up to the source with this address.
	src.EmailVerified = false
	out := importUsers(t, s, importOpts(t0()), src)
	if out[0].Result != storage.ImportSkipped || out[0].Reason != storage.ImportUnverifiedJoin {
		t.Errorf("unverified row for an existing user: %+v, want skipped (%s)", out[0], storage.ImportUnverifiedJoin)
	}
	assertEqual(t, "user after the unverified row", getUserByEmail(t, s, "member@example.com"), existing)

	src.EmailVerified = true
	out = importUsers(t, s, importOpts(t0()), src)
	assertOutcome(t, "existing user", out[0], storage.ImportUpdated,
		storage.ImportChangedName, storage.ImportChangedRole, storage.ImportChangedPassword)
	got := getUserByEmail(t, s, "member@example.com")
	want := *existing
	want.Name, want.Role, want.PasswordHash, want.UpdatedAt = src.Name, "ADMIN", importHash1, t0()
	want.Version = existing.Version + 1 // an import's change is a change like any other
	assertEqual(t, "updated user", got, &want)

	// The source changes the password (the old app is still running): the
	// user's hash is still the imported one, so the new one replaces it.
	src.PasswordHash = importHash2
	src.EmailVerified = false // once joined, a row never un-verifies
	out = importUsers(t, s, importOpts(at(time.Minute)), src)
	assertOutcome(t, "password changed in the source", out[0], storage.ImportUpdated, storage.ImportChangedPassword)
	if u := getUserByEmail(t, s, "member@example.com"); u.PasswordHash != importHash2 {
		t.Errorf("hash %q, want the source's new one", u.PasswordHash)
	}
	out = importUsers(t, s, importOpts(at(2*time.Minute)), src)
	assertOutcome(t, "run again", out[0], storage.ImportUnchanged)
}

func testImportPasswordSetInGatehouseStays(t *testing.T, s storage.Store) {
	ctx := context.Background()
	// A user who had a password in Gatehouse before the first import.
	mustNot(t, "create user", s.CreateUser(ctx, newUser("u1", "own@example.com")))
	own := sourceUser("x", "own@example.com")
	own.Name, own.Role, own.Links = "Name of u1", "member", nil
	out := importUsers(t, s, importOpts(t0()), own)
	assertOutcome(t, "user with their own password", out[0], storage.ImportUnchanged)
	if !out[0].PasswordKept || getUserByEmail(t, s, "own@example.com").PasswordHash != newUser("u1", "").PasswordHash {
		t.Errorf("Gatehouse password replaced: %+v", out[0])
	}

	// An imported user whose hash was replaced in Gatehouse (the rehash at
	// sign-in): neither a rerun nor a new source hash brings the old back.
	src := sourceUser("u2", "moved@example.com")
	importUsers(t, s, importOpts(t0()), src)
	mustNot(t, "rehash", s.UpdateUserPassword(ctx, "u2", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", at(time.Minute)))
	for _, h := range []string{importHash1, importHash2} {
		src.PasswordHash = h
		out := importUsers(t, s, importOpts(at(2*time.Minute)), src)
		assertOutcome(t, "rehashed user", out[0], storage.ImportUnchanged)
		if !out[0].PasswordKept {
			t.Errorf("source hash %s: outcome %+v, want the password kept", h[:4], out[0])
		}
	}
	if u := getUserByEmail(t, s, "moved@example.com"); u.PasswordHash[:9] != "$argon2id" {
		t.Errorf("hash set in Gatehouse replaced by %q", u.PasswordHash)
	}
}

// testImportRoleSetInGatehouseStays: the role follows the source while the
// user has the role the last import gave; once an admin changed it in
// Gatehouse (demoting an account the source still calls ADMIN), reruns
// leave it, and a new role in the source does not override it either.
func testImportRoleSetInGatehouseStays(t *testing.T, s storage.Store) {
	ctx := context.Background()
	src := sourceUser("r1", "boss@example.com")
	src.Role = "ADMIN"
	importUsers(t, s, importOpts(t0()), src)
	src.Role = "EDITOR"
	out := importUsers(t, s, importOpts(at(time.Minute)), src)
	assertOutcome(t, "role changed in the source", out[0], storage.ImportUpdated, storage.ImportChangedRole)

	u := getUserByEmail(t, s, "boss@example.com")
	u.Role = "USER" // an admin's change in Gatehouse
	mustNot(t, "demote", s.UpdateUser(ctx, u))
	for _, role := range []string{"EDITOR", "ADMIN"} {
		src.Role = role
		out = importUsers(t, s, importOpts(at(2*time.Minute)), src)
		assertOutcome(t, "source role "+role+" after the demotion", out[0], storage.ImportUnchanged)
		if !out[0].RoleKept {
			t.Errorf("source role %s: outcome %+v, want the role kept", role, out[0])
		}
		if got := getUserByEmail(t, s, "boss@example.com").Role; got != "USER" {
			t.Fatalf("the import undid the demotion: role %s", got)
		}
	}
}

func testImportKeptIDCollisions(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create user", s.CreateUser(ctx, newUser("taken-id", "holder@example.com")))
	mustNot(t, "create user", s.CreateUser(ctx, newUser("other-id", "taken@example.com")))

	idTaken := sourceUser("taken-id", "someone-else@example.com")
	emailTaken := sourceUser("cuid-9", "taken@example.com")
	idTaken.MatchByID, emailTaken.MatchByID = true, true
	out := importUsers(t, s, importOpts(t0()), idTaken, emailTaken)
	if out[0].Result != storage.ImportSkipped || out[0].Reason != storage.ImportIDCollision {
		t.Errorf("ID of another email: %+v", out[0])
	}
	if out[1].Result != storage.ImportSkipped || out[1].Reason != storage.ImportEmailHasOtherID {
		t.Errorf("email of another ID: %+v", out[1])
	}
	for _, id := range []string{"taken-id", "other-id"} {
		u, err := s.GetUser(ctx, id)
		mustNot(t, "get "+id, err)
		if u.Role != "member" {
			t.Errorf("skipped row changed %s: %+v", id, u)
		}
	}
	if _, err := s.GetUserByEmail(ctx, "someone-else@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("skipped row created a user (%v)", err)
	}
	for _, sub := range []string{"1000taken-id", "1000cuid-9"} {
		if _, err := s.GetLinkedIdentity(ctx, "github", sub); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("skipped row linked %s (%v)", sub, err)
		}
	}
}

func testImportLockCarriedOnce(t *testing.T, s storage.Store) {
	ctx := context.Background()
	src := sourceUser("u1", "locked@example.com")
	src.LockedUntil = at(time.Hour)
	out := importUsers(t, s, importOpts(t0()), src)
	if !out[0].LockCarried {
		t.Fatalf("lock not carried: %+v", out[0])
	}
	// `users unlock`: a rerun does not lock again what was lifted.
	mustNot(t, "unlock", s.ClearLoginFailures(ctx, "locked@example.com"))
	out = importUsers(t, s, importOpts(at(time.Minute)), src)
	assertOutcome(t, "same lock again", out[0], storage.ImportUnchanged)
	assertAttempt(t, "attempt after unlock", attempt(t, s, "locked@example.com", at(2*time.Minute)),
		storage.LoginAttempt{Allowed: true, Failures: 1})

	// A new lock in the source is carried, keeping the failure count.
	src.LockedUntil = at(2 * time.Hour)
	out = importUsers(t, s, importOpts(at(3*time.Minute)), src)
	assertOutcome(t, "new lock", out[0], storage.ImportUpdated, storage.ImportChangedLock)
	assertAttempt(t, "attempt on the new lock", attempt(t, s, "locked@example.com", at(4*time.Minute)),
		storage.LoginAttempt{LockedUntil: at(2 * time.Hour), Failures: 1})

	// A lock that has ended in the source is not carried, and one of
	// Gatehouse's own that lasts longer is not shortened.
	past := sourceUser("u2", "past@example.com")
	past.LockedUntil = at(-time.Minute)
	if out := importUsers(t, s, importOpts(t0()), past); out[0].LockCarried {
		t.Errorf("ended lock carried: %+v", out[0])
	}
	assertAttempt(t, "attempt after an ended lock", attempt(t, s, "past@example.com", at(time.Second)),
		storage.LoginAttempt{Allowed: true, Failures: 1})
	own := lockKey(t, s, "own@example.com", t0())
	longer := sourceUser("u3", "own@example.com")
	longer.LockedUntil = own.LockedUntil.Add(-time.Minute)
	if out := importUsers(t, s, importOpts(at(time.Minute)), longer); out[0].LockCarried {
		t.Errorf("shorter lock carried over a longer one: %+v", out[0])
	}
	assertAttempt(t, "attempt on Gatehouse's own lock", attempt(t, s, "own@example.com", at(2*time.Minute)),
		storage.LoginAttempt{LockedUntil: own.LockedUntil, Failures: threshold})
}

func testImportLinkConflict(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create user", s.CreateUser(ctx, newUser("holder", "holder@example.com")))
	mustNot(t, "link", s.LinkIdentity(ctx, &storage.LinkedIdentity{Upstream: "github", Subject: "42", UserID: "holder", CreatedAt: t0()}))
	src := sourceUser("u1", "new@example.com")
	src.Links = []storage.ImportLink{{Upstream: "github", Subject: "42"}, {Upstream: "github", Subject: "43"}}
	out := importUsers(t, s, importOpts(t0()), src)
	if out[0].Result != storage.ImportCreated || len(out[0].LinkConflicts) != 1 || out[0].LinkConflicts[0].Subject != "42" ||
		len(out[0].Linked) != 1 || out[0].Linked[0].Subject != "43" {
		t.Errorf("outcome %+v", out[0])
	}
	l, err := s.GetLinkedIdentity(ctx, "github", "42")
	mustNot(t, "get link", err)
	if l.UserID != "holder" {
		t.Errorf("link moved to %s", l.UserID)
	}
	// Rerun: the link made is unchanged, the conflict reported again.
	out = importUsers(t, s, importOpts(at(time.Minute)), src)
	if out[0].Result != storage.ImportUnchanged || len(out[0].LinkConflicts) != 1 {
		t.Errorf("rerun outcome %+v", out[0])
	}
}

func testImportDryRunWritesNothing(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create user", s.CreateUser(ctx, newUser("u1", "member@example.com")))
	fresh := sourceUser("u2", "fresh@example.com")
	fresh.LockedUntil = at(time.Hour)
	changed := sourceUser("ignored", "member@example.com")
	changed.Links = nil
	opt := importOpts(t0())
	opt.DryRun = true
	out := importUsers(t, s, opt, fresh, changed)
	assertOutcome(t, "new user", out[0], storage.ImportCreated)
	assertOutcome(t, "existing user", out[1], storage.ImportUpdated, storage.ImportChangedName, storage.ImportChangedRole)

	if _, err := s.GetUserByEmail(ctx, "fresh@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("dry run created a user (%v)", err)
	}
	unchanged := newUser("u1", "member@example.com")
	unchanged.Version = 1
	assertEqual(t, "user after a dry run", getUserByEmail(t, s, "member@example.com"), unchanged)
	if _, err := s.GetLinkedIdentity(ctx, "github", "1000u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("dry run linked an identity (%v)", err)
	}
	assertAttempt(t, "attempt after a dry run", attempt(t, s, "fresh@example.com", at(time.Minute)),
		storage.LoginAttempt{Allowed: true, Failures: 1})
	// Nor was a record kept: the real run reports the same.
	opt.DryRun = false
	real := importUsers(t, s, opt, fresh, changed)
	assertOutcome(t, "new user, for real", real[0], storage.ImportCreated)
	assertOutcome(t, "existing user, for real", real[1], storage.ImportUpdated, storage.ImportChangedName, storage.ImportChangedRole)
}

func testImportBatchIsAtomic(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create user", s.CreateUser(ctx, newUser("u1", "member@example.com")))
	first := sourceUser("u2", "first@example.com")
	// A new user whose ID is taken (only a broken caller does that without
	// MatchByID): the store refuses, and the whole batch with it.
	clash := sourceUser("u1", "clash@example.com")
	_, err := s.ImportUsers(ctx, []storage.ImportUser{first, clash}, importOpts(t0()))
	assertErrorIs(t, "batch with a clash", err, storage.ErrConflict)
	if _, err := s.GetUserByEmail(ctx, "first@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the batch's first user was kept (%v)", err)
	}
	if _, err := s.GetLinkedIdentity(ctx, "github", "1000u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the batch's first link was kept (%v)", err)
	}
}

func testImportDeleteUser(t *testing.T, s storage.Store) {
	ctx := context.Background()
	importUsers(t, s, importOpts(t0()), sourceUser("u1", "gone@example.com"))
	mustNot(t, "delete imported user", s.DeleteUser(ctx, "u1"))
	// Someone creates the account again, by chance with the same ID and the
	// hash the import once gave: nothing of the old import is left to say
	// the hash is the import's, so the source's new hash does not replace it.
	again := newUser("u1", "gone@example.com")
	again.PasswordHash = importHash1
	mustNot(t, "create user", s.CreateUser(ctx, again))
	src := sourceUser("u1", "gone@example.com")
	src.PasswordHash = importHash2
	out := importUsers(t, s, importOpts(at(time.Minute)), src)
	if !out[0].PasswordKept || getUserByEmail(t, s, "gone@example.com").PasswordHash != importHash1 {
		t.Errorf("outcome %+v: the deleted user's import record outlived them", out[0])
	}
}
