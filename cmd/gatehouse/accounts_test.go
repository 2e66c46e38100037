package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
)

// TestAccountFlows runs registration, verification, password reset and
// lockout over HTTP against the real server, with mail delivered over SMTP to
// a real server on loopback, on every backend.
func TestAccountFlows(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			smtp := mailtest.NewServer(t)
			ts := startServer(t, backend, map[string]string{"SMTP_URL": smtp.URL()})
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			t.Run("register and verify", func(t *testing.T) { testRegisterVerify(t, ts, smtp, app) })
			t.Run("forgot and reset", func(t *testing.T) { testForgotReset(t, ts, smtp, app) })
			t.Run("lockout and unlock", func(t *testing.T) { testLockout(t, ts, app) })
		})
	}
}

// followLink finds a link on p whose text contains text and opens it.
func (b *browser) followLink(p *page, text string) *page {
	b.t.Helper()
	re := regexp.MustCompile(`<a[^>]*href="([^"]+)"[^>]*>[^<]*` + regexp.QuoteMeta(text))
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no link %q on %s:\n%s", text, p.url, p.body)
	}
	u, err := p.url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		b.t.Fatal(err)
	}
	return b.get(u.String())
}

func waitMail(t *testing.T, smtp *mailtest.Server, to string) mailtest.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := smtp.Wait(ctx, to)
	if err != nil {
		t.Fatalf("no mail to %s: %v", to, err)
	}
	return m
}

func testRegisterVerify(t *testing.T, ts *testServer, smtp *mailtest.Server, app createdClient) {
	r := newRP(t, ts, app)
	b := newBrowser(t, ts.issuer)
	ar := r.authURL()
	p := b.followLink(b.get(ar.url), "Create account")
	p = b.submit(p, map[string]string{"name": "Dana", "email": "Dana@Example.com", "password": "Fresh-Start-42"})
	q := r.callbackParams(p) // auto sign-in, back to the app that started the flow
	if q.Get("state") != ar.state || q.Get("code") == "" {
		t.Fatalf("after registration: %v", q)
	}
	tok := r.exchange(ar, q.Get("code"))
	if tok.claims["email_verified"] != false || tok.claims["email"] != "dana@example.com" || tok.claims["role"] != "USER" {
		t.Fatalf("new user's claims: %v", tok.claims)
	}
	// Registering the same address again (any case) says so.
	b2 := newBrowser(t, ts.issuer)
	p = b2.followLink(b2.get(r.authURL().url), "Create account")
	p = b2.submit(p, map[string]string{"name": "Dana Two", "email": "DANA@example.com", "password": "Fresh-Start-43"})
	if !strings.Contains(p.body, "An account with this email already exists") {
		t.Errorf("duplicate registration: status %d", p.status)
	}

	m := waitMail(t, smtp, "dana@example.com")
	link := m.Link(ts.issuer + "/verify-email")
	if link == "" {
		t.Fatalf("verification mail has no link:\n%s", m.Text)
	}
	if p := b.get(link); p.status != http.StatusOK {
		t.Fatalf("verification link: status %d", p.status)
	}
	if p := b.get(link); p.status == http.StatusOK && !strings.Contains(strings.ToLower(p.body), "expired") {
		t.Errorf("a used verification link still works")
	}
	// The next ID token (SSO, no form) says verified.
	ar = r.authURL()
	q = r.callbackParams(b.get(ar.url))
	tok = r.exchange(ar, q.Get("code"))
	if tok.claims["email_verified"] != true {
		t.Errorf("email_verified after verification = %v", tok.claims["email_verified"])
	}
}

func testForgotReset(t *testing.T, ts *testServer, smtp *mailtest.Server, app createdClient) {
	ts.createUser("erin@example.com", testPassword)
	r := newRP(t, ts, app)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "erin@example.com", testPassword)
	old := r.exchange(ar, code)

	// An unknown address gets the same page; only the real one gets mail.
	forgotPage := func(email string) *page {
		fb := newBrowser(t, ts.issuer)
		p := fb.followLink(fb.get(r.authURL().url), "Forgot your password?")
		return fb.submit(p, map[string]string{"email": email})
	}
	unknown := forgotPage("nobody@example.com")
	known := forgotPage("erin@example.com")
	if known.status != unknown.status || !strings.Contains(known.body, "If an account exists for that address, we have sent a reset link.") {
		t.Fatalf("forgot: known %d, unknown %d", known.status, unknown.status)
	}
	m := waitMail(t, smtp, "erin@example.com")
	link := m.Link(ts.issuer + "/reset")
	if link == "" {
		t.Fatalf("reset mail has no link:\n%s", m.Text)
	}
	rb := newBrowser(t, ts.issuer)
	p := rb.submit(rb.get(link), map[string]string{"password": "Brand-New-Secret-9"})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Your password has been changed") {
		t.Fatalf("reset: status %d", p.status)
	}
	if p := rb.get(link); !strings.Contains(p.body, "This reset link is invalid or has expired. Please request a new one.") {
		t.Errorf("used reset link: status %d", p.status)
	}
	if _, err := r.refresh(old.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Errorf("refresh token from before the reset: %v", err)
	}
	b2 := newBrowser(t, ts.issuer)
	p = b2.submit(b2.get(r.authURL().url), map[string]string{"email": "erin@example.com", "password": testPassword})
	if !strings.Contains(p.body, "Invalid email or password.") {
		t.Errorf("old password after reset: status %d location %v", p.status, p.location)
	}
	r.signIn(newBrowser(t, ts.issuer), "erin@example.com", "Brand-New-Secret-9")
}

func testLockout(t *testing.T, ts *testServer, app createdClient) {
	ts.createUser("frank@example.com", testPassword)
	r := newRP(t, ts, app)
	b := newBrowser(t, ts.issuer)
	for i := range 5 {
		p := b.submit(b.get(r.authURL().url), map[string]string{"email": "frank@example.com", "password": "Wrong-Passw0rd"})
		// The fifth failure is the one that locks: it may already say so.
		if !strings.Contains(p.body, "Invalid email or password.") && (i < 4 || !strings.Contains(p.body, "temporarily locked")) {
			t.Fatalf("failed attempt: status %d\n%s", p.status, p.body)
		}
	}
	p := b.submit(b.get(r.authURL().url), map[string]string{"email": "frank@example.com", "password": testPassword})
	if !strings.Contains(p.body, "temporarily locked") || !strings.Contains(p.body, "15 minutes") {
		t.Fatalf("locked account with the right password: status %d location %v", p.status, p.location)
	}
	ts.cli("", "users", "unlock", "Frank@Example.com")
	r.signIn(b, "frank@example.com", testPassword)
}

// TestSharedRateLimits: two instances pointed at one Redis share one budget.
func TestSharedRateLimits(t *testing.T) {
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is unreachable (CI=true): %v", redisURL, err)
		}
		t.Skipf("Redis at %s is unreachable, skipping (set GATEHOUSE_TEST_REDIS_URL): %v", redisURL, err)
	}
	env := map[string]string{"REDIS_URL": redisURL, "GATEHOUSE_RATE_LOGIN_EMAIL": "4/1h"}
	a := startServer(t, "sqlite", env)
	b := startServer(t, "sqlite", env)
	email := "shared-" + strings.ToLower(randomString(t)[:8]) + "@example.com"
	attempt := func(ts *testServer) *page {
		c := ts.createClient("--redirect-uri", redirectA)
		r := newRP(t, ts, c)
		br := newBrowser(t, ts.issuer)
		return br.submit(br.get(r.authURL(oauth2.SetAuthURLParam("prompt", "login")).url), map[string]string{"email": email, "password": "Wrong-Passw0rd"})
	}
	for i, ts := range []*testServer{a, b, a, b} {
		if p := attempt(ts); p.status == http.StatusTooManyRequests {
			t.Fatalf("attempt %d limited too early", i+1)
		}
	}
	for _, ts := range []*testServer{a, b} {
		p := attempt(ts)
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many attempts. Please try again in") {
			t.Errorf("over the shared budget: status %d Retry-After %q", p.status, p.header.Get("Retry-After"))
		}
	}
}
