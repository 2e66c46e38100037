package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// TestClientsRequireMFA: `clients create --require-mfa` and the clients
// file's require_mfa reach the store, `clients list` shows the setting, and
// a file that drops it turns it off again.
func TestClientsRequireMFA(t *testing.T) {
	file := tempFile(t, "clients.json", `{"clients":[
		{"id":"admin-file","secret":"0123456789abcdef-secret","redirect_uris":["https://admin.example/cb"],"require_mfa":true},
		{"id":"plain-file","secret":"0123456789abcdef-secret","redirect_uris":["https://plain.example/cb"]}]}`)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_CLIENTS_FILE": file})
	ctx := context.Background()
	ts.cli("", "clients", "create", "--id", "admin-cli", "--redirect-uri", "https://admin.example/cb", "--require-mfa")
	ts.cli("", "clients", "create", "--id", "plain-cli", "--redirect-uri", "https://plain.example/cb")

	want := map[string]bool{"admin-file": true, "plain-file": false, "admin-cli": true, "plain-cli": false}
	for id, mfa := range want {
		c, err := ts.app.store.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
		if c.RequireMFA != mfa {
			t.Errorf("client %s: stored RequireMFA = %t, want %t", id, c.RequireMFA, mfa)
		}
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(ts.cli("", "clients", "list", "--json")), &list); err != nil || len(list) != len(want) {
		t.Fatalf("clients list --json: %v %v", list, err)
	}
	for _, c := range list {
		id, _ := c["client_id"].(string)
		got, present := c["require_mfa"]
		if want[id] && got != true || !want[id] && present {
			t.Errorf("clients list --json, client %s: require_mfa %v (present %t), want it true exactly when set", id, got, present)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(ts.cli("", "clients", "list")), "\n") {
		id, _, _ := strings.Cut(line, "\t")
		if wantCol := "\trequire_mfa=" + map[bool]string{true: "true", false: "false"}[want[id]] + "\t"; !strings.Contains(line, wantCol) {
			t.Errorf("clients list line %q lacks %q", line, strings.TrimSpace(wantCol))
		}
	}

	// The file is the truth at every start: dropping require_mfa turns it off.
	if err := os.WriteFile(file, []byte(`{"clients":[
		{"id":"admin-file","secret":"0123456789abcdef-secret","redirect_uris":["https://admin.example/cb"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := applyClientsFile(ctx, ts.app.store, file, time.Now()); err != nil {
		t.Fatal(err)
	}
	if c, err := ts.app.store.GetClient(ctx, "admin-file"); err != nil || c.RequireMFA {
		t.Errorf("after the file dropped require_mfa: %+v %v, want RequireMFA false", c, err)
	}
}

// TestUsersResetMFA: `users reset-mfa` removes every second factor of the
// user (and only theirs), ends their sessions and refresh tokens, and is in
// the audit trail; an unknown address is one error line.
func TestUsersResetMFA(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			st := ts.app.store
			const pw = "Correct-Horse-9"
			u := ts.createUser("lost@example.com", pw)
			other := ts.createUser("other@example.com", pw)

			// A session and a refresh token, from a real sign-in before any
			// factor was enrolled.
			r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
			b := newBrowser(t, ts.issuer)
			tok := r.exchange(r.signIn(b, u.Email, pw))
			if tok.token.RefreshToken == "" {
				t.Fatal("no refresh token")
			}

			for i, id := range []string{u.ID, other.ID} {
				enrolTestFactors(t, st, id, byte(i))
			}

			out := ts.cli("", "users", "reset-mfa", "Lost@Example.com")
			if !strings.Contains(out, "lost@example.com") || strings.Count(out, "\n") != 1 {
				t.Errorf("reset-mfa printed %q, want one line naming the user", out)
			}
			if n := countFactors(t, st, u.ID); n != 0 {
				t.Errorf("%d second factors left after reset-mfa", n)
			}
			if n := countFactors(t, st, other.ID); n != 5 {
				t.Errorf("another user's factors: %d after reset-mfa, want all 5 kept", n)
			}

			if _, err := r.refresh(tok.token.RefreshToken); err == nil {
				t.Error("the refresh token still works after reset-mfa")
			}
			r.signInPage(b) // the SSO session is gone: the password is asked again

			var ev []auditJSON
			for _, e := range ts.auditList("--user", u.Email) {
				if e.Action == storage.AuditMFAReset {
					ev = append(ev, e)
				}
			}
			if len(ev) != 1 || ev[0].Actor != storage.ActorCLI || ev[0].Subject != u.ID ||
				ev[0].Detail["passkeys"] != "2" || ev[0].Detail["totp"] != "true" || ev[0].Detail["recovery_codes"] != "2" {
				t.Errorf("audit events %s: %+v, want one by the CLI about %s with what was removed", storage.AuditMFAReset, ev, u.ID)
			}

			stdout, stderr, code := runCLI(ts.getenv, "", "users", "reset-mfa", "ghost@example.com")
			if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "ghost@example.com") {
				t.Errorf("unknown user: exit %d stdout %q stderr %q, want exit 1 and one line naming the address", code, stdout, stderr)
			}
		})
	}
}

// enrolTestFactors gives the user two passkeys, an authenticator app and two
// recovery codes, directly in the store; seed keeps users' credential IDs
// apart.
func enrolTestFactors(t *testing.T, st storage.Store, userID string, seed byte) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	for i := byte(0); i < 2; i++ {
		if err := st.CreateWebAuthnCredential(ctx, &storage.WebAuthnCredential{
			ID: []byte{seed, i, 0xcd}, UserID: userID, Name: "key", PublicKey: []byte{0xa5, 1, 2},
			UserVerified: true, CreatedAt: now,
		}); err != nil {
			t.Fatalf("create passkey: %v", err)
		}
	}
	if err := st.SetTOTP(ctx, &storage.TOTPFactor{UserID: userID, SecretEnc: []byte("sealed secret"), CreatedAt: now}); err != nil {
		t.Fatalf("set totp: %v", err)
	}
	h1, h2 := sha256.Sum256([]byte{seed, 1}), sha256.Sum256([]byte{seed, 2})
	if err := st.ReplaceRecoveryCodes(ctx, userID, [][]byte{h1[:], h2[:]}, now); err != nil {
		t.Fatalf("store recovery codes: %v", err)
	}
	if n := countFactors(t, st, userID); n != 5 {
		t.Fatalf("enrolled %d factors, want 5", n)
	}
}

// countFactors counts the user's passkeys, TOTP factor and unused recovery
// codes (a passkey and a code each count one).
func countFactors(t *testing.T, st storage.Store, userID string) int {
	t.Helper()
	ctx := context.Background()
	keys, err := st.ListWebAuthnCredentials(ctx, userID)
	if err != nil {
		t.Fatalf("list passkeys: %v", err)
	}
	n := len(keys)
	switch _, err := st.GetTOTP(ctx, userID); {
	case err == nil:
		n++
	case !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("get totp: %v", err)
	}
	codes, err := st.CountRecoveryCodes(ctx, userID)
	if err != nil {
		t.Fatalf("count recovery codes: %v", err)
	}
	return n + codes
}
