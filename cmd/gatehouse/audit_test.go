package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/storage"
)

// auditList runs `audit list --json` with args and decodes the one array.
func (ts *testServer) auditList(args ...string) []auditJSON {
	ts.t.Helper()
	out := ts.cli("", append([]string{"audit", "list", "--json"}, args...)...)
	var list []auditJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		ts.t.Fatalf("audit list --json printed %q: %v", out, err)
	}
	return list
}

// findAudit returns the events with action (newest first).
func findAudit(list []auditJSON, action string) []auditJSON {
	var out []auditJSON
	for _, ev := range list {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// TestAuditTrail drives the real server and CLI through the audited actions
// and reads the trail back with `gatehouse audit list`, on every backend.
func TestAuditTrail(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			smtp := mailtest.NewServer(t)
			ts := startServer(t, backend, map[string]string{"SMTP_URL": smtp.URL()})
			testAuditTrail(t, ts, smtp)
			testAuditRetention(t, ts)
		})
	}
}

func testAuditTrail(t *testing.T, ts *testServer, smtp *mailtest.Server) {
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	user := ts.createUser("grace@example.com", testPassword)
	r := newRP(t, ts, app)

	// A sign-in, a refresh, and the rotated refresh token presented again
	// after the grace window: the grant is revoked.
	ar, code := r.signIn(newBrowser(t, ts.issuer), "grace@example.com", testPassword)
	tok := r.exchange(ar, code)
	if _, err := r.refresh(tok.token.RefreshToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	ts.clock.advance(time.Minute)
	if _, err := r.refresh(tok.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reused refresh token: %v", err)
	}
	// RP-initiated logout ends the session.
	if p := newBrowser(t, ts.issuer).get(ts.issuer + "/end_session?id_token_hint=" + tok.raw); p.status != http.StatusOK {
		t.Fatalf("end_session: status %d", p.status)
	}

	// Five wrong passwords lock the address; the right one is then refused.
	b := newBrowser(t, ts.issuer)
	for range 5 {
		b.submit(b.get(r.authURL().url), map[string]string{"email": "grace@example.com", "password": "Wrong-Passw0rd"})
	}
	if p := b.submit(b.get(r.authURL().url), map[string]string{"email": "grace@example.com", "password": testPassword}); !strings.Contains(p.body, "temporarily locked") {
		t.Fatalf("sixth attempt not locked: status %d", p.status)
	}
	// A failed sign-in on an address without an account.
	b.submit(b.get(r.authURL().url), map[string]string{"email": "Nobody@Example.com", "password": "Typed-Secret-77"})

	// Reset by email.
	fb := newBrowser(t, ts.issuer)
	fb.submit(fb.followLink(fb.get(r.authURL().url), "Forgot your password?"), map[string]string{"email": "grace@example.com"})
	link := waitMail(t, smtp, "grace@example.com").Link(ts.issuer + "/reset")
	if p := fb.submit(fb.get(link), map[string]string{"password": "Brand-New-Secret-9"}); p.status != http.StatusOK {
		t.Fatalf("reset: status %d", p.status)
	}

	// Administrator actions.
	ts.cli("", "users", "set-role", "grace@example.com", "ADMIN")
	ts.cli("", "clients", "rotate-secret", app.ClientID)

	// The reset request is recorded in the background: wait for it.
	var list []auditJSON
	deadline := time.Now().Add(10 * time.Second)
	for {
		list = ts.auditList()
		if len(findAudit(list, storage.AuditResetRequested)) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	type want struct {
		action, actor, subject, ip, clientID string
		n                                    int
		detail                               map[string]string
	}
	const browserIP = "127.0.0.1"
	for _, w := range []want{
		{storage.AuditClientCreated, "cli", app.ClientID, "", app.ClientID, 1, nil},
		{storage.AuditUserCreated, "cli", user.ID, "", "", 1, map[string]string{"role": "USER"}},
		{storage.AuditSignIn, user.ID, user.ID, browserIP, app.ClientID, 1, nil},
		{storage.AuditGrantRevoked, "system", user.ID, browserIP, app.ClientID, 1, map[string]string{"reason": "refresh_token_reused"}},
		{storage.AuditSessionEnded, user.ID, user.ID, browserIP, app.ClientID, 1, map[string]string{"via": "end_session"}},
		{storage.AuditLockout, "system", user.ID, browserIP, app.ClientID, 1, nil},
		{storage.AuditResetRequested, "anonymous", user.ID, browserIP, "", 1, nil},
		{storage.AuditResetCompleted, user.ID, user.ID, browserIP, "", 1, nil},
		{storage.AuditUserRoleChanged, "cli", user.ID, "", "", 1, map[string]string{"from": "USER", "to": "ADMIN"}},
		{storage.AuditClientSecretRotated, "cli", app.ClientID, "", app.ClientID, 1, nil},
	} {
		got := findAudit(list, w.action)
		if len(got) != w.n {
			t.Errorf("%s: %d events, want %d", w.action, len(got), w.n)
			continue
		}
		ev := got[0]
		if ev.Actor != w.actor || ev.Subject != w.subject || ev.IP != w.ip || ev.ClientID != w.clientID || ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("%s: %+v; want actor %s subject %s ip %q client %q", w.action, ev, w.actor, w.subject, w.ip, w.clientID)
		}
		if w.ip != "" && !strings.HasPrefix(ev.UserAgent, "Go-http-client/") {
			t.Errorf("%s: user agent %q", w.action, ev.UserAgent)
		}
		for k, v := range w.detail {
			if ev.Detail[k] != v {
				t.Errorf("%s: detail %s = %q, want %q", w.action, k, ev.Detail[k], v)
			}
		}
	}
	// Six failed sign-ins on grace's address: five wrong passwords, one refused by the lock.
	failed := findAudit(ts.auditList("--user", "Grace@Example.com"), storage.AuditSignInFailed)
	reasons := map[string]int{}
	for _, ev := range failed {
		reasons[ev.Detail["reason"]]++
		if ev.Actor != "anonymous" || ev.Subject != user.ID || ev.IP != browserIP {
			t.Errorf("failed sign-in: %+v", ev)
		}
	}
	if reasons["invalid_credentials"] != 5 || reasons["locked"] != 1 || len(failed) != 6 {
		t.Errorf("failed sign-ins by reason: %v", reasons)
	}
	// The unknown address is found by --user, under a hash that is not the address.
	unknown := ts.auditList("--user", "nobody@example.com")
	if len(unknown) != 1 || unknown[0].Action != storage.AuditSignInFailed || !strings.HasPrefix(unknown[0].Subject, "email:") {
		t.Fatalf("events of the unknown address: %+v", unknown)
	}
	raw, _ := json.Marshal(ts.auditList())
	if s := strings.ToLower(string(raw)); strings.Contains(s, "nobody") || strings.Contains(s, "typed-secret") ||
		strings.Contains(s, strings.ToLower(testPassword)) || strings.Contains(s, "brand-new-secret") {
		t.Errorf("the trail holds a typed address or password:\n%s", raw)
	}

	// --user narrows to the account, --limit and --before page, --since bounds.
	for _, ev := range ts.auditList("--user", "grace@example.com") {
		if ev.Subject != user.ID {
			t.Errorf("--user grace: event about %s", ev.Subject)
		}
	}
	all := ts.auditList()
	page1 := ts.auditList("--limit", "3")
	page2 := ts.auditList("--limit", "3", "--before", page1[2].ID)
	if len(page1) != 3 || len(page2) != 3 || page1[0].ID != all[0].ID || page2[0].ID != all[3].ID {
		t.Errorf("paging: page1 %d, page2 %d events, out of order", len(page1), len(page2))
	}
	if n := len(ts.auditList("--since", "1h")); n != len(all) {
		t.Errorf("--since 1h: %d events, want %d", n, len(all))
	}
	table := ts.cli("", "audit", "list", "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], all[0].Action) {
		t.Errorf("table:\n%s", table)
	}
	if out, errOut, code := runCLI(ts.getenv, "", "audit", "list", "--user", ""); code == 0 || out != "" || !strings.Contains(errOut, "--user") {
		t.Errorf("audit list --user \"\": exit %d stdout %q stderr %q, want a refusal", code, out, errOut)
	}
	if _, errOut, code := runCLI(ts.getenv, "", "audit", "list", "--before", "no-such-id"); code == 0 || !strings.Contains(errOut, "no such event") {
		t.Errorf("unknown --before: exit %d, %q", code, errOut)
	}
	// --action and --actor narrow as the console's filters do (one service).
	for _, ev := range ts.auditList("--action", storage.AuditSignInFailed) {
		if ev.Action != storage.AuditSignInFailed {
			t.Errorf("--action sign_in_failed: event %s", ev.Action)
		}
	}
	byGrace := ts.auditList("--actor", "grace@example.com")
	if len(byGrace) == 0 {
		t.Error("--actor grace: no events")
	}
	for _, ev := range byGrace {
		if ev.Actor != user.ID {
			t.Errorf("--actor grace: event by %s", ev.Actor)
		}
	}
	if _, errOut, code := runCLI(ts.getenv, "", "audit", "list", "--action", "drop_tables"); code == 0 || !strings.Contains(errOut, "not an audit action") {
		t.Errorf("unknown --action: exit %d, %q", code, errOut)
	}
	if g := findAudit(list, storage.AuditGrantRevoked); len(g) == 1 && g[0].Detail["grant_id"] == "" {
		t.Errorf("grant_revoked names no grant: %+v", g[0])
	}
}

// testAuditRetention: the cleanup job deletes events older than
// GATEHOUSE_AUDIT_RETENTION (default 90 days) and keeps newer ones.
func testAuditRetention(t *testing.T, ts *testServer) {
	before := ts.auditList("--limit", "10000")
	if len(before) == 0 {
		t.Fatal("no events to expire")
	}
	ts.clock.advance(2160*time.Hour + time.Hour)
	// One event after the jump, which the retention must keep.
	ts.createUser("heidi@example.com", testPassword)
	app := ts.createClient("--redirect-uri", redirectA)
	newRP(t, ts, app).signIn(newBrowser(t, ts.issuer), "heidi@example.com", testPassword)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ts.app.cleanup(ctx, time.Hour) }() // a pass now, like the server's
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	var after []auditJSON
	for {
		after = ts.auditList("--limit", "10000")
		if len(after) < len(before) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The CLI stamps events with the real clock, the server with the
	// advanced one: only the server's sign-in is younger than 90 days now.
	if len(after) != 1 || after[0].Action != storage.AuditSignIn {
		t.Fatalf("after retention: %+v", after)
	}
}

// TestAuditRetentionZeroKeepsForever: GATEHOUSE_AUDIT_RETENTION=0 turns the
// expiry off.
func TestAuditRetentionZeroKeepsForever(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_AUDIT_RETENTION": "0"})
	ts.createUser("ivan@example.com", testPassword)
	ts.clock.advance(10 * 365 * 24 * time.Hour)
	if err := ts.app.expireAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if list := ts.auditList(); len(list) != 1 || list[0].Action != storage.AuditUserCreated {
		t.Fatalf("events: %+v", list)
	}
	if _, errOut, code := runCLI(func(k string) string {
		if k == "GATEHOUSE_AUDIT_RETENTION" {
			return "-1h"
		}
		return ts.getenv(k)
	}, "", "audit", "list"); code == 0 || !strings.Contains(errOut, "GATEHOUSE_AUDIT_RETENTION") {
		t.Errorf("negative retention: exit %d, %q", code, errOut)
	}
}

// TestAuditListUserSpansTheAccount: `audit list --user EMAIL` shows what
// happened to an address before it had an account (recorded under its
// pseudonym) together with what happened to the account.
func TestAuditListUserSpansTheAccount(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	b := newBrowser(t, ts.issuer)
	p := b.get(newRP(t, ts, app).authURL().url)
	if p = b.submit(p, map[string]string{"email": "later@example.com", "password": "Wrong-Passw0rd"}); p.status != http.StatusBadRequest {
		t.Fatalf("sign-in with an unknown address: %d", p.status)
	}
	ts.createUser("later@example.com", testPassword)
	list := ts.auditList("--user", "later@example.com")
	if len(findAudit(list, storage.AuditSignInFailed)) != 1 || len(findAudit(list, storage.AuditUserCreated)) != 1 {
		t.Fatalf("audit list --user after registering the address: %+v, want the earlier failed sign-in and the creation", list)
	}
}
