package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
)

// Attacks on the second factors found in review (issue 10), end to end.

// TestMFARecoveryCodesDownload: "Download as text" on the recovery codes
// page is a data: URL holding the codes. html/template replaces a data: URL
// given as a plain string with "#ZgotmplZ", which downloads nothing.
func TestMFARecoveryCodesDownload(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	u := ts.createUser("dora@example.com", mfaPassword)
	b := newBrowser(t, ts.issuer)
	signInToAccount(t, ts, b, u.Email, mfaPassword)
	_, _, p := enrolTOTP(t, ts, b, "/account/totp")
	codes := recoveryCodes(t, p)

	list := elementNode(t, p, "recovery-codes")
	var href string
	for n := list.NextSibling; n != nil && href == ""; n = n.NextSibling {
		if n.Data == "a" && attr(n, "download") != "" {
			href = attr(n, "href")
		}
	}
	const prefix = "data:text/plain;charset=utf-8,"
	if !strings.HasPrefix(href, prefix) {
		t.Fatalf("the download link is %q, want a %s URL", href, prefix)
	}
	text, err := url.PathUnescape(strings.TrimPrefix(href, prefix))
	if err != nil {
		t.Fatalf("download link %q: %v", href, err)
	}
	for _, c := range codes {
		if !strings.Contains(text, c+"\n") {
			t.Errorf("the downloaded text lacks code %s:\n%s", c, text)
		}
	}
	if !strings.Contains(text, u.Email) {
		t.Errorf("the downloaded text does not name the account:\n%s", text)
	}
}

// TestMFAUpstreamLinkWaitsForSecondFactor: an upstream identity whose
// verified email matches an account is linked after that account's
// password. For a user with a second factor the password alone is not a
// sign-in, so it must not add a way in either: someone who has only the
// password (and an upstream account with the user's address) would leave a
// door that outlives a password change. The link waits for the second
// step, and is made once the step is done.
func TestMFAUpstreamLinkWaitsForSecondFactor(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(77, "mo", "mo@example.com", true))
	gh.SetApprover("mo")
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	u, secret := userWithTOTP(t, ts, "mo@example.com")

	// The attacker: GitHub, then the password, then stops at the code.
	b := newBrowser(t, ts.issuer)
	_, p := r.signInPage(b)
	got := b.viaGitHub(p)
	if got.status != http.StatusOK || !strings.Contains(got.body, "sign in with your password to link GitHub") {
		t.Fatalf("GitHub with the address of an account: status %d\n%s", got.status, got.body)
	}
	p = b.submit(got, map[string]string{"email": u.Email, "password": mfaPassword})
	expectFactorPage(t, p)
	if l := ts.users()[u.Email].Linked; len(l) != 0 {
		t.Fatalf("linked after the password alone, before the second step: %+v", l)
	}
	// GitHub alone does not sign in (no link), and would still need the code.
	b2 := newBrowser(t, ts.issuer)
	_, p2 := r.signInPage(b2)
	if g := b2.viaGitHub(p2); g.location != nil || !strings.Contains(g.body, "sign in with your password to link GitHub") {
		t.Fatalf("GitHub after the abandoned link: status %d location %v\n%s", g.status, g.location, g.body)
	}

	// The user: the same steps, then the code: now it is linked.
	b3 := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b3)
	p = b3.submit(b3.viaGitHub(p), map[string]string{"email": u.Email, "password": mfaPassword})
	expectFactorPage(t, p)
	tok := r.exchange(ar, r.codeFrom(ar, b3.submitCode(p, ts.freshTOTPCode(secret))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	if l := ts.users()[u.Email].Linked; len(l) != 1 || l[0].Subject != "77" {
		t.Fatalf("after the password and the code: links %+v, want GitHub 77", l)
	}
}

// TestMFAReauthDoesNotRefreshTheSecondFactor: "Confirm it's you" takes the
// password alone (or a passkey) and opens the 5-minute window for account
// changes. It must not make an old second factor look fresh to apps: an
// app asking for two factors within the last 5 minutes (max_age=300,
// acr_values=mfa) would otherwise get a code for a session whose code was
// typed hours ago — whoever holds the session cookie and the password
// passes a fresh two-factor check without the second factor.
func TestMFAReauthDoesNotRefreshTheSecondFactor(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "ria@example.com")

	b := newBrowser(t, ts.issuer)
	ar, p := r.passwordStep(b, u.Email, mfaPassword)
	signedIn := ts.clock.now()
	tok := r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")

	ts.clock.advance(2 * time.Hour)
	p = b.get(ts.issuer + "/account/reauth?return=%2Faccount")
	if p = b.submit(p, map[string]string{"password": mfaPassword}); p.url.Path != "/account" || p.status != http.StatusOK {
		t.Fatalf("re-authentication: %s status %d", p.url, p.status)
	}
	// The window for account changes is open.
	if p := b.get(ts.issuer + "/account/totp"); p.url.Path != "/account/totp" || p.status != http.StatusOK {
		t.Fatalf("setup right after re-authentication: %s status %d", p.url, p.status)
	}

	fresh := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "300"), oauth2.SetAuthURLParam("acr_values", authn.ACRMFA)}
	ar = r.authURL(fresh...)
	p = b.get(ar.url)
	if p.location != nil {
		q := p.location.Query()
		if q.Get("code") != "" {
			tok := r.exchange(ar, q.Get("code"))
			t.Fatalf("max_age=300 with acr mfa, 2 hours after the code and right after a password re-authentication: a code, auth_time %v amr %v acr %v",
				tok.claims["auth_time"], tok.claims["amr"], tok.claims["acr"])
		}
		t.Fatalf("max_age=300: redirected to %v", p.location)
	}
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("max_age=300 after 2 hours: want the sign-in form, got %s status %d", p.url, p.status)
	}
	// A session's auth_time is still its sign-in's.
	ar = r.authURL()
	tok = r.exchange(ar, r.codeFrom(ar, b.get(ar.url)))
	if at, _ := tok.claims["auth_time"].(float64); int64(at) > signedIn.Unix()+5 {
		t.Errorf("auth_time after a re-authentication = %v, want the sign-in's %d", tok.claims["auth_time"], signedIn.Unix())
	}
}

// TestMFALockIsMailed: a lock of the second step means someone entered
// the password and then five wrong codes. The lock alone does not stop a
// patient guesser — it lifts after the lockout duration and five more
// guesses follow, 480 a day, about a 40% chance over a year of hitting one
// of the three codes accepted at a time — so the user is told at each lock,
// and can end it by changing the password (which ends every session).
func TestMFALockIsMailed(t *testing.T) {
	smtp := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"SMTP_URL": smtp.URL()})
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "lena@example.com")

	b := newBrowser(t, ts.issuer)
	_, p := r.passwordStep(b, u.Email, mfaPassword)
	wrong := ts.wrongTOTPCode(secret)
	for range 5 {
		p = b.submitCode(p, wrong)
	}
	expectRefused(t, p, http.StatusForbidden, wantStepLocked)
	m := waitMailSubject(t, smtp, u.Email, "Wrong codes were entered after your password", "someone has your password")
	for _, want := range []string{"5 wrong codes", "Forgot password", "15 minutes"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the lock mail does not say %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, wrong) || strings.Contains(m.HTML, wrong) {
		t.Errorf("the lock mail shows the code that was tried")
	}
}
