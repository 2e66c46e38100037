package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/postgres"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// Tests of the account flows: registration, verification, reset, lockout,
// rate limits, the account page. Real SQLite store, real SMTP (mailtest),
// in-memory limiter on the test clock.

// page GETs path with browser c, expects 200 and returns it with its CSRF token.
func (e *env) page(c *http.Client, path string) (response, string) {
	e.t.Helper()
	res := e.get(c, path)
	if res.Status != http.StatusOK {
		e.t.Fatalf("GET %s: %d\n%s", path, res.Status, res.Body)
	}
	return res, field(e.t, csrfRe, res.Body)
}

// submit GETs the page holding a form, then posts form (plus its CSRF token) to action.
func (e *env) submit(c *http.Client, pagePath, action string, form url.Values) response {
	e.t.Helper()
	_, csrf := e.page(c, pagePath)
	f := url.Values{"csrf": {csrf}}
	for k, v := range form {
		f[k] = v
	}
	return e.post(c, action, f)
}

// waitMail waits for the next message to to.
func (e *env) waitMail(to string) mailtest.Received {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	m, err := e.mail.Wait(ctx, to)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// mailLink returns the path (and query) of the first link to path in m.
func (e *env) mailLink(m mailtest.Received, path string) string {
	e.t.Helper()
	l := m.Link(e.srv.URL + path + "?")
	if l == "" {
		e.t.Fatalf("no %s link in the message %q:\n%s", path, m.Subject, m.Text)
	}
	return strings.TrimPrefix(l, e.srv.URL)
}

// settle waits for background work (forgot, resend) and for the mailer to
// deliver what it queued meanwhile.
func (e *env) settle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.h.Wait(ctx); err != nil {
		e.t.Fatal(err)
	}
	// The mailer's single worker delivers in queue order: once a message
	// queued now has arrived, everything queued before it has been sent.
	e.mailer.PasswordChanged(ctx, settleAddress, "")
	if _, err := e.mail.Wait(ctx, settleAddress); err != nil {
		e.t.Fatalf("mail queue did not drain: %v", err)
	}
}

// settleAddress receives settle's marker mail; tests ignore it.
const settleAddress = "settle-marker@example.invalid"

func (e *env) user(email string) *storage.User {
	e.t.Helper()
	u, err := e.store.GetUserByEmail(e.ctx, email)
	if err != nil {
		e.t.Fatalf("user %s: %v", email, err)
	}
	return u
}

func (e *env) noUser(email string) {
	e.t.Helper()
	if _, err := e.store.GetUserByEmail(e.ctx, email); !errors.Is(err, storage.ErrNotFound) {
		e.t.Fatalf("user %s exists (%v)", email, err)
	}
}

func mustContain(t *testing.T, res response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(res.Body, w) {
			t.Errorf("page (%d) lacks %q:\n%s", res.Status, w, res.Body)
		}
	}
}

func (e *env) signInPlain(c *http.Client, email, pw string) response {
	e.t.Helper()
	return e.submit(c, "/login?return=%2Faccount", "/login", url.Values{"return": {"/account"}, "email": {email}, "password": {pw}})
}

func sessionCookieSet(res response) bool {
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == SessionCookie && c.Value != "" {
			return true
		}
	}
	return false
}

func TestSignInPageLinksKeepTheFlow(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	res, _ := e.openLogin(e.client, id)
	q := url.Values{"authRequestID": {id}}.Encode()
	mustContain(t, res,
		`<a href="/forgot?`+q+`">Forgot your password?</a>`,
		`<a href="/register?`+q+`">Create account</a>`)

	reg, _ := e.page(e.client, "/register?"+q)
	mustContain(t, reg, `<input type="hidden" name="authRequestID" value="`+id+`">`, "Acme Notes",
		`<a href="/login?`+q+`">Sign in</a>`)
	forgot, _ := e.page(e.client, "/forgot?"+q)
	mustContain(t, forgot, `<input type="hidden" name="authRequestID" value="`+id+`">`, `<a href="/login?`+q+`">Back to sign in</a>`)

	// Registration can be switched off.
	e2 := newEnv(t, func(c *Config) { c.DisableRegistration = true })
	id2 := e2.authRequest("app")
	res2, _ := e2.openLogin(e2.client, id2)
	if strings.Contains(res2.Body, "/register") {
		t.Error("registration link shown while registration is off")
	}
	if res := e2.get(e2.client, "/register"); res.Status != http.StatusNotFound {
		t.Errorf("/register while off: %d", res.Status)
	}
}

func TestRegisterVerifyAndContinue(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	q := "?authRequestID=" + url.QueryEscape(id)
	page, _ := e.page(e.client, "/register"+q)
	mustContain(t, page,
		`<label for="name">Name</label>`, `<label for="email">Email</label>`, `<label for="password">Password</label>`,
		`autocomplete="name"`, `autocomplete="email"`, `autocomplete="new-password"`,
		`<button type="submit">Create account</button>`,
		`At least 8 characters, with an upper-case letter and a digit; not a common password.`,
		`aria-describedby="password-hint"`)
	checkSecurityHeaders(t, page)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://rp.example.com") {
		t.Errorf("registration in a flow must allow the redirect to the client: %s", csp)
	}

	res := e.submit(e.client, "/register"+q, "/register", url.Values{"authRequestID": {id},
		"name": {"  Grace   Hopper "}, "email": {" Grace@Example.COM "}, "password": {"Cobol-Rocks-1959"}})
	grace := e.user("grace@example.com")
	ar := e.expectCompleted(res, id, grace) // signed in and back to the app
	if grace.Name != "Grace Hopper" || grace.EmailVerified || grace.Role != "USER" {
		t.Fatalf("new user %+v", grace)
	}
	if ok, _, _ := e.hasher.Verify(e.ctx, grace.PasswordHash, "Cobol-Rocks-1959"); !ok {
		t.Fatal("password not stored")
	}
	if ar.SessionID == "" || !sessionCookieSet(res) {
		t.Fatal("no session after registration")
	}

	m := e.waitMail("grace@example.com")
	link := e.mailLink(m, "/verify-email")
	if !strings.Contains(link, "token=") {
		t.Fatalf("link %q", link)
	}
	tok := regexp.MustCompile(`token=([A-Za-z0-9_-]+)`).FindStringSubmatch(link)[1]
	if raw, err := b64.DecodeString(tok); err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes base64url", tok)
	}
	v := e.get(e.newBrowser(), link) // any browser: the link is the proof
	if v.Status != http.StatusOK || !strings.Contains(v.Body, "grace@example.com is verified") {
		t.Fatalf("verify: %d\n%s", v.Status, v.Body)
	}
	if v.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Error("verification page leaks its URL in Referer")
	}
	if !e.user("grace@example.com").EmailVerified {
		t.Fatal("not verified")
	}
	// Single use.
	again := e.get(e.client, link)
	if again.Status != http.StatusBadRequest || !strings.Contains(again.Body, "This verification link is invalid or has expired.") {
		t.Fatalf("reused link: %d\n%s", again.Status, again.Body)
	}
	mustContain(t, again, `href="/verify-email/resend`)
	// A forged or malformed token.
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), tok + "x", "%00"} {
		if res := e.get(e.client, "/verify-email?token="+bad); res.Status != http.StatusBadRequest {
			t.Errorf("token %q: %d", bad, res.Status)
		}
	}
}

func TestRegisterWithoutFlowGoesToAccount(t *testing.T) {
	e := newEnv(t)
	res := e.submit(e.client, "/register", "/register", url.Values{"return": {"/account"},
		"name": {"Ada"}, "email": {"ada@example.com"}, "password": {"Analytical-Engine-1"}})
	if res.Status != http.StatusSeeOther || res.Location() != "/account" {
		t.Fatalf("%d %q\n%s", res.Status, res.Location(), res.Body)
	}
	acc := e.get(e.client, "/account")
	mustContain(t, acc, "ada@example.com", "Not verified")
	e.waitMail("ada@example.com")
}

func TestRegisterValidation(t *testing.T) {
	e := newEnv(t)
	good := url.Values{"name": {"Grace Hopper"}, "email": {"grace@example.com"}, "password": {"Cobol-Rocks-1959"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}
	for _, c := range []struct {
		form   url.Values
		field  string
		errors []string
	}{
		{with("name", "G"), "name", []string{"Name must be at least 2 characters."}},
		{with("name", "  "), "name", []string{"Name must be at least 2 characters."}},
		{with("email", "grace"), "email", []string{"Enter a valid email address, like name@example.com."}},
		{with("email", ""), "email", []string{"Enter your email address."}},
		{with("password", "Short1"), "password", []string{"Password must be at least 8 characters."}},
		{with("password", "no-upper-case-1"), "password", []string{"Password must contain an upper-case letter."}},
		{with("password", "No-Digits-Here"), "password", []string{"Password must contain a digit."}},
		{with("password", "Password1"), "password", []string{"This password is too common. Choose one that is harder to guess."}},
		{with("password", "Sunshine123"), "password", []string{"This password is too common. Choose one that is harder to guess."}},
		{with("password", strings.Repeat("Aa1", 43)), "password", []string{"Password must be at most 128 characters."}},
		{with("password", "short"), "password", []string{"Password must be at least 8 characters.",
			"Password must contain an upper-case letter.", "Password must contain a digit."}},
	} {
		res := e.submit(e.client, "/register", "/register", c.form)
		if res.Status != http.StatusBadRequest {
			t.Errorf("%v: status %d", c.form, res.Status)
			continue
		}
		var items []string
		for _, m := range c.errors {
			items = append(items, "<li>"+template_escape(m)+"</li>")
		}
		mustContain(t, res,
			`<p class="alert" id="form-error" role="alert">Please correct the errors below.</p>`,
			`<ul class="field-error" id="`+c.field+`-error">`+strings.Join(items, "")+`</ul>`,
			`aria-invalid="true"`)
		if c.field == "password" {
			mustContain(t, res, `aria-describedby="password-hint password-error"`)
		} else {
			mustContain(t, res, `aria-describedby="`+c.field+`-error"`)
		}
		if strings.Contains(res.Body, "Cobol-Rocks-1959") {
			t.Error("password echoed back")
		}
	}
	e.noUser("grace@example.com")
	e.noUser("grace")
}

// template_escape escapes like html/template does for the messages used here.
func template_escape(s string) string {
	return strings.NewReplacer("'", "&#39;", `"`, "&#34;", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func TestRegisterDuplicateEmail(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	q := url.Values{"authRequestID": {id}}.Encode()
	res := e.submit(e.client, "/register?"+q, "/register", url.Values{"authRequestID": {id},
		"name": {"Another Alice"}, "email": {"  ALICE@example.COM"}, "password": {"Totally-New-Pass-7"}})
	if res.Status != http.StatusConflict {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	mustContain(t, res, "An account with this email already exists.",
		`<a href="/login?`+q+`">Sign in</a>`, `<a href="/forgot?`+q+`">Reset your password</a>`)
	if u := e.user("alice@example.com"); u.ID != e.alice.ID || u.Name != "Test" {
		t.Fatal("existing account touched")
	}
	if sessionCookieSet(res) {
		t.Fatal("signed in")
	}
}

func TestRequireVerifiedEmail(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequireVerifiedEmail = true })
	id := e.authRequest("app")
	q := url.Values{"authRequestID": {id}}.Encode()
	res := e.submit(e.client, "/register?"+q, "/register", url.Values{"authRequestID": {id},
		"name": {"Grace"}, "email": {"grace@example.com"}, "password": {"Cobol-Rocks-1959"}})
	if res.Status != http.StatusOK || sessionCookieSet(res) {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	mustContain(t, res, "Check your inbox", "We have sent a verification link to grace@example.com.")
	if e.getAuthRequest(id).Done {
		t.Fatal("completed before verification")
	}

	// Right password, unverified: refused with a resend link. Wrong password: the usual message.
	wrong := e.signIn(e.client, id, "grace@example.com", "Wrong-Password-1")
	mustContain(t, wrong, "Invalid email or password.")
	unverified := e.signIn(e.client, id, "grace@example.com", "Cobol-Rocks-1959")
	if unverified.Status != http.StatusForbidden {
		t.Fatalf("%d", unverified.Status)
	}
	mustContain(t, unverified, "Please verify your email address before signing in.",
		`<a href="/verify-email/resend?`+q+`">Send a new verification link</a>`)

	link := e.mailLink(e.waitMail("grace@example.com"), "/verify-email")
	v := e.get(e.client, link)
	mustContain(t, v, "grace@example.com is verified", `href="/login?`+q+`">Continue</a>`)
	e.expectCompleted(e.signIn(e.client, id, "grace@example.com", "Cobol-Rocks-1959"), id, e.user("grace@example.com"))
}

func TestResendVerification(t *testing.T) {
	e := newEnv(t)
	e.createUser("unverified@example.com", "Some-Password-1")
	page, _ := e.page(e.client, "/verify-email/resend")
	mustContain(t, page, `<label for="email">Email</label>`, `autocomplete="email"`)

	send := func(email string) response {
		return e.submit(e.client, "/verify-email/resend", "/verify-email/resend", url.Values{"email": {email}})
	}
	if err := e.store.SetUserEmailVerified(e.ctx, e.alice.ID, true, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	known := send("Unverified@Example.com")
	unknown := send("nobody@example.com")
	verified := send("alice@example.com")
	for _, r := range []response{unknown, verified} {
		if r.Status != known.Status || r.Body != known.Body {
			t.Fatalf("responses differ:\n%s\n---\n%s", known.Body, r.Body)
		}
	}
	mustContain(t, known, "If an account with that address is waiting to be verified, we have sent a new verification link.")
	link := e.mailLink(e.waitMail("unverified@example.com"), "/verify-email")
	e.get(e.client, link)
	if !e.user("unverified@example.com").EmailVerified {
		t.Fatal("resent link does not verify")
	}
	e.settle()
	for _, m := range e.mail.Messages() {
		if m.To != "unverified@example.com" && m.To != settleAddress {
			t.Errorf("unexpected mail to %s", m.To)
		}
	}
}

func TestForgotAndReset(t *testing.T) {
	e := newEnv(t)
	// Alice is signed in elsewhere, with a grant.
	other := e.newBrowser()
	ar := e.login(other)
	now := e.clock.Now()
	if err := e.store.CreateGrant(e.ctx, &storage.Grant{ID: "g-1", UserID: e.alice.ID, ClientID: "app", SessionID: ar.SessionID,
		Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	page, _ := e.page(e.client, "/forgot")
	mustContain(t, page, `<label for="email">Email</label>`, `<button type="submit">Send reset link</button>`)
	forgot := func(email string) response {
		return e.submit(e.client, "/forgot", "/forgot", url.Values{"email": {email}})
	}
	known := forgot("alice@example.com")
	unknown := forgot("mallory@example.com")
	if known.Status != http.StatusOK || known.Body != unknown.Body {
		t.Fatalf("forgot responses differ:\n%s\n---\n%s", known.Body, unknown.Body)
	}
	mustContain(t, known, "If an account exists for that address, we have sent a reset link.")

	m := e.waitMail("alice@example.com")
	link := e.mailLink(m, "/reset")
	form := e.get(e.client, link)
	if form.Status != http.StatusOK {
		t.Fatalf("%d\n%s", form.Status, form.Body)
	}
	mustContain(t, form, "Set new password", `<button type="submit">Set new password</button>`,
		`autocomplete="new-password"`, `<label for="password">Password</label>`, "alice@example.com")
	if form.Header.Get("Referrer-Policy") != "no-referrer" || form.Header.Get("Cache-Control") != "no-store" {
		t.Error("reset page headers")
	}
	// Looking at the form again (a reload, a mail scanner) does not use the link up.
	form = e.get(e.client, link)
	if form.Status != http.StatusOK {
		t.Fatalf("second GET: %d\n%s", form.Status, form.Body)
	}
	token := field(t, regexp.MustCompile(`name="token" value="([^"]*)"`), form.Body)
	csrf := field(t, csrfRe, form.Body)

	// The policy applies.
	weak := e.post(e.client, "/reset", url.Values{"csrf": {csrf}, "token": {token}, "password": {"password"}})
	if weak.Status != http.StatusBadRequest {
		t.Fatalf("weak: %d", weak.Status)
	}
	mustContain(t, weak, "Password must contain an upper-case letter.", "This password is too common.")

	done := e.post(e.client, "/reset", url.Values{"csrf": {csrf}, "token": {token}, "password": {"Brand-New-Secret-8"}})
	if done.Status != http.StatusOK {
		t.Fatalf("reset: %d\n%s", done.Status, done.Body)
	}
	mustContain(t, done, "Your password has been changed", `href="/login?return=%2Faccount">Sign in</a>`)

	// Old password refused, new accepted.
	id := e.authRequest("app")
	mustContain(t, e.signIn(e.newBrowser(), id, "alice@example.com", alicePassword), "Invalid email or password.")
	e.expectCompleted(e.signIn(e.newBrowser(), id, "alice@example.com", "Brand-New-Secret-8"), id, e.alice)

	// Every earlier session and grant ended.
	if _, err := e.store.GetSession(e.ctx, ar.SessionID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old session survived: %v", err)
	}
	if g, _ := e.store.GetGrant(e.ctx, "g-1"); g == nil || g.RevokedAt == nil {
		t.Fatal("grant not revoked")
	}
	// The link is used up, on GET and POST alike.
	used := e.get(e.client, link)
	if used.Status != http.StatusBadRequest {
		t.Fatalf("used link: %d", used.Status)
	}
	mustContain(t, used, "This reset link is invalid or has expired. Please request a new one.", `href="/forgot"`)
	again := e.post(e.client, "/reset", url.Values{"csrf": {csrf}, "token": {token}, "password": {"Another-Secret-9"}})
	mustContain(t, again, "This reset link is invalid or has expired.")

	// Told by email; the unknown address got nothing.
	if n := e.waitMail("alice@example.com"); !strings.Contains(strings.ToLower(n.Subject+n.Text), "password") {
		t.Errorf("password-changed notice: %q", n.Subject)
	}
	e.settle()
	for _, m := range e.mail.Messages() {
		if m.To == "mallory@example.com" {
			t.Fatal("mail sent to an unknown address")
		}
	}
}

func TestResetLinkExpiresAndIsReplaced(t *testing.T) {
	testResetLink(t, newEnv(t))
}

func TestResetLinkExpiresAndIsReplacedPostgres(t *testing.T) {
	testResetLink(t, newPostgresEnv(t))
}

func testResetLink(t *testing.T, e *env) {
	forgot := func() string {
		e.submit(e.client, "/forgot", "/forgot", url.Values{"email": {"alice@example.com"}})
		return e.mailLink(e.waitMail("alice@example.com"), "/reset")
	}
	first := forgot()
	second := forgot()
	if res := e.get(e.client, first); res.Status != http.StatusBadRequest {
		t.Fatalf("older link still valid: %d", res.Status)
	}
	if res := e.get(e.client, second); res.Status != http.StatusOK {
		t.Fatalf("newer link: %d", res.Status)
	}
	if res := e.get(e.client, second); res.Status != http.StatusOK {
		t.Fatalf("newer link, looked at twice: %d", res.Status)
	}
	e.clock.Advance(59 * time.Minute)
	if res := e.get(e.client, second); res.Status != http.StatusOK {
		t.Fatalf("link after 59 minutes: %d", res.Status)
	}
	e.clock.Advance(2 * time.Minute)
	res := e.get(e.client, second)
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "This reset link is invalid or has expired.") {
		t.Fatalf("expired link: %d\n%s", res.Status, res.Body)
	}
}

func TestResetContinuesTheFlow(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ExpiresAt = ar.CreatedAt.Add(time.Hour) })
	q := url.Values{"authRequestID": {id}}.Encode()
	e.submit(e.client, "/forgot?"+q, "/forgot", url.Values{"authRequestID": {id}, "email": {"alice@example.com"}})
	link := e.mailLink(e.waitMail("alice@example.com"), "/reset")
	if !strings.Contains(link, q) {
		t.Fatalf("link %q does not carry the auth request", link)
	}
	form := e.get(e.client, link)
	done := e.post(e.client, "/reset", url.Values{"csrf": {field(t, csrfRe, form.Body)}, "authRequestID": {id},
		"token": {field(t, regexp.MustCompile(`name="token" value="([^"]*)"`), form.Body)}, "password": {"Brand-New-Secret-8"}})
	mustContain(t, done, `href="/login?`+q+`">Sign in to continue</a>`)
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", "Brand-New-Secret-8"), id, e.alice)
}

func TestResetClearsLockout(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app")
	for range 5 {
		e.signIn(e.client, id, "alice@example.com", "wrong")
	}
	mustContain(t, e.signIn(e.client, id, "alice@example.com", alicePassword), "temporarily locked")
	e.submit(e.client, "/forgot", "/forgot", url.Values{"email": {"alice@example.com"}})
	link := e.mailLink(e.waitMail("alice@example.com"), "/reset")
	form := e.get(e.client, link)
	e.post(e.client, "/reset", url.Values{"csrf": {field(t, csrfRe, form.Body)},
		"token": {field(t, regexp.MustCompile(`name="token" value="([^"]*)"`), form.Body)}, "password": {"Brand-New-Secret-8"}})
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", "Brand-New-Secret-8"), id, e.alice)
}

const lockedPrefix = "Your account has been temporarily locked due to too many failed sign-in attempts. Please try again in "

func TestLockout(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ExpiresAt = ar.CreatedAt.Add(time.Hour) })
	for i := range 4 {
		res := e.signIn(e.client, id, "alice@example.com", "wrong-"+strconv.Itoa(i))
		if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "Invalid email or password.") {
			t.Fatalf("failure %d: %d", i+1, res.Status)
		}
	}
	// The fifth failure locks.
	fifth := e.signIn(e.client, id, "alice@example.com", "wrong-5")
	mustContain(t, fifth, lockedPrefix+"15 minutes.")
	before := e.counter.checks.Load()
	// Locked: even the right password is refused, without being checked.
	res := e.signIn(e.client, id, "alice@example.com", alicePassword)
	if res.Status != http.StatusForbidden {
		t.Fatalf("%d", res.Status)
	}
	mustContain(t, res, lockedPrefix+"15 minutes.")
	if e.counter.checks.Load() != before {
		t.Fatal("a password was checked while locked")
	}
	// The real remaining time, rounded up.
	e.clock.Advance(10*time.Minute + 30*time.Second)
	mustContain(t, e.signIn(e.client, id, "alice@example.com", alicePassword), lockedPrefix+"5 minutes.")
	e.clock.Advance(4 * time.Minute)
	mustContain(t, e.signIn(e.client, id, "alice@example.com", alicePassword), lockedPrefix+"1 minute.")
	// After the window.
	e.clock.Advance(31 * time.Second)
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)

	// Success cleared the counter: four more failures do not lock.
	id2 := e.authRequest("app")
	for range 4 {
		e.signIn(e.newBrowser(), id2, "alice@example.com", "wrong")
	}
	e.expectCompleted(e.signIn(e.newBrowser(), id2, "alice@example.com", alicePassword), id2, e.alice)
}

func TestLockoutConfigurable(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LockoutThreshold, c.LockoutDuration = 2, 3*time.Minute })
	id := e.authRequest("app")
	e.signIn(e.client, id, "alice@example.com", "wrong")
	mustContain(t, e.signIn(e.client, id, "alice@example.com", "wrong"), lockedPrefix+"3 minutes.")
}

// Locks are per submitted address: an unknown one locks just the same, and
// the pages for a known and an unknown address stay identical throughout.
func TestLockoutRevealsNothing(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ExpiresAt = ar.CreatedAt.Add(time.Hour) })
	for i := range 7 {
		known := e.signIn(e.client, id, "alice@example.com", "wrong")
		unknown := e.signIn(e.client, id, "nobody@example.com", "wrong")
		if known.Status != unknown.Status || maskPage(known.Body) != maskPage(unknown.Body) {
			t.Fatalf("attempt %d differs:\n%s\n---\n%s", i+1, known.Body, unknown.Body)
		}
		if i >= 4 {
			mustContain(t, unknown, lockedPrefix+"15 minutes.")
		}
	}
	// Even the right password shows the same page as an unknown address.
	known := e.signIn(e.client, id, "alice@example.com", alicePassword)
	unknown := e.signIn(e.client, id, "nobody@example.com", alicePassword)
	if maskPage(known.Body) != maskPage(unknown.Body) {
		t.Fatal("locked pages differ")
	}
}

func maskPage(s string) string {
	s = csrfRe.ReplaceAllString(s, `name="csrf" value="CSRF"`)
	return emailRe.ReplaceAllString(s, `${1}EMAIL${3}`)
}

// 20 parallel wrong guesses get at most 5 password checks: the attempt is
// counted in the store before the password is verified.
func TestParallelGuessesHitTheLockoutSQLite(t *testing.T) {
	testParallelGuesses(t, newEnv(t, noRateLimits))
}

func noRateLimits(c *Config) {
	off := RateLimit{Limit: -1}
	c.SignInPerEmail, c.SignInPerIP = off, off
}

func testParallelGuesses(t *testing.T, e *env) {
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		before := e.counter.checks.Load()
		var wg sync.WaitGroup
		statuses := make(chan int, 20)
		start := make(chan struct{})
		for i := range 20 {
			wg.Go(func() {
				<-start
				form := url.Values{"authRequestID": {id}, "email": {email}, "password": {fmt.Sprintf("guess-%d", i)}, "csrf": {csrf}}
				statuses <- e.post(e.client, "/login", form).Status
			})
		}
		close(start)
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for s := range statuses {
			counts[s]++
		}
		checks := e.counter.checks.Load() - before
		if checks > 5 || checks < 1 {
			t.Errorf("%s: %d password checks for 20 parallel guesses (statuses %v)", email, checks, counts)
		}
		if counts[http.StatusBadRequest]+counts[http.StatusForbidden] != 20 {
			t.Errorf("%s: statuses %v", email, counts)
		}
		// And then locked, right password or not.
		mustContain(t, e.signIn(e.client, id, email, alicePassword), lockedPrefix)
	}
}

func TestRateLimitSignIn(t *testing.T) {
	e := newEnv(t)
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ExpiresAt = ar.CreatedAt.Add(time.Hour) })
	// 10 a minute per address (the lockout answers from the 5th on).
	for range 10 {
		if res := e.signIn(e.client, id, "nobody@example.com", "wrong"); res.Status == http.StatusTooManyRequests {
			t.Fatal("limited too early")
		}
	}
	res := e.signIn(e.client, id, "nobody@example.com", "wrong")
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("%d", res.Status)
	}
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	mustContain(t, res, fmt.Sprintf("Too many attempts. Please try again in %d seconds.", ra))
	// Another address from the same IP is still fine…
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	// …until the per-IP limit (30 a minute).
	id2 := e.authRequest("app")
	limited := false
	for i := range 25 {
		res := e.signIn(e.newBrowser(), id2, fmt.Sprintf("user%d@example.com", i), "wrong")
		if res.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("no per-IP limit")
	}
	// The budget refills with time.
	e.clock.Advance(time.Minute)
	id3 := e.authRequest("app")
	e.expectCompleted(e.signIn(e.newBrowser(), id3, "alice@example.com", alicePassword), id3, e.alice)
}

func TestRateLimitRegisterForgotResend(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RegisterPerIP = RateLimit{Limit: 2, Period: time.Hour} })
	for i := range 2 {
		res := e.submit(e.newBrowser(), "/register", "/register", url.Values{"name": {"User"},
			"email": {fmt.Sprintf("u%d@example.com", i)}, "password": {"Cobol-Rocks-1959"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("registration %d: %d\n%s", i, res.Status, res.Body)
		}
	}
	res := e.submit(e.client, "/register", "/register", url.Values{"name": {"User"},
		"email": {"u9@example.com"}, "password": {"Cobol-Rocks-1959"}})
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1800" {
		t.Fatalf("%d %q", res.Status, res.Header.Get("Retry-After"))
	}
	mustContain(t, res, "Too many attempts. Please try again in 1800 seconds.")
	e.noUser("u9@example.com")

	for _, path := range []string{"/forgot", "/verify-email/resend"} {
		for range 5 {
			if res := e.submit(e.client, path, path, url.Values{"email": {"bob@example.com"}}); res.Status != http.StatusOK {
				t.Fatalf("%s: %d", path, res.Status)
			}
		}
		res := e.submit(e.client, path, path, url.Values{"email": {"bob@example.com"}})
		if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "720" {
			t.Fatalf("%s: %d %q", path, res.Status, res.Header.Get("Retry-After"))
		}
		// Another address still works (until the per-IP limit of 20).
		if res := e.submit(e.client, path, path, url.Values{"email": {"carol@example.com"}}); res.Status != http.StatusOK {
			t.Fatalf("%s other address: %d", path, res.Status)
		}
	}
}

func TestPlainSignInReturnsToAccount(t *testing.T) {
	e := newEnv(t)
	res := e.get(e.client, "/account")
	if res.Status != http.StatusSeeOther || res.Location() != "/login?return=%2Faccount" {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
	login, _ := e.page(e.client, res.Location())
	mustContain(t, login, `<input type="hidden" name="return" value="/account">`, "to your Gatehouse account")
	if strings.Contains(login.Body, "authRequestID") {
		t.Error("plain sign-in page mentions an auth request")
	}
	signed := e.signInPlain(e.client, "alice@example.com", alicePassword)
	if signed.Status != http.StatusSeeOther || signed.Location() != "/account" {
		t.Fatalf("%d %q\n%s", signed.Status, signed.Location(), signed.Body)
	}
	// Signed in: /login?return=… goes straight there.
	if res := e.get(e.client, "/login?return=%2Faccount"); res.Status != http.StatusSeeOther || res.Location() != "/account" {
		t.Fatalf("%d %q", res.Status, res.Location())
	}
	// Only same-site paths.
	for _, bad := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil", "/%0d%0aX: y"} {
		res := e.get(e.newBrowser(), "/login?return="+url.QueryEscape(bad))
		if res.Status != http.StatusBadRequest {
			t.Errorf("return %q: %d %q", bad, res.Status, res.Location())
		}
	}
	if got := safeReturn("/account?notice=x"); got != "/account?notice=x" {
		t.Errorf("safeReturn: %q", got)
	}
	// A continuation back into an app's sign-in carries the sealed request,
	// often longer than 512 bytes (enrolment's "I have saved them", re-auth).
	long := "/login?authRequestID=" + strings.Repeat("A", 4096)
	if got := safeReturn(long); got != long {
		t.Errorf("safeReturn dropped a %d-byte continuation", len(long))
	}
	if got := safeReturn("/login?authRequestID=" + strings.Repeat("A", maxReturn)); got != "" {
		t.Errorf("safeReturn kept an oversized path")
	}
	// A page of a pending sign-in carries its handle, which is long.
	withHandle := "/account/totp?authRequestID=" + strings.Repeat("h", 2000)
	if got := safeReturn(withHandle); got != withHandle {
		t.Errorf("safeReturn drops a return path carrying a %d-byte handle", 2000)
	}
	if got := safeReturn("/account?x=" + strings.Repeat("h", maxReturn)); got != "" {
		t.Errorf("safeReturn accepts a path of %d bytes", len(got))
	}
}

func TestAccountPage(t *testing.T) {
	e := newEnv(t)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	res := e.get(e.client, "/account")
	if res.Status != http.StatusOK {
		t.Fatalf("%d", res.Status)
	}
	checkSecurityHeaders(t, res)
	mustContain(t, res, "Your account", "alice@example.com", "Not verified",
		`<label for="pw-current">Current password</label>`, `autocomplete="current-password"`, `autocomplete="new-password"`,
		`action="/account/password"`, `action="/account/email"`, `action="/account/delete"`, `href="/verify-email/resend?return=%2Faccount"`)
	if err := e.store.SetUserEmailVerified(e.ctx, e.alice.ID, true, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.get(e.client, "/account"), `<span class="badge ok">Verified</span>`)
}

func TestAccountChangePassword(t *testing.T) {
	e := newEnv(t)
	other := e.newBrowser()
	otherAR := e.login(other)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	now := e.clock.Now()
	if err := e.store.CreateGrant(e.ctx, &storage.Grant{ID: "g-other", UserID: e.alice.ID, ClientID: "app", SessionID: otherAR.SessionID,
		Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	change := func(cur, nw string) response {
		return e.submit(e.client, "/account", "/account/password", url.Values{"current_password": {cur}, "new_password": {nw}})
	}
	res := change("wrong", "Brand-New-Secret-8")
	if res.Status != http.StatusBadRequest {
		t.Fatalf("%d", res.Status)
	}
	mustContain(t, res, `<ul class="field-error" id="pw-current-error"><li>The password is incorrect.</li></ul>`, `aria-invalid="true"`)
	res = change(alicePassword, "weak")
	mustContain(t, res, `id="pw-new-error"`, "Password must be at least 8 characters.")
	res = change(alicePassword, alicePassword)
	mustContain(t, res, "The new password must be different from the current one.")

	res = change(alicePassword, "Brand-New-Secret-8")
	if res.Status != http.StatusSeeOther || res.Location() != "/account?notice=password-changed" {
		t.Fatalf("%d %q\n%s", res.Status, res.Location(), res.Body)
	}
	// This browser stays signed in; the other one is out, and its grant revoked.
	mustContain(t, e.get(e.client, res.Location()), "Your password has been changed.")
	if r := e.get(other, "/account"); r.Status != http.StatusSeeOther {
		t.Fatalf("other session still alive: %d", r.Status)
	}
	if g, _ := e.store.GetGrant(e.ctx, "g-other"); g == nil || g.RevokedAt == nil {
		t.Fatal("grant not revoked")
	}
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"login"} })
	e.expectCompleted(e.signIn(e.newBrowser(), id, "alice@example.com", "Brand-New-Secret-8"), id, e.alice)
	e.waitMail("alice@example.com") // password changed notice
}

func TestAccountChangeEmail(t *testing.T) {
	e := newEnv(t)
	e.createUser("bob@example.com", "Bob-Password-1")
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	change := func(email, pw string) response {
		return e.submit(e.client, "/account", "/account/email", url.Values{"email": {email}, "password": {pw}})
	}
	mustContain(t, change("not-an-email", alicePassword), `id="em-new-error"`, "Enter a valid email address")
	mustContain(t, change("ALICE@example.com", alicePassword), "This is already your email address.")
	mustContain(t, change("new@example.com", "wrong"), `id="em-password-error"`, "The password is incorrect.")
	mustContain(t, change("bob@example.com", alicePassword), "An account with this email already exists.")

	res := change(" New@Example.com ", alicePassword)
	if res.Status != http.StatusSeeOther || res.Location() != "/account?notice=email-sent" {
		t.Fatalf("%d %q\n%s", res.Status, res.Location(), res.Body)
	}
	mustContain(t, e.get(e.client, res.Location()), "We have sent a confirmation link to your new address.")
	// Nothing changes until the link is opened.
	if e.user("alice@example.com").ID != e.alice.ID {
		t.Fatal("changed too early")
	}
	notice := e.waitMail("alice@example.com")
	if !strings.Contains(notice.Text, "new@example.com") {
		t.Errorf("notice to the old address does not name the new one:\n%s", notice.Text)
	}
	link := e.mailLink(e.waitMail("new@example.com"), "/account/confirm-email")
	done := e.get(e.newBrowser(), link)
	if done.Status != http.StatusOK {
		t.Fatalf("%d\n%s", done.Status, done.Body)
	}
	mustContain(t, done, "Your email address is now new@example.com.")
	u := e.user("new@example.com")
	if u.ID != e.alice.ID || !u.EmailVerified {
		t.Fatalf("%+v", u)
	}
	e.noUser("alice@example.com")
	if res := e.get(e.client, link); res.Status != http.StatusBadRequest {
		t.Fatalf("reused link: %d", res.Status)
	}
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.newBrowser(), id, "new@example.com", alicePassword), id, e.alice)
}

// TestPasswordChangeVoidsPendingEmailChange: someone who knew the old
// password asks to move the account to their address; the owner then changes
// the password. The pending link must be dead.
func TestPasswordChangeVoidsPendingEmailChange(t *testing.T) {
	e := newEnv(t)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	res := e.submit(e.client, "/account", "/account/email", url.Values{"email": {"mallory@example.com"}, "password": {alicePassword}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	link := e.mailLink(e.waitMail("mallory@example.com"), "/account/confirm-email")
	res = e.submit(e.client, "/account", "/account/password", url.Values{"current_password": {alicePassword}, "new_password": {"Brand-New-Secret-8"}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	if res := e.get(e.newBrowser(), link); res.Status != http.StatusBadRequest {
		t.Fatalf("email-change link still works after the password changed: %d", res.Status)
	}
	if e.user("alice@example.com").ID != e.alice.ID {
		t.Fatal("the address changed")
	}
}

func TestAccountDelete(t *testing.T) {
	e := newEnv(t)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	del := func(pw string) response {
		return e.submit(e.client, "/account", "/account/delete", url.Values{"password": {pw}})
	}
	mustContain(t, del(""), `id="del-password-error"`, "Enter your current password.")
	mustContain(t, del("wrong"), "The password is incorrect.")
	e.user("alice@example.com")
	res := del(alicePassword)
	if res.Status != http.StatusOK {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	mustContain(t, res, "Your account has been deleted")
	if !strings.Contains(strings.Join(res.Header["Set-Cookie"], "\n"), SessionCookie+"=; Path=/; Max-Age=0") {
		t.Errorf("cookie not cleared: %v", res.Header["Set-Cookie"])
	}
	e.noUser("alice@example.com")
	if r := e.get(e.client, "/account"); r.Status != http.StatusSeeOther {
		t.Fatalf("still signed in: %d", r.Status)
	}
	e.waitMail("alice@example.com")
}

func TestAccountFormsRateLimitedAndLocked(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AccountPerUser = RateLimit{Limit: 3, Period: time.Minute} })
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	for range 3 {
		e.submit(e.client, "/account", "/account/delete", url.Values{"password": {"wrong"}})
	}
	res := e.submit(e.client, "/account", "/account/delete", url.Values{"password": {alicePassword}})
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("%d", res.Status)
	}
	e.user("alice@example.com")

	// Wrong current passwords count towards the sign-in lockout.
	e.clock.Advance(time.Minute)
	for range 2 {
		e.submit(e.client, "/account", "/account/delete", url.Values{"password": {"wrong"}})
	}
	e.clock.Advance(time.Minute)
	res = e.submit(e.client, "/account", "/account/delete", url.Values{"password": {alicePassword}})
	mustContain(t, res, lockedPrefix)
	e.user("alice@example.com")
}

func TestAccountFormsNeedASession(t *testing.T) {
	e := newEnv(t)
	_, csrf := e.page(e.client, "/forgot")
	for _, p := range []string{"/account/password", "/account/email", "/account/delete"} {
		res := e.post(e.client, p, url.Values{"csrf": {csrf}, "password": {alicePassword}, "current_password": {alicePassword}})
		if res.Status != http.StatusSeeOther || res.Location() != "/login?return=%2Faccount" {
			t.Errorf("%s: %d %q", p, res.Status, res.Location())
		}
	}
}

// No form answers with a 500, whatever it is sent.
func TestBadInputsNeverFail(t *testing.T) {
	e := newEnv(t)
	e.signInPlain(e.client, "alice@example.com", alicePassword)
	_, csrf := e.page(e.client, "/account")
	huge := strings.Repeat("x", 60<<10)
	bads := []url.Values{
		{},
		{"email": {""}, "password": {""}, "name": {""}},
		{"email": {huge}},
		{"name": {huge}, "email": {"a@b.co"}, "password": {"Cobol-Rocks-1959"}},
		{"email": {strings.Repeat("a", 300) + "@example.com"}, "password": {"x"}},
		{"email": {"\x00\xff@example.com"}, "password": {"\x00"}, "name": {"\xff\xfe"}},
		{"token": {"nope"}, "password": {"Brand-New-Secret-8"}},
		{"token": {strings.Repeat("A", 43)}, "password": {"Brand-New-Secret-8"}},
		{"token": {huge}, "password": {"short"}},
		{"authRequestID": {"unknown"}, "email": {"a@b.co"}, "password": {"x"}},
		{"authRequestID": {huge[:300]}},
		{"return": {"https://evil.example"}, "email": {"a@b.co"}, "password": {"x"}},
		{"current_password": {huge}, "new_password": {huge}},
		{"email": {"new@example.com"}, "password": {huge}},
	}
	paths := []string{"/login", "/register", "/forgot", "/verify-email/resend", "/reset",
		"/account/password", "/account/email", "/consent"}
	for _, p := range paths {
		for _, f := range bads {
			withCSRF := url.Values{"csrf": {csrf}}
			for k, v := range f {
				withCSRF[k] = v
			}
			for _, form := range []url.Values{withCSRF, f} { // with and without a CSRF token
				res := e.post(e.client, p, form)
				if res.Status >= 500 || !strings.Contains(res.Body, "<h1>") && res.Status != http.StatusSeeOther && res.Status != http.StatusFound {
					t.Errorf("POST %s %.80v: %d\n%.400s", p, form, res.Status, res.Body)
				}
			}
		}
		// Wrong CSRF token.
		if res := e.post(e.client, p, url.Values{"csrf": {"forged"}, "email": {"a@b.co"}}); res.Status != http.StatusForbidden {
			t.Errorf("POST %s with a forged token: %d", p, res.Status)
		}
	}
	for _, p := range []string{"/verify-email", "/verify-email?token=", "/verify-email?token=" + huge[:2000],
		"/reset", "/reset?token=x", "/reset?token=" + strings.Repeat("A", 43), "/account/confirm-email?token=%ff",
		"/register?authRequestID=unknown", "/forgot?authRequestID=" + huge[:1000], "/verify-email/resend?return=//x",
		"/brand.css", "/login?return=%00"} {
		res := e.get(e.client, p)
		if res.Status >= 500 {
			t.Errorf("GET %s: %d", p, res.Status)
		}
	}
	// Still signed in and intact.
	if res := e.get(e.client, "/account"); res.Status != http.StatusOK {
		t.Fatalf("account page: %d", res.Status)
	}
}

func TestEveryNewPostRouteChecksCSRF(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/register", "/forgot", "/verify-email/resend", "/reset", "/account/password", "/account/email", "/account/delete"} {
		if res := e.post(e.client, p, url.Values{"email": {"a@b.co"}}); res.Status != http.StatusForbidden {
			t.Errorf("%s without token: %d", p, res.Status)
		}
		_, csrf := e.page(e.client, "/forgot")
		if res := e.post(e.client, p, url.Values{"csrf": {csrf}, "email": {"a@b.co"}}, "Sec-Fetch-Site", "cross-site"); res.Status != http.StatusForbidden {
			t.Errorf("%s cross-site: %d", p, res.Status)
		}
	}
}

func TestBranding(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ProductName, c.BrandColor, c.LogoURL = "Acme ID", "#E4007C", "https://cdn.acme.example/logo.svg"
	})
	page, _ := e.page(e.client, "/forgot")
	mustContain(t, page, "<title>Reset your password · Acme ID</title>", `src="https://cdn.acme.example/logo.svg"`, "<span>Acme ID</span>")
	css := regexpFind(t, `href="(/brand\.css\?v=[0-9a-f]+)"`, page.Body)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' https://cdn.acme.example;") {
		t.Errorf("CSP does not allow the logo: %s", csp)
	}
	res := e.get(e.client, css)
	if res.Status != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(res.Body, "--accent: #") {
		t.Fatalf("%d %v\n%s", res.Status, res.Header, res.Body)
	}
	if strings.Contains(strings.ToLower(page.Body), "style=") {
		t.Error("inline style")
	}
	for _, bad := range []string{"red", "#12345", "#ggg", "#1234567", "#12;}", "rgb(1,2,3)"} {
		c := Config{BrandColor: bad}
		if c.Validate() == nil {
			t.Errorf("colour %q accepted", bad)
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "//evil.example/x.png", "ftp://x/y", "https://x/a b", "logo.png"} {
		c := Config{LogoURL: bad}
		if c.Validate() == nil {
			t.Errorf("logo %q accepted", bad)
		}
	}
	for _, ok := range []string{"#fff", "#1F5FBF"} {
		if err := (&Config{BrandColor: ok, LogoURL: "/static/logo.svg"}).Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// Colours keep their contrast: a very light brand colour is darkened for text on white.
	b := newBrand("#ffff00", "")
	if !strings.Contains(string(b.css), "--accent-text: #0b1220") {
		t.Errorf("text on a light button should be dark:\n%s", b.css)
	}
	c, _ := parseHexColor(regexp.MustCompile(`--accent: (#[0-9a-f]{6})`).FindStringSubmatch(string(b.css))[1])
	if contrast(c, white) < 4.5 {
		t.Errorf("accent %v has contrast %.2f on white", c, contrast(c, white))
	}
}

// The same on PostgreSQL, where the counter lives in a row many instances share.
func TestParallelGuessesHitTheLockoutPostgres(t *testing.T) {
	testParallelGuesses(t, newPostgresEnv(t, noRateLimits))
}

func newPostgresEnv(t *testing.T, opts ...envOption) *env {
	u := pgtest.URL(t)
	st, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvWithStore(t, st, opts...)
}

// brokenLimiter fails while down is set, as a limiter does when not even its
// fallback can answer.
type brokenLimiter struct {
	down  atomic.Bool
	inner ratelimit.Limiter
}

func (b *brokenLimiter) Allow(ctx context.Context, r ratelimit.Rule, key string) (bool, time.Duration, error) {
	if b.down.Load() {
		return false, 0, errors.New("ratelimit: shared limiter unavailable and fallback failed")
	}
	return b.inner.Allow(ctx, r, key)
}

// A limiter that cannot answer refuses every credential and mail step (fail
// closed): 503 with Retry-After and a friendly page, never a 500 and never an
// unlimited pass. No password is checked, no account made, no mail sent.
func TestLimiterErrorRefuses(t *testing.T) {
	lim := &brokenLimiter{}
	e := newEnv(t, func(c *Config) {
		lim.inner = c.Limiter
		c.Limiter = lim
	})
	signedIn := e.newBrowser()
	e.login(signedIn) // while the limiter works, for the account page
	lim.down.Store(true)
	checks := e.counter.checks.Load()

	id := e.authRequest("app")
	for _, step := range []struct {
		name string
		res  response
	}{
		{"sign-in", e.signIn(e.client, id, "alice@example.com", alicePassword)},
		{"register", e.submit(e.client, "/register", "/register", url.Values{
			"name": {"Bob Example"}, "email": {"bob@example.com"}, "password": {"Another-Secret-7"}})},
		{"forgot", e.submit(e.client, "/forgot", "/forgot", url.Values{"email": {"alice@example.com"}})},
		{"resend", e.submit(e.client, "/verify-email/resend", "/verify-email/resend", url.Values{"email": {"alice@example.com"}})},
		{"change password", e.submit(signedIn, "/account", "/account/password", url.Values{
			"current_password": {alicePassword}, "new_password": {"Brand-New-Secret-8"}})},
	} {
		if step.res.Status != http.StatusServiceUnavailable || step.res.Header.Get("Retry-After") != "5" ||
			!strings.Contains(step.res.Body, msgLimiterDown) || !strings.Contains(step.res.Body, `name="csrf"`) {
			t.Errorf("%s: status %d, Retry-After %q; want 503, 5 and the form with %q:\n%s",
				step.name, step.res.Status, step.res.Header.Get("Retry-After"), msgLimiterDown, step.res.Body)
		}
	}
	if ar := e.getAuthRequest(id); ar.Done {
		t.Error("sign-in completed without its limits checked")
	}
	if n := e.counter.checks.Load() - checks; n != 0 {
		t.Errorf("%d passwords checked without the limits checked", n)
	}
	if _, err := e.store.GetUserByEmail(e.ctx, "bob@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("registration went through: %v", err)
	}
	e.settle()
	for _, m := range e.mail.Messages() {
		if m.To != settleAddress {
			t.Errorf("mail to %s (%q) sent without the limits checked", m.To, m.Subject)
		}
	}

	// The limiter answers again: so does sign-in.
	lim.down.Store(false)
	id = e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
}

// With bcrypt configured, new passwords are capped at 72 bytes (bcrypt would
// silently ignore the rest).
func TestBcryptCapsNewPasswords(t *testing.T) {
	bc, err := password.New(password.Config{Algorithm: password.Bcrypt, BcryptCost: password.MinBcryptCost})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := New(Config{Issuer: "http://x.test", Logger: quiet}, nil, bc, &recordingFlow{now: time.Now})
	vs := h.policy.Check("Aa1" + strings.Repeat("x", 70))
	if len(vs) != 1 || !strings.Contains(vs[0].Message, "at most 72 characters") {
		t.Fatalf("%+v", vs)
	}
	ah, err := password.New(password.Config{Argon2Memory: 64, Argon2Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	argon := New(Config{Issuer: "http://x.test", Logger: quiet}, nil, ah, &recordingFlow{now: time.Now})
	if argon.policy.MaxBytes != 0 {
		t.Fatal("byte cap without bcrypt")
	}
}

// TestFailedCheckFloor: a failed password check takes at least the floor,
// whether the email is unknown or the password wrong, so a user whose
// (imported, slower) hash takes longer cannot be told apart by timing.
func TestFailedCheckFloor(t *testing.T) {
	const floor = 80 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.FailedCheckFloor = floor })
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		id := e.authRequest("app")
		start := time.Now()
		res := e.signIn(e.newBrowser(), id, email, "Wrong-Passw0rd")
		if d := time.Since(start); d < floor {
			t.Errorf("%s: failed sign-in answered in %s, under the %s floor", email, d, floor)
		}
		mustContain(t, res, "Invalid email or password.")
	}
}
