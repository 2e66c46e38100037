package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// TestAdminCommands: the commands added with the admin service — users get,
// verify, disable/enable, list with paging and search, keys list, clients
// update of redirect URIs — on a fresh data dir, their output and their
// one-line errors.
func TestAdminCommands(t *testing.T) {
	env := mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"})
	run := func(stdin string, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runCLI(env, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out, errOut
	}
	for i := range 5 {
		run("Passw0rd-long\n", "users", "create", "--email", fmt.Sprintf("user%d@example.com", i), "--name", fmt.Sprintf("User %d", i), "--password-stdin")
	}
	run("Passw0rd-long\n", "users", "create", "--email", "zed@example.com", "--name", "Zed Zeta", "--unverified", "--password-stdin")

	// get, verify, disable, enable.
	var u userJSON
	out, _ := run("", "users", "get", "ZED@example.com", "--json")
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.Email != "zed@example.com" || u.EmailVerified || u.Disabled || u.Locked || u.Name != "Zed Zeta" {
		t.Fatalf("users get --json: %s (%v)", out, err)
	}
	if out, _ := run("", "users", "get", "zed@example.com"); !strings.Contains(out, "email_verified: false") || !strings.Contains(out, "disabled:       false") {
		t.Fatalf("users get:\n%s", out)
	}
	if out, _ := run("", "users", "verify", "zed@example.com"); !strings.Contains(out, "zed@example.com is now verified") {
		t.Fatalf("users verify: %q", out)
	}
	out, _ = run("", "users", "verify", "zed@example.com", "--unverified", "--json")
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.EmailVerified {
		t.Fatalf("users verify --unverified: %s", out)
	}
	out, _ = run("", "users", "disable", "zed@example.com", "--json")
	if err := json.Unmarshal([]byte(out), &u); err != nil || !u.Disabled || u.DisabledAt == nil {
		t.Fatalf("users disable --json: %s", out)
	}
	if out, _ := run("", "users", "list"); !strings.Contains(out, "zed@example.com\tUSER\tverified=false\tpassword=true\tlinked=\tdisabled=true\tlocked=false") {
		t.Fatalf("users list:\n%s", out)
	}
	if out, _ := run("", "users", "enable", "zed@example.com"); !strings.Contains(out, "enabled zed@example.com") {
		t.Fatalf("users enable: %q", out)
	}

	// list: everyone by default; a page with --limit, the next with --cursor.
	var all []userJSON
	out, _ = run("", "users", "list", "--json")
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 6 || all[0].Email != "user0@example.com" || all[5].Email != "zed@example.com" {
		t.Fatalf("users list --json: %s", out)
	}
	var seen []string
	args := []string{"users", "list", "--json", "--limit", "4"}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		out, errOut := run("", args...)
		var page []userJSON
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("%v: %s", args, out)
		}
		for _, p := range page {
			seen = append(seen, p.Email)
		}
		_, cursor, more := strings.Cut(strings.TrimSpace(errOut), "--cursor ")
		if !more {
			break
		}
		args = []string{"users", "list", "--json", "--limit", "4", "--cursor", cursor}
	}
	if len(seen) != 6 || seen[3] != "user3@example.com" || seen[4] != "user4@example.com" {
		t.Fatalf("pages gave %v", seen)
	}
	out, _ = run("", "users", "list", "--search", "ZETA")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "zed@example.com") {
		t.Fatalf("users list --search ZETA:\n%s", out)
	}

	// keys list.
	var ks []keyJSON
	out, _ = run("", "keys", "list", "--json")
	// An active and a next key of each of the three algorithms.
	if err := json.Unmarshal([]byte(out), &ks); err != nil || len(ks) != 6 || ks[0].State != storage.KeyActive || ks[3].State != storage.KeyNext {
		t.Fatalf("keys list --json: %s", out)
	}
	run("", "keys", "rotate")
	if out, _ := run("", "keys", "list"); strings.Count(out, "\n") != 9 || !strings.Contains(out, ks[0].ID+"\t") || strings.Count(out, "\tretired\t") != 3 {
		t.Fatalf("keys list after a rotation:\n%s", out)
	}

	// clients update replaces redirect URIs, checked as at registration.
	var c map[string]any
	out, _ = run("", "clients", "create", "--json", "--id", "shop", "--redirect-uri", "https://shop.example/cb")
	_ = json.Unmarshal([]byte(out), &c)
	run("", "clients", "update", "shop", "--redirect-uri", "https://shop.example/cb", "--redirect-uri", "https://shop.example/cb2", "--name", "Shop")
	var list []clientJSON
	out, _ = run("", "clients", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || len(list[0].RedirectURIs) != 2 || list[0].Name != "Shop" {
		t.Fatalf("clients list after update: %s", out)
	}

	// Errors: non-zero exit, one line on stderr, nothing on stdout.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "get", "ghost@example.com"}, "no user with email ghost@example.com"},
		{[]string{"users", "disable", "ghost@example.com"}, "no user with email"},
		{[]string{"users", "list", "--cursor", "garbage"}, "cursor"},
		{[]string{"users", "list", "--limit", "1000"}, "between 1 and 200"},
		{[]string{"clients", "update", "shop", "--redirect-uri", "http://evil.example/cb"}, "http is allowed only for localhost"},
		{[]string{"clients", "update", "shop"}, "nothing to change"},
		{[]string{"clients", "rotate-secret", "ghost"}, `no client with id "ghost"`},
	} {
		out, errOut, code := runCLI(env, "", c.args...)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want one error line with %q", c.args, code, out, errOut, c.want)
		}
	}
}
