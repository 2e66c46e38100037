package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// The admin console (/admin, login/console) end to end through the real
// pages, on every backend: who gets in (nobody signed in, a USER, an ADMIN
// without a second factor, an ADMIN with one signing in with the password
// only), every action on users, clients and keys with what it did to the
// store, the confirmation of destructive actions, a stale form refused,
// the admin's own account protected, the audit trail naming the admin,
// and CSRF and cross-site posts refused on every form.

// consoleAdmin signs an ADMIN with an authenticator app into the console
// in a fresh browser the way a person does: /admin sends them to sign in,
// the password leads to the second step, the code to the console.
func consoleAdmin(t *testing.T, ts *testServer, email string) (createdUser, *browser, *page) {
	t.Helper()
	u, secret := userWithTOTP(t, ts, email)
	ts.cli("", "users", "set-role", email, "ADMIN")
	b := newBrowser(t, ts.issuer)
	p := b.get(ts.issuer + "/admin")
	if p.url.Path != "/login" || p.url.Query().Get("return") != "/admin" {
		t.Fatalf("/admin signed out: want the sign-in page returning to /admin, got %s status %d", p.url, p.status)
	}
	p = b.submit(p, map[string]string{"email": email, "password": mfaPassword})
	if p.url.Path != "/login/factor" {
		t.Fatalf("after the password: want the second step, got %s status %d\n%s", p.url, p.status, p.body)
	}
	p = b.submitCode(p, ts.freshTOTPCode(secret))
	if p.url.Path != "/admin/users" || p.status != http.StatusOK {
		t.Fatalf("after the second step: want the console's users page, got %s status %d\n%s", p.url, p.status, p.body)
	}
	return u, b, p
}

// consoleForms are the POST forms of p: action and fields.
func consoleForms(t *testing.T, p *page) []*page {
	t.Helper()
	var out []*page
	rest := p.body
	for {
		i := strings.Index(rest, `<form method="post"`)
		if i < 0 {
			return out
		}
		cp := *p
		cp.body = rest[i:]
		out = append(out, &cp)
		rest = rest[i+len(`<form method="post"`):]
	}
}

func TestAdminConsoleAccess(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ts.createUser("user@example.com", mfaPassword)
			ts.createUser("bare-admin@example.com", mfaPassword, "--role", "ADMIN")

			// A USER, signed in: refused, plainly.
			b := newBrowser(t, ts.issuer)
			signInToAccount(t, ts, b, "user@example.com", mfaPassword)
			p := b.get(ts.issuer + "/admin/users")
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "for administrators") {
				t.Errorf("a USER on /admin/users: status %d\n%s", p.status, p.body)
			}
			// Posting does not get further.
			if p := b.postForm("/admin/users", url.Values{"email": {"x@example.com"}, "name": {"X"}}); p.status != http.StatusForbidden {
				t.Errorf("a USER posting to the console: status %d", p.status)
			}

			// An ADMIN without a second factor: told to set one up.
			b = newBrowser(t, ts.issuer)
			signInToAccount(t, ts, b, "bare-admin@example.com", mfaPassword)
			p = b.get(ts.issuer + "/admin")
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "Set up a second factor") ||
				!strings.Contains(p.body, `/account/security/setup?return=%2Fadmin`) {
				t.Errorf("an ADMIN without a second factor: status %d\n%s", p.status, p.body)
			}

			// An ADMIN with one: the password, then the code (consoleAdmin).
			_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			if p := admin.get(ts.issuer + "/admin/clients"); p.status != http.StatusOK || !strings.Contains(p.body, "Clients") {
				t.Errorf("the admin on /admin/clients: status %d", p.status)
			}
			// Demoted: out at the next request, whatever the session.
			ts.cli("", "users", "set-role", "admin@example.com", "USER")
			if p := admin.get(ts.issuer + "/admin/users"); p.status != http.StatusForbidden {
				t.Errorf("a demoted admin: status %d", p.status)
			}
			// Pages carry the login pages' headers.
			ts.cli("", "users", "set-role", "admin@example.com", "ADMIN")
			p = admin.get(ts.issuer + "/admin/users")
			if p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Frame-Options") != "DENY" ||
				!strings.Contains(p.header.Get("Content-Security-Policy"), "default-src") {
				t.Errorf("console headers: %v", p.header)
			}
		})
	}
}

func TestAdminConsoleUsers(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3"})
			me, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			bob := ts.createUser("bob@example.com", mfaPassword)
			ctx := context.Background()

			// Search finds bob by the start of the address.
			p := admin.get(ts.issuer + "/admin/users?q=bob")
			if !strings.Contains(p.body, `href="/admin/users/`+bob.ID+`"`) || strings.Contains(p.body, "admin@example.com</a>") {
				t.Fatalf("search for bob:\n%s", p.body)
			}
			page := admin.get(ts.issuer + "/admin/users/" + bob.ID)
			if page.status != http.StatusOK || elementText(t, page, "role") != "USER" {
				t.Fatalf("bob's page: status %d\n%s", page.status, page.body)
			}

			// Role: saved, audited with the acting admin.
			p = admin.submit(formContaining(t, page, `/role"`), map[string]string{"role": "BILLING"})
			if p.url.Path != "/admin/users/"+bob.ID || elementText(t, p, "role") != "BILLING" || !strings.Contains(p.body, "The role was changed") {
				t.Fatalf("role change: %s status %d\n%s", p.url, p.status, p.body)
			}
			evs, err := ts.app.store.ListAudit(ctx, storage.AuditFilter{Subjects: []string{bob.ID}, Actions: []string{storage.AuditUserRoleChanged}})
			if err != nil || len(evs) != 1 || evs[0].Actor != me.ID || evs[0].Detail["to"] != "BILLING" {
				t.Errorf("role change audit: %+v %v", evs, err)
			}
			// The same form again (the page as first read): stale, nothing changes.
			p = admin.submit(formContaining(t, page, `/role"`), map[string]string{"role": "OTHER"})
			if p.status != http.StatusConflict || !strings.Contains(p.body, "Someone else changed this") {
				t.Errorf("stale role form: status %d\n%s", p.status, p.body)
			}
			if u, _ := ts.app.store.GetUser(ctx, bob.ID); u.Role != "BILLING" {
				t.Errorf("a stale form changed the role to %q", u.Role)
			}
			// A role the rules refuse: the page says why.
			page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
			p = admin.submit(formContaining(t, page, `/role"`), map[string]string{"role": "not a role"})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "upper-case name") {
				t.Errorf("bad role: status %d\n%s", p.status, p.body)
			}

			// Verified, and back.
			for _, want := range []bool{false, true} {
				page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
				p = admin.submit(formContaining(t, page, `/verified"`), nil)
				if u, _ := ts.app.store.GetUser(ctx, bob.ID); u.EmailVerified != want || !strings.Contains(p.body, "The address is now marked") {
					t.Errorf("mark verified %v: stored %v\n%s", want, u.EmailVerified, p.body)
				}
			}

			// Locked by failed sign-ins, unlocked from the console.
			bb := newBrowser(t, ts.issuer)
			for range 3 {
				bb.submit(bb.get(ts.issuer+"/login?return=%2Faccount"), map[string]string{"email": "bob@example.com", "password": "wrong-wrong-wrong"})
			}
			page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
			if !strings.Contains(elementText(t, page, "status"), "Locked") {
				t.Fatalf("bob is not shown locked:\n%s", elementText(t, page, "status"))
			}
			admin.submit(formContaining(t, page, `/unlock"`), nil)
			signInToAccount(t, ts, bb, "bob@example.com", mfaPassword) // in again

			// Destructive actions ask first: the GET is the confirmation; a
			// post without confirm=yes is sent back to it and changes nothing.
			p = admin.postForm("/admin/users/"+bob.ID+"/disable", url.Values{"csrf": {csrfOf(t, page)}})
			if p.url.Path != "/admin/users/"+bob.ID+"/disable" || !strings.Contains(p.body, "Disable this account?") {
				t.Errorf("unconfirmed disable: %s status %d", p.url, p.status)
			}
			if u, _ := ts.app.store.GetUser(ctx, bob.ID); u.Disabled() {
				t.Fatal("an unconfirmed post disabled the account")
			}
			confirm := admin.get(ts.issuer + "/admin/users/" + bob.ID + "/disable")
			p = admin.submit(confirm, nil)
			if u, _ := ts.app.store.GetUser(ctx, bob.ID); !u.Disabled() || !strings.Contains(p.body, "disabled and its sessions ended") {
				t.Fatalf("confirmed disable: %v\n%s", u.Disabled(), p.body)
			}
			if p := bb.get(ts.issuer + "/account"); p.url.Path == "/account" {
				t.Error("bob's session survived the disabling")
			}
			page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
			admin.submit(formContaining(t, page, `/enable"`), nil)
			signInToAccount(t, ts, bb, "bob@example.com", mfaPassword)

			// Sessions: bob's shows; ending it signs that browser out.
			page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
			p = admin.submit(formContaining(t, page, `/sessions/end"`), nil)
			if !strings.Contains(p.body, "The session was ended") {
				t.Errorf("end session:\n%s", p.body)
			}
			if p := bb.get(ts.issuer + "/account"); p.url.Path == "/account" {
				t.Error("bob's session survived being ended")
			}

			// Set a password: the old one stops working.
			page = admin.get(ts.issuer + "/admin/users/" + bob.ID)
			admin.submit(formContaining(t, page, `/password"`), map[string]string{"password": "A-New-Password-9"})
			signInToAccount(t, ts, newBrowser(t, ts.issuer), "bob@example.com", "A-New-Password-9")

			// The admin's own account: no way to lock themselves out.
			self := admin.get(ts.issuer + "/admin/users/" + me.ID)
			for _, action := range []string{"/disable", "/delete", "/reset-mfa"} {
				if strings.Contains(self.body, `href="/admin/users/`+me.ID+action+`"`) {
					t.Errorf("own page offers %s", action)
				}
				p := admin.postForm("/admin/users/"+me.ID+action, url.Values{"csrf": {csrfOf(t, self)}, "confirm": {"yes"}})
				if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "your own account") {
					t.Errorf("own %s: status %d", action, p.status)
				}
			}
			p = admin.submit(formContaining(t, self, `/role"`), map[string]string{"role": "USER"})
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("own demotion: status %d", p.status)
			}
			if u, _ := ts.app.store.GetUser(ctx, me.ID); u.Role != "ADMIN" || u.Disabled() {
				t.Fatalf("the admin changed their own account: %+v", u)
			}

			// Create, then delete through the confirmation.
			p = admin.submit(admin.get(ts.issuer+"/admin/users/new"), map[string]string{"email": "New@Example.com", "name": "New Person", "role": "USER"})
			if !strings.Contains(p.body, "The user was created") {
				t.Fatalf("create user: status %d\n%s", p.status, p.body)
			}
			created, err := ts.app.store.GetUserByEmail(ctx, "new@example.com")
			if err != nil {
				t.Fatal(err)
			}
			p = admin.submit(admin.get(ts.issuer+"/admin/users/new"), map[string]string{"email": "new@example.com", "name": "Again"})
			if p.status != http.StatusConflict || !strings.Contains(p.body, "already exists") {
				t.Errorf("duplicate user: status %d", p.status)
			}
			p = admin.submit(admin.get(ts.issuer+"/admin/users/"+created.ID+"/delete"), nil)
			if _, err := ts.app.store.GetUser(ctx, created.ID); err == nil || p.url.Path != "/admin/users" {
				t.Errorf("delete: user still there (%v), page %s", err, p.url)
			}
			if p := admin.get(ts.issuer + "/admin/users/" + created.ID); p.status != http.StatusNotFound {
				t.Errorf("a deleted user's page: status %d", p.status)
			}

			// The audit page filters by actor and action and names people.
			p = admin.get(ts.issuer + "/admin/audit?" + url.Values{"actor": {"admin@example.com"}, "action": {storage.AuditUserDeleted}}.Encode())
			if !strings.Contains(p.body, "<code>user_deleted</code>") || strings.Contains(p.body, "<code>user_role_changed</code>") {
				t.Errorf("audit filtered by actor and action:\n%s", p.body)
			}
			p = admin.get(ts.issuer + "/admin/audit?" + url.Values{"user": {"bob@example.com"}}.Encode())
			if !strings.Contains(p.body, "user_role_changed") || !strings.Contains(p.body, `<a href="/admin/users/`+me.ID+`">admin@example.com</a>`) {
				t.Errorf("audit about bob does not name the admin:\n%s", p.body)
			}
			if p := admin.get(ts.issuer + "/admin/audit?cursor=nope"); p.status != http.StatusUnprocessableEntity {
				t.Errorf("audit with a junk cursor: status %d", p.status)
			}
		})
	}
}

func TestAdminConsoleClientsAndKeys(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			ctx := context.Background()

			p := admin.submit(admin.get(ts.issuer+"/admin/clients/new"), map[string]string{
				"name": "Shop", "redirect_uris": "https://shop.example/cb\n\n https://shop.example/cb2 ", "require_mfa": "true"})
			if p.status != http.StatusCreated {
				t.Fatalf("create client: status %d\n%s", p.status, p.body)
			}
			id, secret := elementText(t, p, "client-id"), elementText(t, p, "client-secret")
			if id == "" || len(secret) < 32 {
				t.Fatalf("create client: id %q secret %q", id, secret)
			}
			c, err := ts.app.store.GetClient(ctx, id)
			if err != nil || len(c.RedirectURIs) != 2 || c.RedirectURIs[1] != "https://shop.example/cb2" || !c.RequireMFA {
				t.Fatalf("stored client: %+v %v", c, err)
			}
			if got := tokenEndpointAuth(t, ts, id, secret); got != "invalid_grant" {
				t.Errorf("the shown secret at the token endpoint: %s", got)
			}
			if p := admin.get(ts.issuer + "/admin/clients/" + id); strings.Contains(p.body, secret) {
				t.Error("the secret is shown again")
			}

			// Settings: a URI the rules refuse is explained, what was typed kept.
			page := admin.get(ts.issuer + "/admin/clients/" + id)
			p = admin.submit(formContaining(t, page, `action="/admin/clients/`+id+`"`), map[string]string{"redirect_uris": "http://shop.example/cb"})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "http://shop.example/cb</textarea>") {
				t.Errorf("refused redirect URI: status %d\n%s", p.status, p.body)
			}
			p = admin.submit(formContaining(t, page, `action="/admin/clients/`+id+`"`), map[string]string{"redirect_uris": "https://shop.example/new", "require_mfa": ""})
			if c, _ := ts.app.store.GetClient(ctx, id); len(c.RedirectURIs) != 1 || c.RedirectURIs[0] != "https://shop.example/new" || c.RequireMFA {
				t.Errorf("saved client: %+v (page %d)", c, p.status)
			}
			// The same form again is stale.
			p = admin.submit(formContaining(t, page, `action="/admin/clients/`+id+`"`), map[string]string{"name": "Other"})
			if p.status != http.StatusConflict {
				t.Errorf("stale client form: status %d", p.status)
			}

			// Rotate the secret: the new one works, the old one no longer.
			p = admin.submit(admin.get(ts.issuer+"/admin/clients/"+id+"/secret"), nil)
			rotated := elementText(t, p, "client-secret")
			if rotated == "" || rotated == secret || p.location != nil || strings.Contains(p.url.RawQuery, rotated) {
				t.Fatalf("rotate: secret %q page %s", rotated, p.url)
			}
			if got := tokenEndpointAuth(t, ts, id, secret); got != "invalid_client" {
				t.Errorf("the old secret after rotation: %s", got)
			}
			if got := tokenEndpointAuth(t, ts, id, rotated); got != "invalid_grant" {
				t.Errorf("the new secret: %s", got)
			}

			// Keys: rotation through the confirmation changes the active key.
			before := activeKid(t, admin.get(ts.issuer+"/admin/keys"))
			p = admin.submit(admin.get(ts.issuer+"/admin/keys/rotate"), nil)
			if after := activeKid(t, p); after == before || after == "" || !strings.Contains(p.body, "were rotated") {
				t.Errorf("keys rotated: active %q → %q", before, after)
			}

			// Delete the client through the confirmation.
			admin.submit(admin.get(ts.issuer+"/admin/clients/"+id+"/delete"), nil)
			if _, err := ts.app.store.GetClient(ctx, id); err == nil {
				t.Error("client not deleted")
			}
		})
	}
}

// TestAdminConsoleForms: every form of the console refuses a post without
// this browser's CSRF token, with another browser's, and from another
// site; nothing changes.
func TestAdminConsoleForms(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
	bob := ts.createUser("bob@example.com", mfaPassword)
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	_, other, _ := consoleAdmin(t, ts, "other-admin@example.com")
	foreign := csrfOf(t, other.get(ts.issuer+"/admin/users/new"))

	var forms []*page
	for _, path := range []string{"/admin/users/new", "/admin/users/" + bob.ID, "/admin/users/" + bob.ID + "/disable",
		"/admin/users/" + bob.ID + "/sign-out", "/admin/users/" + bob.ID + "/reset-mfa", "/admin/users/" + bob.ID + "/delete",
		"/admin/clients/new", "/admin/clients/" + app.ClientID, "/admin/clients/" + app.ClientID + "/secret",
		"/admin/clients/" + app.ClientID + "/delete", "/admin/keys/rotate"} {
		p := admin.get(ts.issuer + path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: status %d", path, p.status)
		}
		forms = append(forms, consoleForms(t, p)...)
	}
	if len(forms) < 13 {
		t.Fatalf("found %d forms, expected every form of the console", len(forms))
	}
	auditCount := func() int {
		evs, err := ts.app.store.ListAudit(context.Background(), storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	before := auditCount()
	for _, f := range forms {
		action, values := parseForm(t, f)
		if values.Get("csrf") == "" {
			t.Errorf("form %s has no CSRF field", action)
		}
		values.Set("confirm", "yes")
		for name, mutate := range map[string]func(v url.Values){
			"no token":      func(v url.Values) { v.Del("csrf") },
			"another token": func(v url.Values) { v.Set("csrf", foreign) },
		} {
			v := url.Values{}
			for k, x := range values {
				v[k] = x
			}
			mutate(v)
			if p := admin.postForm(action, v); p.status != http.StatusForbidden {
				t.Errorf("%s %s: status %d", action, name, p.status)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, ts.issuer+action, strings.NewReader(values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		if p := admin.do(req); p.status != http.StatusForbidden {
			t.Errorf("%s cross-site: status %d", action, p.status)
		}
	}
	if after := auditCount(); after != before {
		t.Errorf("refused posts changed something: %d audit events before, %d after", before, after)
	}
	if u, _ := ts.app.store.GetUser(context.Background(), bob.ID); u == nil || u.Disabled() {
		t.Error("bob was changed by a refused post")
	}
}

// csrfOf is the CSRF token in the first POST form of p.
func csrfOf(t *testing.T, p *page) string {
	t.Helper()
	return formValue(t, p, "csrf")
}

// tokenEndpointAuth posts a made-up code with Basic credentials: an
// accepted client gets invalid_grant, a refused one invalid_client.
func tokenEndpointAuth(t *testing.T, ts *testServer, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.issuer+"/oauth/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {"https://shop.example/cb"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Error
}

// activeKid is the key ID of the active row of the keys page.
func activeKid(t *testing.T, p *page) string {
	t.Helper()
	i := strings.Index(p.body, `<span class="badge ok">active</span>`)
	if i < 0 {
		t.Fatalf("no active key on %s:\n%s", p.url, p.body)
	}
	row := p.body[strings.LastIndex(p.body[:i], "<tr>"):i]
	start := strings.Index(row, "<code>") + len("<code>")
	return row[start:strings.Index(row, "</code>")]
}
