package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserWalkConsole walks the admin console in a real, headless
// Chromium as an administrator does: /admin asks them to sign in, then for
// the code of their authenticator app; they search for a user, open them
// and change their role; the user's next ID token (a go-oidc relying party)
// carries the new role, where the one before carried the old. They create
// a client and see its secret once, and read the audit trail, which names
// them. They tick DPoP and the device grant on the client's page. Screenshots:
// console-users, console-user(-narrow), console-client-created,
// console-client, console-audit.
func TestBrowserWalkConsole(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()
	ts := startServer(t, "sqlite", nil)
	wiki := ts.createClient("--name", "Team Wiki", "--redirect-uri", redirectA)
	ts.createUser("grace@example.com", mfaPassword, "--name", "Grace Hopper", "--role", "ADMIN")
	gb := newBrowser(t, ts.issuer)
	signInToAccount(t, ts, gb, "grace@example.com", mfaPassword)
	secret, _, p := enrolTOTP(t, ts, gb, "/account/totp")
	recoveryCodes(t, p)
	for _, u := range []struct{ email, name string }{
		{"ada@example.com", "Ada Lovelace"}, {"alan@example.com", "Alan Turing"},
		{"barbara@example.com", "Barbara Liskov"}, {"edsger@example.com", "Edsger Dijkstra"},
	} {
		ts.createUser(u.email, mfaPassword, "--name", u.name)
	}
	// Ada signs in to the wiki before the change: her role is USER.
	rp := newRP(t, ts, wiki)
	if role := rp.exchange(rp.signIn(newBrowser(t, ts.issuer), "ada@example.com", mfaPassword)).claims["role"]; role != "USER" {
		t.Fatalf("Ada's ID token before: role %v", role)
	}

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, tab := startBrowser(t, chromium)
	w := &walker{t: t, ctx: tab, shots: shots}
	iss := ts.issuer

	// 1. /admin: sign in, then the second step, then the console.
	resp := w.open(iss + "/admin")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", "grace@example.com")
	w.fill("Password", mfaPassword)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, iss+"/login/factor?", "Two-step verification")
	w.fill("Code from your authenticator app", ts.freshTOTPCode(secret))
	resp = w.press("Verify")
	w.expectPage(resp, http.StatusOK, iss+"/admin/users", "Users")
	if n := w.count("table.data tbody tr"); n != 5 {
		w.fatalf("%d users listed, want 5", n)
	}
	w.shot("console-users")

	// 2. Search, open Ada, make her BILLING.
	w.fill("Email or name", "ada")
	resp = w.press("Search")
	w.expectPage(resp, http.StatusOK, iss+"/admin/users?q=ada", "Users")
	if n := w.count("table.data tbody tr"); n != 1 {
		w.fatalf("search for ada: %d rows", n)
	}
	resp = w.clickLink("ada@example.com")
	w.expectPage(resp, http.StatusOK, iss+"/admin/users/", "ada@example.com")
	w.expectText("#role", "USER")
	w.fill("Role", "BILLING")
	resp = w.press("Save role")
	w.expectPage(resp, http.StatusOK, iss+"/admin/users/", "ada@example.com")
	w.expectText(".notice", "The role was changed.")
	w.expectText("#role", "BILLING")
	w.shot("console-user")
	w.shotNarrow("console-user")

	// 3. Ada's next ID token says so.
	if role := rp.exchange(rp.signIn(newBrowser(t, ts.issuer), "ada@example.com", mfaPassword)).claims["role"]; role != "BILLING" {
		t.Errorf("Ada's ID token after the change: role %v, want BILLING", role)
	}

	// 4. A new client: its secret once.
	resp = w.open(iss + "/admin/clients/new")
	w.expectPage(resp, http.StatusOK, iss+"/admin/clients/new", "New client")
	w.fill("Name", "Billing Portal")
	if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("redirect_uris"), "https://billing.example.com/api/auth/callback/gatehouse")); err != nil {
		w.fatalf("redirect URIs: %v", err)
	}
	resp = w.press("Create client")
	w.expectPage(resp, http.StatusCreated, iss+"/admin/clients", "Billing Portal")
	if s := w.text("#client-secret"); len(s) < 32 {
		w.fatalf("client secret shown: %q", s)
	}
	w.shot("console-client-created")

	// 4b. Its settings: require DPoP, allow the device grant, save; the
	// page shows them ticked.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("require_dpop")), chromedp.Click(chromedp.ID("grant_device_code"))); err != nil {
		w.fatalf("tick DPoP and the device grant: %v", err)
	}
	resp = w.press("Save")
	w.expectPage(resp, http.StatusOK, iss+"/admin/clients/", "Billing Portal")
	w.expectText(".notice", "The client was saved.")
	if n := w.count("#require_dpop:checked, #grant_device_code:checked, #grant_authorization_code:checked"); n != 3 {
		w.fatalf("%d of DPoP, the device grant and the code grant ticked after saving, want 3", n)
	}
	w.shot("console-client")

	// 5. The audit trail names Grace as the one who acted.
	resp = w.open(iss + "/admin/audit")
	w.expectPage(resp, http.StatusOK, iss+"/admin/audit", "Audit trail")
	w.expectText("table.data tbody tr:nth-child(1)", "client_updated")
	w.expectText("table.data tbody tr:nth-child(1)", "require_dpop=true")
	w.expectText("table.data tbody tr:nth-child(2)", "client_created")
	row, err := chromedp.Run(tab, chromedp.Evaluate[string](`[...document.querySelectorAll("table.data tbody tr")].map(r => r.innerText).find(t => t.includes("user_role_changed")) || ""`))
	if err != nil || !strings.Contains(row, "grace@example.com") || !strings.Contains(row, "ada@example.com") || !strings.Contains(row, "to=BILLING") {
		w.fatalf("audit row of the role change %q (%v): want Grace changing Ada's role", row, err)
	}
	w.shot("console-audit")
	t.Logf("console walk done in %s; screenshots in %s: %v", time.Since(start).Round(time.Millisecond), shots, w.saved)
}
