package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Review of issue 12 (admin API, disabled users, import): attacks that
// worked before their fixes.

// A row the source never verified must not join an existing Gatehouse
// account: anyone can sign up to the old app with someone else's address
// (and link their own GitHub account there). Before the fix the import gave
// the account without a password the attacker's hash, linked the attacker's
// GitHub account and made it ADMIN.
func TestReview12ImportUnverifiedRowDoesNotTakeOverAccount(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	// The victim signs in through an upstream: no password in Gatehouse.
	now := time.Now().UTC()
	if err := ts.app.store.CreateUser(context.Background(), &storage.User{ID: "victim-id", Email: "victim@example.com", Name: "Victim",
		Role: "USER", EmailVerified: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("Attacker-Passw0rd"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := tempFile(t, "users.csv", "id,email,name,emailVerified,password,role,githubId\n"+
		"evil1,Victim@Example.com,Mallory,,"+string(h)+",ADMIN,31337\n")

	rep, _ := ts.importJSON("", "file", file)
	if rep.Skipped != 1 || rep.SkippedByReason["unverified_email_of_existing_user"] != 1 {
		t.Errorf("import of an unverified row for an existing account: %s, want it skipped", rep.counts())
	}
	users, _ := ts.importedUsers()
	v := users["victim@example.com"]
	if v.HasPassword || v.Role != "USER" || len(v.Linked) != 0 || v.Name != "Victim" {
		t.Errorf("victim after the import: %+v, want no password, role USER, no link, own name", v)
	}
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	b := newBrowser(t, ts.issuer)
	p := b.submit(b.get(r.authURL().url), map[string]string{"email": "victim@example.com", "password": "Attacker-Passw0rd"})
	if p.location != nil || !strings.Contains(p.body, "Invalid email or password.") {
		t.Errorf("the attacker's source password signed in to the victim's account: status %d", p.status)
	}
}

// A bcrypt hash of cost 31 is refused by the import: every sign-in attempt
// at that account would hold a hashing slot for days. The report names the
// row without letting its ID write escape sequences to the terminal.
func TestReview12ImportRefusesCostlyHashAndEscapesIDs(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	h, err := bcrypt.GenerateFromPassword([]byte("Whatever-Passw0rd"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	costly := "$2b$31" + string(h[6:])
	file := tempFile(t, "users.json", `[
	  {"id": "slow1", "email": "slow@example.com", "password": "`+costly+`", "emailVerified": true},
	  {"id": "\u001b]0;pwned\u0007\u001b[2J", "email": "not-an-address"}]`)
	out := ts.cli("", "import", "file", file)
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "slow1 hash_cost_too_high") {
		t.Errorf("a cost-31 hash was not refused:\n%s", out)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("the report passes the source's escape sequences to the terminal: %q", out)
	}
	if users, _ := ts.importedUsers(); len(users) != 0 {
		t.Errorf("users after the import: %+v", users)
	}
}

// An admin API token must stop working once its client is deleted or no
// longer lists gatehouse:admin (a client_credentials token has no grant to
// revoke; before the fix it kept working until it expired).
func TestReview12AdminTokenFollowsItsClient(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
	tok := ccToken(t, ts, ops, "gatehouse:admin")
	if r := apiCall(t, ts, tok, "GET", "/users", ""); r.status != 200 {
		t.Fatalf("a fresh admin token: %d %v", r.status, r.body)
	}
	ts.cli("", "clients", "update", ops.ClientID, "--allowed-scopes", "")
	wantProblem(t, "after gatehouse:admin was taken from the client", apiCall(t, ts, tok, "GET", "/users", ""), 403, "insufficient_scope")

	ts.cli("", "clients", "update", ops.ClientID, "--allowed-scopes", "gatehouse:admin")
	tok = ccToken(t, ts, ops, "gatehouse:admin")
	ts.cli("", "clients", "delete", ops.ClientID)
	wantProblem(t, "after the client was deleted", apiCall(t, ts, tok, "GET", "/users", ""), 401, "invalid_token")
}

// If-Match: "" is no ETag of any user; the service reads an empty version
// as "no check", so before the fix it deleted without a precondition.
func TestReview12EmptyIfMatchIsRefused(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
	tok := ccToken(t, ts, ops, "gatehouse:admin")
	u := ts.createUser("target@example.com", testPassword)
	wantProblem(t, "DELETE with If-Match \"\"", apiCall(t, ts, tok, "DELETE", "/users/"+u.ID, "", "If-Match", `""`), 400, "invalid")
	wantProblem(t, "PATCH with If-Match \"\"", apiCall(t, ts, tok, "PATCH", "/users/"+u.ID, `{"role":"ADMIN"}`, "If-Match", `""`), 400, "invalid")
	if r := apiCall(t, ts, tok, "GET", "/users/"+u.ID, ""); r.status != 200 {
		t.Errorf("the user after DELETE with an empty If-Match: %d %v", r.status, r.body)
	}
}
