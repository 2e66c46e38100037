package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// The import from an Auth.js app (issue 12): the source is always a real
// PostgreSQL schema made from the SQL Prisma generates for the Auth.js
// credentials guide's schema (a User model with password, role and lockout
// columns; the adapter's Account model).

const prismaSchema = `
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'BILLING', 'support');

CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "email" TEXT NOT NULL,
    "emailVerified" TIMESTAMP(3),
    "password" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "failedLogins" INTEGER NOT NULL DEFAULT 0,
    "lockedUntil" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

CREATE TABLE "Account" (
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "refresh_token" TEXT,
    "access_token" TEXT,
    "expires_at" INTEGER,
    "token_type" TEXT,
    "scope" TEXT,
    "id_token" TEXT,
    "session_state" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Account_pkey" PRIMARY KEY ("provider","providerAccountId")
);
ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
`

// authjsUser is a row of the source's User table.
type authjsUser struct {
	id, name, email string
	verified        bool
	password        string // "" is NULL
	role            string
	lockedUntil     time.Time
	createdAt       time.Time
}

// authjsDB is a source database: a fresh schema with the Prisma tables.
type authjsDB struct {
	t    *testing.T
	url  string
	conn *pgx.Conn
}

func newAuthJSDB(t *testing.T, schema string) *authjsDB {
	t.Helper()
	u := pgtest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, schema); err != nil {
		t.Fatalf("create the Prisma schema: %v", err)
	}
	return &authjsDB{t: t, url: u, conn: conn}
}

func (db *authjsDB) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.conn.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

func (db *authjsDB) addUser(u authjsUser) {
	db.t.Helper()
	var verified, locked any
	if u.verified {
		verified = u.createdAt.Add(time.Hour)
	}
	if !u.lockedUntil.IsZero() {
		locked = u.lockedUntil
	}
	var pw any
	if u.password != "" {
		pw = u.password
	}
	// Prisma writes DateTime as UTC into timestamp(3) without time zone.
	db.exec(`INSERT INTO "User" ("id", "name", "email", "emailVerified", "password", "role", "failedLogins", "lockedUntil", "createdAt")
		VALUES ($1, $2, $3, $4::timestamptz AT TIME ZONE 'UTC', $5, $6, 3, $7::timestamptz AT TIME ZONE 'UTC', $8::timestamptz AT TIME ZONE 'UTC')`,
		u.id, u.name, u.email, verified, pw, u.role, locked, u.createdAt)
}

func (db *authjsDB) addAccount(userID, provider, providerAccountID string) {
	db.t.Helper()
	db.exec(`INSERT INTO "Account" ("userId", "type", "provider", "providerAccountId", "updatedAt")
		VALUES ($1, 'oauth', $2, $3, now())`, userID, provider, providerAccountID)
}

// bcryptWithPrefix hashes password with x/crypto at cost 12 (what bcryptjs
// apps use) and relabels it $2b$ or $2y$: the same algorithm, the bytes
// bcryptjs or PHP would write for that salt.
func bcryptWithPrefix(t *testing.T, password, prefix string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(h[4:])
}

// importReportJSON is `gatehouse import … --json`.
type importReportJSON struct {
	Source          string         `json:"source"`
	DryRun          bool           `json:"dry_run"`
	Rows            int            `json:"rows"`
	Created         int            `json:"created"`
	Updated         int            `json:"updated"`
	Unchanged       int            `json:"unchanged"`
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason"`
	SkippedRows     []struct {
		SourceID string `json:"source_id"`
		Record   int    `json:"record"`
		Reason   string `json:"reason"`
	} `json:"skipped_rows"`
	PasswordsKept       int               `json:"passwords_kept"`
	LocksCarried        int               `json:"locks_carried"`
	GitHubLinked        int               `json:"github_linked"`
	GitHubLinkConflicts []json.RawMessage `json:"github_link_conflicts"`
	Notes               []string          `json:"notes"`
}

func (ts *testServer) importJSON(stdin string, args ...string) (importReportJSON, string) {
	ts.t.Helper()
	out := ts.cli(stdin, append(append([]string{"import"}, args...), "--json")...)
	var r importReportJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		ts.t.Fatalf("import --json printed %q: %v", out, err)
	}
	return r, out
}

// counts is what a report says in short, to compare with one line.
func (r importReportJSON) counts() string {
	return fmt.Sprintf("rows=%d created=%d updated=%d unchanged=%d skipped=%d %v github=%d locks=%d kept=%d",
		r.Rows, r.Created, r.Updated, r.Unchanged, r.Skipped, r.SkippedByReason, r.GitHubLinked, r.LocksCarried, r.PasswordsKept)
}

// skippedIDs maps source ID to reason.
func (r importReportJSON) skippedIDs() map[string]string {
	m := map[string]string{}
	for _, s := range r.SkippedRows {
		m[s.SourceID] = s.Reason
	}
	return m
}

// importedUser is a user as `users list --json` shows them.
type importedUser struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	EmailVerified bool   `json:"email_verified"`
	HasPassword   bool   `json:"has_password"`
	Linked        []struct {
		Upstream string `json:"upstream"`
		Subject  string `json:"subject"`
	} `json:"linked_identities"`
}

func (ts *testServer) importedUsers() (map[string]importedUser, string) {
	ts.t.Helper()
	out := ts.cli("", "users", "list", "--json")
	var list []importedUser
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		ts.t.Fatalf("users list --json printed %q: %v", out, err)
	}
	m := map[string]importedUser{}
	for _, u := range list {
		m[u.Email] = u
	}
	return m, out
}

// TestImportAuthJS: an Auth.js app's users move in with --keep-ids. They
// sign in through the form with their old passwords (hashed $2a$, $2b$ and
// $2y$ at cost 12), get ID tokens whose sub is their old ID with their role
// and verification, and are rehashed to argon2id; a locked user waits for
// the lock to pass; a GitHub account signs in through the fake GitHub to the
// same user; bad rows are reported and skipped; a dry run and a second run
// write nothing.
func TestImportAuthJS(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			src := newAuthJSDB(t, prismaSchema)
			now := time.Now().UTC()
			day := func(n int) time.Time { return now.AddDate(0, 0, -400+n).Truncate(time.Millisecond) }
			hashA := bcryptWithPrefix(t, "Ada-Old-Passw0rd", "$2a$")
			hashB := bcryptWithPrefix(t, "Bob-Old-Passw0rd", "$2b$")
			hashY := bcryptWithPrefix(t, "Cy-Old-Passw0rd", "$2y$")
			for _, u := range []authjsUser{
				{id: "clada0001", name: "Ada Lovelace", email: "Ada@Example.com", verified: true, password: hashA, role: "ADMIN", createdAt: day(1)},
				{id: "clbob0002", name: "Bob", email: "bob@example.com", password: hashB, role: "USER", lockedUntil: now.Add(time.Hour), createdAt: day(2)},
				{id: "clcy00003", name: "Cy", email: "cy@example.com", verified: true, password: hashY, role: "BILLING", createdAt: day(3)},
				{id: "clbad0004", name: "Bad", email: "not-an-email", password: hashA, role: "USER", createdAt: day(4)},
				{id: "clmd50005", name: "Md5", email: "md5@example.com", password: "5f4dcc3b5aa765d61d8327deb882cf99", role: "USER", createdAt: day(5)},
				{id: "cldup0006", name: "Ada Again", email: "ADA@example.com", password: hashB, role: "USER", createdAt: day(6)},
				{id: "clrol0007", name: "Role", email: "role@example.com", password: hashA, role: "support", createdAt: day(7)},
				{id: "clgh00008", name: "Octo", email: "octo@example.com", role: "USER", verified: true, createdAt: day(8)},
			} {
				src.addUser(u)
			}
			src.addAccount("clada0001", "github", "583231")
			src.addAccount("clada0001", "google", "1093")
			src.addAccount("clgh00008", "github", "99")

			gh := githubtest.New(t, ghClientID, ghClientSecret)
			gh.AddUser(octocat(583231, "ada", "ada@example.com", true))
			gh.SetApprover("ada")
			ts := startServer(t, backend, githubVars(gh, nil))
			r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
			args := []string{"authjs", "--source-url", src.url, "--keep-ids", "--batch-size", "3"}

			// Dry run: the report of a real run, and nothing written.
			dry, _ := ts.importJSON("", append(args, "--dry-run")...)
			const wantCounts = "rows=8 created=4 updated=0 unchanged=0 skipped=4 map[bad_role:1 duplicate_email:1 invalid_email:1 unknown_hash_format:1] github=2 locks=1 kept=0"
			if !dry.DryRun || dry.counts() != wantCounts {
				t.Fatalf("dry run: %s, want %s", dry.counts(), wantCounts)
			}
			if users, out := ts.importedUsers(); len(users) != 0 {
				t.Fatalf("a dry run wrote users: %s", out)
			}
			if ev := findAudit(ts.auditList(), storage.AuditUsersImported); len(ev) != 0 {
				t.Fatalf("a dry run was audited: %+v", ev)
			}

			rep, out := ts.importJSON("", args...)
			if rep.DryRun || rep.counts() != wantCounts {
				t.Fatalf("import: %s, want %s", rep.counts(), wantCounts)
			}
			wantSkipped := map[string]string{"clbad0004": "invalid_email", "clmd50005": "unknown_hash_format", "cldup0006": "duplicate_email", "clrol0007": "bad_role"}
			if got := rep.skippedIDs(); fmt.Sprint(got) != fmt.Sprint(wantSkipped) {
				t.Errorf("skipped rows %v, want %v", got, wantSkipped)
			}
			if strings.Contains(out, "$2") || strings.Contains(out, "5f4dcc3b") {
				t.Errorf("the report shows a password hash:\n%s", out)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "failedLogins is not carried over") {
				t.Errorf("notes %q", rep.Notes)
			}

			users, _ := ts.importedUsers()
			if len(users) != 4 {
				t.Fatalf("users after the import: %+v", users)
			}
			ada, bob, cy, octo := users["ada@example.com"], users["bob@example.com"], users["cy@example.com"], users["octo@example.com"]
			if ada.ID != "clada0001" || ada.Name != "Ada Lovelace" || ada.Role != "ADMIN" || !ada.EmailVerified || !ada.HasPassword ||
				len(ada.Linked) != 1 || ada.Linked[0].Upstream != "github" || ada.Linked[0].Subject != "583231" {
				t.Errorf("ada: %+v", ada)
			}
			if bob.ID != "clbob0002" || bob.EmailVerified || bob.Role != "USER" {
				t.Errorf("bob: %+v", bob)
			}
			if cy.ID != "clcy00003" || cy.Role != "BILLING" {
				t.Errorf("cy: %+v", cy)
			}
			if octo.ID != "clgh00008" || octo.HasPassword || len(octo.Linked) != 1 || octo.Linked[0].Subject != "99" {
				t.Errorf("octo: %+v", octo)
			}
			events := findAudit(ts.auditList(), storage.AuditUsersImported)
			if len(events) != 1 || events[0].Actor != "cli" || events[0].Detail["created"] != "4" || events[0].Detail["skipped"] != "4" ||
				events[0].Detail["source"] != "authjs" {
				t.Fatalf("audit events of the import: %+v", events)
			}

			// Old passwords sign in through the form; sub is the old ID.
			for _, c := range []struct {
				email, password, sub, role string
				verified                   bool
			}{
				{"ada@example.com", "Ada-Old-Passw0rd", "clada0001", "ADMIN", true},
				{"cy@example.com", "Cy-Old-Passw0rd", "clcy00003", "BILLING", true},
			} {
				ar, code := r.signIn(newBrowser(t, ts.issuer), c.email, c.password)
				tok := r.exchange(ar, code)
				if tok.idToken.Subject != c.sub || tok.claims["role"] != c.role || tok.claims["email_verified"] != c.verified {
					t.Errorf("%s: ID token claims %v", c.email, tok.claims)
				}
				assertRehashed(t, ts, c.sub)
			}

			// Bob's lock came along: refused with the right password until it passes.
			b := newBrowser(t, ts.issuer)
			p := b.submit(b.get(r.authURL().url), map[string]string{"email": "bob@example.com", "password": "Bob-Old-Passw0rd"})
			if p.location != nil || !strings.Contains(p.body, "temporarily locked") {
				t.Fatalf("locked user signed in: status %d location %v", p.status, p.location)
			}
			ts.clock.advance(61 * time.Minute)
			ar, code := r.signIn(b, "bob@example.com", "Bob-Old-Passw0rd")
			if tok := r.exchange(ar, code); tok.idToken.Subject != "clbob0002" || tok.claims["email_verified"] != false {
				t.Errorf("bob after the lock: claims %v", tok.claims)
			}
			assertRehashed(t, ts, "clbob0002")

			// Ada's GitHub account signs in to her account.
			gb := newBrowser(t, ts.issuer)
			ar, p = r.signInPage(gb)
			if tok := r.exchange(ar, r.codeFrom(ar, gb.viaGitHub(p))); tok.idToken.Subject != "clada0001" || tok.claims["idp"] != "github" {
				t.Errorf("GitHub sign-in: claims %v", tok.claims)
			}

			// A second run changes nothing, though three passwords were
			// rehashed in Gatehouse since (they stay).
			_, before := ts.importedUsers()
			again, _ := ts.importJSON("", args...)
			const wantAgain = "rows=8 created=0 updated=0 unchanged=4 skipped=4 map[bad_role:1 duplicate_email:1 invalid_email:1 unknown_hash_format:1] github=0 locks=0 kept=3"
			if again.counts() != wantAgain {
				t.Errorf("second run: %s, want %s", again.counts(), wantAgain)
			}
			if _, after := ts.importedUsers(); after != before {
				t.Errorf("second run changed users:\n%s\nthen\n%s", before, after)
			}
			for _, id := range []string{"clada0001", "clcy00003", "clbob0002"} {
				assertRehashed(t, ts, id)
			}
			if n := len(findAudit(ts.auditList(), storage.AuditUsersImported)); n != 2 {
				t.Errorf("%d import events after two runs, want one per run", n)
			}
		})
	}
}

// assertRehashed checks that the user's password is now argon2id.
func assertRehashed(t *testing.T, ts *testServer, id string) {
	t.Helper()
	u, err := ts.app.store.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Errorf("%s: password hash %.10s…, want argon2id after sign-in", id, u.PasswordHash)
	}
}

// Without --keep-ids users get new IDs (UUIDv7), and an account that
// already exists in Gatehouse is updated, never duplicated: its own
// password stays. A table under another name with fewer columns is read
// for what it has, each missing column a note; no Account table is a note.
func TestImportAuthJSNewIDsAndFewerColumns(t *testing.T) {
	src := newAuthJSDB(t, `CREATE TABLE members (
		"id" TEXT PRIMARY KEY, "email" TEXT NOT NULL, "emailVerified" BOOLEAN, "password" TEXT)`)
	hash := bcryptWithPrefix(t, "Old-App-Passw0rd", "$2b$")
	src.exec(`INSERT INTO members VALUES ('m1', 'new@example.com', true, $1), ('m2', 'Known@Example.com', true, $1), ('m3', 'nopw@example.com', NULL, NULL)`, hash)

	ts := startServer(t, "sqlite", nil)
	known := ts.createUser("known@example.com", "Gatehouse-Passw0rd1", "--unverified", "--role", "ADMIN")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	args := []string{"authjs", "--source-url", src.url, "--table", "members"}

	rep, _ := ts.importJSON("", args...)
	if got, want := rep.counts(), "rows=3 created=2 updated=1 unchanged=0 skipped=0 map[] github=0 locks=0 kept=1"; got != want {
		t.Fatalf("import: %s, want %s", got, want)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, n := range []string{`no column "name"`, `no column "role": new users get the role USER`, `no column "lockedUntil"`, `no column "createdAt"`, `no table "Account": no GitHub accounts linked`} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes lack %q:\n%s", n, notes)
		}
	}
	users, _ := ts.importedUsers()
	if len(users) != 3 {
		t.Fatalf("users: %+v", users)
	}
	k := users["known@example.com"]
	if k.ID != known.ID || k.Role != "ADMIN" || !k.EmailVerified {
		t.Errorf("the existing user: %+v, want the same ID and role, now verified", k)
	}
	if n := users["nopw@example.com"]; n.HasPassword || n.EmailVerified || n.Role != "USER" {
		t.Errorf("user without password: %+v", n)
	}
	newID := users["new@example.com"].ID
	if id, err := uuid.Parse(newID); err != nil || id.Version() != 7 {
		t.Errorf("new user's ID %q is not a UUIDv7", newID)
	}

	ar, code := r.signIn(newBrowser(t, ts.issuer), "new@example.com", "Old-App-Passw0rd")
	if tok := r.exchange(ar, code); tok.idToken.Subject != newID {
		t.Errorf("sub %q, want the new ID %q", tok.idToken.Subject, newID)
	}
	// The account that existed keeps its Gatehouse password.
	b := newBrowser(t, ts.issuer)
	p := b.submit(b.get(r.authURL().url), map[string]string{"email": "known@example.com", "password": "Old-App-Passw0rd"})
	if p.location != nil || !strings.Contains(p.body, "Invalid email or password.") {
		t.Errorf("the source's password signed in to an existing account: status %d", p.status)
	}
	r.signIn(b, "known@example.com", "Gatehouse-Passw0rd1")

	again, _ := ts.importJSON("", args...)
	if got, want := again.counts(), "rows=3 created=0 updated=0 unchanged=3 skipped=0 map[] github=0 locks=0 kept=2"; got != want {
		t.Errorf("second run: %s, want %s", got, want)
	}
}

// --keep-ids refuses to merge: an ID that is another address's user, an
// address whose user has another ID, and an ID that cannot be a sub are
// skipped. The source is read in a read-only transaction whose statements
// are bounded; a bad --table never reaches SQL.
func TestImportAuthJSKeepIDsRefusesAndBounds(t *testing.T) {
	src := newAuthJSDB(t, prismaSchema)
	ts := startServer(t, "sqlite", nil)
	existing := ts.createUser("existing@example.com", testPassword)
	hash := bcryptWithPrefix(t, "Whatever-Passw0rd", "$2a$")
	created := time.Now().UTC().Add(-time.Hour)
	src.addUser(authjsUser{id: "plain01", email: "plain@example.com", password: hash, role: "USER", createdAt: created})
	ts.importJSON("", "authjs", "--source-url", src.url) // plain@ gets a new ID
	src.addUser(authjsUser{id: existing.ID, email: "someone-else@example.com", password: hash, role: "USER", createdAt: created.Add(time.Second)})
	src.addUser(authjsUser{id: "has space", email: "space@example.com", password: hash, role: "USER", createdAt: created.Add(2 * time.Second)})
	src.addUser(authjsUser{id: strings.Repeat("x", 256), email: "long@example.com", password: hash, role: "USER", createdAt: created.Add(3 * time.Second)})

	rep, _ := ts.importJSON("", "authjs", "--source-url", src.url, "--keep-ids")
	want := map[string]string{"plain01": "email_has_other_id", existing.ID: "id_collision", "has space": "invalid_id", strings.Repeat("x", 256): "invalid_id"}
	if got := rep.skippedIDs(); fmt.Sprint(got) != fmt.Sprint(want) || rep.Created+rep.Updated+rep.Unchanged != 0 {
		t.Errorf("keep-ids: %s, skipped %v; want every row skipped: %v", rep.counts(), got, want)
	}
	if users, _ := ts.importedUsers(); len(users) != 2 || users["existing@example.com"].ID != existing.ID {
		t.Errorf("users after refused rows: %+v", users)
	}

	fail := func(wantErr string, args ...string) {
		t.Helper()
		out, errOut, code := runCLI(ts.getenv, "", append([]string{"import", "authjs", "--source-url", src.url}, args...)...)
		if code == 0 || !strings.Contains(errOut, wantErr) {
			t.Errorf("import %v: exit %d, stderr %q, stdout %q; want an error with %q", args, code, errOut, out, wantErr)
		}
	}
	fail("--table", "--table", `User"; DROP TABLE "User"; --`)
	fail("--account-table", "--account-table", "a.b.c")
	fail(`no table "Users"`, "--table", "Users")
	// A read that takes longer than the statement timeout is cancelled.
	// (20 s a row, so a bound of 10 s on the whole CLI run tells the two
	// apart with room for a loaded machine.)
	src.exec(`CREATE VIEW slow AS SELECT u.* FROM "User" u, LATERAL (SELECT pg_sleep(20)) s`)
	start := time.Now()
	fail("statement timeout", "--table", "slow", "--statement-timeout", "1s")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a 1s statement timeout took %s", d)
	}
	// Nothing in the source is written: a view whose rows would write fails.
	src.exec(`CREATE TABLE touched (at timestamptz)`)
	src.exec(`CREATE FUNCTION touch() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO touched VALUES (now()); RETURN true; END $$`)
	src.exec(`CREATE VIEW writing AS SELECT u.*, touch() AS t FROM "User" u`)
	fail("read-only transaction", "--table", "writing")
}

// TestImportFile: the same users from CSV (as psql's \copy writes the User
// table) and from JSON (stdin) end up the same; bad rows are reported by
// source ID or position; a broken file stops with a message.
func TestImportFile(t *testing.T) {
	hash := bcryptWithPrefix(t, "Fay-Old-Passw0rd", "$2b$")
	locked := time.Now().UTC().Add(time.Hour).Format("2006-01-02 15:04:05.000")
	csvText := "id,email,name,emailVerified,password,role,lockedUntil,createdAt,githubId,failedLogins\n" +
		"f1,Fay@Example.com,Fay,2024-03-01 10:00:00.123," + hash + ",ADMIN,,2024-01-01T00:00:00Z,4242,0\n" +
		"f2,gus@example.com,\"Gus, Jr.\",f,,USER," + locked + ",,,3\n" +
		"f3,hal@example.com,Hal,t," + hash + ",USER,,not-a-date,,0\n" +
		"f4,not an email,Ivy,,,USER,,,,0\n" +
		",jo@example.com,Jo,true," + hash + ",,,,,0\n" +
		"f6,kay@example.com,Kay,,{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=,USER,,,,0\n"
	jsonText := `[
	  {"id": "f1", "email": "Fay@Example.com", "name": "Fay", "emailVerified": "2024-03-01T10:00:00.123Z", "password": "` + hash + `", "role": "ADMIN", "createdAt": "2024-01-01T00:00:00Z", "githubId": 4242},
	  {"id": "f2", "email": "gus@example.com", "name": "Gus, Jr.", "emailVerified": null, "role": "USER", "lockedUntil": "` + strings.Replace(locked, " ", "T", 1) + `Z", "githubId": []},
	  {"id": "f3", "email": "hal@example.com", "name": "Hal", "emailVerified": true, "password": "` + hash + `", "createdAt": "not-a-date"},
	  {"id": "f4", "email": "not an email", "name": "Ivy"},
	  {"email": "jo@example.com", "name": "Jo", "emailVerified": true, "password": "` + hash + `", "failedLogins": 0},
	  {"id": "f6", "email": "kay@example.com", "name": "Kay", "password": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}
	]`
	const wantCounts = "rows=6 created=3 updated=0 unchanged=0 skipped=3 map[invalid_email:1 invalid_value:1 unknown_hash_format:1] github=1 locks=1 kept=0"
	wantSkipped := map[string]string{"f3": "invalid_value", "f4": "invalid_email", "f6": "unknown_hash_format"}

	var listed []map[string]importedUser
	for _, c := range []struct{ name, stdin string }{{"csv", ""}, {"json", jsonText}} {
		ts := startServer(t, "sqlite", nil)
		path := "-"
		if c.stdin == "" {
			path = tempFile(t, "users.csv", csvText)
		}
		args := []string{"file", path, "--format", c.name}
		rep, _ := ts.importJSON(c.stdin, args...)
		if rep.counts() != wantCounts || fmt.Sprint(rep.skippedIDs()) != fmt.Sprint(wantSkipped) {
			t.Errorf("%s: %s, skipped %v; want %s, %v", c.name, rep.counts(), rep.skippedIDs(), wantCounts, wantSkipped)
		}
		if !strings.Contains(strings.Join(rep.Notes, "\n"), `column "failedLogins" is not read`) {
			t.Errorf("%s: notes %q", c.name, rep.Notes)
		}
		users, _ := ts.importedUsers()
		for k, u := range users {
			u.ID = "" // new IDs: each run its own
			users[k] = u
		}
		listed = append(listed, users)
		r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
		ar, code := r.signIn(newBrowser(t, ts.issuer), "fay@example.com", "Fay-Old-Passw0rd")
		if tok := r.exchange(ar, code); tok.claims["role"] != "ADMIN" || tok.claims["email_verified"] != true {
			t.Errorf("%s: fay's claims %v", c.name, tok.claims)
		}
		b := newBrowser(t, ts.issuer)
		if p := b.submit(b.get(r.authURL().url), map[string]string{"email": "gus@example.com", "password": "x"}); !strings.Contains(p.body, "temporarily locked") {
			t.Errorf("%s: gus's lock was not carried over (status %d)", c.name, p.status)
		}
		// The text report: counts and skipped rows by ID or position.
		text := ts.cli(c.stdin, append([]string{"import"}, args...)...)
		for _, want := range []string{"file: 6 rows read", "unchanged", "  f3  invalid_value", "  f6  unknown_hash_format"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: text report lacks %q:\n%s", c.name, want, text)
			}
		}
	}
	csvUsers, jsonUsers := listed[0], listed[1]
	if fmt.Sprint(csvUsers) != fmt.Sprint(jsonUsers) {
		t.Errorf("CSV and JSON gave different users:\n%+v\n%+v", csvUsers, jsonUsers)
	}
	fay, gus, jo := csvUsers["fay@example.com"], csvUsers["gus@example.com"], csvUsers["jo@example.com"]
	if fay.Role != "ADMIN" || !fay.EmailVerified || len(fay.Linked) != 1 || fay.Linked[0].Subject != "4242" ||
		gus.Name != "Gus, Jr." || gus.EmailVerified || gus.HasPassword || jo.Role != "USER" || !jo.EmailVerified {
		t.Errorf("imported users: %+v", csvUsers)
	}

	// Rows without an ID are named by position; --keep-ids refuses them.
	ts := startServer(t, "sqlite", nil)
	rep, _ := ts.importJSON("", "file", tempFile(t, "u.csv", csvText), "--keep-ids", "--dry-run")
	var positions []string
	for _, s := range rep.SkippedRows {
		if s.SourceID == "" {
			positions = append(positions, fmt.Sprintf("record %d: %s", s.Record, s.Reason))
		}
	}
	if fmt.Sprint(positions) != "[record 5: invalid_id]" {
		t.Errorf("rows without ID: %v", positions)
	}

	for _, c := range []struct{ name, file, want string }{
		{"fields.csv", "id,email\nf1,a@example.com,extra\n", "wrong number of fields"},
		{"noemail.csv", "id,name\nf1,A\n", "no email column"},
		{"object.json", `{"email": "a@example.com"}`, "want a JSON array"},
		{"broken.json", `[{"email": "a@example.com"}, {"email": ]`, "user object 2"},
		{"nested.json", `[{"email": {"x": 1}}]`, ""},
		{"users.txt", "email\n", "--format csv or --format json"},
	} {
		out, errOut, code := runCLI(ts.getenv, "", "import", "file", tempFile(t, c.name, c.file), "--json")
		if c.want == "" { // a value of the wrong type is a skipped row, not a failure
			var r importReportJSON
			if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.SkippedByReason["invalid_value"] != 1 {
				t.Errorf("%s: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
			}
			continue
		}
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want an error with %q", c.name, code, errOut, c.want)
		}
	}
}
