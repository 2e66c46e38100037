package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/op"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/postgres"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// The service against both backends, wired as cmd wires it: the real
// SessionEnder (logout tokens queued in the store's outbox), the real
// password hasher (cheap parameters) and key manager.

const testIssuer = "https://id.example"

// fixture is a service on a fresh store.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store storage.Store
	svc   *Service
	keys  *keys.Manager
	hash  *password.Hasher
	clock *testClock
	key   [32]byte
}

// testClock is a settable clock (the store and the service take the time
// from it).
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// forBackends runs test against SQLite and PostgreSQL, each with a fresh
// store (PostgreSQL: a schema of its own; skipped without a server unless
// CI=true).
func forBackends(t *testing.T, test func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		test(t, newFixture(t, st))
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		test(t, newFixture(t, st))
	})
}

func newFixture(t *testing.T, st storage.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, ctx: ctx, store: st, clock: &testClock{}}
	f.clock.ns.Store(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC).UnixNano())
	copy(f.key[:], "an email pseudonym key of 32 b!!")
	log := slog.New(slog.DiscardHandler)
	km, err := keys.NewManager(st, []byte("a test secret of at least 32 characters"), keys.Config{Algorithm: "ES256", Now: f.clock.now}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Init(ctx); err != nil {
		t.Fatal(err)
	}
	f.keys = km
	if f.hash, err = password.New(password.Config{Argon2Memory: 64, Argon2Time: 1}); err != nil {
		t.Fatal(err)
	}
	ender := op.NewSessionEnder(st, backchannel.NewMinter(testIssuer, km, f.clock.now, 0), f.clock.now, log, nil)
	f.svc, err = New(Config{Store: st, Sessions: ender, Hasher: f.hash, Policy: policy.Default(), Keys: km,
		EmailKey: f.key, Now: f.clock.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// admin is a user acting through the admin API of client "console".
var admin = Actor{UserID: "admin-user", ClientID: "console", IP: "192.0.2.7", UserAgent: "Console/1"}

const goodPassword = "Correct-Horse-9"

func (f *fixture) createUser(email string) *User {
	f.t.Helper()
	u, err := f.svc.CreateUser(f.ctx, CLI, NewUser{Email: email, Name: "Name of " + email, EmailVerified: true, Password: goodPassword})
	if err != nil {
		f.t.Fatalf("create %s: %v", email, err)
	}
	return u
}

// events returns the audit events about subject with action, oldest first.
func (f *fixture) events(subject, action string) []storage.AuditEvent {
	f.t.Helper()
	list, err := f.store.ListAudit(f.ctx, storage.AuditFilter{Subjects: []string{subject}})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []storage.AuditEvent
	for _, e := range list {
		if e.Action == action {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	return out
}

// oneEvent expects exactly one event of action about subject, by actor.
func (f *fixture) oneEvent(subject, action, actor string) storage.AuditEvent {
	f.t.Helper()
	list := f.events(subject, action)
	if len(list) != 1 || list[0].Actor != actor {
		f.t.Fatalf("audit %s about %s: %+v, want one by %s", action, subject, list, actor)
	}
	return list[0]
}

// expectCode fails unless err is an *Error of code about field.
func expectCode(t *testing.T, what string, err error, code Code, field string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field {
		t.Fatalf("%s: got %v (%#v), want code %s field %q", what, err, e, code, field)
	}
	if e.Message == "" {
		t.Fatalf("%s: an error without a message", what)
	}
}

func TestCreateAndGetUser(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u, err := f.svc.CreateUser(f.ctx, admin, NewUser{Email: " Ada@Example.COM ", Name: "  Ada   Lovelace ", Role: "ADMIN", Password: goodPassword})
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || u.Role != "ADMIN" || u.EmailVerified || !u.HasPassword ||
			u.Disabled() || u.Locked() || u.Version == "" || u.ID == "" {
			t.Fatalf("created user: %+v", u)
		}
		stored, err := f.store.GetUser(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := f.hash.Verify(f.ctx, stored.PasswordHash, goodPassword); !ok || err != nil {
			t.Fatalf("the stored hash does not verify the password: %v", err)
		}
		ev := f.oneEvent(u.ID, storage.AuditUserCreated, "admin-user")
		if ev.ClientID != "console" || ev.IP != "192.0.2.7" || ev.UserAgent != "Console/1" || ev.Detail["role"] != "ADMIN" {
			t.Errorf("audit event: %+v", ev)
		}

		got, err := f.svc.GetUser(f.ctx, admin, u.ID)
		if err != nil || got.Email != u.Email || got.Version != u.Version {
			t.Fatalf("GetUser: %+v, %v", got, err)
		}
		got, err = f.svc.UserByEmail(f.ctx, admin, "ADA@example.com")
		if err != nil || got.ID != u.ID {
			t.Fatalf("UserByEmail: %+v, %v", got, err)
		}
		_, err = f.svc.GetUser(f.ctx, admin, "no-such-id")
		expectCode(t, "GetUser(unknown)", err, CodeNotFound, "")
		if !errors.Is(err, ErrNotFound) {
			t.Error("errors.Is(not found, ErrNotFound) is false")
		}
		_, err = f.svc.UserByEmail(f.ctx, admin, "ghost@example.com")
		expectCode(t, "UserByEmail(unknown)", err, CodeNotFound, "")

		// Without a password and a role: the default role, no password.
		nopw, err := f.svc.CreateUser(f.ctx, CLI, NewUser{Email: "svc@example.com", Name: "S"})
		if err != nil || nopw.Role != DefaultRole || nopw.HasPassword {
			t.Fatalf("user without password: %+v, %v", nopw, err)
		}

		for _, c := range []struct {
			n     NewUser
			code  Code
			field string
		}{
			{NewUser{Email: "not-an-address", Name: "X"}, CodeInvalid, "email"},
			{NewUser{Email: "a@b", Name: "X"}, CodeInvalid, "email"},
			{NewUser{Email: "x@example.com", Name: "   "}, CodeInvalid, "name"},
			{NewUser{Email: "x@example.com", Name: strings.Repeat("n", policy.MaxNameLength+1)}, CodeInvalid, "name"},
			{NewUser{Email: "x@example.com", Name: "X\x00"}, CodeInvalid, "name"},
			{NewUser{Email: "x@example.com", Name: "X", Role: "admin"}, CodeInvalid, "role"},
			{NewUser{Email: "x@example.com", Name: "X", Password: "short"}, CodeInvalid, "password"},
			{NewUser{Email: "x@example.com", Name: "X", Password: "Password1"}, CodeInvalid, "password"}, // common
			{NewUser{Email: "ADA@example.com", Name: "X", Password: goodPassword}, CodeConflict, "email"},
		} {
			_, err := f.svc.CreateUser(f.ctx, admin, c.n)
			expectCode(t, fmt.Sprintf("CreateUser(%+v)", c.n), err, c.code, c.field)
		}
		if _, err := f.store.GetUserByEmail(f.ctx, "x@example.com"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a refused user was stored: %v", err)
		}
	})
}

// Every change is audited once, with the actor as given: a user acting
// through a client, a client on its own (prefixed), the CLI. An operation
// without an actor is refused as a programming error, not a caller's
// mistake, and changes nothing.
func TestActors(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("bob@example.com")
		f.oneEvent(u.ID, storage.AuditUserCreated, storage.ActorCLI)
		if _, err := f.svc.SetRole(f.ctx, Actor{ClientID: "ops"}, u.ID, "AUDITOR", ""); err != nil {
			t.Fatal(err)
		}
		ev := f.oneEvent(u.ID, storage.AuditUserRoleChanged, "client:ops")
		if ev.ClientID != "ops" || ev.Detail["from"] != "USER" || ev.Detail["to"] != "AUDITOR" {
			t.Errorf("role change event: %+v", ev)
		}
		for _, bad := range []Actor{{}, {IP: "192.0.2.1"}} {
			_, err := f.svc.SetRole(f.ctx, bad, u.ID, "ADMIN", "")
			var e *Error
			if err == nil || errors.As(err, &e) {
				t.Fatalf("actor %+v: %v, want a plain error", bad, err)
			}
		}
		got, _ := f.svc.GetUser(f.ctx, CLI, u.ID)
		if got.Role != "AUDITOR" {
			t.Errorf("an operation without an actor changed the role to %s", got.Role)
		}
	})
}

// Updates carry the version the caller read: a stale one changes nothing
// and is a version mismatch (also a conflict); the current one goes
// through and yields a new version. Without a version, the change applies
// to whatever is stored. A change to what is already there writes and
// audits nothing.
func TestUserVersions(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("carol@example.com")
		v1 := u.Version

		u2, err := f.svc.SetRole(f.ctx, admin, u.ID, "ADMIN", v1)
		if err != nil {
			t.Fatal(err)
		}
		if u2.Version == v1 || u2.Role != "ADMIN" {
			t.Fatalf("after SetRole: %+v", u2)
		}
		// A second admin, still holding v1, sets something else.
		_, err = f.svc.SetEmailVerified(f.ctx, admin, u.ID, false, v1)
		expectCode(t, "stale SetEmailVerified", err, CodeVersionMismatch, "version")
		if !errors.Is(err, ErrConflict) || !errors.Is(err, ErrVersionMismatch) {
			t.Errorf("a version mismatch is not both ErrConflict and ErrVersionMismatch: %v", err)
		}
		for name, op := range map[string]func() error{
			"SetRole":     func() error { _, err := f.svc.SetRole(f.ctx, admin, u.ID, "USER", v1); return err },
			"Disable":     func() error { _, _, err := f.svc.Disable(f.ctx, admin, u.ID, v1); return err },
			"Enable":      func() error { _, err := f.svc.Enable(f.ctx, admin, u.ID, v1); return err },
			"SetPassword": func() error { _, _, err := f.svc.SetPassword(f.ctx, admin, u.ID, "Another-Passw0rd", v1); return err },
			"DeleteUser":  func() error { return f.svc.DeleteUser(f.ctx, admin, u.ID, v1) },
			"garbage":     func() error { _, err := f.svc.SetRole(f.ctx, admin, u.ID, "USER", "not-a-version"); return err },
		} {
			expectCode(t, "stale "+name, op(), CodeVersionMismatch, "version")
		}
		cur, err := f.svc.GetUser(f.ctx, admin, u.ID)
		if err != nil || cur.Version != u2.Version || !cur.EmailVerified || cur.Role != "ADMIN" || cur.Disabled() {
			t.Fatalf("refused updates changed the user: %+v, %v", cur, err)
		}

		// The same role again: nothing written, nothing audited.
		same, err := f.svc.SetRole(f.ctx, admin, u.ID, "ADMIN", cur.Version)
		if err != nil || same.Version != cur.Version {
			t.Fatalf("no-op SetRole: %+v, %v", same, err)
		}
		if n := len(f.events(u.ID, storage.AuditUserRoleChanged)); n != 1 {
			t.Errorf("%d role change events, want 1 (the no-op is not audited)", n)
		}
		// Without a version the change applies to the current row.
		if _, err := f.svc.SetEmailVerified(f.ctx, admin, u.ID, false, ""); err != nil {
			t.Fatal(err)
		}
		ev := f.oneEvent(u.ID, storage.AuditUserVerifiedChanged, "admin-user")
		if ev.Detail["to"] != "false" {
			t.Errorf("verified change event: %+v", ev)
		}
		_, err = f.svc.SetRole(f.ctx, admin, "ghost", "ADMIN", "")
		expectCode(t, "SetRole(unknown)", err, CodeNotFound, "")
		_, err = f.svc.SetRole(f.ctx, admin, u.ID, "lower", "")
		expectCode(t, "SetRole(lower)", err, CodeInvalid, "role")
	})
}

// Two admins update from the same version at the same moment: one wins,
// the other gets a version mismatch; nothing is lost silently.
func TestConcurrentUserUpdates(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("dan@example.com")
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.svc.SetRole(f.ctx, admin, u.ID, fmt.Sprintf("ROLE_%d", i), u.Version)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("writers %d and %d both succeeded from one version", won, i)
			case err == nil:
				won = i
			default:
				expectCode(t, fmt.Sprintf("writer %d", i), err, CodeVersionMismatch, "version")
			}
		}
		if won < 0 {
			t.Fatal("no writer succeeded")
		}
		cur, _ := f.svc.GetUser(f.ctx, admin, u.ID)
		if cur.Role != fmt.Sprintf("ROLE_%d", won) {
			t.Errorf("role %s, want the winner's ROLE_%d", cur.Role, won)
		}
		if n := len(f.events(u.ID, storage.AuditUserRoleChanged)); n != 1 {
			t.Errorf("%d role change events, want 1", n)
		}

		// Without expected versions, concurrent changes all apply.
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.svc.SetEmailVerified(f.ctx, admin, u.ID, i%2 == 0, "")
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("unconditional writer %d: %v", i, err)
			}
		}
	})
}

// ListUsers pages by email with an opaque cursor, filters by a search or an
// exact address, and shows the disabled and locked state.
func TestListUsers(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		var emails []string
		for i := range 7 {
			e := fmt.Sprintf("user%d@example.com", 6-i)
			f.createUser(e)
			emails = append(emails, e)
		}
		f.createUser("zoe@other.example")
		emails = append(emails, "zoe@other.example")
		slices.Sort(emails)

		var got []string
		cursor, pages := "", 0
		for {
			p, err := f.svc.ListUsers(f.ctx, admin, UserQuery{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, u := range p.Items {
				got = append(got, u.Email)
			}
			if p.NextCursor == "" {
				break
			}
			if strings.Contains(p.NextCursor, "@") {
				t.Errorf("the cursor %q shows an address", p.NextCursor)
			}
			cursor = p.NextCursor
		}
		if !slices.Equal(got, emails) || pages != 3 {
			t.Fatalf("%d pages gave %v, want 3 pages of %v", pages, got, emails)
		}
		// A page that ends exactly at the last user has no next cursor.
		p, err := f.svc.ListUsers(f.ctx, admin, UserQuery{Limit: len(emails)})
		if err != nil || len(p.Items) != len(emails) || p.NextCursor != "" {
			t.Fatalf("one full page: %d items, cursor %q, %v", len(p.Items), p.NextCursor, err)
		}
		// The default page size holds them all.
		if p, err := f.svc.ListUsers(f.ctx, admin, UserQuery{}); err != nil || len(p.Items) != len(emails) {
			t.Fatalf("default page: %v %v", p, err)
		}

		p, err = f.svc.ListUsers(f.ctx, admin, UserQuery{Search: "USER1"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Email != "user1@example.com" {
			t.Fatalf("search by email prefix: %+v, %v", p, err)
		}
		p, err = f.svc.ListUsers(f.ctx, admin, UserQuery{Search: "other.example"}) // in zoe's name
		if err != nil || len(p.Items) != 1 || p.Items[0].Email != "zoe@other.example" {
			t.Fatalf("search by name: %+v, %v", p, err)
		}
		p, err = f.svc.ListUsers(f.ctx, admin, UserQuery{Email: "User3@Example.com"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Email != "user3@example.com" {
			t.Fatalf("exact email: %+v, %v", p, err)
		}
		p, err = f.svc.ListUsers(f.ctx, admin, UserQuery{Email: "user@example.com"}) // a prefix of none
		if err != nil || p == nil || len(p.Items) != 0 {
			t.Fatalf("exact email of nobody: %+v, %v", p, err)
		}

		// State: disabled, and locked (the address, or the second step).
		u0, _ := f.svc.UserByEmail(f.ctx, admin, "user0@example.com")
		u1, _ := f.svc.UserByEmail(f.ctx, admin, "user1@example.com")
		if _, _, err := f.svc.Disable(f.ctx, admin, u0.ID, ""); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := f.store.RegisterLoginAttempt(f.ctx, login.SecondFactorLockKey(u1.ID), f.clock.now(), 5, 15*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		p, _ = f.svc.ListUsers(f.ctx, admin, UserQuery{Search: "user"})
		for _, u := range p.Items {
			wantDisabled, wantLocked := u.ID == u0.ID, u.ID == u1.ID
			if u.Disabled() != wantDisabled || u.Locked() != wantLocked {
				t.Errorf("%s: disabled %t locked %t, want %t %t", u.Email, u.Disabled(), u.Locked(), wantDisabled, wantLocked)
			}
		}
		if got, _ := f.svc.GetUser(f.ctx, admin, u1.ID); !got.LockedUntil.Equal(f.clock.now().Add(15 * time.Minute).Truncate(time.Millisecond)) {
			t.Errorf("LockedUntil = %v", got.LockedUntil)
		}

		for _, c := range []struct {
			q     UserQuery
			field string
		}{
			{UserQuery{Limit: MaxPageSize + 1}, "limit"},
			{UserQuery{Limit: -1}, "limit"},
			{UserQuery{Cursor: "not a cursor"}, "cursor"},
			{UserQuery{Cursor: "e30"}, "cursor"}, // "{}"
			{UserQuery{Search: strings.Repeat("a", 400)}, "search"},
			{UserQuery{Email: "a@example.com", Search: "a"}, "email"},
		} {
			_, err := f.svc.ListUsers(f.ctx, admin, c.q)
			expectCode(t, fmt.Sprintf("ListUsers(%+v)", c.q), err, CodeInvalid, c.field)
		}
	})
}

// signedIn gives user a session in which client received a grant (with a
// refresh token), as a sign-in and code exchange would.
func (f *fixture) signedIn(userID, clientID string) (*storage.Session, *storage.Grant) {
	f.t.Helper()
	now := f.clock.now()
	id := fmt.Sprintf("sess-%d", now.UnixNano())
	s := &storage.Session{ID: id, TokenHash: []byte(id + "-token-hash-of-32-bytes-long!!"), UserID: userID, AuthTime: now, AMR: []string{"pwd"},
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0", IP: "198.51.100.9"}
	if err := f.store.CreateSession(f.ctx, s); err != nil {
		f.t.Fatal(err)
	}
	g := &storage.Grant{ID: "grant-" + id, UserID: userID, ClientID: clientID, SessionID: id, Scopes: []string{"openid", "offline_access"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	rt := &storage.RefreshToken{Hash: []byte("rt-" + id), GrantID: g.ID, Scopes: g.Scopes, CreatedAt: now, ExpiresAt: g.ExpiresAt}
	if err := f.store.CreateGrantWithRefreshToken(f.ctx, g, rt); err != nil {
		f.t.Fatal(err)
	}
	f.clock.advance(time.Millisecond)
	return s, g
}

// app registers a client with a back-channel logout URI.
func (f *fixture) app(id string) {
	f.t.Helper()
	if _, _, err := f.svc.CreateClient(f.ctx, CLI, ClientSpec{ID: id, RedirectURIs: []string{"https://" + id + ".example/cb"},
		BackchannelLogoutURI: "https://" + id + ".example/bc", BackchannelLogoutSessionRequired: true}); err != nil {
		f.t.Fatal(err)
	}
}

// expectEnded checks that the session is gone, its grant revoked, and the
// app was queued a logout token for it.
func (f *fixture) expectEnded(s *storage.Session, g *storage.Grant) {
	f.t.Helper()
	if _, err := f.store.GetSession(f.ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
		f.t.Errorf("session %s still there: %v", s.ID, err)
	}
	if cur, err := f.store.GetGrant(f.ctx, g.ID); err != nil || cur.RevokedAt == nil {
		f.t.Errorf("grant %s not revoked: %+v %v", g.ID, cur, err)
	}
	list, err := f.store.ListLogoutDeliveries(f.ctx, storage.LogoutDeliveryFilter{ClientID: g.ClientID, UserID: s.UserID})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range list {
		if d.SessionID == s.ID {
			return
		}
	}
	f.t.Errorf("no logout delivery queued for session %s: %+v", s.ID, list)
}

// Disabling sets the flag, ends every session and refresh token through
// the SessionEnder (the apps are queued logout tokens) and is audited;
// disabling again changes nothing. Enabling clears the flag only.
func TestDisableEnable(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		f.app("notes")
		u := f.createUser("erin@example.com")
		other := f.createUser("frank@example.com")
		s1, g1 := f.signedIn(u.ID, "notes")
		s2, g2 := f.signedIn(u.ID, "notes")
		so, _ := f.signedIn(other.ID, "notes")

		d, n, err := f.svc.Disable(f.ctx, admin, u.ID, u.Version)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Disabled() || n != 2 || d.Version == u.Version {
			t.Fatalf("Disable: %+v, %d sessions", d, n)
		}
		f.expectEnded(s1, g1)
		f.expectEnded(s2, g2)
		if _, err := f.store.GetSession(f.ctx, so.ID); err != nil {
			t.Errorf("another user's session ended: %v", err)
		}
		ev := f.oneEvent(u.ID, storage.AuditUserDisabled, "admin-user")
		if ev.Detail["sessions"] != "2" {
			t.Errorf("disable event: %+v", ev)
		}

		again, n, err := f.svc.Disable(f.ctx, admin, u.ID, "")
		if err != nil || n != 0 || again.Version != d.Version || !again.DisabledAt.Equal(*d.DisabledAt) {
			t.Fatalf("disabling again: %+v, %d, %v", again, n, err)
		}
		f.oneEvent(u.ID, storage.AuditUserDisabled, "admin-user") // still one

		e, err := f.svc.Enable(f.ctx, CLI, u.ID, d.Version)
		if err != nil || e.Disabled() {
			t.Fatalf("Enable: %+v, %v", e, err)
		}
		f.oneEvent(u.ID, storage.AuditUserEnabled, storage.ActorCLI)
		if list, _ := f.store.ListSessionsByUser(f.ctx, u.ID); len(list) != 0 {
			t.Errorf("enabling brought back %d sessions", len(list))
		}
		if g, _ := f.store.GetGrant(f.ctx, g1.ID); g.RevokedAt == nil {
			t.Error("enabling revived a grant")
		}
		if _, err := f.svc.Enable(f.ctx, CLI, u.ID, ""); err != nil {
			t.Fatal(err)
		}
		f.oneEvent(u.ID, storage.AuditUserEnabled, storage.ActorCLI) // the no-op is not audited
		_, _, err = f.svc.Disable(f.ctx, admin, "ghost", "")
		expectCode(t, "Disable(unknown)", err, CodeNotFound, "")
	})
}

// SetPassword applies the policy, stores a hash of the new password and
// ends the user's sessions.
func TestSetPassword(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		f.app("notes")
		u := f.createUser("gina@example.com")
		s, g := f.signedIn(u.ID, "notes")
		_, _, err := f.svc.SetPassword(f.ctx, admin, u.ID, "weak", "")
		expectCode(t, "weak password", err, CodeInvalid, "password")
		if _, err := f.store.GetSession(f.ctx, s.ID); err != nil {
			t.Fatal("a refused password ended the session")
		}
		_, n, err := f.svc.SetPassword(f.ctx, admin, u.ID, "New-Passw0rd-long", u.Version)
		if err != nil || n != 1 {
			t.Fatalf("SetPassword: %d, %v", n, err)
		}
		stored, _ := f.store.GetUser(f.ctx, u.ID)
		if ok, _, _ := f.hash.Verify(f.ctx, stored.PasswordHash, "New-Passw0rd-long"); !ok {
			t.Error("the new password does not verify")
		}
		f.expectEnded(s, g)
		f.oneEvent(u.ID, storage.AuditUserPasswordSet, "admin-user")
	})
}

func TestDeleteUser(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		f.app("notes")
		u := f.createUser("hank@example.com")
		s, g := f.signedIn(u.ID, "notes")
		if _, err := f.svc.SetRole(f.ctx, admin, u.ID, "ADMIN", ""); err != nil {
			t.Fatal(err)
		}
		expectCode(t, "stale delete", f.svc.DeleteUser(f.ctx, admin, u.ID, u.Version), CodeVersionMismatch, "version")
		if _, err := f.store.GetUser(f.ctx, u.ID); err != nil {
			t.Fatal("a refused delete deleted")
		}
		if err := f.svc.DeleteUser(f.ctx, admin, u.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.GetUser(f.ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("user still there: %v", err)
		}
		// The app was told before the grants went with the user.
		list, _ := f.store.ListLogoutDeliveries(f.ctx, storage.LogoutDeliveryFilter{UserID: u.ID})
		if len(list) != 1 || list[0].SessionID != s.ID || list[0].ClientID != g.ClientID {
			t.Errorf("logout deliveries: %+v", list)
		}
		f.oneEvent(u.ID, storage.AuditUserDeleted, "admin-user")
		expectCode(t, "delete again", f.svc.DeleteUser(f.ctx, admin, u.ID, ""), CodeNotFound, "")
	})
}

// Unlock lifts the lock of the address and of the account's second step;
// for an address without an account it works too, and the event is about
// the address's pseudonym.
func TestUnlock(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("ivy@example.com")
		lock := func(key string) {
			for range 5 {
				if _, err := f.store.RegisterLoginAttempt(f.ctx, key, f.clock.now(), 5, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
		}
		lock("ivy@example.com")
		lock(login.SecondFactorLockKey(u.ID))
		lock("ghost@example.com")
		if got, _ := f.svc.GetUser(f.ctx, admin, u.ID); !got.Locked() {
			t.Fatal("not locked before unlocking")
		}
		if err := f.svc.Unlock(f.ctx, admin, " IVY@example.com "); err != nil {
			t.Fatal(err)
		}
		locks, _ := f.store.LoginLocks(f.ctx, []string{"ivy@example.com", login.SecondFactorLockKey(u.ID), "ghost@example.com"}, f.clock.now())
		if len(locks) != 1 {
			t.Fatalf("locks after unlocking ivy: %v, want ghost's only", locks)
		}
		if got, _ := f.svc.GetUser(f.ctx, admin, u.ID); got.Locked() {
			t.Error("still locked")
		}
		f.oneEvent(u.ID, storage.AuditUserUnlocked, "admin-user")

		if err := f.svc.Unlock(f.ctx, admin, "ghost@example.com"); err != nil {
			t.Fatal(err)
		}
		pseudonym := login.AuditEmailSubject(emailhash.New(f.key), "ghost@example.com")
		f.oneEvent(pseudonym, storage.AuditUserUnlocked, "admin-user")
		expectCode(t, "Unlock(\"\")", f.svc.Unlock(f.ctx, admin, "  "), CodeInvalid, "email")
	})
}

// Sessions lists a user's sessions with device and apps; SignOut ends one
// (only the user's own) or all.
func TestSessionsAndSignOut(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		f.app("notes")
		u := f.createUser("jack@example.com")
		other := f.createUser("kim@example.com")
		s1, g1 := f.signedIn(u.ID, "notes")
		s2, g2 := f.signedIn(u.ID, "notes")
		so, _ := f.signedIn(other.ID, "notes")

		list, err := f.svc.Sessions(f.ctx, admin, u.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("Sessions: %+v, %v", list, err)
		}
		for _, s := range list {
			if s.Device != "Firefox on Linux" || s.IP != "198.51.100.9" || s.Expired || len(s.Apps) != 1 || s.Apps[0].ClientID != "notes" {
				t.Errorf("session %+v", s)
			}
		}
		_, err = f.svc.Sessions(f.ctx, admin, "ghost")
		expectCode(t, "Sessions(unknown)", err, CodeNotFound, "")

		_, err = f.svc.SignOut(f.ctx, admin, u.ID, so.ID)
		expectCode(t, "another user's session", err, CodeNotFound, "session")
		if _, err := f.store.GetSession(f.ctx, so.ID); err != nil {
			t.Fatal("another user's session was ended")
		}
		if n, err := f.svc.SignOut(f.ctx, admin, u.ID, s1.ID); err != nil || n != 1 {
			t.Fatalf("SignOut one: %d %v", n, err)
		}
		f.expectEnded(s1, g1)
		if _, err := f.store.GetSession(f.ctx, s2.ID); err != nil {
			t.Fatal("signing out one session ended the other")
		}
		_, err = f.svc.SignOut(f.ctx, admin, u.ID, s1.ID)
		expectCode(t, "an ended session", err, CodeNotFound, "session")

		if n, err := f.svc.SignOut(f.ctx, CLI, u.ID, ""); err != nil || n != 1 {
			t.Fatalf("SignOut all: %d %v", n, err)
		}
		f.expectEnded(s2, g2)
		events := f.events(u.ID, storage.AuditSessionEnded)
		if len(events) != 2 || events[0].Detail["session_id"] != s1.ID || events[1].Detail["sessions"] != "1" || events[1].Actor != storage.ActorCLI {
			t.Errorf("session_ended events: %+v", events)
		}
	})
}

type notified struct {
	mu   sync.Mutex
	sent []string
}

func (n *notified) MFAReset(_ context.Context, to, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, to+"|"+name)
}

// UnlinkIdentity removes a link; ResetMFA removes every second factor,
// ends the sessions, audits what went and tells the user.
func TestUnlinkAndResetMFA(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		mail := &notified{}
		f.svc.notifier = mail
		f.app("notes")
		u := f.createUser("lea@example.com")
		if err := f.store.LinkIdentity(f.ctx, &storage.LinkedIdentity{Upstream: "github", Subject: "42", UserID: u.ID, CreatedAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.svc.GetUser(f.ctx, admin, u.ID); len(got.Linked) != 1 || got.Linked[0].Subject != "42" {
			t.Fatalf("linked identities: %+v", got.Linked)
		}
		after, err := f.svc.UnlinkIdentity(f.ctx, admin, u.ID, "github")
		if err != nil || len(after.Linked) != 0 {
			t.Fatalf("UnlinkIdentity: %+v %v", after, err)
		}
		ev := f.oneEvent(u.ID, storage.AuditIdentityUnlinked, "admin-user")
		if ev.Detail["upstream"] != "github" {
			t.Errorf("unlink event: %+v", ev)
		}
		_, err = f.svc.UnlinkIdentity(f.ctx, admin, u.ID, "github")
		expectCode(t, "unlink again", err, CodeNotFound, "upstream")

		now := f.clock.now()
		if err := f.store.SetTOTP(f.ctx, &storage.TOTPFactor{UserID: u.ID, SecretEnc: []byte("sealed"), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := f.store.ReplaceRecoveryCodes(f.ctx, u.ID, [][]byte{[]byte("c1"), []byte("c2"), []byte("c3")}, now); err != nil {
			t.Fatal(err)
		}
		if err := f.store.CreateWebAuthnCredential(f.ctx, &storage.WebAuthnCredential{ID: []byte("cred"), UserID: u.ID, Name: "key", PublicKey: []byte{1}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		s, g := f.signedIn(u.ID, "notes")
		r, err := f.svc.ResetMFA(f.ctx, admin, u.ID)
		if err != nil || *r != (MFAReset{Passkeys: 1, TOTP: true, RecoveryCodes: 3, Sessions: 1}) {
			t.Fatalf("ResetMFA: %+v %v", r, err)
		}
		if _, err := f.store.GetTOTP(f.ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Error("TOTP left")
		}
		f.expectEnded(s, g)
		ev = f.oneEvent(u.ID, storage.AuditMFAReset, "admin-user")
		if ev.Detail["passkeys"] != "1" || ev.Detail["totp"] != "true" || ev.Detail["recovery_codes"] != "3" {
			t.Errorf("mfa_reset event: %+v", ev)
		}
		if len(mail.sent) != 1 || mail.sent[0] != "lea@example.com|Name of lea@example.com" {
			t.Errorf("mail: %v", mail.sent)
		}
	})
}

func TestClients(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		c, secret, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "shop", Name: " Shop ", RedirectURIs: []string{"https://shop.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Shop" || !c.HasSecret || c.AuthMethod != storage.AuthMethodBasic || secret == "" || c.Version == "" {
			t.Fatalf("created client: %+v, secret %q", c, secret)
		}
		stored, _ := f.store.GetClient(f.ctx, "shop")
		if string(stored.SecretHash) != string(HashClientSecret(secret)) {
			t.Fatal("the stored hash is not the returned secret's")
		}
		ev := f.oneEvent("shop", storage.AuditClientCreated, "admin-user")
		if ev.ClientID != "shop" {
			t.Errorf("create event: %+v", ev)
		}
		pub, secret2, err := f.svc.CreateClient(f.ctx, CLI, ClientSpec{Public: true, Type: "spa", RedirectURIs: []string{"http://localhost:5173/cb"}})
		if err != nil || secret2 != "" || pub.HasSecret || !strings.HasPrefix(pub.ID, "gh-") {
			t.Fatalf("public client: %+v %q %v", pub, secret2, err)
		}
		for _, c := range []struct {
			spec  ClientSpec
			code  Code
			field string
		}{
			{ClientSpec{ID: "shop", RedirectURIs: []string{"https://a.example/cb"}}, CodeConflict, "id"},
			{ClientSpec{ID: "-bad", RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "id"},
			{ClientSpec{RedirectURIs: []string{"http://evil.example/cb"}}, CodeInvalid, "redirect_uris"},
			{ClientSpec{RedirectURIs: []string{"https://a.example/cb#f"}}, CodeInvalid, "redirect_uris"},
			{ClientSpec{}, CodeInvalid, "redirect_uris"},
			{ClientSpec{Public: true, GrantTypes: []string{"client_credentials"}}, CodeInvalid, "grant_types"},
			{ClientSpec{Type: "tv", RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "type"},
			{ClientSpec{AccessToken: "paseto", RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "access_token"},
			{ClientSpec{Resources: []string{"ftp://x"}, RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "resources"},
			{ClientSpec{BackchannelLogoutSessionRequired: true, RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "backchannel_logout_session_required"},
			{ClientSpec{Name: "Shop\u202e", RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "name"},
			{ClientSpec{Name: strings.Repeat("x", 101), RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "name"},
			{ClientSpec{Type: "native", RedirectURIs: []string{"myapp:/cb"}}, CodeInvalid, "redirect_uris"},
			{ClientSpec{AllowedScopes: []string{"Gatehouse:Admin"}, RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalid, "allowed_scopes"},
		} {
			_, _, err := f.svc.CreateClient(f.ctx, admin, c.spec)
			expectCode(t, fmt.Sprintf("CreateClient(%+v)", c.spec), err, c.code, c.field)
		}

		list, err := f.svc.ListClients(f.ctx, admin)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListClients: %+v %v", list, err)
		}
		got, err := f.svc.GetClient(f.ctx, admin, "shop")
		if err != nil || got.Version != c.Version {
			t.Fatalf("GetClient: %+v %v", got, err)
		}
		_, err = f.svc.GetClient(f.ctx, admin, "ghost")
		expectCode(t, "GetClient(unknown)", err, CodeNotFound, "")

		// Update: given fields change, checked like a new client.
		uris := []string{"https://shop.example/cb", "https://shop.example/cb2"}
		bc, yes := "https://shop.example/bc", true
		up, err := f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{RedirectURIs: &uris, BackchannelLogoutURI: &bc, RequireMFA: &yes}, c.Version)
		if err != nil || !slices.Equal(up.RedirectURIs, uris) || up.BackchannelLogoutURI != bc || !up.RequireMFA || up.Name != "Shop" || up.Version == c.Version {
			t.Fatalf("UpdateClient: %+v %v", up, err)
		}
		if s, _ := f.store.GetClient(f.ctx, "shop"); string(s.SecretHash) != string(HashClientSecret(secret)) || !s.CreatedAt.Equal(stored.CreatedAt) {
			t.Error("an update changed the secret or the creation time")
		}
		ev = f.oneEvent("shop", storage.AuditClientUpdated, "admin-user")
		if ev.Detail["redirect_uris"] != strings.Join(uris, " ") || ev.Detail["backchannel_logout_uri"] != bc || ev.Detail["require_mfa"] != "true" || len(ev.Detail) != 3 {
			t.Errorf("update event detail: %v", ev.Detail)
		}
		_, err = f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{RequireMFA: &yes}, c.Version)
		expectCode(t, "stale client update", err, CodeVersionMismatch, "version")
		bad := []string{"http://evil.example/cb"}
		_, err = f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{RedirectURIs: &bad}, "")
		expectCode(t, "bad redirect URI", err, CodeInvalid, "redirect_uris")
		// Removing the URI while sid is still required is refused, as at
		// registration.
		if _, err := f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{BackchannelLogoutSessionRequired: &yes}, ""); err != nil {
			t.Fatal(err)
		}
		empty := ""
		_, err = f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{BackchannelLogoutURI: &empty}, "")
		expectCode(t, "session required without a URI", err, CodeInvalid, "backchannel_logout_session_required")
		cur, _ := f.svc.GetClient(f.ctx, admin, "shop")
		same, err := f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{RequireMFA: &yes}, cur.Version)
		if err != nil || same.Version != cur.Version {
			t.Fatalf("no-op update: %+v %v", same, err)
		}

		// Rotate: a new secret, the old one gone; public clients have none.
		r, newSecret, err := f.svc.RotateSecret(f.ctx, admin, "shop", cur.Version)
		if err != nil || newSecret == "" || newSecret == secret || r.Version == cur.Version {
			t.Fatalf("RotateSecret: %+v %q %v", r, newSecret, err)
		}
		if s, _ := f.store.GetClient(f.ctx, "shop"); string(s.SecretHash) != string(HashClientSecret(newSecret)) {
			t.Error("the stored hash is not the new secret's")
		}
		f.oneEvent("shop", storage.AuditClientSecretRotated, "admin-user")
		_, _, err = f.svc.RotateSecret(f.ctx, admin, pub.ID, "")
		expectCode(t, "rotate a public client", err, CodeConflict, "")
		_, _, err = f.svc.RotateSecret(f.ctx, admin, "shop", cur.Version)
		expectCode(t, "stale rotate", err, CodeVersionMismatch, "version")

		expectCode(t, "stale delete", f.svc.DeleteClient(f.ctx, admin, "shop", cur.Version), CodeVersionMismatch, "version")
		if err := f.svc.DeleteClient(f.ctx, admin, "shop", r.Version); err != nil {
			t.Fatal(err)
		}
		f.oneEvent("shop", storage.AuditClientDeleted, "admin-user")
		expectCode(t, "delete again", f.svc.DeleteClient(f.ctx, admin, "shop", ""), CodeNotFound, "")
	})
}

func TestKeys(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		list, err := f.svc.ListKeys(f.ctx, admin)
		if err != nil || len(list) != 6 {
			t.Fatalf("ListKeys: %+v %v; want an active and a next key of each of 3 algorithms", list, err)
		}
		type chain struct{ active, next string }
		before := map[string]chain{}
		for i, k := range list {
			c := before[k.Algorithm]
			switch {
			case i < 3 && k.State == storage.KeyActive:
				c.active = k.ID
			case i >= 3 && k.State == storage.KeyNext:
				c.next = k.ID
			default:
				t.Fatalf("ListKeys: key %d is %s, want the active keys first: %+v", i, k.State, list)
			}
			before[k.Algorithm] = c
		}
		f.clock.advance(time.Minute)
		rotated, err := f.svc.RotateKeys(f.ctx, admin)
		if err != nil || len(rotated) != 3 || rotated[0].Algorithm != "ES256" {
			t.Fatalf("RotateKeys: %+v %v; want 3 rotations, the default ES256 first", rotated, err)
		}
		for _, r := range rotated {
			if b := before[r.Algorithm]; r.Active != b.next || r.Previous != b.active {
				t.Fatalf("RotateKeys %s: %s (was %s); want %s (was %s)", r.Algorithm, r.Active, r.Previous, b.next, b.active)
			}
		}
		ev := f.oneEvent(rotated[0].Active, storage.AuditKeysRotated, "admin-user")
		if ev.Detail["retired"] != rotated[0].Previous || ev.Detail["EdDSA"] != before["EdDSA"].next {
			t.Errorf("rotate event: %+v", ev)
		}
		list, _ = f.svc.ListKeys(f.ctx, admin)
		states := map[string]int{}
		for _, k := range list {
			states[k.State]++
			if k.State == storage.KeyRetired && (k.RemoveAfter == nil || k.ID != before[k.Algorithm].active) {
				t.Errorf("retired key after rotation: %+v", k)
			}
		}
		if len(list) != 9 || states[storage.KeyActive] != 3 || states[storage.KeyNext] != 3 || list[6].State != storage.KeyRetired {
			t.Fatalf("after rotation: %+v", list)
		}
	})
}

// UpdateUser applies several fields in one write or none: a stale version
// or an invalid field leaves every field (and the sessions) as they were.
// Each changed field is audited as its single-field operation audits it.
func TestUpdateUser(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		f.app("notes")
		u := f.createUser("uma@example.com")
		s1, _ := f.signedIn(u.ID, "notes")
		role, verified, disabled := "ADMIN", false, true
		all := UserChange{Role: &role, EmailVerified: &verified, Disabled: &disabled}

		// Refused as a whole: an invalid role with a valid disable.
		bad := "root"
		_, _, err := f.svc.UpdateUser(f.ctx, admin, u.ID, UserChange{Role: &bad, Disabled: &disabled}, u.Version)
		expectCode(t, "invalid role with disable", err, CodeInvalid, "role")
		if _, err := f.store.GetSession(f.ctx, s1.ID); err != nil {
			t.Fatalf("a refused UpdateUser ended a session: %v", err)
		}
		// Refused as a whole: a stale version (another admin set the
		// password meanwhile, which ended the session).
		if _, _, err := f.svc.SetPassword(f.ctx, CLI, u.ID, "Another-Passw0rd", ""); err != nil {
			t.Fatal(err)
		}
		s1, g1 := f.signedIn(u.ID, "notes")
		_, _, err = f.svc.UpdateUser(f.ctx, admin, u.ID, all, u.Version)
		expectCode(t, "stale UpdateUser", err, CodeVersionMismatch, "version")
		cur, err := f.svc.GetUser(f.ctx, admin, u.ID)
		if err != nil || cur.Role != DefaultRole || !cur.EmailVerified || cur.Disabled() {
			t.Fatalf("a refused UpdateUser changed the user: %+v, %v", cur, err)
		}
		if _, err := f.store.GetSession(f.ctx, s1.ID); err != nil {
			t.Fatalf("a refused UpdateUser ended a session: %v", err)
		}
		for _, action := range []string{storage.AuditUserRoleChanged, storage.AuditUserVerifiedChanged, storage.AuditUserDisabled} {
			if n := len(f.events(u.ID, action)); n != 0 {
				t.Errorf("%d %s events after refused updates", n, action)
			}
		}

		// All three in one write: one new version, three events, the
		// session ended.
		before, err := f.store.GetUser(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := f.svc.UpdateUser(f.ctx, admin, u.ID, all, cur.Version)
		if err != nil {
			t.Fatal(err)
		}
		if got.Role != "ADMIN" || got.EmailVerified || !got.Disabled() || n != 1 {
			t.Fatalf("UpdateUser: %+v, %d sessions", got, n)
		}
		if after, _ := f.store.GetUser(f.ctx, u.ID); after.Version != before.Version+1 {
			t.Errorf("version %d -> %d, want one write", before.Version, after.Version)
		}
		f.expectEnded(s1, g1)
		if ev := f.oneEvent(u.ID, storage.AuditUserRoleChanged, "admin-user"); ev.Detail["from"] != "USER" || ev.Detail["to"] != "ADMIN" {
			t.Errorf("role event: %+v", ev)
		}
		if ev := f.oneEvent(u.ID, storage.AuditUserVerifiedChanged, "admin-user"); ev.Detail["to"] != "false" {
			t.Errorf("verified event: %+v", ev)
		}
		if ev := f.oneEvent(u.ID, storage.AuditUserDisabled, "admin-user"); ev.Detail["sessions"] != "1" {
			t.Errorf("disable event: %+v", ev)
		}

		// No fields: the version is checked, nothing written.
		same, n, err := f.svc.UpdateUser(f.ctx, admin, u.ID, UserChange{}, got.Version)
		if err != nil || n != 0 || same.Version != got.Version {
			t.Fatalf("empty UpdateUser: %+v, %d, %v", same, n, err)
		}
		_, _, err = f.svc.UpdateUser(f.ctx, admin, u.ID, UserChange{}, u.Version)
		expectCode(t, "empty UpdateUser with a stale version", err, CodeVersionMismatch, "version")

		// Enable with a role already held: only the enable is audited.
		enabled := false
		back, _, err := f.svc.UpdateUser(f.ctx, CLI, u.ID, UserChange{Role: &role, Disabled: &enabled}, got.Version)
		if err != nil || back.Disabled() || back.Role != "ADMIN" {
			t.Fatalf("enable: %+v, %v", back, err)
		}
		f.oneEvent(u.ID, storage.AuditUserEnabled, storage.ActorCLI)
		f.oneEvent(u.ID, storage.AuditUserRoleChanged, "admin-user") // still the one

		// Two admins from one version, each changing two fields: one
		// wins whole, nothing of the other shows.
		userRole, auditor, verifiedTrue := "USER", "AUDITOR", true
		changes := []UserChange{{Role: &userRole, EmailVerified: &verifiedTrue}, {Role: &auditor, Disabled: &disabled}}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range changes {
			wg.Go(func() { _, _, errs[i] = f.svc.UpdateUser(f.ctx, admin, u.ID, changes[i], back.Version) })
		}
		wg.Wait()
		final, _ := f.svc.GetUser(f.ctx, admin, u.ID)
		switch {
		case errs[0] == nil && errs[1] != nil:
			expectCode(t, "loser", errs[1], CodeVersionMismatch, "version")
			if final.Role != "USER" || !final.EmailVerified || final.Disabled() {
				t.Errorf("first won, but the user is %+v", final)
			}
		case errs[1] == nil && errs[0] != nil:
			expectCode(t, "loser", errs[0], CodeVersionMismatch, "version")
			if final.Role != "AUDITOR" || final.EmailVerified || !final.Disabled() {
				t.Errorf("second won, but the user is %+v", final)
			}
		default:
			t.Errorf("concurrent UpdateUser from one version: %v", errs)
		}
	})
}

// The device flow's grant type may be written short (device_code) or as
// its URN; the store keeps the URN, once, and a client that has only it
// needs no redirect URI.
func TestClientSpecDeviceCodeGrant(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"device_code"}, []string{GrantDeviceCode}},
		{[]string{GrantDeviceCode}, []string{GrantDeviceCode}},
		{[]string{"device_code", "refresh_token", GrantDeviceCode}, []string{GrantDeviceCode, "refresh_token"}},
	} {
		got, err := ClientSpec{ID: "tv", Public: true, GrantTypes: c.in}.Client(time.Now())
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		if !slices.Equal(got.GrantTypes, c.want) {
			t.Errorf("%v stored as %v, want %v", c.in, got.GrantTypes, c.want)
		}
	}
	_, err := ClientSpec{ID: "tv", Public: true, GrantTypes: []string{"device"}}.Client(time.Now())
	expectCode(t, "an unknown grant", err, CodeInvalid, "grant_types")
}
