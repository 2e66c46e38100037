package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Real browsers' User-Agent headers, and the device the session list
// names for each.
const (
	uaChromeMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaFirefoxWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	devChromeMac    = "Chrome on macOS"
	devFirefoxWin   = "Firefox on Windows"
	devSafariIPhone = "Safari on iPhone"
)

// newBrowserAs is a browser that sends userAgent.
func newBrowserAs(t *testing.T, issuer, userAgent string) *browser {
	b := newBrowser(t, issuer)
	b.header = http.Header{"User-Agent": {userAgent}}
	return b
}

// userSessions runs `users sessions EMAIL --json`.
func (ts *testServer) userSessions(email string) []sessionJSON {
	ts.t.Helper()
	out := ts.cli("", "users", "sessions", email, "--json")
	var list []sessionJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		ts.t.Fatalf("users sessions --json printed %q: %v", out, err)
	}
	return list
}

// sessionRow is the session list's row for sid on p ("" if it is not
// listed).
func sessionRow(p *page, sid string) string {
	i := strings.Index(p.body, `<li id="session-`+sid+`"`)
	if i < 0 {
		return ""
	}
	end := strings.Index(p.body[i:], "</li>")
	if end < 0 {
		return p.body[i:]
	}
	return p.body[i : i+end]
}

// endSessionForm returns p with the "Sign out" form of session sid first,
// so browser.submit sends that one.
func endSessionForm(t *testing.T, p *page, sid string) *page {
	t.Helper()
	i := strings.Index(p.body, `name="session" value="`+sid+`"`)
	if i < 0 {
		t.Fatalf("no Sign out form for session %s on %s:\n%s", sid, p.url, p.body)
	}
	cp := *p
	cp.body = p.body[strings.LastIndex(p.body[:i], "<form"):]
	return &cp
}

// mustBeSignedOut checks that b's next visit to the account page asks it
// to sign in.
func mustBeSignedOut(t *testing.T, ts *testServer, b *browser, who string) {
	t.Helper()
	p := b.get(ts.issuer + "/account")
	if p.url.Path != "/login" || !strings.Contains(p.body, "Sign in") {
		t.Fatalf("%s: /account after its session was ended: %s status %d", who, p.url, p.status)
	}
}

// mustBeSignedIn checks that b still reaches its account page.
func mustBeSignedIn(t *testing.T, ts *testServer, b *browser, who string) *page {
	t.Helper()
	p := b.get(ts.issuer + "/account")
	if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "Your account") {
		t.Fatalf("%s: /account: %s status %d", who, p.url, p.status)
	}
	return p
}

// The account page lists where the user is signed in, and "Sign out" ends
// another browser's session as a sign-out there would: that browser must
// sign in again, the app's refresh token from it is refused and the app
// gets a logout token for it; this browser stays signed in. Another user's
// session ID, an unknown one and a post without the CSRF token end nothing.
func TestSessionListSignOut(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			a := ts.createClient("--name", "Notes", "--redirect-uri", "http://127.0.0.1:9/a")
			ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
			setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
			u := ts.createUser("list@example.com", "List-Passw0rd-1")
			ts.createUser("other@example.com", "Other-Passw0rd-1")
			r := newRP(t, ts, a)

			b1 := newBrowserAs(t, ts.issuer, uaChromeMac)
			b2 := newBrowserAs(t, ts.issuer, uaFirefoxWin)
			tok1 := r.exchange(r.signIn(b1, "list@example.com", "List-Passw0rd-1"))
			tok2 := r.exchange(r.signIn(b2, "list@example.com", "List-Passw0rd-1"))
			r.exchange(r.signIn(newBrowserAs(t, ts.issuer, uaSafariIPhone), "other@example.com", "Other-Passw0rd-1"))
			sid1, _ := tok1.claims["sid"].(string)
			sid2, _ := tok2.claims["sid"].(string)
			if sid1 == "" || sid2 == "" || sid1 == sid2 {
				t.Fatalf("sids %q %q", sid1, sid2)
			}

			// Both sessions, newest first, each with its device, address
			// and app; "This browser" on browser 1's own, which has no
			// Sign out button of its own.
			acct := mustBeSignedIn(t, ts, b1, "browser 1")
			row1, row2 := sessionRow(acct, sid1), sessionRow(acct, sid2)
			if row1 == "" || row2 == "" || strings.Index(acct.body, row2) > strings.Index(acct.body, row1) {
				t.Fatalf("session list lacks a session or is not newest first:\n%s", acct.body)
			}
			for _, c := range []struct{ row, device string }{{row1, devChromeMac}, {row2, devFirefoxWin}} {
				if !strings.Contains(c.row, c.device) || !strings.Contains(c.row, "127.0.0.1") || !strings.Contains(c.row, "Apps: Notes") {
					t.Errorf("row lacks %s, the address or the app:\n%s", c.device, c.row)
				}
			}
			if !strings.Contains(row1, "This browser") || strings.Contains(row2, "This browser") || strings.Count(acct.body, "This browser") != 1 {
				t.Errorf(`"This browser" must mark browser 1's session only:\n%s`, acct.body)
			}
			if strings.Contains(row1, `action="/account/sessions/end"`) || !strings.Contains(row2, `action="/account/sessions/end"`) {
				t.Errorf("Sign out must be offered for browser 2's session only:\n%s", acct.body)
			}

			// The CLI shows the same devices and the raw header.
			for _, s := range ts.userSessions("list@example.com") {
				want := map[string]string{sid1: devChromeMac, sid2: devFirefoxWin}[s.ID]
				ua := map[string]string{sid1: uaChromeMac, sid2: uaFirefoxWin}[s.ID]
				if s.Device != want || s.UserAgent != ua || s.IP != "127.0.0.1" || len(s.Apps) != 1 || s.Apps[0].Name != "Notes" {
					t.Errorf("users sessions: %+v", s)
				}
			}
			table := ts.cli("", "users", "sessions", "list@example.com")
			for _, want := range []string{sid1 + "\tactive\tdevice=" + devChromeMac + "\tip=127.0.0.1\t", sid2 + "\tactive\tdevice=" + devFirefoxWin + "\tip=127.0.0.1\t"} {
				if !strings.Contains(table, want) {
					t.Errorf("users sessions lacks %q:\n%s", want, table)
				}
			}
			others := ts.userSessions("other@example.com")
			if len(others) != 1 || others[0].Device != devSafariIPhone {
				t.Fatalf("other's sessions: %+v", others)
			}
			otherSid := others[0].ID

			// Without a valid CSRF token nothing ends.
			forged := b1.submit(endSessionForm(t, acct, sid2), map[string]string{"csrf": "forged"})
			if forged.status != http.StatusForbidden {
				t.Fatalf("post without a valid CSRF token: status %d", forged.status)
			}
			// Another user's session and an unknown one get the same
			// neutral answer, and nothing ends.
			var answers []string
			for _, id := range []string{otherSid, "no-such-session"} {
				p := b1.submit(endSessionForm(t, acct, sid2), map[string]string{"session": id})
				if p.status != http.StatusConflict || !strings.Contains(p.body, "That session has already ended.") {
					t.Fatalf("ending session %q: status %d\n%s", id, p.status, p.body)
				}
				answers = append(answers, p.body[strings.Index(p.body, `<p class="alert"`):strings.Index(p.body, `<dl class="profile">`)])
			}
			if answers[0] != answers[1] {
				t.Errorf("another user's session and an unknown one are answered differently:\n%s\n%s", answers[0], answers[1])
			}
			if len(ts.userSessions("other@example.com")) != 1 || len(ts.userSessions("list@example.com")) != 2 {
				t.Fatal("a refused post ended a session")
			}
			if out := ts.cli("", "logout-deliveries", "list", "--json"); out != "[]\n" {
				t.Fatalf("a refused post queued logout tokens: %s", out)
			}

			// Sign out browser 2 from browser 1.
			done := b1.submit(endSessionForm(t, acct, sid2), nil)
			if done.status != http.StatusOK || !strings.Contains(done.body, "Signed out of that session.") {
				t.Fatalf("sign out of browser 2: status %d\n%s", done.status, done.body)
			}
			if sessionRow(done, sid2) != "" || sessionRow(done, sid1) == "" || strings.Contains(done.body, "Sign out of all other sessions") {
				t.Fatalf("after signing out browser 2 the list should show browser 1's session alone:\n%s", done.body)
			}
			c := ra.next(t)
			if c["sub"] != u.ID || c["sid"] != sid2 {
				t.Fatalf("logout token sub %v sid %v, want %s %s", c["sub"], c["sid"], u.ID, sid2)
			}
			mustBeSignedOut(t, ts, b2, "browser 2")
			if _, err := r.refresh(tok2.token.RefreshToken); err == nil {
				t.Fatal("the app's refresh token from browser 2's sign-in still works")
			}
			mustBeSignedIn(t, ts, b1, "browser 1")
			if _, err := r.refresh(tok1.token.RefreshToken); err != nil {
				t.Fatalf("the app's refresh token from browser 1's sign-in: %v", err)
			}
			if len(ts.userSessions("other@example.com")) != 1 {
				t.Fatal("the other user's session ended")
			}
			ended := findAudit(ts.auditList("--user", "list@example.com"), "session_ended")
			if len(ended) != 1 || ended[0].Detail["via"] != "session_list" || ended[0].Detail["session_id"] != sid2 || ended[0].Actor != u.ID {
				t.Fatalf("audit: %+v", ended)
			}

			// A stale page's second click finds it gone.
			again := b1.submit(endSessionForm(t, acct, sid2), nil)
			if again.status != http.StatusConflict || !strings.Contains(again.body, "That session has already ended.") {
				t.Fatalf("ending an ended session: status %d", again.status)
			}
		})
	}
}

// "Sign out of all other sessions" ends every session but this browser's,
// and each one's app is told.
func TestSessionListSignOutOthers(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			a := ts.createClient("--name", "Notes", "--redirect-uri", "http://127.0.0.1:9/a")
			ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
			setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
			ts.createUser("three@example.com", "Three-Passw0rd-1")
			r := newRP(t, ts, a)
			var bs []*browser
			var sids []string
			for _, ua := range []string{uaChromeMac, uaFirefoxWin, uaSafariIPhone} {
				b := newBrowserAs(t, ts.issuer, ua)
				tok := r.exchange(r.signIn(b, "three@example.com", "Three-Passw0rd-1"))
				sid, _ := tok.claims["sid"].(string)
				bs, sids = append(bs, b), append(sids, sid)
			}

			acct := mustBeSignedIn(t, ts, bs[0], "browser 1")
			for i, dev := range []string{devChromeMac, devFirefoxWin, devSafariIPhone} {
				if !strings.Contains(sessionRow(acct, sids[i]), dev) {
					t.Fatalf("session %d is not listed as %s:\n%s", i+1, dev, acct.body)
				}
			}
			done := bs[0].submit(formByAction(t, acct, "/account/sessions/end-others"), nil)
			if done.status != http.StatusOK || !strings.Contains(done.body, "Signed out of every other session.") {
				t.Fatalf("sign out of all other sessions: status %d\n%s", done.status, done.body)
			}
			if sessionRow(done, sids[0]) == "" || sessionRow(done, sids[1]) != "" || sessionRow(done, sids[2]) != "" {
				t.Fatalf("the list should show this browser's session alone:\n%s", done.body)
			}
			told := map[any]bool{}
			for range 2 {
				told[ra.next(t)["sid"]] = true
			}
			if !told[sids[1]] || !told[sids[2]] {
				t.Fatalf("logout tokens for %v, want %s and %s", told, sids[1], sids[2])
			}
			mustBeSignedOut(t, ts, bs[1], "browser 2")
			mustBeSignedOut(t, ts, bs[2], "browser 3")
			mustBeSignedIn(t, ts, bs[0], "browser 1")
			if ended := findAudit(ts.auditList("--user", "three@example.com"), "session_ended"); len(ended) != 2 {
				t.Fatalf("audit: %+v", ended)
			}
		})
	}
}
