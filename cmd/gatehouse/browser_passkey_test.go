package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/authn"
)

// TestBrowserPasskeys walks passkeys and second factors in a real, headless
// Chromium whose WebAuthn requests go to a virtual authenticator (the
// DevTools protocol's WebAuthn domain: CTAP2, built in, resident keys, user
// verification that always succeeds). The issuer is http://localhost:PORT,
// since an IP address cannot be a WebAuthn relying party ID.
//
// A user with a password signs in through the example app, adds a passkey
// on the account page (and gets recovery codes), signs in with the passkey
// alone through the app (acr phishing-resistant), sets up an authenticator
// app, then signs in with the password and uses the passkey as the second
// factor. Removing the passkey after more than five minutes asks to confirm
// it's you first. An administrator, who must have two factors, creates a
// passkey while signing in. The page's console must stay free of exceptions and
// Content-Security-Policy violations throughout: the passkey script runs
// under script-src 'self' and connect-src 'self'.
func TestBrowserPasskeys(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()

	ln := listenLoopback(t)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, ln, serverVars(t, "http://localhost:"+port, map[string]string{
		"GATEHOUSE_MFA_REQUIRED_ROLES": "ADMIN",
	}), nil)
	iss := ts.issuer
	app := newExampleApp(t)
	client := ts.createClient("--name", "Example App",
		"--redirect-uri", app.redirectURI(),
		"--post-logout-redirect-uri", app.postLogoutURI())
	app.configure(t, iss, client)
	const (
		email    = "hedy@example.com"
		password = "Frequency-Hop-1942"
	)
	ts.createUser(email, password)
	const admin = "grace@example.com"
	ts.createUser(admin, password, "--role", "ADMIN")

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, tab := startBrowser(t, chromium)
	console := watchConsole(t, tab)
	authenticator := addVirtualAuthenticator(t, tab)
	w := &walker{t: t, ctx: tab, shots: shots}
	checkConsole := func(where string) {
		t.Helper()
		if bad := console.problems(); len(bad) > 0 {
			w.fatalf("%s: the browser console reports:\n%s", where, strings.Join(bad, "\n"))
		}
	}
	signedIn := func(wantACR string) []string {
		t.Helper()
		w.expectText("#email", email)
		if got := w.text("#acr"); got != wantACR {
			t.Errorf("ID token acr = %q, want %q", got, wantACR)
		}
		return strings.Fields(w.text("#amr"))
	}

	// 1. Sign in with the password through the app. The sign-in page
	// offers a passkey too (the script shows its form) and has a
	// conditional request pending (passkeys in the email field's
	// autofill). The button replaces that request; with no passkey yet,
	// the browser refuses and the page says so.
	conditionalBegun := w.awaitResponse(iss + "/login/passkey/begin")
	resp := w.open(app.srv.URL + "/login")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.expectVisible("#passkey-signin")
	conditionalBegun() // the autofill request asked for its options
	w.click("#passkey-signin")
	w.waitVisible("#passkey-signin ~ [data-webauthn-error]")
	w.expectText("#passkey-signin ~ [data-webauthn-error]", "The passkey request was cancelled or timed out. Try again.")
	w.fill("Email", email)
	w.fill("Password", password)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	if amr := signedIn(authn.ACRSingleFactor); !slices.Equal(amr, []string{"pwd"}) {
		t.Errorf("password sign-in: amr = %q, want [pwd]", amr)
	}
	checkConsole("password sign-in")

	// 2. Add a passkey on the account page. It is the first second factor,
	// so recovery codes come with it, shown once.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText("#two-step", "Off: add an authenticator app or a passkey")
	w.expectVisible("#add-passkey")
	w.fill("Add a passkey", "Test key")
	resp = w.press("Add a passkey")
	w.expectPage(resp, http.StatusOK, iss+"/account/recovery-codes", "Save your recovery codes")
	if n := w.count("#recovery-codes li"); n != 10 {
		t.Errorf("the recovery codes page shows %d codes, want 10", n)
	}
	w.shot("recovery-codes")
	w.shotNarrow("recovery-codes")
	resp = w.clickLink("I have saved them")
	w.expectPage(resp, http.StatusOK, iss+"/account?notice=passkey-added", "Your account")
	creds := authenticatorCredentials(t, tab, authenticator)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %+v, want one discoverable credential for localhost", creds)
	}
	// The virtual authenticator's credentials are not backup eligible:
	// device-bound.
	w.expectText(`li[id^="passkey-"]`, "Test key passkey · this device only · added")
	w.expectText(`li[id^="passkey-"]`, "last used never")
	w.expectText("#factor-recovery", "10 left")
	w.expectText("#two-step", "On: you confirm it is you")
	w.shot("account-passkey")
	w.shotNarrow("account-passkey")
	checkConsole("adding a passkey")

	// 3. Passwordless: signed out, the sign-in page's "Sign in with a
	// passkey" alone gets the user into the app, with two factors
	// (possession and user verification), phishing-resistant. From here
	// on the browser reports that it has no conditional mediation, as
	// the virtual authenticator would otherwise answer the sign-in page's
	// autofill request at once (step 4 lets it).
	noConditional := w.hideConditionalMediation()
	resp = w.open(app.srv.URL + "/signout")
	w.expectPage(resp, http.StatusOK, app.postLogoutURI()+"?", "Signed out")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.expectVisible("#passkey-signin")
	w.shot("signin-passkey")
	w.shotNarrow("signin-passkey")
	resp = w.press("Sign in with a passkey")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	amr := signedIn(authn.ACRPhishingResistant)
	if !slices.Contains(amr, "hwk") || !slices.Contains(amr, "user") || !slices.Contains(amr, "mfa") || slices.Contains(amr, "pwd") {
		t.Errorf("passkey sign-in: amr = %q, want hwk, user and mfa without pwd", amr)
	}
	checkConsole("passwordless sign-in")

	// 4. The autofill path: with conditional mediation, the virtual
	// authenticator picks the passkey offered in the email field's
	// autofill as soon as the sign-in page asks, which completes the
	// sign-in without a click.
	w.showConditionalMediation(noConditional)
	resp = w.open(app.srv.URL + "/signout")
	w.expectPage(resp, http.StatusOK, app.postLogoutURI()+"?", "Signed out")
	resp = w.clickLink("Sign in with Gatehouse")
	// The sign-in page leaves at once, so only its response is checked.
	if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, iss+"/login?") {
		t.Fatalf("the app's sign-in link led to %d %s", resp.Status, resp.URL)
	}
	w.waitVisible("#acr") // the example app's page
	if loc := w.location(); !strings.HasPrefix(loc, app.redirectURI()+"?") {
		w.fatalf("after the autofill sign-in the browser shows %s", loc)
	}
	amr = signedIn(authn.ACRPhishingResistant)
	if !slices.Contains(amr, "hwk") || !slices.Contains(amr, "user") {
		t.Errorf("autofill sign-in: amr = %q, want hwk and user", amr)
	}
	w.hideConditionalMediation()
	checkConsole("sign-in from autofill")

	// 5. The account page (this session, signed in with the passkey) now
	// says when it was used; set up an authenticator app as well.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	if got := w.text(`li[id^="passkey-"]`); strings.Contains(got, "last used never") {
		t.Errorf("after a sign-in with it, the passkey shows %q", got)
	}
	resp = w.load("follow Set up", chromedp.Click("#setup-totp"))
	w.expectPage(resp, http.StatusOK, iss+"/account/totp", "Set up an authenticator app")
	if ok := w.imageLoaded(".qr img"); !ok {
		t.Errorf("the QR code image did not load")
	}
	secret := strings.ReplaceAll(w.textContent("#totp-secret"), " ", "")
	if len(secret) < 16 || !strings.HasPrefix(w.textContent("#totp-uri"), "otpauth://totp/") {
		t.Fatalf("TOTP setup shows secret %q and URI %q", secret, w.textContent("#totp-uri"))
	}
	w.shot("totp-setup")
	w.shotNarrow("totp-setup")
	code, err := totp.GenerateCode(secret, ts.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	w.fill("Enter the 6-digit code the app shows", code)
	resp = w.press("Turn on")
	w.expectPage(resp, http.StatusOK, iss+"/account?notice=totp-added", "Your account")
	w.expectText("#factor-totp", "Authenticator app on")
	checkConsole("authenticator app setup")

	// 6. The passkey as a second factor: the password alone leads to the
	// second-factor page, which offers the passkey and the app's code.
	resp = w.open(app.srv.URL + "/signout")
	w.expectPage(resp, http.StatusOK, app.postLogoutURI()+"?", "Signed out")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", email)
	w.fill("Password", password)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, iss+"/login/factor?", "Two-step verification")
	w.expectText(".lead", "to continue to Example App as "+email)
	w.expectVisible("#use-passkey")
	w.value("Code from your authenticator app")
	w.shot("second-factor")
	w.shotNarrow("second-factor")
	resp = w.press("Use a passkey")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	amr = signedIn(authn.ACRPhishingResistant)
	if !slices.Contains(amr, "pwd") || !slices.Contains(amr, "hwk") || !slices.Contains(amr, "mfa") {
		t.Errorf("password and passkey: amr = %q, want pwd, hwk and mfa", amr)
	}
	checkConsole("passkey as second factor")

	// 7. Removing the passkey more than five minutes after signing in asks
	// to confirm it's you (here with the passkey), then works.
	ts.clock.advance(6 * time.Minute)
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	const removePasskey = `//li[starts-with(@id,"passkey-")]//button[normalize-space()="Remove"]`
	resp = w.load("remove the passkey", chromedp.Click(removePasskey))
	w.expectPage(resp, http.StatusOK, iss+"/account/reauth?", "Confirm it's you")
	w.value("Password")
	w.expectVisible(`form[action="/account/reauth/passkey"] button`)
	w.shot("reauth")
	resp = w.press("Use a passkey")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText(`li[id^="passkey-"]`, "Test key")
	resp = w.load("remove the passkey", chromedp.Click(removePasskey))
	w.expectPage(resp, http.StatusOK, iss+"/account?notice=passkey-removed", "Your account")
	if n := w.count(`li[id^="passkey-"]`); n != 0 {
		t.Errorf("after removing it, the account page lists %d passkeys", n)
	}
	w.expectText("#factor-totp", "Authenticator app on")
	checkConsole("removing the passkey")

	// 8. An administrator (GATEHOUSE_MFA_REQUIRED_ROLES=ADMIN) with a
	// password only must enrol a second factor before the app gets a
	// code: the setup page creates a passkey, shows the recovery codes,
	// and the sign-in continues to the app with two factors.
	resp = w.open(app.srv.URL + "/signout")
	w.expectPage(resp, http.StatusOK, app.postLogoutURI()+"?", "Signed out")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", admin)
	w.fill("Password", password)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, iss+"/account/security/setup?", "Set up two-step verification")
	w.expectVisible("#add-passkey")
	w.shot("security-setup")
	w.fill("Name for this passkey", "Admin key")
	resp = w.press("Create a passkey")
	w.expectPage(resp, http.StatusOK, iss+"/account/recovery-codes", "Save your recovery codes")
	resp = w.clickLink("I have saved them")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", admin)
	if got := w.text("#acr"); got != authn.ACRMFA {
		t.Errorf("after enrolling a passkey while signing in, acr = %q, want %q", got, authn.ACRMFA)
	}
	if amr := strings.Fields(w.text("#amr")); !slices.Contains(amr, "pwd") || !slices.Contains(amr, "hwk") || !slices.Contains(amr, "mfa") {
		t.Errorf("after enrolling a passkey while signing in, amr = %q, want pwd, hwk and mfa", amr)
	}
	if creds := authenticatorCredentials(t, tab, authenticator); len(creds) != 2 {
		t.Errorf("the authenticator holds %d credentials, want 2 (one was removed from the account only)", len(creds))
	}
	checkConsole("enrolling during sign-in")

	t.Logf("passkey browser walk done in %s; screenshots in %s: %v", time.Since(start).Round(time.Millisecond), shots, w.saved)
}

// addVirtualAuthenticator gives the tab a platform authenticator that
// holds discoverable credentials and verifies the user without asking.
func addVirtualAuthenticator(t *testing.T, tab context.Context) webauthn.AuthenticatorID {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

func authenticatorCredentials(t *testing.T, tab context.Context, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// consoleWatch collects what the tab's console reports that a walk must
// not see: uncaught exceptions and unhandled rejections, errors the page's
// script logs, and the browser's security messages (CSP violations).
type consoleWatch struct {
	mu  sync.Mutex
	bad []string
}

func watchConsole(t *testing.T, tab context.Context) *consoleWatch {
	t.Helper()
	c := &consoleWatch{}
	ctx, cancel := context.WithCancel(tab)
	msgs := chromedp.Console(ctx) // subscribed from here on
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			// CSP violations come as "security" entries (and a refused
			// fetch also as a "javascript" one); network errors (the
			// 4xx pages the walk visits on purpose) are left out.
			if m.IsException() || m.Source == "security" || m.Source == "javascript" ||
				strings.Contains(m.Text, "Content Security Policy") || (m.Source == "" && m.Type == chromedp.ConsoleError) {
				c.mu.Lock()
				c.bad = append(c.bad, m.String()+" ("+m.URL+")")
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (c *consoleWatch) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.bad)
}

// expectVisible checks that the element matching css is rendered (not
// hidden): the passkey forms are shown by the script only.
func (w *walker) expectVisible(css string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const e = document.querySelector(`+jsString(css)+`);
		return !!e && e.checkVisibility();
	})()`))
	if err != nil || !ok {
		w.fatalf("%s is not visible (%v)", css, err)
	}
}

// textContent is the text of the first element matching css, shown or not.
func (w *walker) textContent(css string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const e = document.querySelector(`+jsString(css)+`);
		return e ? e.textContent.trim() : "";
	})()`))
	if err != nil {
		w.fatalf("text of %s: %v", css, err)
	}
	return s
}

// imageLoaded reports whether the image matching css loaded and decoded.
func (w *walker) imageLoaded(css string) bool {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const i = document.querySelector(`+jsString(css)+`);
		return !!i && i.decode().then(() => i.naturalWidth > 0, () => false);
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		w.fatalf("image %s: %v", css, err)
	}
	return ok
}

// click clicks the element matching css without waiting for a page.
func (w *walker) click(css string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		w.fatalf("click %s: %v", css, err)
	}
}

// waitVisible waits until an element matching css is shown, across
// navigations.
func (w *walker) waitVisible(css string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(css))); err != nil {
		w.fatalf("wait for %s: %v", css, err)
	}
}

// location is the address the tab shows.
func (w *walker) location() string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		w.fatalf("location: %v", err)
	}
	return loc
}

// awaitResponse returns a func that waits until the tab has received a
// response for url (from now on).
func (w *walker) awaitResponse(url string) func() {
	w.t.Helper()
	got := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(w.ctx)
	w.t.Cleanup(cancel)
	err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Response.URL == url {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		w.t.Fatalf("listen: %v", err)
	}
	return func() {
		w.t.Helper()
		defer cancel()
		select {
		case <-got:
		case <-time.After(stepTimeout):
			w.fatalf("no response for %s", url)
		}
	}
}

// hideConditionalMediation makes the pages loaded from now on see a
// browser without conditional mediation; it returns the script's ID for
// showConditionalMediation.
func (w *walker) hideConditionalMediation() cdppage.ScriptIdentifier {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) {
			Object.defineProperty(PublicKeyCredential, "isConditionalMediationAvailable", {value: () => Promise.resolve(false)});
		}`,
	})
	if err != nil {
		w.t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	return res.Identifier
}

func (w *walker) showConditionalMediation(id cdppage.ScriptIdentifier) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdppage.RemoveScriptToEvaluateOnNewDocument, cdppage.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: id}); err != nil {
		w.t.Fatalf("Page.removeScriptToEvaluateOnNewDocument: %v", err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
