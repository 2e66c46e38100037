package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestStartupErrors: a bad setting stops start-up with one line naming it.
func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"relative issuer", map[string]string{"GATEHOUSE_ISSUER": "localhost:8080"}, "GATEHOUSE_ISSUER"},
		{"issuer with query", map[string]string{"GATEHOUSE_ISSUER": "https://id.example/?x=1"}, "GATEHOUSE_ISSUER"},
		{"database without secret", map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, "GATEHOUSE_SECRET"},
		{"short secret", map[string]string{"GATEHOUSE_SECRET": "short"}, "GATEHOUSE_SECRET"},
		{"bad duration", map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "forever"}, "GATEHOUSE_ACCESS_TOKEN_TTL"},
		{"bad alg", map[string]string{"GATEHOUSE_SIGNING_ALG": "HS256"}, "GATEHOUSE_SIGNING_ALG"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x", "GATEHOUSE_SECRET": strings.Repeat("s", 32)}, "DATABASE_URL"},
		{"low bcrypt cost", map[string]string{"GATEHOUSE_BCRYPT_COST": "4"}, "GATEHOUSE_BCRYPT_COST"},
		{"no connections", map[string]string{"GATEHOUSE_MAX_CONNECTIONS": "0"}, "GATEHOUSE_MAX_CONNECTIONS"},
		{"connections not a number", map[string]string{"GATEHOUSE_MAX_CONNECTIONS": "lots"}, "GATEHOUSE_MAX_CONNECTIONS"},
		{"negative hash concurrency", map[string]string{"GATEHOUSE_PASSWORD_HASH_CONCURRENCY": "-1"}, "GATEHOUSE_PASSWORD_HASH_CONCURRENCY"},
		{"hash concurrency not a number", map[string]string{"GATEHOUSE_PASSWORD_HASH_CONCURRENCY": "auto"}, "GATEHOUSE_PASSWORD_HASH_CONCURRENCY"},
		{"hash concurrency too high", map[string]string{"GATEHOUSE_PASSWORD_HASH_CONCURRENCY": "257"}, "GATEHOUSE_PASSWORD_HASH_CONCURRENCY"},
		{"unknown hash priority", map[string]string{"GATEHOUSE_PASSWORD_HASH_PRIORITY": "high"}, "GATEHOUSE_PASSWORD_HASH_PRIORITY"},
		{"no hash wait", map[string]string{"GATEHOUSE_PASSWORD_HASH_MAX_WAIT": "0s"}, "GATEHOUSE_PASSWORD_HASH_MAX_WAIT"},
		{"hash wait unbounded", map[string]string{"GATEHOUSE_PASSWORD_HASH_MAX_WAIT": "2h"}, "GATEHOUSE_PASSWORD_HASH_MAX_WAIT"},
		{"metrics address without port", map[string]string{"GATEHOUSE_METRICS_ADDR": "localhost"}, "GATEHOUSE_METRICS_ADDR"},
		{"metrics port out of range", map[string]string{"GATEHOUSE_METRICS_ADDR": "127.0.0.1:70000"}, "GATEHOUSE_METRICS_ADDR"},
		{"pprof without metrics", map[string]string{"GATEHOUSE_METRICS_ADDR": "off", "GATEHOUSE_PPROF": "true"}, "GATEHOUSE_PPROF"},
		{"pprof not a boolean", map[string]string{"GATEHOUSE_PPROF": "maybe"}, "GATEHOUSE_PPROF"},
		{"bad trusted proxy", map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/33"}, "GATEHOUSE_TRUSTED_PROXIES"},
		{"bad SMTP URL", map[string]string{"SMTP_URL": "ftp://x"}, "SMTP_URL"},
		{"missing clients file", map[string]string{"GATEHOUSE_CLIENTS_FILE": "/nonexistent/clients.json"}, "GATEHOUSE_CLIENTS_FILE"},
		{"admin role in lower case", map[string]string{"GATEHOUSE_ADMIN_ROLE": "idp_admin"}, "GATEHOUSE_ADMIN_ROLE"},
		{"admin role not a name", map[string]string{"GATEHOUSE_ADMIN_ROLE": "IDP ADMIN"}, "GATEHOUSE_ADMIN_ROLE"},
		{"unknown client registration mode", map[string]string{"GATEHOUSE_CLIENT_REGISTRATION": "open"}, "GATEHOUSE_CLIENT_REGISTRATION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.env["GATEHOUSE_DATA_DIR"] = dir
			out, errOut, code := runCLI(mapEnv(onFreePorts(c.env)), "", "serve")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want one line naming %s", code, errOut, out, c.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("a refused start left %d files in the data dir", len(left))
			}
		})
	}
}

// TestUnreachableDatabase: start-up gives up within the connect timeout, after
// saying once that it waits, with one line naming DATABASE_URL.
func TestUnreachableDatabase(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":                 "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable",
		"GATEHOUSE_SECRET":             strings.Repeat("s", 40),
		"GATEHOUSE_DB_CONNECT_TIMEOUT": "2s",
		"GATEHOUSE_DATA_DIR":           t.TempDir(),
	}
	start := time.Now()
	_, errOut, code := runCLI(mapEnv(onFreePorts(env)), "", "serve")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if code == 0 || len(lines) != 2 || !strings.Contains(lines[0], "waiting for the database") ||
		!strings.HasPrefix(last, "gatehouse: DATABASE_URL: database not reachable within 2s") {
		t.Errorf("exit %d stderr %q; want a waiting line, then one error line", code, errOut)
	}
	if strings.Contains(errOut, "hunter2") {
		t.Errorf("the database password leaked into the error: %q", errOut)
	}
	if d := time.Since(start); d > 10*time.Second { // a bounded give-up, not one that waits for ever
		t.Errorf("took %s to give up", d)
	}
}

// TestCLIContract checks the --json shapes scripts rely on, on a fresh data dir.
func TestCLIContract(t *testing.T) {
	env := mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"})
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(env, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(cli("", "clients", "create", "--json", "--name", "A", "--redirect-uri", "https://a.example/cb")), &c); err != nil {
		t.Fatal(err)
	}
	if c["client_id"] == "" || c["client_secret"] == "" || len(c["redirect_uris"].([]any)) != 1 {
		t.Errorf("clients create --json: %v", c)
	}
	var pub map[string]any
	_ = json.Unmarshal([]byte(cli("", "clients", "create", "--json", "--public", "--type", "spa", "--redirect-uri", "http://localhost:5173/cb")), &pub)
	if _, has := pub["client_secret"]; has {
		t.Errorf("public client has a secret: %v", pub)
	}
	var list []map[string]any
	_ = json.Unmarshal([]byte(cli("", "clients", "list", "--json")), &list)
	if len(list) != 2 {
		t.Errorf("clients list: %v", list)
	}
	var rot map[string]any
	_ = json.Unmarshal([]byte(cli("", "clients", "rotate-secret", "--json", c["client_id"].(string))), &rot)
	if rot["client_secret"] == "" || rot["client_secret"] == c["client_secret"] {
		t.Errorf("rotate-secret: %v", rot)
	}

	var u map[string]any
	_ = json.Unmarshal([]byte(cli("Passw0rd-long\n", "users", "create", "--json", "--email", "Admin@Example.com", "--name", "Ad", "--role", "ADMIN", "--password-stdin")), &u)
	if u["email"] != "admin@example.com" || u["role"] != "ADMIN" || u["email_verified"] != true || u["id"] == "" {
		t.Errorf("users create --json: %v", u)
	}
	_ = json.Unmarshal([]byte(cli("Passw0rd-long\n", "users", "create", "--json", "--email", "u@example.com", "--name", "U", "--unverified", "--password-stdin")), &u)
	if u["role"] != "USER" || u["email_verified"] != false {
		t.Errorf("users create --unverified: %v", u)
	}
	cli("", "users", "set-role", "u@example.com", "BILLING")
	var users []map[string]any
	_ = json.Unmarshal([]byte(cli("", "users", "list", "--json")), &users)
	if len(users) != 2 {
		t.Fatalf("users list: %v", users)
	}
	for _, x := range users {
		if x["email"] == "u@example.com" && x["role"] != "BILLING" {
			t.Errorf("set-role not applied: %v", x)
		}
	}
	cli("New-Passw0rd\n", "users", "set-password", "u@example.com", "--password-stdin")
	cli("", "users", "delete", "u@example.com")
	cli("", "keys", "rotate")
	cli("", "migrate")

	// Errors: non-zero exit, one line on stderr.
	for _, args := range [][]string{
		{"users", "create", "--email", "admin@example.com", "--name", "X", "--password-stdin"},
		{"users", "create", "--email", "not-an-email", "--name", "X", "--password-stdin"},
		{"users", "set-role", "admin@example.com", "lowercase"},
		{"users", "delete", "ghost@example.com"},
		{"clients", "create", "--redirect-uri", "http://evil.example/cb"},
		{"clients", "create", "--redirect-uri", "https://a.example/cb#frag"},
		{"clients", "create", "--public", "--grant-types", "client_credentials"},
		{"clients", "delete", "ghost"},
		{"nonsense"},
	} {
		out, errOut, code := runCLI(env, "Passw0rd-long\n", args...)
		if code == 0 || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q; want an error line", args, code, out, errOut)
		}
	}
}

// TestClientsFile: the declarative file creates and updates clients at start.
func TestClientsFile(t *testing.T) {
	file := tempFile(t, "clients.json", `{"clients":[
		{"id":"app","name":"App","secret":"0123456789abcdef-secret","redirect_uris":["https://app.example/cb"]},
		{"id":"spa","public":true,"type":"spa","redirect_uris":["http://localhost:5173/cb"]}]}`)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_CLIENTS_FILE": file})
	var list []map[string]any
	_ = json.Unmarshal([]byte(ts.cli("", "clients", "list", "--json")), &list)
	if len(list) != 2 {
		t.Fatalf("clients from file: %v", list)
	}
	status, _, m := postForm(t, ts.issuer+"/oauth/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "app", "0123456789abcdef-secret")
	if status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("file client's secret not accepted: %d %v", status, m)
	}
	bad := tempFile(t, "bad.json", `{"clients":[{"id":"x","redirect_uris":["https://a/cb"]}]}`)
	_, errOut, code := runCLI(mapEnv(onFreePorts(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_CLIENTS_FILE": bad})), "", "serve")
	if code == 0 || !strings.Contains(errOut, "GATEHOUSE_CLIENTS_FILE") {
		t.Errorf("bad clients file: exit %d %q", code, errOut)
	}
}

// onFreePorts makes a `serve` under test listen on free loopback ports
// (unless the case sets them): it binds before anything else, and the
// defaults (:8080, 127.0.0.1:9464) may be taken on the machine.
func onFreePorts(env map[string]string) map[string]string {
	out := map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:0", "GATEHOUSE_METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		out[k] = v
	}
	return out
}
