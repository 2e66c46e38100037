package main

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupWhileServing: `gatehouse backup` copies the store of a running
// server that is taking writes; a new instance on a data dir restored from the
// copy (plus the secret) has the users, clients and signing keys.
func TestBackupWhileServing(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	client := ts.createClient("--redirect-uri", redirectA)
	user := ts.createUser("dora@example.com", testPassword)
	kid := ts.app.keys.Active().ID

	// Every access token revoked stores a deny-list row; keep them coming
	// (bounded) while the backup runs.
	service := ts.createClient("--redirect-uri", redirectB, "--grant-types", "client_credentials")
	var writes atomic.Int64
	stop, warm, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(done)
		for i := range 5000 {
			select {
			case <-stop:
				return
			default:
			}
			if err := issueAndRevoke(ts.issuer, service); err != nil {
				done <- err
				return
			}
			writes.Add(1)
			if i == 19 {
				close(warm)
			}
		}
	}()
	select {
	case <-warm:
	case err := <-done:
		t.Fatalf("writer stopped before the backup: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no writes within 30s")
	}

	out := filepath.Join(t.TempDir(), "gatehouse-backup.db")
	before := writes.Load()
	var res struct {
		Path  string `json:"path"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(ts.cli("", "backup", "--json", out)), &res); err != nil {
		t.Fatal(err)
	}
	after := writes.Load()
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writes during the backup: %v", err)
	}
	t.Logf("backup of %d bytes; %d tokens revoked before it started, %d when it ended", res.Bytes, before, after)

	fi, err := os.Stat(out)
	if err != nil || res.Path != out || res.Bytes != fi.Size() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup --json = %+v; file %v, %v; want the path, its size, mode 0600", res, fi, err)
	}
	copied := queryCopy(t, out)
	if copied.integrity != "ok" {
		t.Errorf("integrity_check of the copy = %q", copied.integrity)
	}
	// A snapshot taken between the two counts: nothing acknowledged before
	// the backup is missing, and it holds no more than was ever written.
	if copied.denied < before || copied.denied > after+1 {
		t.Errorf("copy holds %d revoked tokens; %d were stored before the backup, %d by its end", copied.denied, before, after)
	}

	// It never overwrites.
	stdout, errOut, code := runCLI(ts.getenv, "", "backup", out)
	if code == 0 || stdout != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, out) || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup to an existing file: exit %d stdout %q stderr %q", code, stdout, errOut)
	}
	if again, _ := os.Stat(out); again == nil || again.Size() != fi.Size() || !again.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the existing file was touched")
	}

	// Restore: the copy as gatehouse.db, with the secret, in a new data dir.
	restored := t.TempDir()
	copyFile(t, out, filepath.Join(restored, "gatehouse.db"))
	copyFile(t, filepath.Join(ts.env["GATEHOUSE_DATA_DIR"], "secret"), filepath.Join(restored, "secret"))
	ts2 := startServer(t, "sqlite", map[string]string{"GATEHOUSE_DATA_DIR": restored})
	if got := ts2.app.keys.Active().ID; got != kid {
		t.Errorf("restored active key %s, want %s", got, kid)
	}
	var users []createdUser
	_ = json.Unmarshal([]byte(ts2.cli("", "users", "list", "--json")), &users)
	if !slices.ContainsFunc(users, func(u createdUser) bool { return u.ID == user.ID && u.Email == user.Email }) {
		t.Errorf("restored users: %+v", users)
	}
	var clients []createdClient
	_ = json.Unmarshal([]byte(ts2.cli("", "clients", "list", "--json")), &clients)
	if !slices.ContainsFunc(clients, func(c createdClient) bool { return c.ClientID == client.ClientID }) {
		t.Errorf("restored clients: %+v", clients)
	}
	if kids := jwksKids(t, ts2.issuer); !slices.Contains(kids, kid) {
		t.Errorf("restored JWKS kids %v lack %s", kids, kid)
	}
	// The restored keys sign: a sign-in with the old client secret and the
	// user's password yields an ID token that verifies against the JWKS.
	r := newRP(t, ts2, client)
	ar, authCode := r.signIn(newBrowser(t, ts2.issuer), user.Email, testPassword)
	tok := r.exchange(ar, authCode)
	if tok.claims["sub"] != user.ID || jwtKid(t, tok.raw) != kid {
		t.Errorf("token from the restored instance: sub %v kid %s; want %s, %s", tok.claims["sub"], jwtKid(t, tok.raw), user.ID, kid)
	}

	// Without the secret the copy's keys cannot be read, and start-up says so.
	noSecret := t.TempDir()
	copyFile(t, out, filepath.Join(noSecret, "gatehouse.db"))
	_, errOut, code = runCLI(mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": noSecret, "GATEHOUSE_LOG_LEVEL": "error"}), "", "users", "list")
	if code == 0 || !strings.Contains(errOut, "GATEHOUSE_SECRET") {
		t.Errorf("restore without the secret: exit %d stderr %q; want an error naming GATEHOUSE_SECRET", code, errOut)
	}
}

// TestBackupErrors: one line, non-zero exit, for what backup cannot do.
func TestBackupErrors(t *testing.T) {
	empty := t.TempDir()
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"postgres", map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, []string{"backup", filepath.Join(empty, "b.db")}, "pg_dump"},
		{"postgres flag", nil, []string{"backup", "--database-url", "postgres://127.0.0.1:1/x", filepath.Join(empty, "b.db")}, "pg_dump"},
		{"no store", nil, []string{"backup", filepath.Join(empty, "b.db")}, "GATEHOUSE_DATA_DIR"},
		{"no file", nil, []string{"backup"}, "arg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"GATEHOUSE_DATA_DIR": empty}
			for k, v := range c.env {
				env[k] = v
			}
			out, errOut, code := runCLI(mapEnv(env), "", c.args...)
			if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d stdout %q stderr %q; want one line with %q", code, out, errOut, c.want)
			}
		})
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("failed backups left files in the data dir: %v", ents)
	}
}

type copyFacts struct {
	integrity string
	denied    int64
}

func queryCopy(t *testing.T, path string) copyFacts {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var f copyFacts
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&f.integrity); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*) FROM denied_access_tokens").Scan(&f.denied); err != nil {
		t.Fatal(err)
	}
	return f
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// jwksKids returns the key IDs the issuer publishes.
func jwksKids(t *testing.T, issuer string) []string {
	t.Helper()
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSONInto(t, issuer+"/.well-known/openid-configuration", &disc)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	getJSONInto(t, disc.JWKSURI, &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func getJSONInto(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// jwtKid reads the kid from a compact JWS header.
func jwtKid(t *testing.T, raw string) string {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// issueAndRevoke gets a client_credentials token and revokes it: one
// acknowledged write (a deny-list row) per call.
func issueAndRevoke(issuer string, c createdClient) error {
	post := func(path string, form url.Values) (map[string]any, error) {
		req, err := http.NewRequest(http.MethodPost, issuer+path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST %s: status %d", path, resp.StatusCode)
		}
		m := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m, nil
	}
	tok, err := post("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return err
	}
	at, _ := tok["access_token"].(string)
	_, err = post("/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}})
	return err
}
