package login

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-id/gatehouse/storage"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"  Alice@Example.COM \n": "alice@example.com",
		"bob@example.com":        "bob@example.com",
		"":                       "",
		"\tÉLODIE@exemple.fr":    "élodie@exemple.fr",
	} {
		if got := NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginFormRendered(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.LoginHint = " Alice@Example.com " })
	res, csrf := e.openLogin(e.client, id)
	for _, want := range []string{
		`<label for="email">Email</label>`,
		`<label for="password">Password</label>`,
		`<button type="submit">Sign in</button>`,
		`autocomplete="email"`,
		`autocomplete="current-password"`,
		`value="alice@example.com"`, // login_hint, normalised
		`Acme Notes`,
		`<html lang="en">`,
	} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("sign-in page lacks %q", want)
		}
	}
	if csrf == "" {
		t.Error("no CSRF token")
	}
	if strings.Contains(strings.ToLower(res.Body), "<script") {
		t.Error("page contains a script")
	}
	checkSecurityHeaders(t, res)
	csp := res.Header.Get("Content-Security-Policy")
	// The form's answer redirects to the app with the code (Flow.Finish).
	if !strings.Contains(csp, "form-action 'self' https://rp.example.com;") {
		t.Errorf("form-action does not allow the client's redirect origin: %s", csp)
	}
}

func checkSecurityHeaders(t *testing.T, res response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	for k, v := range map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestWrongPasswordAndUnknownEmailLookTheSame(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	wrong := e.post(e.client, "/login", url.Values{"authRequestID": {id}, "email": {"alice@example.com"}, "password": {"nope"}, "csrf": {csrf}})
	unknown := e.post(e.client, "/login", url.Values{"authRequestID": {id}, "email": {"mallory@example.com"}, "password": {"nope"}, "csrf": {csrf}})

	for _, res := range []response{wrong, unknown} {
		if res.Status != http.StatusBadRequest {
			t.Fatalf("status %d", res.Status)
		}
		if !strings.Contains(res.Body, `<p class="alert" id="form-error" role="alert">Invalid email or password.</p>`) {
			t.Fatalf("no error message:\n%s", res.Body)
		}
		if !strings.Contains(res.Body, `aria-describedby="form-error"`) {
			t.Error("error not tied to the fields")
		}
		if res.Header.Get("Set-Cookie") != "" {
			t.Errorf("failed sign-in set a cookie: %v", res.Header["Set-Cookie"])
		}
	}
	mask := func(s string) string {
		s = csrfRe.ReplaceAllString(s, `name="csrf" value="CSRF"`)
		return emailRe.ReplaceAllString(s, `${1}EMAIL${3}`)
	}
	if mask(wrong.Body) != mask(unknown.Body) {
		t.Fatalf("bodies differ:\n--- wrong password\n%s\n--- unknown email\n%s", wrong.Body, unknown.Body)
	}
	if !strings.Contains(unknown.Body, `value="mallory@example.com"`) {
		t.Error("email not echoed")
	}
	if e.getAuthRequest(id).Done {
		t.Fatal("auth request completed by a failed sign-in")
	}
}

func TestMissingFields(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	res := e.post(e.client, "/login", url.Values{"authRequestID": {id}, "email": {"alice@example.com"}, "csrf": {csrf}})
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "Enter your email address and password.") {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
}

func TestSignInCompletesAuthRequest(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	res := e.signIn(e.client, id, "  ALICE@example.com ", alicePassword)
	ar := e.expectCompleted(res, id, e.alice)
	if !slices.Equal(ar.AMR, []string{"pwd"}) || !ar.AuthTime.Equal(e.clock.Now()) {
		t.Errorf("AMR %v, AuthTime %v", ar.AMR, ar.AuthTime)
	}

	var sc *http.Cookie
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == SessionCookie {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
		t.Errorf("cookie attributes: %+v (http issuer ⇒ not Secure)", sc)
	}
	if raw, err := b64.DecodeString(sc.Value); err != nil || len(raw) != 32 {
		t.Errorf("cookie value is not 32 bytes base64url: %q", sc.Value)
	}
	sess, err := e.store.GetSessionByTokenHash(e.ctx, hashToken(sc.Value))
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID != ar.SessionID || sess.UserID != e.alice.ID || !slices.Equal(sess.AMR, []string{"pwd"}) {
		t.Errorf("session %+v", sess)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !sess.IdleExpiresAt.Equal(want) {
		t.Errorf("IdleExpiresAt %v, want %v", sess.IdleExpiresAt, want)
	}
	if want := e.clock.Now().Add(30 * 24 * time.Hour); !sess.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want %v", sess.ExpiresAt, want)
	}
}

func TestSSOSessionSkipsForm(t *testing.T) {
	e := newEnv(t)
	id1 := e.authRequest("app")
	ar1 := e.expectCompleted(e.signIn(e.client, id1, "alice@example.com", alicePassword), id1, e.alice)

	e.clock.Advance(time.Hour)
	id2 := e.authRequest("app")
	res := e.get(e.client, "/login?authRequestID="+id2)
	ar2 := e.expectCompleted(res, id2, e.alice)
	if ar2.SessionID != ar1.SessionID || !ar2.AuthTime.Equal(ar1.AuthTime) {
		t.Errorf("SSO used a different session or auth time: %+v vs %+v", ar2, ar1)
	}

	// Another browser has no session.
	e.expectLoginForm(e.get(e.newBrowser(), "/login?authRequestID="+e.authRequest("app")))
}

func TestPromptNone(t *testing.T) {
	e := newEnv(t)
	none := func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} }

	id := e.authRequest("app", none)
	res := e.get(e.client, "/login?authRequestID="+id)
	if res.Status != http.StatusFound || !strings.HasPrefix(res.Location(), rpCallback+"?error=login_required") {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
	if f := e.flow.Fails(); len(f) != 1 || f[0] != (failCall{id, "login_required", f[0].Description}) {
		t.Fatalf("fails %+v", f)
	}

	e.login(e.client)
}

func TestPromptNoneWithSession(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	id2 := e.authRequest("app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} })
	e.expectCompleted(e.get(e.client, "/login?authRequestID="+id2), id2, e.alice)
	if f := e.flow.Fails(); len(f) != 0 {
		t.Fatalf("fails %+v", f)
	}
}

func TestForcedLogin(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	bob := e.createUser("bob@example.com", "Bob-Password-1")
	e.clock.Advance(10 * time.Minute)

	maxAge := func(s int64) func(*storage.AuthRequest) {
		return func(ar *storage.AuthRequest) { ar.MaxAge = &s }
	}
	cases := []struct {
		name  string
		mod   func(*storage.AuthRequest)
		login bool
	}{
		{"prompt=login", func(ar *storage.AuthRequest) { ar.Prompt = []string{"login"} }, true},
		{"max_age=0", maxAge(0), true},
		{"max_age shorter than the session's age", maxAge(300), true},
		{"max_age longer than the session's age", maxAge(3600), false},
		{"id_token_hint for another user", func(ar *storage.AuthRequest) { ar.HintSubject = bob.ID }, true},
		{"id_token_hint for this user", func(ar *storage.AuthRequest) { ar.HintSubject = e.alice.ID }, false},
	}
	for _, c := range cases {
		id := e.authRequest("app", c.mod)
		res := e.get(e.client, "/login?authRequestID="+id)
		if c.login {
			e.expectLoginForm(res)
		} else {
			e.expectCompleted(res, id, e.alice)
		}
	}

	// prompt=login with prompt=none cannot be satisfied ⇒ login_required.
	id = e.authRequest("app", maxAge(0), func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} })
	if res := e.get(e.client, "/login?authRequestID="+id); res.Status != http.StatusFound {
		t.Fatalf("%d", res.Status)
	}

	// Signing in again for a forced login issues a new cookie; the session
	// ID (the sid apps hold) stays, so a later sign-out still reaches the
	// apps of the earlier sign-in.
	id = e.authRequest("app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"login"} })
	before := e.getAuthRequest(e.authRequestCompletedBySSO())
	old, err := e.store.GetSession(e.ctx, before.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	ar := e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	if ar.SessionID != before.SessionID {
		t.Fatalf("forced sign-in changed the session ID %s to %s", before.SessionID, ar.SessionID)
	}
	now, err := e.store.GetSession(e.ctx, before.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(now.TokenHash, old.TokenHash) {
		t.Fatal("forced sign-in kept the old session cookie")
	}
	if !now.AuthTime.After(old.AuthTime) {
		t.Fatalf("forced sign-in kept the sign-in time %v", old.AuthTime)
	}
}

// authRequestCompletedBySSO completes a fresh request with the browser's
// session and returns its ID.
func (e *env) authRequestCompletedBySSO() string {
	e.t.Helper()
	id := e.authRequest("app")
	e.expectCompleted(e.get(e.client, "/login?authRequestID="+id), id, e.alice)
	return id
}

func TestSessionIdleExpiry(t *testing.T) {
	e := newEnv(t)
	e.login(e.client)
	// Used every 23 h, the session outlives the 24 h idle limit.
	for range 3 {
		e.clock.Advance(23 * time.Hour)
		e.authRequestCompletedBySSO()
	}
	// Idle for longer than 24 h: sign in again.
	e.clock.Advance(24*time.Hour + time.Second)
	e.expectLoginForm(e.get(e.client, "/login?authRequestID="+e.authRequest("app")))
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SessionIdle, c.SessionMax = 10*time.Hour, 24*time.Hour })
	ar := e.login(e.client)
	sess, err := e.store.GetSession(e.ctx, ar.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.IdleExpiresAt.Equal(e.clock.Now().Add(10*time.Hour)) || !sess.ExpiresAt.Equal(e.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("expiries %v %v", sess.IdleExpiresAt, sess.ExpiresAt)
	}
	e.clock.Advance(9 * time.Hour)
	e.authRequestCompletedBySSO()
	e.clock.Advance(9 * time.Hour)
	e.authRequestCompletedBySSO()
	// The idle expiry never moves past the absolute one.
	sess, _ = e.store.GetSession(e.ctx, ar.SessionID)
	if !sess.IdleExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("idle expiry %v beyond absolute %v", sess.IdleExpiresAt, sess.ExpiresAt)
	}
	e.clock.Advance(6 * time.Hour) // 24 h after sign-in, used 6 h ago
	e.expectLoginForm(e.get(e.client, "/login?authRequestID="+e.authRequest("app")))
}

func TestDeletedUserEndsSession(t *testing.T) {
	e := newEnv(t)
	carol := e.createUser("carol@example.com", "Carol-Password-1")
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "carol@example.com", "Carol-Password-1"), id, carol)
	if err := e.store.DeleteUser(e.ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	e.expectLoginForm(e.get(e.client, "/login?authRequestID="+e.authRequest("app")))
}

func TestConsent(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("consent-app")
	res := e.signIn(e.client, id, "alice@example.com", alicePassword)
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "Third Party Tool") {
		t.Fatalf("want the consent page, got %d\n%s", res.Status, res.Body)
	}
	for _, want := range []string{"See your email address", "(email)", "(openid)", ">Allow</button>", ">Deny</button>", "alice@example.com"} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	checkSecurityHeaders(t, res)
	if e.getAuthRequest(id).Done {
		t.Fatal("completed before consent")
	}
	allow := func(res response, id string) response {
		return e.post(e.client, "/consent", url.Values{"authRequestID": {id}, "action": {"allow"},
			"csrf": {field(t, csrfRe, res.Body)}, "binding": {field(t, bindingRe, res.Body)}})
	}
	e.expectCompleted(allow(res, id), id, e.alice)
	c, err := e.store.GetConsent(e.ctx, e.alice.ID, "consent-app")
	if err != nil || !slices.Equal(c.Scopes, []string{"openid", "email"}) {
		t.Fatalf("consent %+v, %v", c, err)
	}

	// Remembered: the next request with the same scopes goes straight through.
	id2 := e.authRequest("consent-app")
	e.expectCompleted(e.get(e.client, "/login?authRequestID="+id2), id2, e.alice)

	// prompt=none is fine too now.
	id3 := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} })
	e.expectCompleted(e.get(e.client, "/login?authRequestID="+id3), id3, e.alice)

	// prompt=consent asks again.
	id4 := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"consent"} })
	res = e.get(e.client, "/login?authRequestID="+id4)
	if res.Status != http.StatusOK || !strings.Contains(res.Body, ">Allow</button>") {
		t.Fatalf("prompt=consent: %d\n%s", res.Status, res.Body)
	}

	// A new scope asks again, and the stored consent becomes the union.
	id5 := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.Scopes = []string{"openid", "profile"} })
	res = e.get(e.client, "/login?authRequestID="+id5)
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "(profile)") {
		t.Fatalf("new scope: %d\n%s", res.Status, res.Body)
	}
	e.expectCompleted(allow(res, id5), id5, e.alice)
	c, _ = e.store.GetConsent(e.ctx, e.alice.ID, "consent-app")
	if !slices.Equal(c.Scopes, []string{"openid", "email", "profile"}) {
		t.Fatalf("consent scopes %v", c.Scopes)
	}

	// A client that does not require consent never shows the page.
	id6 := e.authRequest("app", func(ar *storage.AuthRequest) { ar.Scopes = []string{"openid", "offline_access"} })
	e.expectCompleted(e.get(e.client, "/login?authRequestID="+id6), id6, e.alice)
}

// TestConsentHonoursMaxAge: a consent page left open past the request's
// max_age does not complete it; the user signs in again first.
func TestConsentHonoursMaxAge(t *testing.T) {
	e := newEnv(t)
	maxAge := int64(60)
	id := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.MaxAge = &maxAge })
	res := e.signIn(e.client, id, "alice@example.com", alicePassword)
	if !strings.Contains(res.Body, ">Allow</button>") {
		t.Fatalf("want the consent page, got %d", res.Status)
	}
	e.clock.Advance(2 * time.Minute)
	res = e.post(e.client, "/consent", url.Values{"authRequestID": {id}, "action": {"allow"},
		"csrf": {field(t, csrfRe, res.Body)}, "binding": {field(t, bindingRe, res.Body)}})
	if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?") {
		t.Fatalf("consent after max_age: %d %q, want a redirect to sign in", res.Status, res.Header.Get("Location"))
	}
	if e.getAuthRequest(id).Done {
		t.Fatal("the request was completed with an authentication older than max_age")
	}
}

func TestConsentDenied(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("consent-app")
	res := e.signIn(e.client, id, "alice@example.com", alicePassword)
	res = e.post(e.client, "/consent", url.Values{"authRequestID": {id}, "action": {"deny"},
		"csrf": {field(t, csrfRe, res.Body)}, "binding": {field(t, bindingRe, res.Body)}})
	if res.Status != http.StatusFound || !strings.Contains(res.Location(), "error=access_denied") {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
	if f := e.flow.Fails(); len(f) != 1 || f[0].ID != id || f[0].Code != "access_denied" {
		t.Fatalf("fails %+v", f)
	}
	if e.getAuthRequest(id).Done {
		t.Fatal("denied request completed")
	}
	if _, err := e.store.GetConsent(e.ctx, e.alice.ID, "consent-app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consent stored after deny: %v", err)
	}
}

func TestConsentRequiredWithPromptNone(t *testing.T) {
	e := newEnv(t)
	e.login(e.client)
	id := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} })
	res := e.get(e.client, "/login?authRequestID="+id)
	if res.Status != http.StatusFound || !strings.Contains(res.Location(), "error=consent_required") {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
}

// The consent form belongs to the session it was shown to.
func TestConsentTiedToSession(t *testing.T) {
	e := newEnv(t)
	bob := e.createUser("bob@example.com", "Bob-Password-1")
	id := e.authRequest("consent-app")
	page := e.signIn(e.client, id, "alice@example.com", alicePassword)
	form := url.Values{"authRequestID": {id}, "action": {"allow"},
		"csrf": {field(t, csrfRe, page.Body)}, "binding": {field(t, bindingRe, page.Body)}}

	// Tampered binding.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("binding", "x"+form.Get("binding"))
	if res := e.post(e.client, "/consent", bad); res.Status != http.StatusConflict {
		t.Fatalf("tampered binding: %d", res.Status)
	}

	// Bob signs in in another tab of the same browser: Alice's consent form no longer applies.
	switchUser := e.authRequest("consent-app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"login"} })
	e.expectConsentPage(e.signIn(e.client, switchUser, "bob@example.com", "Bob-Password-1"))
	res := e.post(e.client, "/consent", form)
	if res.Status != http.StatusConflict || !strings.Contains(res.Body, "/login?authRequestID="+id) {
		t.Fatalf("stale consent form: %d\n%s", res.Status, res.Body)
	}
	if ar := e.getAuthRequest(id); ar.Done {
		t.Fatalf("completed for %s", ar.UserID)
	}
	if _, err := e.store.GetConsent(e.ctx, bob.ID, "consent-app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("consent stored for the wrong user")
	}

	// Without any session the browser goes back to the sign-in form.
	other := e.newBrowser()
	_, csrf := e.openLogin(other, e.authRequest("app"))
	form.Set("csrf", csrf)
	if res := e.post(other, "/consent", form); res.Status != http.StatusSeeOther || res.Location() != "/login?authRequestID="+id {
		t.Fatalf("no session: %d %q", res.Status, res.Location())
	}
}

func (e *env) expectConsentPage(res response) {
	e.t.Helper()
	if res.Status != http.StatusOK || !strings.Contains(res.Body, `action="/consent"`) {
		e.t.Fatalf("want the consent page, got %d\n%s", res.Status, res.Body)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	good := url.Values{"authRequestID": {id}, "email": {"alice@example.com"}, "password": {alicePassword}, "csrf": {csrf}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}

	// Missing or wrong token.
	for _, f := range []url.Values{with("csrf", ""), with("csrf", "bogus"), with("csrf", csrf+"x")} {
		res := e.post(e.client, "/login", f)
		if res.Status != http.StatusForbidden {
			t.Fatalf("csrf %q: %d", f.Get("csrf"), res.Status)
		}
		checkSecurityHeaders(t, res)
	}
	// A valid token for another browser's cookie.
	other := e.newBrowser()
	_, otherCSRF := e.openLogin(other, id)
	if res := e.post(e.client, "/login", with("csrf", otherCSRF)); res.Status != http.StatusForbidden {
		t.Fatalf("foreign token: %d", res.Status)
	}
	// No cookie at all.
	if res := e.post(e.newBrowser(), "/login", good); res.Status != http.StatusForbidden {
		t.Fatalf("no cookie: %d", res.Status)
	}
	// Every POST route is protected.
	for _, p := range []string{"/consent", "/logout"} {
		if res := e.post(e.client, p, url.Values{"authRequestID": {id}}); res.Status != http.StatusForbidden {
			t.Fatalf("%s without token: %d", p, res.Status)
		}
	}
	// Cross-origin POSTs are refused before the token is even looked at.
	if res := e.post(e.client, "/login", good, "Sec-Fetch-Site", "cross-site"); res.Status != http.StatusForbidden {
		t.Fatalf("cross-site: %d", res.Status)
	}
	if res := e.post(e.client, "/login", good, "Origin", "https://evil.example"); res.Status != http.StatusForbidden {
		t.Fatalf("foreign origin: %d", res.Status)
	}
	if e.getAuthRequest(id).Done {
		t.Fatal("a refused POST signed in")
	}
	// The genuine form still works.
	e.expectCompleted(e.post(e.client, "/login", good, "Sec-Fetch-Site", "same-origin"), id, e.alice)
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	ar := e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	now := e.clock.Now()
	grant := &storage.Grant{ID: "g-1", UserID: e.alice.ID, ClientID: "app", SessionID: ar.SessionID,
		Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := e.store.CreateGrant(e.ctx, grant); err != nil {
		t.Fatal(err)
	}

	q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {rpLogout}, "state": {"s t&x"}}
	page := e.get(e.client, "/logout?"+q.Encode())
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Sign out of all apps?") || !strings.Contains(page.Body, "asked to sign you out") ||
		!strings.Contains(page.Body, `<button type="submit">Sign out</button>`) || !strings.Contains(page.Body, "alice@example.com") {
		t.Fatalf("confirmation page: %d\n%s", page.Status, page.Body)
	}
	checkSecurityHeaders(t, page)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://rp.example.com;") {
		t.Errorf("CSP does not allow the post-logout redirect: %s", csp)
	}
	form := url.Values{"csrf": {field(t, csrfRe, page.Body)}}
	for k, v := range q {
		form[k] = v
	}
	res := e.post(e.client, "/logout", form)
	if res.Status != http.StatusFound || res.Location() != rpLogout+"?state=s+t%26x" {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
	if !strings.Contains(strings.Join(res.Header["Set-Cookie"], "\n"), SessionCookie+"=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax") {
		t.Errorf("session cookie not cleared: %v", res.Header["Set-Cookie"])
	}
	if _, err := e.store.GetSession(e.ctx, ar.SessionID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session survived sign-out: %v", err)
	}
	if g, err := e.store.GetGrant(e.ctx, "g-1"); err != nil || g.RevokedAt == nil {
		t.Fatalf("grant not revoked: %+v, %v", g, err)
	}
	// Signed out: the next request needs the form.
	e.expectLoginForm(e.get(e.client, "/login?authRequestID="+e.authRequest("app")))
}

func TestLogoutRedirectsOnlyToRegisteredURIs(t *testing.T) {
	e := newEnv(t)
	for _, q := range []url.Values{
		{"client_id": {"app"}, "post_logout_redirect_uri": {"https://evil.example/"}},
		{"client_id": {"app"}, "post_logout_redirect_uri": {rpLogout + "/"}},
		{"client_id": {"consent-app"}, "post_logout_redirect_uri": {rpLogout}},
		{"client_id": {"nope"}, "post_logout_redirect_uri": {rpLogout}},
		{"post_logout_redirect_uri": {rpLogout}},
		{},
	} {
		// Signed out: nothing to confirm, and nowhere unregistered to go.
		if page := e.get(e.client, "/logout?"+q.Encode()); page.Status != http.StatusOK || page.Location() != "" || !strings.Contains(page.Body, "You are not signed in.") {
			t.Fatalf("%v, signed out: %d %q", q, page.Status, page.Location())
		}
		id := e.authRequest("app")
		e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
		page := e.get(e.client, "/logout?"+q.Encode())
		if page.Status != http.StatusOK {
			t.Fatalf("%v: %d", q, page.Status)
		}
		if csp := page.Header.Get("Content-Security-Policy"); strings.Contains(csp, "form-action 'self' ") {
			t.Errorf("%v: form-action widened: %s", q, csp)
		}
		form := url.Values{"csrf": {field(t, csrfRe, page.Body)}}
		for k, v := range q {
			form[k] = v
		}
		res := e.post(e.client, "/logout", form)
		if res.Status != http.StatusOK || res.Location() != "" || !strings.Contains(res.Body, "You have been signed out.") {
			t.Fatalf("%v: %d %q", q, res.Status, res.Location())
		}
	}
}

// Nobody signed in and a registered post_logout_redirect_uri: the browser
// goes straight back to the app, with its state.
func TestLogoutWhenSignedOutReturnsToTheApp(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {rpLogout}, "state": {"st"}}
	res := e.get(e.client, "/logout?"+q.Encode())
	if res.Status != http.StatusFound || res.Location() != rpLogout+"?state=st" {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
}

// logout_hint naming someone else is said on the page; naming the
// signed-in user (by email or subject) changes nothing.
func TestLogoutHint(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	for hint, other := range map[string]bool{"bob@example.com": true, "Alice@Example.com": false, e.alice.ID: false} {
		page := e.get(e.client, "/logout?"+url.Values{"logout_hint": {hint}}.Encode())
		if page.Status != http.StatusOK || strings.Contains(page.Body, "a different account") != other {
			t.Errorf("logout_hint %q: status %d, mentions another account: %t, want %t", hint, page.Status, !other, other)
		}
	}
}

func TestRehashOnLogin(t *testing.T) {
	e := newEnv(t)
	// An account imported from an Auth.js app: bcryptjs hash with $2b$.
	b, err := bcrypt.GenerateFromPassword([]byte("Imported-Pass-1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dave := e.createUserWithHash("dave@example.com", "$2b$"+string(b[4:]))
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "dave@example.com", "Imported-Pass-1"), id, dave)
	u, err := e.store.GetUser(e.ctx, dave.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("hash not upgraded: %q", u.PasswordHash)
	}
	ok, rehash, err := e.hasher.Verify(e.ctx, u.PasswordHash, "Imported-Pass-1")
	if !ok || rehash || err != nil {
		t.Fatalf("upgraded hash: %v %v %v", ok, rehash, err)
	}
	// And the new hash works for the next sign-in.
	id2 := e.authRequest("app")
	e.expectCompleted(e.signIn(e.newBrowser(), id2, "dave@example.com", "Imported-Pass-1"), id2, dave)
}

func TestCorruptStoredHashLooksLikeWrongPassword(t *testing.T) {
	e := newEnv(t)
	e.createUserWithHash("erin@example.com", "$argon2id$v=19$m=0,t=0,p=0$$")
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	res := e.post(e.client, "/login", url.Values{"authRequestID": {id}, "email": {"erin@example.com"}, "password": {"x"}, "csrf": {csrf}})
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "Invalid email or password.") {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
}

func TestBadRequestsAreFriendly(t *testing.T) {
	e := newEnv(t)
	expired := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ExpiresAt = ar.CreatedAt.Add(-time.Second) })
	done := e.authRequest("app")
	e.expectCompleted(e.signIn(e.newBrowser(), done, "alice@example.com", alicePassword), done, e.alice)

	for _, c := range []struct {
		path   string
		status int
		text   string
	}{
		{"/login", 400, "incomplete"},
		{"/login?authRequestID=", 400, "incomplete"},
		{"/login?authRequestID=unknown", 400, "expired or is no longer valid"},
		{"/login?authRequestID=" + strings.Repeat("a", 5000), 400, "expired or is no longer valid"},
		{"/login?authRequestID=" + url.QueryEscape("\x00\xff'\"<x>"), 400, "expired or is no longer valid"},
		{"/login?authRequestID=" + expired, 400, "expired or is no longer valid"},
		{"/login?authRequestID=" + done, 400, "expired or is no longer valid"},
		{"/nope", 404, "nothing at this address"},
		{"/static/nope.css", 404, "nothing at this address"},
		{"/static/../login.go", 404, ""},
	} {
		res := e.get(e.client, c.path)
		if res.Status != c.status || !strings.Contains(res.Body, c.text) {
			t.Errorf("GET %s: %d\n%s", c.path, res.Status, res.Body)
		}
		if res.Status < 500 {
			checkSecurityHeaders(t, res)
		}
	}
	if res := e.do(e.client, mustRequest(t, http.MethodPut, e.srv.URL+"/login", nil)); res.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /login: %d", res.Status)
	}

	_, csrf := e.openLogin(e.client, e.authRequest("app"))
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"unknown id", url.Values{"authRequestID": {"unknown"}, "email": {"a@b.c"}, "password": {"x"}, "csrf": {csrf}}, 400},
		{"no id", url.Values{"email": {"a@b.c"}, "password": {"x"}, "csrf": {csrf}}, 400},
		{"expired", url.Values{"authRequestID": {expired}, "email": {"a@b.c"}, "password": {"x"}, "csrf": {csrf}}, 400},
		{"huge", url.Values{"authRequestID": {"x"}, "email": {strings.Repeat("a", 100<<10)}, "csrf": {csrf}}, 413},
		{"consent unknown id", url.Values{"authRequestID": {"unknown"}, "action": {"allow"}, "csrf": {csrf}}, 400},
	} {
		path := "/login"
		if strings.HasPrefix(c.name, "consent") {
			path = "/consent"
		}
		res := e.post(e.client, path, c.form)
		if res.Status != c.status || !strings.Contains(res.Body, "<h1>") {
			t.Errorf("%s: %d\n%s", c.name, res.Status, res.Body)
		}
	}
	// Not a form at all.
	req := mustRequest(t, http.MethodPost, e.srv.URL+"/login", strings.NewReader("%%%"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := e.do(e.client, req); res.Status != http.StatusBadRequest {
		t.Errorf("garbage body: %d", res.Status)
	}
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStatic(t *testing.T) {
	e := newEnv(t)
	page, _ := e.openLogin(e.client, e.authRequest("app"))
	m := regexpFind(t, `href="(/static/style\.css\?v=[0-9a-f]+)"`, page.Body)
	res := e.get(e.client, m)
	if res.Status != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		!strings.Contains(res.Header.Get("Cache-Control"), "max-age=31536000") || !strings.Contains(res.Body, ":focus-visible") {
		t.Fatalf("css: %d %v", res.Status, res.Header)
	}
	res = e.get(e.client, regexpFind(t, `src="(/static/logo\.svg\?v=[0-9a-f]+)"`, page.Body))
	if res.Status != 200 || res.Header.Get("Content-Type") != "image/svg+xml" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("svg: %d %v", res.Status, res.Header)
	}
}

func regexpFind(t *testing.T, re, s string) string {
	t.Helper()
	return field(t, regexp.MustCompile(re), s)
}

// A https issuer marks both cookies Secure and gives them the __Host- prefix.
func TestSecureCookies(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Issuer = "https://id.example.com" })
	id := e.authRequest("app")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://id.example.com/login?authRequestID="+id, nil))
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	csrfCookie := rec.Result().Cookies()[0]
	if csrfCookie.Name != "__Host-"+CSRFCookie || !csrfCookie.Secure || !csrfCookie.HttpOnly || csrfCookie.Path != "/" {
		t.Fatalf("csrf cookie %+v", csrfCookie)
	}
	form := url.Values{"authRequestID": {id}, "email": {"alice@example.com"}, "password": {alicePassword},
		"csrf": {field(t, csrfRe, rec.Body.String())}}
	req := httptest.NewRequest(http.MethodPost, "https://id.example.com/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrfCookie)
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("%d\n%s", rec.Code, rec.Body)
	}
	var sawSession bool
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-"+SessionCookie {
			sawSession = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Fatalf("session cookie %+v", c)
			}
		}
	}
	if !sawSession {
		t.Fatal("no __Host- session cookie set")
	}
}

func TestCSPSource(t *testing.T) {
	for in, want := range map[string]string{
		"https://rp.example.com/cb?x=1":    "https://rp.example.com",
		"HTTPS://RP.Example.com:8443/cb":   "https://rp.example.com:8443",
		"http://127.0.0.1:43123/callback":  "http://127.0.0.1:43123",
		"http://[::1]:8080/cb":             "http://[::1]:8080",
		"com.example.app:/oauth2redirect":  "com.example.app:",
		"/authorize/callback?id=1":         "",
		"javascript:alert(1)":              "",
		"data:text/html,x":                 "",
		"::not a url":                      "",
		"https://user:pw@rp.example.com/x": "https://rp.example.com",
	} {
		if got := cspSource(in); got != want {
			t.Errorf("cspSource(%q) = %q, want %q", in, got, want)
		}
	}
	// Whatever the input, nothing that could end or extend the directive.
	for _, in := range []string{"https://bücher.example/cb", "https://a.example;script-src%20*/", "https://a.example,b/",
		"https://a.example'/", "x y:z", "https://a.example%3Bb/", "https://a.example\nb/"} {
		if got := cspSource(in); strings.ContainsAny(got, "; ,'\"\n\t") {
			t.Errorf("cspSource(%q) = %q", in, got)
		}
	}
}

// The CSP allows no inline script and no inline style: the templates must
// not need them. The one script is a static file (the passkey helper).
func TestTemplatesNeedNoScriptOrInlineStyle(t *testing.T) {
	external := regexp.MustCompile(`<script src="\{\{static "[a-z]+\.js"\}\}" defer></script>`)
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		b, _ := templateFS.ReadFile("templates/" + d.Name())
		s := strings.ToLower(external.ReplaceAllString(string(b), ""))
		for _, bad := range []string{"<script", " style=", "<style", "javascript:", " on"} {
			if bad == " on" {
				if regexp.MustCompile(` on[a-z]+=`).MatchString(s) {
					t.Errorf("%s has an inline event handler", d.Name())
				}
				continue
			}
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", d.Name(), bad)
			}
		}
	}
	if got := describeScopes([]string{"email", "notes:read"}); got[0].Description == "" || got[1].Description != "" || got[1].Name != "notes:read" {
		t.Errorf("describeScopes: %+v", got)
	}
}

// The second step's lockout key is one no submitted address can become: the
// password form counts failures under NormalizeEmail of what was typed.
func TestMFALockKeyIsNoAddress(t *testing.T) {
	key := mfaLockPrefix + "01a229e5-676c-7c3d-be27-fc46879edc8f"
	if NormalizeEmail(key) == key {
		t.Fatalf("typing %q as the address counts failures under the second step's key", key)
	}
}
