package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Second factors end to end (issue 10): a relying party built from go-oidc
// signs users in through the real pages; the authenticator app is played by
// pquerna/otp computing codes from the secret the setup page shows, at the
// server's clock (ts.clock), which the tests move forward for each new
// 30-second step and for the 5-minute re-authentication window. Passkeys
// are off here (an IP issuer cannot be a WebAuthn RP ID); they have their
// own browser tests.

const (
	mfaPassword = "Two-Steps-Ahead-7"
	totpStep    = 30 * time.Second

	// What the pages say (login/factors.go, login/account.go).
	wantCodeWrong     = "That code is not right."
	wantCodeUsed      = "That code was already used."
	wantRecoveryWrong = "That recovery code is not right, or it was already used."
	wantStepLocked    = "The second step is locked."
	wantWrongPassword = "The password is incorrect."
)

// TestMFATOTP is the main path, on every backend: enrolment on the account
// page, recovery codes shown once, the second step at the next sign-in (a
// spent code, a wrong code, the right code, the claims), recovery codes
// (single use, mailed, counted down), and the lockout of the second step.
func TestMFATOTP(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			smtp := mailtest.NewServer(t)
			ts := startServer(t, backend, map[string]string{"SMTP_URL": smtp.URL()})
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			testTOTPLifecycle(t, ts, smtp, app)
		})
	}
}

func testTOTPLifecycle(t *testing.T, ts *testServer, smtp *mailtest.Server, app createdClient) {
	ctx := context.Background()
	u := ts.createUser("tina@example.com", mfaPassword)
	r := newRP(t, ts, app)

	// Enrolment, on the account page after a password sign-in.
	b := newBrowser(t, ts.issuer)
	acct := signInToAccount(t, ts, b, u.Email, mfaPassword)
	if !strings.Contains(elementText(t, acct, "factor-totp"), "not set up") {
		t.Fatalf("account page before enrolment: %q", elementText(t, acct, "factor-totp"))
	}
	href := elementAttr(t, acct, "setup-totp", "href")
	if href != "/account/totp" {
		t.Fatalf(`"Set up" links to %q`, href)
	}
	// The confirmation is a form of this site: without its CSRF token it is refused.
	if p := b.postForm("/account/totp", url.Values{"code": {"123456"}}); p.status != http.StatusForbidden {
		t.Errorf("enrolment POST without a CSRF token: status %d", p.status)
	}
	secret, enrolCode, p := enrolTOTP(t, ts, b, href)
	if _, err := ts.app.store.GetTOTP(ctx, u.ID); err != nil {
		t.Fatalf("no authenticator app stored after enrolment: %v", err)
	}
	codes := recoveryCodes(t, p)
	if h := elementAttr(t, p, "codes-saved", "href"); h != "/account?notice=totp-added" {
		t.Errorf(`"I have saved them" links to %q`, h)
	}
	acct = b.get(ts.issuer + elementAttr(t, p, "codes-saved", "href"))
	if acct.url.Path != "/account" || strings.Contains(elementText(t, acct, "factor-totp"), "not set up") ||
		!strings.Contains(elementText(t, acct, "factor-recovery"), "10 left") {
		t.Fatalf("account page after enrolment (%s): totp %q, recovery %q", acct.url, elementText(t, acct, "factor-totp"), elementText(t, acct, "factor-recovery"))
	}
	// The codes are shown once.
	again := b.get(ts.issuer + "/account/recovery-codes")
	if again.url.Path != "/account" || strings.Contains(again.body, codes[0]) || strings.Contains(again.body, codes[9]) {
		t.Fatalf("second visit of the recovery codes page: %s (status %d) still shows codes", again.url, again.status)
	}
	waitMailSubject(t, smtp, u.Email, "sign-in method was added", "an authenticator app")
	added := findAudit(ts.auditList("--user", u.Email), storage.AuditFactorAdded)
	if methods := auditDetails(added, "method"); !slices.Contains(methods, "totp") || !slices.Contains(methods, "recovery_codes") {
		t.Errorf("factor_added events: %+v", added)
	}

	// The next sign-in, in a fresh browser: the password, then the code.
	b2 := newBrowser(t, ts.issuer)
	pwAt := ts.clock.now()
	ar, p := r.passwordStep(b2, u.Email, mfaPassword)
	expectFactorPage(t, p)
	if !strings.Contains(p.body, "You have 10 left.") {
		t.Errorf("second-factor page does not say 10 recovery codes are left:\n%s", p.body)
	}
	// The code typed at enrolment is spent: its time step was used.
	p = b2.submitCode(p, enrolCode)
	expectRefused(t, p, http.StatusBadRequest, wantCodeUsed)
	p = b2.submitCode(p, ts.wrongTOTPCode(secret))
	expectRefused(t, p, http.StatusBadRequest, wantCodeWrong)
	good := ts.freshTOTPCode(secret)
	tok := r.exchange(ar, r.codeFrom(ar, b2.submitCode(p, good)))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	// auth_time is the sign-in's (the password), not the code's 30 s later.
	if at, ok := tok.claims["auth_time"].(float64); !ok || int64(at) < pwAt.Unix()-1 || int64(at) > pwAt.Unix()+10 {
		t.Errorf("auth_time = %v, want the password step's time %d", tok.claims["auth_time"], pwAt.Unix())
	}
	// The same code in another sign-in, within its step: refused.
	bAgain := newBrowser(t, ts.issuer)
	_, p = r.passwordStep(bAgain, u.Email, mfaPassword)
	expectRefused(t, bAgain.submitCode(p, good), http.StatusBadRequest, wantCodeUsed)

	// A recovery code signs in once, is mailed and audited, and the count goes down.
	b3 := newBrowser(t, ts.issuer)
	ar, p = r.passwordStep(b3, u.Email, mfaPassword)
	tok = r.exchange(ar, r.codeFrom(ar, b3.submitRecovery(p, codes[0])))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	waitMailSubject(t, smtp, u.Email, "recovery code was used", "You have 9 recovery codes left.")
	used := findAudit(ts.auditList("--user", u.Email), storage.AuditRecoveryCodeUsed)
	if len(used) != 1 || used[0].Detail["remaining"] != "9" || used[0].Subject != u.ID || used[0].ClientID != app.ClientID {
		t.Errorf("recovery_code_used events: %+v", used)
	}
	b4 := newBrowser(t, ts.issuer)
	ar, p = r.passwordStep(b4, u.Email, mfaPassword)
	if !strings.Contains(p.body, "You have 9 left.") {
		t.Errorf("second-factor page after one recovery code does not say 9 are left:\n%s", p.body)
	}
	p = b4.submitRecovery(p, codes[0])
	expectRefused(t, p, http.StatusBadRequest, wantRecoveryWrong)
	if acct := b.get(ts.issuer + "/account"); !strings.Contains(elementText(t, acct, "factor-recovery"), "9 left") {
		t.Errorf("account page after one recovery code: %q", elementText(t, acct, "factor-recovery"))
	}
	// The right code (which also ends the run of failures) still works there.
	r.exchange(ar, r.codeFrom(ar, b4.submitCode(p, ts.freshTOTPCode(secret))))

	// Five wrong codes in a row lock the second step, and say so.
	b5 := newBrowser(t, ts.issuer)
	_, p = r.passwordStep(b5, u.Email, mfaPassword)
	wrong := ts.wrongTOTPCode(secret)
	for i := 1; i <= 5; i++ {
		p = b5.submitCode(p, wrong)
		if p.location != nil || (i < 5 && !strings.Contains(p.body, wantCodeWrong)) || (i == 5 && !strings.Contains(p.body, wantStepLocked)) {
			t.Fatalf("wrong code %d: status %d location %v\n%s", i, p.status, p.location, p.body)
		}
	}
	p = b5.submitCode(p, ts.freshTOTPCode(secret))
	expectRefused(t, p, http.StatusForbidden, wantStepLocked)
	p = b5.submitRecovery(p, codes[1])
	expectRefused(t, p, http.StatusForbidden, wantStepLocked)
	if n, err := ts.app.store.CountRecoveryCodes(ctx, u.ID); err != nil || n != 9 {
		t.Errorf("recovery codes after a refused (locked) use: %d %v, want 9: a locked step must not spend one", n, err)
	}
	// The password is not what is locked: it is still accepted, and leads
	// to the second step.
	b6 := newBrowser(t, ts.issuer)
	_, p = r.passwordStep(b6, u.Email, mfaPassword)
	expectFactorPage(t, p)
	// An admin's `users unlock` lifts the second step's lock too.
	ts.cli("", "users", "unlock", u.Email)
	ar = r.authURL()
	p = b5.get(ar.url)
	expectFactorPage(t, p)
	r.exchange(ar, r.codeFrom(ar, b5.submitCode(p, ts.freshTOTPCode(secret))))
	// Locked again for the rest of the test: five more wrong codes.
	ar = r.authURL()
	p = b6.get(ar.url)
	for range 5 {
		p = b6.submitCode(p, wrong)
	}
	expectRefused(t, p, http.StatusForbidden, wantStepLocked)
	// The lock ends after the lockout duration (15 minutes by default).
	ts.clock.advance(16 * time.Minute)
	ar = r.authURL()
	p = b6.get(ar.url)
	expectFactorPage(t, p) // the SSO session has the password: only the code is asked
	tok = r.exchange(ar, r.codeFrom(ar, b6.submitCode(p, ts.freshTOTPCode(secret))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
}

// TestMFALockKeyApart: the second step's failure count cannot be reached
// through the password form. Its key must not be something a submitted
// address can be, or anyone who knows a user's ID (the sub every app sees)
// could lock that user's second step with five bad passwords.
func TestMFALockKeyApart(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "kim@example.com")

	for _, key := range []string{"mfa:" + u.ID, "MFA:" + u.ID} {
		b := newBrowser(t, ts.issuer)
		for range 6 {
			b.submit(b.get(r.authURL().url), map[string]string{"email": key, "password": "Wrong-Passw0rd"})
		}
	}
	b := newBrowser(t, ts.issuer)
	ar, p := r.passwordStep(b, u.Email, mfaPassword)
	expectFactorPage(t, p)
	p = b.submitCode(p, ts.freshTOTPCode(secret))
	if p.location == nil {
		t.Fatalf("the right code after failed passwords for the address %q: status %d\n%s", "mfa:"+u.ID, p.status, p.body)
	}
	r.exchange(ar, r.codeFrom(ar, p))
}

// TestMFAStepUp: an app asking for two factors with acr_values gets them
// without the password being asked again — the code for a user who has an
// authenticator app, enrolment for a user who has none.
func TestMFAStepUp(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	askMFA := oauth2.SetAuthURLParam("acr_values", authn.ACRMFA)

	t.Run("enrolled user", func(t *testing.T) {
		u, secret := userWithTOTP(t, ts, "eli@example.com")
		b := newBrowser(t, ts.issuer)
		// The password, then the user leaves the second step: the SSO
		// session has one factor.
		_, p := r.passwordStep(b, u.Email, mfaPassword)
		expectFactorPage(t, p)
		ar := r.authURL(askMFA)
		p = b.get(ar.url)
		expectFactorPage(t, p)
		tok := r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret))))
		expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
		// The session remembers both factors: the next request asking for
		// them gets a code at once.
		ar = r.authURL(askMFA)
		tok = r.exchange(ar, r.codeFrom(ar, b.get(ar.url)))
		expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	})

	t.Run("user without factors enrols", func(t *testing.T) {
		u := ts.createUser("sam@example.com", mfaPassword)
		b := newBrowser(t, ts.issuer)
		tok := r.exchange(r.signIn(b, u.Email, mfaPassword))
		expectACR(t, tok, authn.ACRSingleFactor, "pwd")
		if amr := claimStrings(tok.claims["amr"]); !slices.Equal(amr, []string{"pwd"}) {
			t.Errorf("amr after a password = %v", amr)
		}
		authTime := tok.claims["auth_time"]

		ar := r.authURL(askMFA)
		p := b.get(ar.url)
		expectNoPassword(t, p)
		if p.url.Path != "/account/security/setup" || p.status != http.StatusOK || !strings.Contains(p.body, "<strong>App</strong> asks for a second step") {
			t.Fatalf("step-up without a factor: want the setup page, got %s (status %d)\n%s", p.url, p.status, p.body)
		}
		href := elementAttr(t, p, "setup-totp", "href")
		if !strings.HasPrefix(href, "/account/totp?authRequestID=") {
			t.Fatalf("setup page links to %q, want the authenticator app setup carrying the request", href)
		}
		_, _, p = enrolTOTP(t, ts, b, href)
		expectNoPassword(t, p)
		recoveryCodes(t, p)
		cont := elementAttr(t, p, "codes-saved", "href")
		if !strings.HasPrefix(cont, "/login?authRequestID=") {
			t.Fatalf(`"I have saved them" links to %q, want the pending sign-in`, cont)
		}
		p = b.get(ts.issuer + cont)
		expectNoPassword(t, p)
		tok = r.exchange(ar, r.codeFrom(ar, p))
		expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
		if tok.claims["auth_time"] != authTime {
			t.Errorf("auth_time after the step-up = %v, want the password's %v (it was not asked again)", tok.claims["auth_time"], authTime)
		}
	})
}

// TestMFAStepUpEnrolAfterWindow: enrolling needs a recent authentication,
// so a user who signed in more than 5 minutes before an app asks for two
// factors confirms the password first — and then still gets to enrol and
// back into the app's pending sign-in, not stranded on the account page.
// The request is a realistic size (a longer state, as apps that keep data
// in it send): the pending sign-in's handle is then well over 512 bytes,
// and must survive the detour through re-authentication and the recovery
// codes page.
func TestMFAStepUpEnrolAfterWindow(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	for _, state := range []string{randomString(t), strings.Repeat(randomString(t), 8), strings.Repeat("s", 2000)} {
		u := ts.createUser(fmt.Sprintf("old%d@example.com", len(state)), mfaPassword)
		b := newBrowser(t, ts.issuer)
		cookieLimit(t, b)
		r.exchange(r.signIn(b, u.Email, mfaPassword))
		ts.clock.advance(6 * time.Minute)

		ar := r.authURLState(state, oauth2.SetAuthURLParam("acr_values", authn.ACRMFA))
		p := b.get(ar.url)
		if p.url.Path != "/account/security/setup" {
			t.Fatalf("step-up without a factor: %s status %d", p.url, p.status)
		}
		p = b.get(ts.issuer + elementAttr(t, p, "setup-totp", "href"))
		if p.url.Path != "/account/reauth" {
			t.Fatalf("enrolment 6 minutes after sign-in: %s status %d, want the re-authentication page", p.url, p.status)
		}
		p = b.submit(p, map[string]string{"password": mfaPassword})
		if p.url.Path != "/account/totp" || p.url.Query().Get("authRequestID") == "" {
			t.Fatalf("state of %d bytes: after re-authentication %s status %d, want the authenticator app setup of the pending sign-in", len(state), p.url.Path, p.status)
		}
		_, _, p = enrolTOTP(t, ts, b, p.url.RequestURI())
		recoveryCodes(t, p)
		cont := elementAttr(t, p, "codes-saved", "href")
		if !strings.HasPrefix(cont, "/login?authRequestID=") {
			t.Fatalf("state of %d bytes: \"I have saved them\" links to %.40q, want the pending sign-in", len(state), cont)
		}
		tok := r.exchange(ar, r.codeFrom(ar, b.get(ts.issuer+cont)))
		expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	}
}

// TestMFAStepUpPhishingResistantKeepsRequest: a user with an authenticator
// app but no passkey, whose session has the password only, is asked by an
// app for a phishing-resistant sign-in. The code comes first (their own
// second step), then the passkey setup — all within the app's pending
// sign-in, never dropped for a sign-in to the account page. (The test ends
// where the passkey would be made; TestBrowserPasskeys makes them.)
func TestMFAStepUpPhishingResistantKeepsRequest(t *testing.T) {
	ln := listenLoopback(t) // a host name: passkeys are on
	ts := startServerOn(t, ln, serverVars(t, "http://localhost:"+portOf(ln.Addr().String()), nil), nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "pat@example.com")
	b := newBrowser(t, ts.issuer)
	_, p := r.passwordStep(b, u.Email, mfaPassword, oauth2.SetAuthURLParam("acr_values", authn.ACRPhishingResistant))
	expectFactorPage(t, p)
	handle := p.url.Query().Get("authRequestID")
	if handle == "" {
		t.Fatalf("second step of a sign-in asking for a passkey: %s, want the app's request kept", p.url)
	}
	p = b.submitCode(p, ts.freshTOTPCode(secret))
	if p.location != nil || p.url.Path != "/account/security/setup" || p.url.Query().Get("authRequestID") != handle {
		t.Fatalf("after the code: %s status %d location %v, want the setup page of the app's request", p.url, p.status, p.location)
	}
}

// TestMFARequiredRoles: with GATEHOUSE_MFA_REQUIRED_ROLES=ADMIN an admin
// without a factor enrols at sign-in before the app gets a code, and cannot
// remove the only one; a USER signs in with the password alone. After
// `users reset-mfa` the admin must enrol again.
func TestMFARequiredRoles(t *testing.T) {
	smtp := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_MFA_REQUIRED_ROLES": "ADMIN", "SMTP_URL": smtp.URL()})
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	admin := ts.createUser("ada@example.com", mfaPassword, "--role", "ADMIN")
	user := ts.createUser("ulf@example.com", mfaPassword)

	expectACR(t, r.exchange(r.signIn(newBrowser(t, ts.issuer), user.Email, mfaPassword)), authn.ACRSingleFactor, "pwd")

	b := newBrowser(t, ts.issuer)
	ar, p := r.passwordStep(b, admin.Email, mfaPassword)
	if p.location != nil || p.url.Path != "/account/security/setup" {
		t.Fatalf("admin without a factor: want the setup page, got %s status %d location %v", p.url, p.status, p.location)
	}
	_, _, p = enrolTOTP(t, ts, b, elementAttr(t, p, "setup-totp", "href"))
	recoveryCodes(t, p)
	tok := r.exchange(ar, r.codeFrom(ar, b.get(ts.issuer+elementAttr(t, p, "codes-saved", "href"))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")

	acct := b.get(ts.issuer + "/account")
	if !strings.Contains(acct.body, "Your role requires a second step") {
		t.Errorf("the admin's account page does not say the role requires a second step")
	}
	p = b.submit(formByAction(t, acct, "/account/totp/remove"), nil)
	if p.status != http.StatusConflict || !strings.Contains(p.body, "Your role requires two-step verification") {
		t.Errorf("removing the admin's only factor: status %d", p.status)
	}
	if _, err := ts.app.store.GetTOTP(context.Background(), admin.ID); err != nil {
		t.Errorf("the admin's only factor is gone: %v", err)
	}

	ts.cli("", "users", "reset-mfa", admin.Email)
	_, p = r.passwordStep(newBrowser(t, ts.issuer), admin.Email, mfaPassword)
	if p.location != nil || p.url.Path != "/account/security/setup" {
		t.Fatalf("admin after reset-mfa: want the setup page, got %s status %d location %v", p.url, p.status, p.location)
	}
}

// TestMFARequiredByClient: every sign-in into a client created with
// --require-mfa needs two factors (enrolment first when there is none, even
// with an SSO session); another client takes the password alone.
func TestMFARequiredByClient(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	strict := newRP(t, ts, ts.createClient("--name", "Console", "--redirect-uri", redirectA, "--require-mfa"))
	plain := newRP(t, ts, ts.createClient("--name", "Wiki", "--redirect-uri", redirectB))
	una := ts.createUser("una@example.com", mfaPassword)
	vic := ts.createUser("vic@example.com", mfaPassword)

	b := newBrowser(t, ts.issuer)
	expectACR(t, plain.exchange(plain.signIn(b, una.Email, mfaPassword)), authn.ACRSingleFactor, "pwd")
	ar := strict.authURL()
	p := b.get(ar.url)
	expectNoPassword(t, p)
	if p.url.Path != "/account/security/setup" || !strings.Contains(p.body, "<strong>Console</strong> asks for a second step") {
		t.Fatalf("SSO into the --require-mfa client without a factor: %s status %d location %v", p.url, p.status, p.location)
	}
	_, _, p = enrolTOTP(t, ts, b, elementAttr(t, p, "setup-totp", "href"))
	recoveryCodes(t, p)
	tok := strict.exchange(ar, strict.codeFrom(ar, b.get(ts.issuer+elementAttr(t, p, "codes-saved", "href"))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")

	// Another user: the plain client takes the password; the strict one
	// does not give a code for it.
	expectACR(t, plain.exchange(plain.signIn(newBrowser(t, ts.issuer), vic.Email, mfaPassword)), authn.ACRSingleFactor, "pwd")
	_, p = strict.passwordStep(newBrowser(t, ts.issuer), vic.Email, mfaPassword)
	if p.location != nil || p.url.Path != "/account/security/setup" {
		t.Fatalf("password into the --require-mfa client without a factor: %s status %d location %v", p.url, p.status, p.location)
	}
	// una has a factor now: every client asks for it.
	_, p = plain.passwordStep(newBrowser(t, ts.issuer), una.Email, mfaPassword)
	expectFactorPage(t, p)
}

// TestMFAPromptNone: prompt=none never shows the second step or enrolment:
// a session short of what is asked gets interaction_required, with state
// and iss, at the app.
func TestMFAPromptNone(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	strict := newRP(t, ts, ts.createClient("--name", "Console", "--redirect-uri", redirectB, "--require-mfa"))
	none := oauth2.SetAuthURLParam("prompt", "none")
	askMFA := oauth2.SetAuthURLParam("acr_values", authn.ACRMFA)

	expectInteractionRequired := func(t *testing.T, r *rp, b *browser, opts ...oauth2.AuthCodeOption) {
		t.Helper()
		ar := r.authURL(append([]oauth2.AuthCodeOption{none}, opts...)...)
		q := r.callbackParams(b.get(ar.url))
		if q.Get("error") != "interaction_required" || q.Get("state") != ar.state || q.Get("code") != "" {
			t.Errorf("prompt=none: %v, want error=interaction_required with the state and no code", q)
		}
	}

	// An enrolled user whose session has the password only.
	u, secret := userWithTOTP(t, ts, "pia@example.com")
	b := newBrowser(t, ts.issuer)
	_, p := r.passwordStep(b, u.Email, mfaPassword)
	expectFactorPage(t, p)
	expectInteractionRequired(t, r, b)
	expectInteractionRequired(t, r, b, askMFA)
	// Once the code is in, prompt=none gets a code.
	ar := r.authURL()
	r.exchange(ar, r.codeFrom(ar, b.submitCode(b.get(ar.url), ts.freshTOTPCode(secret))))
	ar = r.authURL(none, askMFA)
	expectACR(t, r.exchange(ar, r.codeFrom(ar, b.get(ar.url))), authn.ACRMFA, "pwd", "otp", "mfa")

	// A user without factors, signed in with a password: an app asking
	// for two factors, and a client requiring them.
	w := ts.createUser("wes@example.com", mfaPassword)
	b2 := newBrowser(t, ts.issuer)
	r.exchange(r.signIn(b2, w.Email, mfaPassword))
	expectInteractionRequired(t, r, b2, askMFA)
	expectInteractionRequired(t, strict, b2)
	ar = r.authURL(none)
	expectACR(t, r.exchange(ar, r.codeFrom(ar, b2.get(ar.url))), authn.ACRSingleFactor, "pwd")
}

// TestMFACannotBeSkipped: after the password, no way around the second
// step yields a code — the OP's callback URL, the sign-in URL, the
// password POST replayed, a made-up consent POST, or another browser
// holding the request's handle (whose attempt does not spend the code).
func TestMFACannotBeSkipped(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "cara@example.com")

	b := newBrowser(t, ts.issuer)
	ar := r.authURL()
	login := b.get(ar.url)
	creds := map[string]string{"email": u.Email, "password": mfaPassword}
	factor := b.submit(login, creds)
	expectFactorPage(t, factor)
	handle := factor.url.Query().Get("authRequestID")
	pending, err := ts.app.provider.PendingRequest(context.Background(), handle)
	if err != nil {
		t.Fatalf("the second-factor page's authRequestID does not open: %v", err)
	}
	callback := ts.issuer + "/authorize/callback?id=" + url.QueryEscape(pending.ID)

	expectNoCode(t, "the callback before the second step", b.get(callback))
	p := b.get(ts.issuer + "/login?authRequestID=" + url.QueryEscape(handle))
	expectFactorPage(t, p)
	factor = b.submit(login, creds)
	expectFactorPage(t, factor)
	expectNoCode(t, "a consent POST without the page's binding", b.postForm("/consent", url.Values{
		"csrf": {formValue(t, factor, "csrf")}, "authRequestID": {handle}, "action": {"allow"}, "binding": {"x"},
	}))

	// Another browser with the handle (and a CSRF token of its own).
	b2 := newBrowser(t, ts.issuer)
	for _, path := range []string{"/login?authRequestID=", "/login/factor?authRequestID=", "/account/security/setup?authRequestID="} {
		expectNoCode(t, "another browser: "+path, b2.get(ts.issuer+path+url.QueryEscape(handle)))
	}
	expectNoCode(t, "another browser: the callback", b2.get(callback))
	ts.clock.advance(totpStep)
	code := ts.totpCode(secret)
	own := b2.get(ts.issuer + "/login?return=%2Faccount")
	p = b2.postForm("/login/factor", url.Values{
		"csrf": {formValue(t, own, "csrf")}, "authRequestID": {handle}, "method": {"totp"}, "code": {code},
	})
	expectNoCode(t, "another browser: the code", p)
	if !strings.Contains(p.body, "started in another browser") {
		t.Errorf("another browser posting the code: status %d\n%s", p.status, p.body)
	}

	// The browser that started it finishes it with that very code, once.
	r.exchange(ar, r.codeFrom(ar, b.submitCode(factor, code)))
	expectNoCode(t, "the callback once more", b.get(callback))
}

// TestMFAReauth: changing factors needs an authentication less than 5
// minutes old; an older session is sent to re-enter the password (a wrong
// one is refused), then the change goes through, and is mailed and audited.
func TestMFAReauth(t *testing.T) {
	smtp := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"SMTP_URL": smtp.URL()})
	ctx := context.Background()
	u := ts.createUser("rex@example.com", mfaPassword)
	b := newBrowser(t, ts.issuer)
	signInToAccount(t, ts, b, u.Email, mfaPassword)
	enrolTOTP(t, ts, b, "/account/totp")
	waitMailSubject(t, smtp, u.Email, "sign-in method was added", "an authenticator app")

	ts.clock.advance(6 * time.Minute)
	p := b.get(ts.issuer + "/account/totp")
	if p.url.Path != "/account/reauth" || p.url.Query().Get("return") != "/account/totp" {
		t.Fatalf("authenticator app setup 6 minutes after sign-in: %s (status %d), want the re-authentication page", p.url, p.status)
	}
	acct := b.get(ts.issuer + "/account")
	p = b.submit(formByAction(t, acct, "/account/totp/remove"), nil)
	if p.url.Path != "/account/reauth" || p.url.Query().Get("return") != "/account" {
		t.Fatalf("removal 6 minutes after sign-in: %s (status %d), want the re-authentication page", p.url, p.status)
	}
	if _, err := ts.app.store.GetTOTP(ctx, u.ID); err != nil {
		t.Fatalf("the factor is gone before re-authentication: %v", err)
	}
	p = b.submit(p, map[string]string{"password": "Not-The-Password-1"})
	expectRefused(t, p, http.StatusBadRequest, wantWrongPassword)
	p = b.submit(p, map[string]string{"password": mfaPassword})
	if p.url.Path != "/account" || p.status != http.StatusOK {
		t.Fatalf("after re-authentication: %s status %d", p.url, p.status)
	}
	p = b.submit(formByAction(t, p, "/account/totp/remove"), nil)
	if p.url.Path != "/account" || !strings.Contains(elementText(t, p, "factor-totp"), "not set up") {
		t.Fatalf("removal after re-authentication: %s status %d", p.url, p.status)
	}
	if _, err := ts.app.store.GetTOTP(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("authenticator app after removal: %v", err)
	}
	if n, err := ts.app.store.CountRecoveryCodes(ctx, u.ID); err != nil || n != 0 {
		t.Errorf("recovery codes after the last factor was removed: %d %v", n, err)
	}
	waitMailSubject(t, smtp, u.Email, "sign-in method was removed", "an authenticator app")
	removed := findAudit(ts.auditList("--user", u.Email), storage.AuditFactorRemoved)
	if len(removed) != 1 || removed[0].Detail["method"] != "totp" || removed[0].Actor != u.ID {
		t.Errorf("factor_removed events: %+v", removed)
	}
	// Within the window again: the setup page opens directly.
	if p := b.get(ts.issuer + "/account/totp"); p.url.Path != "/account/totp" || elementText(t, p, "totp-secret") == "" {
		t.Errorf("setup right after re-authentication: %s status %d", p.url, p.status)
	}
}

// TestMFAResetByAdmin: after `gatehouse users reset-mfa` the password alone
// signs the user in again; the reset is audited and mailed.
func TestMFAResetByAdmin(t *testing.T) {
	smtp := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"SMTP_URL": smtp.URL()})
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, _ := userWithTOTP(t, ts, "lou@example.com")

	_, p := r.passwordStep(newBrowser(t, ts.issuer), u.Email, mfaPassword)
	expectFactorPage(t, p)
	ts.cli("", "users", "reset-mfa", u.Email)
	tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), u.Email, mfaPassword))
	expectACR(t, tok, authn.ACRSingleFactor, "pwd")
	if ev := findAudit(ts.auditList("--user", u.Email), storage.AuditMFAReset); len(ev) != 1 || ev[0].Actor != storage.ActorCLI {
		t.Errorf("mfa_reset events: %+v", ev)
	}
	waitMailSubject(t, smtp, u.Email, "two-factor sign-in was reset", "")
}

// TestMFAPasswordReset: a password reset neither removes nor bypasses the
// authenticator app — the sign-in that follows it asks for the code — and
// does not lift a lock of the second step.
func TestMFAPasswordReset(t *testing.T) {
	smtp := mailtest.NewServer(t)
	ts := startServer(t, "sqlite", map[string]string{"SMTP_URL": smtp.URL()})
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "ida@example.com")

	reset := func(b *browser, forgot *page, pw string) *page {
		t.Helper()
		b.submit(forgot, map[string]string{"email": u.Email})
		link := waitMailSubject(t, smtp, u.Email, "", ts.issuer+"/reset").Link(ts.issuer + "/reset")
		p := b.submit(b.get(link), map[string]string{"password": pw})
		if !strings.Contains(p.body, "Your password has been changed") {
			t.Fatalf("reset: status %d\n%s", p.status, p.body)
		}
		return p
	}

	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	p = reset(b, b.followLink(p, "Forgot your password?"), "Brand-New-Secret-9")
	p = b.followLink(p, "Sign in to continue")
	p = b.submit(p, map[string]string{"email": u.Email, "password": "Brand-New-Secret-9"})
	expectFactorPage(t, p)
	if _, err := ts.app.store.GetTOTP(context.Background(), u.ID); err != nil {
		t.Fatalf("authenticator app after a password reset: %v", err)
	}
	tok := r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")

	// A locked second step stays locked through a password reset.
	b2 := newBrowser(t, ts.issuer)
	_, p = r.passwordStep(b2, u.Email, "Brand-New-Secret-9")
	for range 5 {
		p = b2.submitCode(p, ts.wrongTOTPCode(secret))
	}
	expectRefused(t, p, http.StatusForbidden, wantStepLocked)
	reset(b2, b2.get(ts.issuer+"/forgot"), "Another-New-One-8")
	_, p = r.passwordStep(b2, u.Email, "Another-New-One-8")
	expectFactorPage(t, p)
	expectRefused(t, b2.submitCode(p, ts.freshTOTPCode(secret)), http.StatusForbidden, wantStepLocked)
}

// TestMFADiscovery: discovery lists the acr values, weakest first, and the
// claims that say how the user signed in.
func TestMFADiscovery(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	var d struct {
		ACR    []string `json:"acr_values_supported"`
		Claims []string `json:"claims_supported"`
	}
	getJSONInto(t, ts.issuer+"/.well-known/openid-configuration", &d)
	// An issuer on an IP address has no passkeys: phishing-resistant is
	// not offered (nobody could reach it).
	want := []string{"urn:gatehouse:acr:single-factor", "urn:gatehouse:acr:mfa"}
	if !slices.Equal(d.ACR, want) {
		t.Errorf("acr_values_supported on %s = %v, want %v", ts.issuer, d.ACR, want)
	}
	// On a host name passkeys are on, and all three are.
	ln := listenLoopback(t)
	local := startServerOn(t, ln, serverVars(t, "http://localhost:"+portOf(ln.Addr().String()), nil), nil)
	getJSONInto(t, local.issuer+"/.well-known/openid-configuration", &d)
	if want := append(want, "urn:gatehouse:acr:phishing-resistant"); !slices.Equal(d.ACR, want) {
		t.Errorf("acr_values_supported on %s = %v, want %v", local.issuer, d.ACR, want)
	}
	for _, c := range []string{"acr", "amr", "auth_time"} {
		if !slices.Contains(d.Claims, c) {
			t.Errorf("claims_supported lacks %q: %v", c, d.Claims)
		}
	}
}

// --- helpers ---

// totpCode is what an authenticator app shows for secret at the server's time.
func (ts *testServer) totpCode(secret string) string {
	return ts.totpCodeAt(secret, ts.clock.now())
}

func (ts *testServer) totpCodeAt(secret string, at time.Time) string {
	ts.t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		ts.t.Fatalf("TOTP code for the secret on the setup page: %v", err)
	}
	return code
}

// freshTOTPCode moves the clock to the next time step and returns its code,
// which no earlier sign-in can have used.
func (ts *testServer) freshTOTPCode(secret string) string {
	ts.clock.advance(totpStep)
	return ts.totpCode(secret)
}

// wrongTOTPCode returns six digits that are not the code of any step near
// the server's time.
func (ts *testServer) wrongTOTPCode(secret string) string {
	ts.t.Helper()
	near := map[string]bool{}
	now := ts.clock.now()
	for d := -3; d <= 3; d++ {
		near[ts.totpCodeAt(secret, now.Add(time.Duration(d)*totpStep))] = true
	}
	for i := range 10 {
		if c := fmt.Sprintf("%06d", (i*123457+7)%1000000); !near[c] {
			return c
		}
	}
	ts.t.Fatal("no wrong code found")
	return ""
}

// signInToAccount signs b in on the plain sign-in page and returns the
// account page it lands on.
func signInToAccount(t *testing.T, ts *testServer, b *browser, email, pw string) *page {
	t.Helper()
	p := b.submit(b.get(ts.issuer+"/login?return=%2Faccount"), map[string]string{"email": email, "password": pw})
	if p.url.Path != "/account" || p.status != http.StatusOK {
		t.Fatalf("sign-in to the account page: %s status %d\n%s", p.url, p.status, p.body)
	}
	return p
}

// enrolTOTP opens the authenticator-app setup at path in b (signed in, and
// recently), checks the page (secret, otpauth URI, QR code), checks that a
// wrong code does not turn it on, and confirms it with the right code. It
// returns the secret, the code it used and the page the confirmation led to.
func enrolTOTP(t *testing.T, ts *testServer, b *browser, path string) (secret, used string, next *page) {
	t.Helper()
	p := b.get(ts.issuer + path)
	if p.url.Path != "/account/totp" || p.status != http.StatusOK {
		t.Fatalf("authenticator app setup %s: got %s status %d\n%s", path, p.url, p.status, p.body)
	}
	secret = strings.ReplaceAll(elementText(t, p, "totp-secret"), " ", "")
	uri, err := url.Parse(elementText(t, p, "totp-uri"))
	if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") != secret || uri.Query().Get("issuer") == "" {
		t.Fatalf("otpauth URI %q (%v) does not carry the secret %q shown", elementText(t, p, "totp-uri"), err, secret)
	}
	if qr := b.get(ts.issuer + "/account/totp/qr.png"); qr.status != http.StatusOK || qr.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(qr.body, "\x89PNG\r\n\x1a\n") {
		t.Errorf("QR code: status %d, type %q", qr.status, qr.header.Get("Content-Type"))
	}
	bad := b.submit(p, map[string]string{"code": ts.wrongTOTPCode(secret)})
	expectRefused(t, bad, http.StatusBadRequest, wantCodeWrong)
	used = ts.totpCode(secret)
	next = b.submit(bad, map[string]string{"code": used})
	if next.status != http.StatusOK || next.location != nil {
		t.Fatalf("confirming the authenticator app: %s status %d location %v\n%s", next.url, next.status, next.location, next.body)
	}
	return secret, used, next
}

// userWithTOTP creates a user and enrols an authenticator app for them on
// the account page, in a browser of its own; args go to `users create`
// (e.g. --role ADMIN).
func userWithTOTP(t *testing.T, ts *testServer, email string, args ...string) (createdUser, string) {
	t.Helper()
	u := ts.createUser(email, mfaPassword, args...)
	b := newBrowser(t, ts.issuer)
	signInToAccount(t, ts, b, email, mfaPassword)
	secret, _, p := enrolTOTP(t, ts, b, "/account/totp")
	recoveryCodes(t, p)
	return u, secret
}

// recoveryCodes reads the codes off the page shown once after enrolment.
func recoveryCodes(t *testing.T, p *page) []string {
	t.Helper()
	if p.url.Path != "/account/recovery-codes" {
		t.Fatalf("want the recovery codes page, got %s status %d\n%s", p.url, p.status, p.body)
	}
	list := elementHTML(t, p, "recovery-codes")
	var codes []string
	for _, m := range regexp.MustCompile(`<code>([^<]+)</code>`).FindAllStringSubmatch(list, -1) {
		if c := html.UnescapeString(m[1]); !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	if len(codes) != 10 {
		t.Fatalf("%d distinct recovery codes shown, want 10:\n%s", len(codes), list)
	}
	return codes
}

// passwordStep opens a new authorization request of r in b, enters the
// password and returns the request and the page that follows, which must
// still be Gatehouse's.
func (r *rp) passwordStep(b *browser, email, pw string, extra ...oauth2.AuthCodeOption) (authRequest, *page) {
	r.t.Helper()
	ar := r.authURL(extra...)
	p := b.get(ar.url)
	if p.location != nil || !strings.Contains(p.body, `name="password"`) {
		r.t.Fatalf("expected the sign-in form, got status %d location %v\n%s", p.status, p.location, p.body)
	}
	p = b.submit(p, map[string]string{"email": email, "password": pw})
	if p.location != nil {
		r.t.Fatalf("the password alone led out of Gatehouse, to %v", p.location)
	}
	return ar, p
}

// cookieLimit fails the test when Gatehouse sets a cookie in b larger than
// browsers keep (RFC 6265 section 6.1: 4096 bytes for name, value and
// attributes): a browser drops it silently, where the test's cookie jar
// would not.
func cookieLimit(t *testing.T, b *browser) {
	t.Helper()
	b.client.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			for _, c := range resp.Header.Values("Set-Cookie") {
				if len(c) > 4096 {
					name, _, _ := strings.Cut(c, "=")
					t.Errorf("%s %s sets cookie %s of %d bytes, more than a browser keeps", req.Method, req.URL.Path, name, len(c))
				}
			}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// authURLState is authURL with the state chosen by the test.
func (r *rp) authURLState(state string, extra ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{state: state, nonce: randomString(r.t), pkceV: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(ar.nonce), oauth2.S256ChallengeOption(ar.pkceV)}, extra...)
	ar.url = r.oauth.AuthCodeURL(state, opts...)
	return ar
}

// expectFactorPage checks that p is the second-factor page, with the
// authenticator-app form and no password field.
func expectFactorPage(t *testing.T, p *page) {
	t.Helper()
	if p.location != nil || p.url.Path != "/login/factor" || p.status != http.StatusOK || !strings.Contains(p.body, `name="method" value="totp"`) {
		t.Fatalf("want the second-factor page, got %s status %d location %v\n%s", p.url, p.status, p.location, p.body)
	}
	expectNoPassword(t, p)
}

// expectNoPassword fails when p asks for the password.
func expectNoPassword(t *testing.T, p *page) {
	t.Helper()
	if strings.Contains(p.body, `type="password"`) {
		t.Fatalf("%s asks for the password:\n%s", p.url, p.body)
	}
}

// expectRefused checks that p is Gatehouse's page with status and msg, not a redirect to the app.
func expectRefused(t *testing.T, p *page, status int, msg string) {
	t.Helper()
	if p.location != nil || p.status != status || !strings.Contains(p.body, msg) {
		t.Fatalf("want status %d saying %q, got %s status %d location %v\n%s", status, msg, p.url, p.status, p.location, p.body)
	}
}

// expectNoCode checks that p gives no authorization code (and no 500).
func expectNoCode(t *testing.T, what string, p *page) {
	t.Helper()
	if p.location != nil && p.location.Query().Get("code") != "" {
		t.Fatalf("%s: got a code: %v", what, p.location)
	}
	if p.status >= 500 {
		t.Fatalf("%s: status %d\n%s", what, p.status, p.body)
	}
}

// expectACR checks the ID token's acr and that its amr has amr.
func expectACR(t *testing.T, tok tokens, acr string, amr ...string) {
	t.Helper()
	got := claimStrings(tok.claims["amr"])
	for _, m := range amr {
		if !slices.Contains(got, m) {
			t.Errorf("amr = %v, want it to contain %q", got, m)
		}
	}
	if tok.claims["acr"] != acr {
		t.Errorf("acr = %v, want %s (amr %v)", tok.claims["acr"], acr, got)
	}
	if at, ok := tok.claims["auth_time"].(float64); !ok || at <= 0 || at != math.Trunc(at) {
		t.Errorf("auth_time = %v", tok.claims["auth_time"])
	}
}

func claimStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func auditDetails(evs []auditJSON, key string) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Detail[key])
	}
	return out
}

// waitMailSubject returns the next mail to to whose subject contains
// subject and text contains text, skipping others (at most 10).
func waitMailSubject(t *testing.T, smtp *mailtest.Server, to, subject, text string) mailtest.Received {
	t.Helper()
	var seen []string
	for range 10 {
		m := waitMail(t, smtp, to)
		if strings.Contains(m.Subject, subject) && strings.Contains(m.Text, text) {
			return m
		}
		seen = append(seen, m.Subject)
	}
	t.Fatalf("no mail to %s with subject %q and %q; saw %q", to, subject, text, seen)
	return mailtest.Received{}
}

// submitCode posts the authenticator-app form of the second-factor page p.
func (b *browser) submitCode(p *page, code string) *page {
	b.t.Helper()
	return b.submit(formContaining(b.t, p, `name="method" value="totp"`), map[string]string{"code": code})
}

// submitRecovery posts the recovery-code form of the second-factor page p.
func (b *browser) submitRecovery(p *page, code string) *page {
	b.t.Helper()
	return b.submit(formContaining(b.t, p, `name="method" value="recovery"`), map[string]string{"code": code})
}

// postForm posts values to path as a same-origin form, without reading
// them off a page (forged and replayed requests).
func (b *browser) postForm(path string, values url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.issuer+path, strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.issuer)
	return b.do(req)
}

// formContaining returns p with the form that contains marker first, so
// browser.submit sends that one.
func formContaining(t *testing.T, p *page, marker string) *page {
	t.Helper()
	i := strings.Index(p.body, marker)
	if i < 0 {
		t.Fatalf("no form with %s on %s (status %d):\n%s", marker, p.url, p.status, p.body)
	}
	cp := *p
	cp.body = p.body[strings.LastIndex(p.body[:i], "<form"):]
	return &cp
}

// formValue is the value of field in the first POST form of p.
func formValue(t *testing.T, p *page, field string) string {
	t.Helper()
	_, v := parseForm(t, p)
	if v.Get(field) == "" {
		t.Fatalf("no %s in the form on %s", field, p.url)
	}
	return v.Get(field)
}

// elementNode finds the element with id in p.
func elementNode(t *testing.T, p *page, id string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	var find func(n *html.Node) *html.Node
	find = func(n *html.Node) *html.Node {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			return n
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if f := find(c); f != nil {
				return f
			}
		}
		return nil
	}
	return find(doc)
}

// elementText is the text inside the element with id in p ("" when none).
func elementText(t *testing.T, p *page, id string) string {
	t.Helper()
	n := elementNode(t, p, id)
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// elementHTML is the markup of the element with id in p.
func elementHTML(t *testing.T, p *page, id string) string {
	t.Helper()
	n := elementNode(t, p, id)
	if n == nil {
		t.Fatalf("no element #%s on %s:\n%s", id, p.url, p.body)
	}
	var b strings.Builder
	if err := html.Render(&b, n); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMFAPhishingResistantWithoutPasskeys: on an issuer that cannot have
// passkeys (an IP address) an app asking for phishing-resistant gets the
// strongest there is — two factors — and an acr that says so, instead of a
// setup page with nothing to set up.
func TestMFAPhishingResistantWithoutPasskeys(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "ivy@example.com")
	b := newBrowser(t, ts.issuer)
	ar, p := r.passwordStep(b, u.Email, mfaPassword, oauth2.SetAuthURLParam("acr_values", authn.ACRPhishingResistant))
	expectFactorPage(t, p)
	tok := r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
}
