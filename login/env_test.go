package login

import (
	"context"
	"errors"
	"github.com/gatehouse-id/gatehouse/op"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// Test fixtures: the real SQLite store in a temp dir, the real handler behind
// httptest.Server, a browser-like client with a cookie jar that does not follow
// redirects. Only Flow (the boundary to package op) is a test double.

const (
	alicePassword = "Correct-Horse-9"
	rpCallback    = "https://rp.example.com/cb"
	rpLogout      = "https://rp.example.com/signed-out"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type failCall struct{ ID, Code, Description string }

// recordingFlow is the test stand-in for package op. Like op, it keeps
// pending requests out of the store (here in a map, there sealed in the URL)
// and stores a request when it is completed.
type recordingFlow struct {
	mu      sync.Mutex
	base    string
	fails   []failCall
	foreign map[string]bool // auth requests "started in another browser"
	pending map[string]*storage.AuthRequest
	store   storage.Store
	now     func() time.Time
}

func (f *recordingFlow) PendingRequest(ctx context.Context, handle string) (*storage.AuthRequest, error) {
	f.mu.Lock()
	ar, ok := f.pending[handle]
	f.mu.Unlock()
	if !ok || !f.now().Before(ar.ExpiresAt) {
		return nil, storage.ErrNotFound
	}
	if _, err := f.store.GetAuthRequest(ctx, ar.ID); !errors.Is(err, storage.ErrNotFound) {
		return nil, storage.ErrNotFound // completed, or the store fails: either way not pending
	}
	c := *ar
	return &c, nil
}

// Finish stores the completed request and, standing in for the OP's
// authorization response, redirects to CallbackURL (tests check where).
func (f *recordingFlow) Finish(w http.ResponseWriter, r *http.Request, pending *storage.AuthRequest, sess *storage.Session) error {
	ar := *pending
	ar.Done, ar.UserID, ar.SessionID, ar.AuthTime, ar.AMR, ar.IDP = true, sess.UserID, sess.ID, sess.AuthTime, sess.AMR, sess.IDP
	if err := f.store.CreateAuthRequest(r.Context(), &ar); err != nil {
		return err
	}
	http.Redirect(w, r, f.CallbackURL(ar.ID), http.StatusSeeOther)
	return nil
}

// EndSession and EndUserSessions are the server's own (op.SessionEnder).
// No client here registers a back-channel logout URI, so it mints nothing
// and needs no signing key.
func (f *recordingFlow) EndSession(ctx context.Context, sess *storage.Session, reason string) (bool, error) {
	return f.ender().EndSession(ctx, sess, reason)
}

func (f *recordingFlow) EndUserSessions(ctx context.Context, userID, reason string) (int, error) {
	return f.ender().EndUserSessions(ctx, userID, reason)
}

func (f *recordingFlow) ender() *op.SessionEnder {
	return op.NewSessionEnder(f.store, nil, f.now, slog.New(slog.DiscardHandler), nil)
}

// StartedHere: package op checks a cookie set by /authorize; here a test
// marks requests as foreign instead.
func (f *recordingFlow) StartedHere(_ *http.Request, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.foreign[id]
}

func (f *recordingFlow) CallbackURL(id string) string {
	return f.base + "/authorize/callback?id=" + url.QueryEscape(id)
}

func (f *recordingFlow) Fail(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, code, desc string) {
	f.mu.Lock()
	f.fails = append(f.fails, failCall{ar.ID, code, desc})
	f.mu.Unlock()
	http.Redirect(w, r, rpCallback+"?error="+url.QueryEscape(code), http.StatusFound)
}

func (f *recordingFlow) Fails() []failCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]failCall(nil), f.fails...)
}

// countingHasher is the real hasher, counting password checks (Verify and
// VerifyDummy) so tests can see how many ran.
type countingHasher struct {
	*password.Hasher
	checks atomic.Int64
}

func (c *countingHasher) Verify(ctx context.Context, hash, pw string) (bool, bool, error) {
	c.checks.Add(1)
	return c.Hasher.Verify(ctx, hash, pw)
}

func (c *countingHasher) VerifyDummy(ctx context.Context, pw string) error {
	c.checks.Add(1)
	return c.Hasher.VerifyDummy(ctx, pw)
}

type env struct {
	t       *testing.T
	ctx     context.Context
	store   storage.Store
	hasher  *password.Hasher
	counter *countingHasher
	flow    *recordingFlow
	clock   *clock
	h       *Handler
	srv     *httptest.Server
	client  *http.Client
	mail    *mailtest.Server
	mailer  *mail.Mailer
	alice   *storage.User
}

type envOption func(*Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvWithStore(t, st, opts...)
}

// newEnvWithStore builds the fixture on st (SQLite or PostgreSQL).
func newEnvWithStore(t *testing.T, st storage.Store, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	// Cheap argon2id parameters: the tests are about the flow, not the cost.
	hasher, err := password.New(password.Config{Argon2Memory: 64, Argon2Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, store: st, hasher: hasher, counter: &countingHasher{Hasher: hasher},
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.flow = &recordingFlow{pending: map[string]*storage.AuthRequest{}, store: st, now: e.clock.Now}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// A real SMTP server on loopback, and the real mailer in front of it.
	e.mail = mailtest.NewServer(t)
	sender, err := mail.NewSender(e.mail.URL(), "Gatehouse <no-reply@gatehouse.test>", logger)
	if err != nil {
		t.Fatal(err)
	}
	// One worker: messages go out in queue order, which settle relies on.
	mailer := mail.NewMailer(sender, mail.Config{Logger: logger, RetryDelay: 10 * time.Millisecond, Workers: 1})
	e.mailer = mailer
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mailer.Close(ctx)
	})

	// The server starts first so the issuer (the base of emailed links) is its URL.
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	cfg := Config{
		Issuer:  e.srv.URL,
		Now:     e.clock.Now,
		Logger:  logger,
		Limiter: ratelimit.NewMemory(0, e.clock.Now),
		Mailer:  mailer,
		// Fast tests; TestFailedCheckFloor covers the floor.
		FailedCheckFloor: -1,
	}
	copy(cfg.CSRFKey[:], "0123456789abcdef0123456789abcdef")
	for _, o := range opts {
		o(&cfg)
	}
	e.h = New(cfg, st, e.counter, e.flow)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.h.Wait(ctx)
	})
	e.flow.base = e.srv.URL
	e.client = e.newBrowser()

	now := e.clock.Now()
	for _, c := range []*storage.Client{
		{ID: "app", Name: "Acme Notes", RedirectURIs: []string{rpCallback}, PostLogoutRedirectURIs: []string{rpLogout}},
		{ID: "consent-app", Name: "Third Party Tool", RedirectURIs: []string{rpCallback}, RequireConsent: true},
	} {
		c.AppType, c.AuthMethod, c.AccessTokenFormat = storage.AppTypeWeb, storage.AuthMethodBasic, storage.AccessTokenOpaque
		c.GrantTypes = []string{"authorization_code"}
		c.CreatedAt, c.UpdatedAt = now, now
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e.alice = e.createUser("alice@example.com", alicePassword)
	return e
}

func (e *env) createUser(email, pw string) *storage.User {
	e.t.Helper()
	hash, err := e.hasher.Hash(e.ctx, pw)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.createUserWithHash(email, hash)
}

func (e *env) createUserWithHash(email, hash string) *storage.User {
	e.t.Helper()
	now := e.clock.Now()
	u := &storage.User{ID: "u-" + randomToken(6), Email: email, Name: "Test", Role: "USER",
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateUser(e.ctx, u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) newBrowser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// authRequest makes a pending auth request for clientID and returns its ID,
// which is also its handle.
func (e *env) authRequest(clientID string, mod ...func(*storage.AuthRequest)) string {
	e.t.Helper()
	now := e.clock.Now()
	ar := &storage.AuthRequest{
		ID: "ar-" + randomToken(9), ClientID: clientID, RedirectURI: rpCallback, State: "st",
		Nonce: "n", Scopes: []string{"openid", "email"}, ResponseType: "code",
		CodeChallenge: "x", CodeChallengeMethod: "S256", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
	}
	for _, m := range mod {
		m(ar)
	}
	e.flow.mu.Lock()
	e.flow.pending[ar.ID] = ar
	e.flow.mu.Unlock()
	return ar.ID
}

// getAuthRequest returns the request as stored once completed, or as still
// pending.
func (e *env) getAuthRequest(id string) *storage.AuthRequest {
	e.t.Helper()
	ar, err := e.store.GetAuthRequest(e.ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		e.flow.mu.Lock()
		defer e.flow.mu.Unlock()
		if p, ok := e.flow.pending[id]; ok {
			return p
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return ar
}

type response struct {
	Status int
	Header http.Header
	Body   string
}

func (r response) Location() string { return r.Header.Get("Location") }

func (e *env) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

func (e *env) get(c *http.Client, path string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(c, req)
}

func (e *env) post(c *http.Client, path string, form url.Values, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(c, req)
}

var (
	csrfRe    = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	bindingRe = regexp.MustCompile(`name="binding" value="([^"]*)"`)
	emailRe   = regexp.MustCompile(`(id="email" name="email" type="email" value=")([^"]*)(")`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, body)
	}
	return m[1]
}

// openLogin GETs the sign-in page of a new auth request and returns it with its CSRF token.
func (e *env) openLogin(c *http.Client, id string) (response, string) {
	e.t.Helper()
	res := e.get(c, "/login?authRequestID="+url.QueryEscape(id))
	if res.Status != http.StatusOK || !strings.Contains(res.Body, `<form method="post" action="/login">`) {
		e.t.Fatalf("GET /login: %d\n%s", res.Status, res.Body)
	}
	return res, field(e.t, csrfRe, res.Body)
}

// signIn runs the whole form flow for a fresh auth request with browser c.
func (e *env) signIn(c *http.Client, id, email, pw string) response {
	e.t.Helper()
	_, csrf := e.openLogin(c, id)
	return e.post(c, "/login", url.Values{"authRequestID": {id}, "email": {email}, "password": {pw}, "csrf": {csrf}})
}

// login signs alice in with browser c through a fresh auth request and
// returns the completed request.
func (e *env) login(c *http.Client) *storage.AuthRequest {
	e.t.Helper()
	id := e.authRequest("app")
	return e.expectCompleted(e.signIn(c, id, "alice@example.com", alicePassword), id, e.alice)
}

func (e *env) callback(id string) string { return e.flow.CallbackURL(id) }

// expectCompleted checks that res sends the browser to the OP callback and the
// store shows the request done for user.
func (e *env) expectCompleted(res response, id string, user *storage.User) *storage.AuthRequest {
	e.t.Helper()
	if res.Status != http.StatusSeeOther && res.Status != http.StatusFound {
		e.t.Fatalf("want a redirect to the callback, got %d\n%s", res.Status, res.Body)
	}
	if res.Location() != e.callback(id) {
		e.t.Fatalf("Location = %q, want %q", res.Location(), e.callback(id))
	}
	ar := e.getAuthRequest(id)
	if !ar.Done || ar.UserID != user.ID || ar.SessionID == "" {
		e.t.Fatalf("auth request not completed for %s: %+v", user.ID, ar)
	}
	return ar
}

func (e *env) expectLoginForm(res response) {
	e.t.Helper()
	if res.Status != http.StatusOK || !strings.Contains(res.Body, `action="/login"`) {
		e.t.Fatalf("want the sign-in form, got %d (Location %q)\n%s", res.Status, res.Location(), res.Body)
	}
}
