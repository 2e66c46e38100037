package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Enrolment forms are protected like every form: without the page's CSRF
// token, or sent from another site, nothing is enrolled or removed.
func TestFactorFormsRefuseCSRF(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	ts.createUser("csrf@example.com", "Csrf-Passw0rd-1")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	r.signIn(b, "csrf@example.com", "Csrf-Passw0rd-1")
	if p := b.get(ts.issuer + "/account/totp"); p.status != http.StatusOK || !strings.Contains(p.body, "totp-secret") {
		t.Fatalf("TOTP setup page: status %d", p.status)
	}
	post := func(path string, form url.Values, origin string) *page {
		req, _ := http.NewRequest(http.MethodPost, ts.issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return b.do(req)
	}
	for _, path := range []string{"/account/totp", "/account/totp/remove", "/account/recovery-codes", "/account/passkeys/begin", "/account/passkeys", "/login/factor", "/account/reauth"} {
		if p := post(path, url.Values{"code": {"123456"}}, ts.issuer); p.status != http.StatusForbidden {
			t.Errorf("%s without a CSRF token: status %d", path, p.status)
		}
		if p := post(path, url.Values{"code": {"123456"}}, "https://evil.example"); p.status != http.StatusForbidden {
			t.Errorf("%s from another site: status %d", path, p.status)
		}
	}
	// Nothing was enrolled: the next sign-in asks for no code.
	b2 := newBrowser(t, ts.issuer)
	if _, code := r.signIn(b2, "csrf@example.com", "Csrf-Passw0rd-1"); code == "" {
		t.Fatal("sign-in needs more than the password after refused forms")
	}
	// The QR code of a pending enrolment is for its own signed-in browser only.
	if p := newBrowser(t, ts.issuer).get(ts.issuer + "/account/totp/qr.png"); p.status == http.StatusOK && strings.HasPrefix(p.header.Get("Content-Type"), "image/") {
		t.Fatal("another browser got the QR code")
	}
}

// The second step replaces the session cookie: a session cookie someone
// planted after typing the password (knowing it, in the victim's browser)
// is dead once the victim gives the second factor, instead of becoming a
// two-factor session the planter holds too.
func TestSecondStepRenewsSession(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", redirectA))
	u, secret := userWithTOTP(t, ts, "renew@example.com")
	b := newBrowser(t, ts.issuer)
	ar, p := r.passwordStep(b, u.Email, mfaPassword)
	expectFactorPage(t, p)
	before := sessionCookie(t, b, ts.issuer)
	r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret)))
	after := sessionCookie(t, b, ts.issuer)
	if after == "" || after == before {
		t.Fatalf("session cookie not replaced by the second step")
	}
	planted := newBrowser(t, ts.issuer)
	u2, _ := url.Parse(ts.issuer)
	planted.client.Jar.SetCookies(u2, []*http.Cookie{{Name: "gatehouse_session", Value: before, Path: "/"}})
	if p := planted.get(ts.issuer + "/account"); p.url.Path == "/account" && p.status == http.StatusOK {
		t.Fatal("the pre-second-step cookie still opens the account page")
	}
}

func sessionCookie(t *testing.T, b *browser, issuer string) string {
	t.Helper()
	u, _ := url.Parse(issuer)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			return c.Value
		}
	}
	return ""
}
