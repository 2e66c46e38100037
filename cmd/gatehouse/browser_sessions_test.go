package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserWalkSessions walks the account page's session list in a real,
// headless Chromium: the user signed in on a Windows PC and an iPhone
// earlier (two more browsers, with apps), then in Chromium through the
// example app. Behind a trusted proxy, each session shows the address the
// proxy reported. The list shows the three, this browser marked; "Sign out"
// ends the iPhone's session and the page says so. Screenshots:
// account-sessions(-narrow), account-session-ended.
func TestBrowserWalkSessions(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()

	// Loopback is the "proxy": each browser says where it is through
	// X-Forwarded-For, as a reverse proxy would (documentation addresses).
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1/32"})
	app := newExampleApp(t)
	client := ts.createClient("--name", "Example App",
		"--redirect-uri", app.redirectURI(),
		"--post-logout-redirect-uri", app.postLogoutURI())
	app.configure(t, ts.issuer, client)
	wiki := ts.createClient("--name", "Team Wiki", "--redirect-uri", "http://127.0.0.1:9/wiki")
	calendar := ts.createClient("--name", "Calendar", "--redirect-uri", "http://127.0.0.1:9/calendar")
	const (
		email    = "ada@example.com"
		password = "Lantern-Orbit-42"
	)
	ts.createUser(email, password, "--name", "Ada Lovelace")

	// Earlier sign-ins elsewhere: a Windows PC this morning (the wiki), an
	// iPhone an hour ago (the wiki and the calendar in one session).
	pc := newBrowserAs(t, ts.issuer, uaFirefoxWin)
	pc.header.Set("X-Forwarded-For", "203.0.113.54")
	signInTo := func(b *browser, c createdClient) {
		r := newRP(t, ts, c)
		r.exchange(r.signIn(b, email, password)) // the app now holds tokens of the session
	}
	signInTo(pc, wiki)
	ts.clock.advance(5 * time.Hour)
	phone := newBrowserAs(t, ts.issuer, uaSafariIPhone)
	phone.header.Set("X-Forwarded-For", "198.51.100.23")
	signInTo(phone, wiki)
	signInTo(phone, calendar)
	phoneSid := ts.userSessions(email)[0].ID
	ts.clock.advance(time.Hour)

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, tab := startBrowser(t, chromium)
	w := &walker{t: t, ctx: tab, shots: shots}
	iss := ts.issuer
	// Chromium says it is Chrome on a Mac, behind the same proxy.
	if err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: uaChromeMac}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": "192.0.2.17"}})
		return err
	})); err != nil {
		t.Fatalf("browser headers: %v", err)
	}

	// 1. Sign in through the app in this browser.
	resp := w.open(app.srv.URL + "/")
	w.expectPage(resp, http.StatusOK, app.srv.URL, "Welcome")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", email)
	w.fill("Password", password)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")

	// 2. The account page lists the three sessions, newest first, with
	// their devices, addresses and apps; this one is marked and has no
	// Sign out button of its own.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	if n := w.count("#sessions li"); n != 3 {
		w.fatalf("%d sessions listed, want 3", n)
	}
	for i, c := range []struct{ device, ip string }{
		{devChromeMac + " This browser", "192.0.2.17"},
		{devSafariIPhone, "198.51.100.23"},
		{devFirefoxWin, "203.0.113.54"},
	} {
		row := fmt.Sprintf("#sessions li:nth-child(%d)", i+1)
		if got := w.text(row); !strings.HasPrefix(got, c.device+" Signed in ") || !strings.Contains(got, " from "+c.ip+" Last active ") {
			w.fatalf("session %d reads %q, want %s from %s", i+1, got, c.device, c.ip)
		}
	}
	w.expectText("#sessions li:nth-child(1)", "Apps: Example App")
	w.expectText("#sessions li:nth-child(2)", "Apps: Calendar, Team Wiki")
	w.expectText("#sessions li:nth-child(3)", "Apps: Team Wiki")
	if n := w.count("#sessions li:nth-child(1) form"); n != 0 {
		w.fatalf("this browser's session has a Sign out button")
	}
	w.shot("account-sessions")
	w.shotNarrow("account-sessions")

	// 3. Sign the iPhone out.
	resp = w.load("sign out the iPhone", chromedp.Click(chromedp.CSS(`#session-`+phoneSid+` button`)))
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText(".notice", "Signed out of that session.")
	if n := w.count("#sessions li"); n != 2 || w.count("#session-"+phoneSid) != 0 {
		w.fatalf("after signing the iPhone out: %d sessions listed", n)
	}
	w.shot("account-session-ended")
	mustBeSignedOut(t, ts, phone, "the iPhone")
	mustBeSignedIn(t, ts, pc, "the PC")

	t.Logf("session walk done in %s; screenshots in %s: %v", time.Since(start).Round(time.Millisecond), shots, w.saved)
}
