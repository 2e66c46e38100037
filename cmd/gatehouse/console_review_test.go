package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Review of the admin console (login/console): what an attacker or a
// careless admin could do that the console's own tests did not try.

// postWithout posts the form of p that contains marker with fields set
// and the field drop left out, as a crafted or truncated form would.
func postWithout(t *testing.T, b *browser, p *page, marker, drop string, fields map[string]string) *page {
	t.Helper()
	action, values := parseForm(t, formContaining(t, p, marker))
	if values.Get(drop) == "" {
		t.Fatalf("the form %s has no %s to leave out", action, drop)
	}
	values.Del(drop)
	for k, v := range fields {
		values.Set(k, v)
	}
	return b.postForm(action, values)
}

// TestReviewConsoleFormsNeedVersion: a form that changes a versioned
// record must carry the version its page showed. The service reads a
// missing version as "no check" (and retries lost races), so a form
// without one overwrote whatever someone else had saved meanwhile, and a
// delete confirmed on a stale page went through: the console's promise
// that stale forms never overwrite held only while the browser sent the
// field.
func TestReviewConsoleFormsNeedVersion(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
	bob := ts.createUser("bob@example.com", mfaPassword)
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ctx := context.Background()
	refused := func(what string, p *page) {
		t.Helper()
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "version") {
			t.Errorf("%s without a version: status %d, want 422 naming the version\n%s", what, p.status, p.body)
		}
	}

	userPage := admin.get(ts.issuer + "/admin/users/" + bob.ID)
	refused("role", postWithout(t, admin, userPage, `/role"`, "version", map[string]string{"role": "BILLING"}))
	refused("verified", postWithout(t, admin, userPage, `/verified"`, "version", nil))
	refused("password", postWithout(t, admin, userPage, `/password"`, "version", map[string]string{"password": "A-New-Password-9"}))
	refused("disable", postWithout(t, admin, admin.get(ts.issuer+"/admin/users/"+bob.ID+"/disable"), `name="confirm"`, "version", nil))
	refused("delete", postWithout(t, admin, admin.get(ts.issuer+"/admin/users/"+bob.ID+"/delete"), `name="confirm"`, "version", nil))
	u, err := ts.app.store.GetUser(ctx, bob.ID)
	if err != nil || u.Role != "USER" || !u.EmailVerified || u.Disabled() || u.Version != 1 {
		t.Errorf("bob after refused forms: %+v %v", u, err)
	}
	// Disabled (with the version), enabling needs one too.
	admin.submit(admin.get(ts.issuer+"/admin/users/"+bob.ID+"/disable"), nil)
	refused("enable", postWithout(t, admin, admin.get(ts.issuer+"/admin/users/"+bob.ID), `/enable"`, "version", nil))
	if u, _ := ts.app.store.GetUser(ctx, bob.ID); !u.Disabled() {
		t.Error("bob was enabled by a form without a version")
	}

	clientPage := admin.get(ts.issuer + "/admin/clients/" + app.ClientID)
	refused("client settings", postWithout(t, admin, clientPage, `action="/admin/clients/`+app.ClientID+`"`, "version", map[string]string{"name": "Renamed"}))
	secret := postWithout(t, admin, admin.get(ts.issuer+"/admin/clients/"+app.ClientID+"/secret"), `name="confirm"`, "version", nil)
	refused("secret rotation", secret)
	refused("client delete", postWithout(t, admin, admin.get(ts.issuer+"/admin/clients/"+app.ClientID+"/delete"), `name="confirm"`, "version", nil))
	c, err := ts.app.store.GetClient(ctx, app.ClientID)
	if err != nil || c.Name != "App" || strings.Contains(secret.body, `id="client-secret"`) {
		t.Errorf("client after refused forms: %+v %v", c, err)
	}
}

// TestReviewConsoleNoServerErrorForBadInput: an admin's typo or a
// mangled link is answered as one, never with the 500 page: an ID,
// filter or form field with a NUL byte or invalid UTF-8 (which
// PostgreSQL refuses) is not found or invalid.
func TestReviewConsoleNoServerErrorForBadInput(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			bob := ts.createUser("bob@example.com", mfaPassword)
			for path, want := range map[string]int{
				"/admin/users/%00":            http.StatusNotFound,
				"/admin/users/%00/delete":     http.StatusNotFound,
				"/admin/clients/%00":          http.StatusNotFound,
				"/admin/clients/%ff/delete":   http.StatusNotFound,
				"/admin/audit?user=%00":       http.StatusUnprocessableEntity,
				"/admin/audit?user=%00@x.org": http.StatusUnprocessableEntity,
				"/admin/audit?actor=%ff":      http.StatusUnprocessableEntity,
				"/admin/audit?cursor=%00":     http.StatusUnprocessableEntity,
				"/admin/audit?action=nope":    http.StatusUnprocessableEntity,
				"/admin/users?cursor=%00":     http.StatusUnprocessableEntity,
			} {
				if p := admin.get(ts.issuer + path); p.status != want {
					t.Errorf("GET %s: status %d, want %d", path, p.status, want)
				}
			}
			page := admin.get(ts.issuer + "/admin/users/" + bob.ID)
			csrf := csrfOf(t, page)
			for path, values := range map[string]url.Values{
				"/admin/users/" + bob.ID + "/sessions/end": {"session": {"a\x00"}},
				"/admin/users/" + bob.ID + "/unlink":       {"upstream": {"a\x00"}},
				"/admin/clients/%00":                       {"name": {"X"}, "redirect_uris": {redirectA}, "version": {"1"}},
				"/admin/clients/%00/delete":                {"confirm": {"yes"}, "version": {"1"}},
				"/admin/clients/%00/secret":                {"confirm": {"yes"}, "version": {"1"}},
			} {
				values.Set("csrf", csrf)
				if p := admin.postForm(path, values); p.status != http.StatusNotFound {
					t.Errorf("POST %s: status %d, want 404", path, p.status)
				}
			}
		})
	}
}

// TestReviewConsoleTrailingSlash: /admin/, the address people type, leads
// to the console (it was "Page not found" for an admin), and, like every
// console address, to the sign-in page for anyone else.
func TestReviewConsoleTrailingSlash(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
	if p := admin.get(ts.issuer + "/admin/"); p.status != http.StatusOK || p.url.Path != "/admin/users" {
		t.Errorf("/admin/ for the admin: %s status %d", p.url, p.status)
	}
	if p := newBrowser(t, ts.issuer).get(ts.issuer + "/admin/"); p.url.Path != "/login" {
		t.Errorf("/admin/ signed out: %s status %d", p.url, p.status)
	}
	// A user that is not there: said plainly, starting with a capital.
	if p := admin.get(ts.issuer + "/admin/users/nobody"); p.status != http.StatusNotFound || !strings.Contains(p.body, "No such user.") {
		t.Errorf("a missing user: status %d\n%s", p.status, p.body)
	}
}

// TestReviewConsoleEscapesWhatOthersWrote: names chosen by users and by
// whoever registered a client reach the console's pages (lists, detail
// pages, form fields, the audit trail's details) as text, never as markup.
func TestReviewConsoleEscapesWhatOthersWrote(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
	const payload = `"><script>alert(1)</script><a href="javascript:alert(2)">`
	bob := ts.createUser("bob@example.com", mfaPassword, "--name", payload)
	app := ts.createClient("--name", payload, "--redirect-uri", redirectA)
	// A change of the name puts it in the audit trail's details too.
	page := admin.get(ts.issuer + "/admin/clients/" + app.ClientID)
	admin.submit(formContaining(t, page, `action="/admin/clients/`+app.ClientID+`"`), map[string]string{"name": payload + "!"})
	for _, path := range []string{"/admin/users", "/admin/users/" + bob.ID, "/admin/clients", "/admin/clients/" + app.ClientID,
		"/admin/clients/" + app.ClientID + "/delete", "/admin/audit"} {
		p := admin.get(ts.issuer + path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: status %d", path, p.status)
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, `href="javascript:`) {
			t.Errorf("%s shows the name as markup:\n%s", path, p.body)
		}
		if !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the name as text", path)
		}
	}
}

// TestReviewConsoleGuardBeforeRouting: the admin check comes before the
// router, so a USER (or nobody) learns nothing from the console's "not
// found" and "not allowed" answers, whatever the method or address.
func TestReviewConsoleGuardBeforeRouting(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	ts.createUser("user@example.com", mfaPassword)
	user := newBrowser(t, ts.issuer)
	signInToAccount(t, ts, user, "user@example.com", mfaPassword)
	anon := newBrowser(t, ts.issuer)
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/admin/nothing-here"}, {http.MethodPut, "/admin/users"}, {http.MethodDelete, "/admin/clients/x"},
		{http.MethodHead, "/admin/users"}, {http.MethodOptions, "/admin/users"}, {http.MethodGet, "/admin/users/x/delete"},
		{http.MethodGet, "/admin/users/x/../../admin/keys"}, {http.MethodGet, "//admin/keys"}, {http.MethodGet, "/admin/%6beys"},
	} {
		req, _ := http.NewRequest(r.method, ts.issuer+r.path, nil)
		if p := user.do(req); p.status != http.StatusForbidden {
			t.Errorf("USER %s %s: status %d, want 403", r.method, r.path, p.status)
		}
		req, _ = http.NewRequest(r.method, ts.issuer+r.path, nil)
		if p := anon.do(req); p.url.Path != "/login" {
			t.Errorf("nobody %s %s: %s status %d, want the sign-in page", r.method, r.path, p.url, p.status)
		}
	}
}

// TestReviewConsoleAuditsEveryChange: each kind of change the console
// makes is in the audit trail with the acting admin and the address the
// request came from (not one a client claims in X-Forwarded-For: no
// proxy is trusted here).
func TestReviewConsoleAuditsEveryChange(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	me, admin, _ := consoleAdmin(t, ts, "admin@example.com")
	admin.header = http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	ctx := context.Background()
	bob := ts.createUser("bob@example.com", mfaPassword)
	signInToAccount(t, ts, newBrowser(t, ts.issuer), "bob@example.com", mfaPassword)

	userForm := func(marker string, fields map[string]string) {
		t.Helper()
		page := admin.get(ts.issuer + "/admin/users/" + bob.ID)
		if p := admin.submit(formContaining(t, page, marker), fields); p.status != http.StatusOK {
			t.Fatalf("%s: status %d\n%s", marker, p.status, p.body)
		}
	}
	confirm := func(path string) {
		t.Helper()
		if p := admin.submit(admin.get(ts.issuer+path), nil); p.status != http.StatusOK {
			t.Fatalf("%s: status %d\n%s", path, p.status, p.body)
		}
	}
	userForm(`/sessions/end"`, nil)
	userForm(`/role"`, map[string]string{"role": "BILLING"})
	userForm(`/verified"`, nil)
	userForm(`/password"`, map[string]string{"password": "A-New-Password-9"})
	admin.postForm("/admin/users/"+bob.ID+"/unlock", url.Values{"csrf": {csrfOf(t, admin.get(ts.issuer+"/admin/users/"+bob.ID))}})
	confirm("/admin/users/" + bob.ID + "/disable")
	userForm(`/enable"`, nil)
	confirm("/admin/users/" + bob.ID + "/sign-out")
	confirm("/admin/users/" + bob.ID + "/reset-mfa")
	confirm("/admin/users/" + bob.ID + "/delete")
	admin.submit(admin.get(ts.issuer+"/admin/users/new"), map[string]string{"email": "new@example.com", "name": "New"})
	p := admin.submit(admin.get(ts.issuer+"/admin/clients/new"), map[string]string{"name": "Shop", "redirect_uris": "https://shop.example/cb"})
	id := elementText(t, p, "client-id")
	admin.submit(formContaining(t, admin.get(ts.issuer+"/admin/clients/"+id), `action="/admin/clients/`+id+`"`), map[string]string{"name": "Shop 2"})
	confirm("/admin/clients/" + id + "/secret")
	admin.submit(admin.get(ts.issuer+"/admin/clients/"+id+"/delete"), nil)
	confirm("/admin/keys/rotate")

	evs, err := ts.app.store.ListAudit(ctx, storage.AuditFilter{Actor: me.ID})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Action] = true
		if e.IP != "127.0.0.1" || e.UserAgent == "" {
			t.Errorf("%s by the admin: IP %q user agent %q", e.Action, e.IP, e.UserAgent)
		}
	}
	for _, action := range []string{storage.AuditSessionEnded, storage.AuditUserRoleChanged, storage.AuditUserVerifiedChanged,
		storage.AuditUserPasswordSet, storage.AuditUserUnlocked, storage.AuditUserDisabled, storage.AuditUserEnabled,
		storage.AuditMFAReset, storage.AuditUserDeleted, storage.AuditUserCreated, storage.AuditClientCreated,
		storage.AuditClientUpdated, storage.AuditClientSecretRotated, storage.AuditClientDeleted, storage.AuditKeysRotated} {
		if !seen[action] {
			t.Errorf("no %s event by the admin (saw %v)", action, seen)
		}
	}
}
