package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
)

// screenshotDir is where TestBrowserWalk saves a picture of every Gatehouse
// page it visits: a temporary directory, so that a test run leaves the
// repository alone, or with UPDATE_SCREENSHOTS=1 docs/screenshots, which the
// README shows.
func screenshotDir(t *testing.T) string {
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		return filepath.Join("..", "..", "docs", "screenshots")
	}
	return t.TempDir()
}

// findChromium returns the system's Chromium; the test never downloads one.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const why = "no Chromium at /usr/bin/chromium or on PATH (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// startBrowser starts a headless Chromium (1000×900 window, its own profile)
// for at most two minutes and returns that deadline's context and a tab.
func startBrowser(t *testing.T, chromium string) (ctx, tab context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
	)
	t.Cleanup(cancelAlloc) // runs before the TempDir is removed: waits for the browser to exit
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	// The first Do starts the browser and opens the tab; they live as long as
	// tab, not as long as the step contexts derived from it below.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx, tab
}

// TestBrowserWalk walks the account flows in a real, headless Chromium against
// a real server, from an application that signs in with x/oauth2 and go-oidc:
// registration (with a refused weak password), consent, email verification
// through a link that arrived over SMTP, RP-initiated sign-out, sign-in,
// sign-out from Gatehouse, password reset by email, and sign-in with the new
// password after the old one is refused. The browser enforces what an HTTP
// client does not (CSP form-action on redirects after a form post, cookie
// attributes), and the test saves a screenshot of each Gatehouse page.
func TestBrowserWalk(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()

	mails := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"SMTP_URL": mails.URL()})
	app := newExampleApp(t)
	client := ts.createClient("--name", "Example App",
		"--redirect-uri", app.redirectURI(),
		"--post-logout-redirect-uri", app.postLogoutURI(),
		"--require-consent")
	app.configure(t, ts.issuer, client)

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, tab := startBrowser(t, chromium)

	w := &walker{t: t, ctx: tab, shots: shots}
	iss := ts.issuer
	const (
		name   = "Ada Lovelace"
		email  = "ada@example.com"
		first  = "Lantern-Orbit-42"
		second = "Maple-Thunder-83"
	)
	mailCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 15*time.Second) }

	// 1. The app's sign-in link leads to Gatehouse's sign-in page.
	resp := w.open(app.srv.URL + "/")
	w.expectPage(resp, http.StatusOK, app.srv.URL, "Welcome")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.expectText(".lead", "to continue to Example App")
	w.value("Email") // the inputs are labelled
	w.value("Password")
	w.shot("sign-in")

	// 2. Create an account; a weak password is refused first.
	resp = w.clickLink("Create account")
	w.expectPage(resp, http.StatusOK, iss+"/register?", "Create account")
	w.expectText("#password-hint", "At least 8 characters")
	w.shot("register")
	w.fill("Name", name)
	w.fill("Email", email)
	w.fill("Password", "password")
	resp = w.press("Create account")
	w.expectPage(resp, http.StatusBadRequest, iss+"/register", "Create account")
	w.expectText("#form-error", "Please correct the errors below.")
	w.expectText("#password-error", "common")
	if got := w.value("Name"); got != name {
		t.Errorf("after the error the name field holds %q, want %q", got, name)
	}
	if got := w.value("Email"); got != email {
		t.Errorf("after the error the email field holds %q, want %q", got, email)
	}
	w.shot("register-error")
	w.fill("Password", first)
	resp = w.press("Create account")

	// 3. The client requires consent; allowing it lands back in the app.
	w.expectPage(resp, http.StatusOK, iss+"/register", "Allow access?")
	w.expectText("main", "Example App would like to")
	w.expectText("main", "Signed in as "+email)
	w.shot("consent")
	resp = w.press("Allow")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", email)
	w.expectText("#name", name)
	w.expectText("#verified", "false")
	if got, want := w.text("#state"), app.latestState(); got != want {
		t.Errorf("app shows state %q, want %q", got, want)
	}

	// 4. The verification mail arrived over SMTP; its link verifies the address
	// and works once.
	mctx, mcancel := mailCtx()
	msg, err := mails.Wait(mctx, email)
	mcancel()
	if err != nil {
		t.Fatalf("verification mail: %v", err)
	}
	link := msg.Link(iss + "/verify-email?")
	if link == "" {
		t.Fatalf("verification mail %q has no link to %s/verify-email:\n%s", msg.Subject, iss, msg.Text)
	}
	resp = w.open(link)
	w.expectPage(resp, http.StatusOK, iss+"/verify-email?", "Email address verified")
	w.expectText(".lead", email+" is verified")
	w.shot("email-verified")
	resp = w.clickLink("Go to your account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText(".profile", email+" Verified")
	w.shot("account")
	resp = w.open(link)
	w.expectPage(resp, http.StatusBadRequest, iss+"/verify-email?", "Link expired")
	w.shot("verify-link-expired")

	// 5. RP-initiated sign-out: the app sends the ID token as hint, so
	// Gatehouse ends the session and returns at once.
	resp = w.open(app.srv.URL + "/")
	w.expectPage(resp, http.StatusOK, app.srv.URL, "Signed in")
	resp = w.clickLink("Sign out")
	w.expectPage(resp, http.StatusOK, app.postLogoutURI()+"?", "Signed out")
	if got, want := w.text("#state"), app.latestState(); got != want {
		t.Errorf("post-logout state = %q, want %q", got, want)
	}

	// 6. Signing in again asks for the password (the session ended), not for
	// consent (granted before), and the ID token now says verified.
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", email)
	w.fill("Password", first)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", email)
	w.expectText("#verified", "true")
	if got, want := w.text("#state"), app.latestState(); got != want {
		t.Errorf("app shows state %q, want %q", got, want)
	}

	// 7. Sign out at Gatehouse itself: without an ID token hint it asks first.
	resp = w.open(iss + "/end_session")
	w.expectPage(resp, http.StatusOK, iss+"/logout", "Sign out of all apps?")
	w.expectText(".lead", "You are signed in as "+email)
	w.shot("sign-out")
	resp = w.press("Sign out")
	w.expectPage(resp, http.StatusOK, iss+"/logout", "Signed out")
	w.shot("signed-out")

	// 8. Forgot the password: the reset link arrives by mail.
	resp = w.open(app.srv.URL + "/login")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	resp = w.clickLink("Forgot your password?")
	w.expectPage(resp, http.StatusOK, iss+"/forgot?", "Reset your password")
	w.shot("forgot")
	w.fill("Email", email)
	resp = w.press("Send reset link")
	w.expectPage(resp, http.StatusOK, iss+"/forgot", "Check your inbox")
	w.expectText(".lead", "If an account exists for that address")
	w.shot("forgot-sent")
	mctx, mcancel = mailCtx()
	msg, err = mails.Wait(mctx, email)
	mcancel()
	if err != nil {
		t.Fatalf("reset mail: %v", err)
	}
	link = msg.Link(iss + "/reset?")
	if link == "" {
		t.Fatalf("reset mail %q has no link to %s/reset:\n%s", msg.Subject, iss, msg.Text)
	}

	// 9. Set a new password (a too short one is refused first).
	resp = w.open(link)
	w.expectPage(resp, http.StatusOK, iss+"/reset?", "Set new password")
	w.expectText(".lead", "for "+email)
	w.shot("reset")
	w.fill("Password", "Short1")
	resp = w.press("Set new password")
	w.expectPage(resp, http.StatusBadRequest, iss+"/reset", "Set new password")
	w.expectText("#form-error", "Please correct the errors below.")
	w.shot("reset-error")
	w.fill("Password", second)
	resp = w.press("Set new password")
	w.expectPage(resp, http.StatusOK, iss+"/reset", "Your password has been changed")
	w.shot("reset-done")
	mctx, mcancel = mailCtx()
	msg, err = mails.Wait(mctx, email)
	mcancel()
	if err != nil {
		t.Fatalf("password-changed notice: %v", err)
	}
	t.Logf("notice after the reset: %q", msg.Subject)

	// 10. Back to the pending sign-in: the old password is refused, the new
	// one lands in the app.
	resp = w.clickLink("Sign in to continue")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", email)
	w.fill("Password", first)
	resp = w.press("Sign in")
	if resp.Status < 400 {
		w.fatalf("sign-in with the old password answered %d", resp.Status)
	}
	w.expectText("h1", "Sign in")
	w.expectText("#form-error", "Invalid email or password.")
	w.shot("sign-in-error")
	w.fill("Email", email)
	w.fill("Password", second)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", email)
	w.expectText("#verified", "true")
	if got, want := w.text("#state"), app.latestState(); got != want {
		t.Errorf("app shows state %q, want %q", got, want)
	}

	t.Logf("browser walk done in %s; screenshots in %s: %v", time.Since(start).Round(time.Millisecond), shots, w.saved)
}
