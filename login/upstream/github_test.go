package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
)

const (
	ghClientID     = "Iv1.gatehouse"
	ghClientSecret = "gh-client-secret"
	// Never contacted: the test plays the browser and reads the redirect.
	ghCallback = "http://127.0.0.1:9/upstream/github/callback"
)

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func testLeg(tag string) Leg {
	return Leg{
		State:    "state-" + tag,
		Nonce:    "nonce-" + tag,
		Verifier: "verifier-" + tag + "-" + strings.Repeat("v", 43),
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newFakeGitHub starts githubtest with ada (verified primary email, a
// public and a private organisation) and bob (no name, unverified primary).
func newFakeGitHub(t *testing.T) *githubtest.Server {
	t.Helper()
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(githubtest.User{ID: 42, Login: "ada", Name: "Ada Lovelace", PublicEmail: "ada@public.example",
		Emails: []githubtest.Email{{Email: "ada@old.example", Verified: true},
			{Email: "ada@example.com", Primary: true, Verified: true}},
		Orgs: []githubtest.Org{{Login: "analytical", Public: true}, {Login: "secret-club"}}})
	gh.AddUser(githubtest.User{ID: 77, Login: "bob",
		Emails: []githubtest.Email{{Email: "bob@example.com", Primary: true, Verified: false}}})
	gh.AddUser(githubtest.User{ID: 99, Login: "nomail",
		Emails: []githubtest.Email{{Email: "other@example.com", Verified: true}}})
	gh.SetApprover("ada")
	return gh
}

// ghConnector builds the GitHub connector for gh through NewRegistry.
func ghConnector(t *testing.T, gh *githubtest.Server, client *http.Client, orgs ...string) Connector {
	t.Helper()
	c := GitHubFromSettings(ghClientID, ghClientSecret, gh.URL, strings.Join(orgs, ","))
	reg, err := NewRegistry([]Config{c}, Options{HTTPClient: client, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return reg.Get("github")
}

// browse follows authURL like a browser up to the redirect back to
// Gatehouse and returns the callback's query.
func browse(t *testing.T, authURL, callback string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("redirect to %q, want %s?…", resp.Header.Get("Location"), callback)
	}
	return loc.Query()
}

// ghSignIn runs AuthCodeURL, the fake's approval and Exchange.
func ghSignIn(t *testing.T, conn Connector, leg Leg) (*Identity, error) {
	t.Helper()
	ctx := context.Background()
	authURL, err := conn.AuthCodeURL(ctx, leg, ghCallback)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	cb := browse(t, authURL, ghCallback)
	if cb.Get("state") != leg.State {
		t.Fatalf("state %q came back, want %q", cb.Get("state"), leg.State)
	}
	return conn.Exchange(ctx, leg, ghCallback, cb)
}

// wantKind fails unless err is an *Error of kind want from upstream id.
func wantKind(t *testing.T, err error, id string, want Kind) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v (%T), want an *Error of kind %v", err, err, want)
	}
	if e.Kind != want || e.Upstream != id {
		t.Fatalf("err %v: kind %v upstream %q, want %v from %q", err, e.Kind, e.Upstream, want, id)
	}
}

func TestGitHubAuthCodeURL(t *testing.T) {
	gh := newFakeGitHub(t)
	conn := ghConnector(t, gh, nil)
	leg := testLeg("a")
	s, err := conn.AuthCodeURL(context.Background(), leg, ghCallback)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if base := u.Scheme + "://" + u.Host + u.Path; base != gh.URL+"/login/oauth/authorize" {
		t.Errorf("authorize endpoint %q", base)
	}
	q := u.Query()
	want := map[string]string{
		"client_id":             ghClientID,
		"redirect_uri":          ghCallback,
		"scope":                 "read:user user:email",
		"state":                 leg.State,
		"code_challenge":        pkceChallenge(leg.Verifier),
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") || strings.Contains(s, leg.Verifier) || q.Has("client_secret") {
		t.Errorf("the URL carries a secret: %s", s)
	}
	// RFC 7636 appendix B.
	if got := pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("pkceChallenge = %q", got)
	}
}

func TestGitHubSignIn(t *testing.T) {
	gh := newFakeGitHub(t)
	conn := ghConnector(t, gh, nil)
	id, err := ghSignIn(t, conn, testLeg("a"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	want := Identity{Subject: "42", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}
	if id.Subject != want.Subject || id.Email != want.Email || id.EmailVerified != want.EmailVerified || id.Name != want.Name || len(id.AMR) != 0 {
		t.Errorf("identity %+v, want %+v", *id, want)
	}

	// What Gatehouse sent: JSON asked of the token endpoint, the PKCE
	// verifier and secret in the form, the token as Bearer, a User-Agent.
	var tokenReqs, apiReqs int
	for _, r := range gh.Requests() {
		switch {
		case r.Path == "/login/oauth/access_token":
			tokenReqs++
			if !strings.Contains(r.Accept, "application/json") {
				t.Errorf("token request Accept %q", r.Accept)
			}
			if r.Values.Get("code_verifier") == "" || r.Values.Get("client_secret") == "" || r.Values.Get("client_id") != ghClientID ||
				r.Values.Get("redirect_uri") != ghCallback {
				t.Errorf("token request form %v", r.Values)
			}
		case strings.HasPrefix(r.Path, "/api/v3/"):
			apiReqs++
			if r.AuthScheme != "Bearer" || r.UserAgent == "" || r.Accept != "application/vnd.github+json" {
				t.Errorf("API request %+v", r)
			}
		}
	}
	if tokenReqs != 1 || apiReqs != 2 {
		t.Errorf("%d token and %d API requests, want 1 and 2 (no org check without allowed_orgs)", tokenReqs, apiReqs)
	}
}

func TestGitHubEmails(t *testing.T) {
	gh := newFakeGitHub(t)
	conn := ghConnector(t, gh, nil)

	gh.SetApprover("bob")
	id, err := ghSignIn(t, conn, testLeg("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "77" || id.Email != "bob@example.com" || id.EmailVerified || id.Name != "bob" {
		t.Errorf("bob: %+v, want the unverified primary and the login as name", *id)
	}

	gh.SetApprover("nomail")
	id, err = ghSignIn(t, conn, testLeg("nomail"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "99" || id.Email != "" || id.EmailVerified {
		t.Errorf("no primary email: %+v, want no email (a verified secondary is not the primary)", *id)
	}
}

func TestGitHubCallbackErrors(t *testing.T) {
	gh := newFakeGitHub(t)
	conn := ghConnector(t, gh, nil)
	ctx := context.Background()
	leg := testLeg("a")

	// The user clicks Cancel at GitHub.
	gh.Deny(true)
	authURL, _ := conn.AuthCodeURL(ctx, leg, ghCallback)
	cb := browse(t, authURL, ghCallback)
	gh.Deny(false)
	_, err := conn.Exchange(ctx, leg, ghCallback, cb)
	wantKind(t, err, "github", Denied)

	for name, cb := range map[string]url.Values{
		"other error":  {"error": {"redirect_uri_mismatch"}, "state": {leg.State}},
		"missing code": {"state": {leg.State}},
		"empty code":   {"code": {""}, "state": {leg.State}},
	} {
		_, err := conn.Exchange(ctx, leg, ghCallback, cb)
		if KindOf(err) != Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if n := gh.TokenRequests(); n != 0 {
		t.Errorf("%d token requests for callbacks without a usable code", n)
	}
}

func TestGitHubTokenErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("code reused", func(t *testing.T) {
		gh := newFakeGitHub(t)
		conn := ghConnector(t, gh, nil)
		leg := testLeg("a")
		authURL, _ := conn.AuthCodeURL(ctx, leg, ghCallback)
		cb := browse(t, authURL, ghCallback)
		if _, err := conn.Exchange(ctx, leg, ghCallback, cb); err != nil {
			t.Fatal(err)
		}
		_, err := conn.Exchange(ctx, leg, ghCallback, cb)
		wantKind(t, err, "github", Invalid)
		if !strings.Contains(err.Error(), "bad_verification_code") {
			t.Errorf("err %v does not quote GitHub's error", err)
		}
	})

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		gh := newFakeGitHub(t)
		conn := ghConnector(t, gh, nil)
		leg := testLeg("a")
		authURL, _ := conn.AuthCodeURL(ctx, leg, ghCallback)
		cb := browse(t, authURL, ghCallback)
		other := leg
		other.Verifier = testLeg("b").Verifier
		_, err := conn.Exchange(ctx, other, ghCallback, cb)
		wantKind(t, err, "github", Invalid)
		if gh.TokenRequests() != 1 {
			t.Errorf("%d token requests", gh.TokenRequests())
		}
	})

	t.Run("redirect_uri differs", func(t *testing.T) {
		gh := newFakeGitHub(t)
		conn := ghConnector(t, gh, nil)
		leg := testLeg("a")
		authURL, _ := conn.AuthCodeURL(ctx, leg, ghCallback)
		cb := browse(t, authURL, ghCallback)
		_, err := conn.Exchange(ctx, leg, ghCallback+"2", cb)
		wantKind(t, err, "github", Invalid)
	})

	t.Run("wrong client secret", func(t *testing.T) {
		gh := newFakeGitHub(t)
		c := GitHubFromSettings(ghClientID, "not-the-secret", gh.URL, "")
		reg, err := NewRegistry([]Config{c}, Options{Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ghSignIn(t, reg.Get("github"), testLeg("a"))
		wantKind(t, err, "github", Invalid)
		if !strings.Contains(err.Error(), "incorrect_client_credentials") {
			t.Errorf("err %v", err)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		gh := newFakeGitHub(t)
		conn := ghConnector(t, gh, nil)
		leg := testLeg("a")
		authURL, _ := conn.AuthCodeURL(ctx, leg, ghCallback)
		cb := browse(t, authURL, ghCallback)
		gh.Advance(11 * time.Minute)
		_, err := conn.Exchange(ctx, leg, ghCallback, cb)
		wantKind(t, err, "github", Invalid)
	})

	for _, status := range []int{500, 502, 503} {
		t.Run(fmt.Sprintf("token endpoint %d", status), func(t *testing.T) {
			gh := newFakeGitHub(t)
			gh.FailToken(status)
			_, err := ghSignIn(t, ghConnector(t, gh, nil), testLeg("a"))
			wantKind(t, err, "github", Unavailable)
		})
	}

	t.Run("token endpoint 404", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.FailToken(404)
		_, err := ghSignIn(t, ghConnector(t, gh, nil), testLeg("a"))
		wantKind(t, err, "github", Invalid)
	})

	t.Run("token endpoint hangs", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.HangToken()
		_, err := ghSignIn(t, ghConnector(t, gh, NewHTTPClient(200*time.Millisecond, 0)), testLeg("a"))
		wantKind(t, err, "github", Unavailable)
	})

	t.Run("token endpoint oversize", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.Oversize("/login/oauth/access_token")
		_, err := ghSignIn(t, ghConnector(t, gh, nil), testLeg("a"))
		wantKind(t, err, "github", Unavailable)
		if !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("err %v does not wrap ErrBodyTooLarge", err)
		}
	})
}

func TestGitHubAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*githubtest.Server)
		want  Kind
	}{
		{"user 500", func(s *githubtest.Server) { s.FailAPI("/user", 500) }, Unavailable},
		{"user 503", func(s *githubtest.Server) { s.FailAPI("/user", 503) }, Unavailable},
		{"emails 502", func(s *githubtest.Server) { s.FailAPI("/user/emails", 502) }, Unavailable},
		{"user 429", func(s *githubtest.Server) { s.FailAPI("/user", 429) }, Unavailable},
		{"user 401", func(s *githubtest.Server) { s.FailAPI("/user", 401) }, Invalid},
		{"emails 404", func(s *githubtest.Server) { s.FailAPI("/user/emails", 404) }, Invalid},
		{"user oversize", func(s *githubtest.Server) { s.Oversize("/user") }, Unavailable},
		{"emails oversize", func(s *githubtest.Server) { s.Oversize("/user/emails") }, Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			tc.setup(gh)
			_, err := ghSignIn(t, ghConnector(t, gh, nil), testLeg("a"))
			wantKind(t, err, "github", tc.want)
		})
	}

	t.Run("API hangs", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.HangAPI()
		start := time.Now()
		_, err := ghSignIn(t, ghConnector(t, gh, NewHTTPClient(200*time.Millisecond, 0)), testLeg("a"))
		wantKind(t, err, "github", Unavailable)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %v", d)
		}
	})
}

func TestGitHubAllowedOrgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		orgs []string
		want Kind // 0: signed in
	}{
		{"public member", []string{"analytical"}, 0},
		{"private member with read:org", []string{"secret-club"}, 0},
		{"case-insensitive", []string{"Secret-Club"}, 0},
		{"one of several", []string{"nope", "analytical"}, 0},
		{"not a member", []string{"other-org"}, NotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			conn := ghConnector(t, gh, nil, tc.orgs...)
			if !strings.Contains(mustAuthURL(t, conn), "read%3Aorg") {
				t.Error("read:org not asked for")
			}
			id, err := ghSignIn(t, conn, testLeg("a"))
			if tc.want == 0 {
				if err != nil || id.Subject != "42" {
					t.Fatalf("member refused: %v", err)
				}
				return
			}
			wantKind(t, err, "github", tc.want)
		})
	}

	t.Run("orgs API fails", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.FailAPI("/user/orgs", 500)
		_, err := ghSignIn(t, ghConnector(t, gh, nil, "analytical"), testLeg("a"))
		wantKind(t, err, "github", Unavailable)
	})

	t.Run("bob has no orgs", func(t *testing.T) {
		gh := newFakeGitHub(t)
		gh.SetApprover("bob")
		_, err := ghSignIn(t, ghConnector(t, gh, nil, "analytical"), testLeg("a"))
		wantKind(t, err, "github", NotAllowed)
	})

	t.Run("member on the second page", func(t *testing.T) {
		gh := newFakeGitHub(t)
		var orgs []githubtest.Org
		for i := range 150 {
			orgs = append(orgs, githubtest.Org{Login: fmt.Sprintf("org-%03d", i)})
		}
		gh.AddUser(githubtest.User{ID: 5, Login: "joiner", Orgs: orgs})
		gh.SetApprover("joiner")
		if _, err := ghSignIn(t, ghConnector(t, gh, nil, "org-140"), testLeg("a")); err != nil {
			t.Fatalf("member of org-140 refused: %v", err)
		}
		_, err := ghSignIn(t, ghConnector(t, gh, nil, "org-150"), testLeg("b"))
		wantKind(t, err, "github", NotAllowed)
	})
}

func mustAuthURL(t *testing.T, conn Connector) string {
	t.Helper()
	s, err := conn.AuthCodeURL(context.Background(), testLeg("x"), ghCallback)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGitHubMalformedAnswers covers what githubtest does not fake: answers
// of the right status but the wrong content.
func TestGitHubMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		token, user string // response bodies
		want        Kind
	}{
		{"no access_token", `{"token_type":"bearer"}`, `{"id":1,"login":"a"}`, Invalid},
		{"token not JSON", `<html>hello</html>`, `{"id":1,"login":"a"}`, Invalid},
		{"empty token answer", ``, `{"id":1,"login":"a"}`, Invalid},
		{"user without id", `{"access_token":"t"}`, `{"login":"a"}`, Invalid},
		{"user id zero", `{"access_token":"t"}`, `{"id":0,"login":"a"}`, Invalid},
		{"user id not an integer", `{"access_token":"t"}`, `{"id":1.5,"login":"a"}`, Invalid},
		{"user not JSON", `{"access_token":"t"}`, `nope`, Invalid},
		{"ok", `{"access_token":"t"}`, `{"id":12345678901,"login":"a","name":"  "}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.token)
			})
			mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, tc.user)
			})
			mux.HandleFunc("GET /api/v3/user/emails", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[]`)
			})
			srv := newServer(t, mux)
			c := GitHubFromSettings("id", "secret", srv.URL, "")
			conn := newGitHub(c, Options{Logger: discardLogger()}.withDefaults())
			id, err := conn.Exchange(context.Background(), testLeg("a"), ghCallback, url.Values{"code": {"c"}})
			if tc.want == 0 {
				if err != nil || id.Subject != "12345678901" || id.Name != "a" {
					t.Fatalf("%+v, %v", id, err)
				}
				return
			}
			wantKind(t, err, "github", tc.want)
		})
	}
}

// TestGitHubSlowBody: an API answer whose body stalls past the client's
// timeout is the upstream's outage, not a malformed answer.
func TestGitHubSlowBody(t *testing.T) {
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"t"}`)
	})
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id": 1,`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	srv := newServer(t, mux)
	t.Cleanup(func() { close(done) })
	c := GitHubFromSettings("id", "secret", srv.URL, "")
	conn := newGitHub(c, Options{Logger: discardLogger(), HTTPClient: NewHTTPClient(200*time.Millisecond, 0)}.withDefaults())
	_, err := conn.Exchange(context.Background(), testLeg("a"), ghCallback, url.Values{"code": {"c"}})
	wantKind(t, err, "github", Unavailable)
}

// TestGitHubRateLimited: GitHub answers an exhausted rate limit with 403
// (or 429) and x-ratelimit-remaining: 0 or retry-after; that is worth a
// retry later, unlike a plain 403.
func TestGitHubRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		headers map[string]string
		want    Kind
	}{
		{"primary limit", 403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}, Unavailable},
		{"secondary limit", 403, map[string]string{"Retry-After": "60"}, Unavailable},
		{"429", 429, map[string]string{"Retry-After": "60"}, Unavailable},
		{"plain 403", 403, map[string]string{"X-RateLimit-Remaining": "4999"}, Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"access_token":"t"}`)
			})
			mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"message":"API rate limit exceeded"}`)
			})
			srv := newServer(t, mux)
			conn := newGitHub(GitHubFromSettings("id", "secret", srv.URL, ""), Options{Logger: discardLogger()}.withDefaults())
			_, err := conn.Exchange(context.Background(), testLeg("a"), ghCallback, url.Values{"code": {"c"}})
			wantKind(t, err, "github", tc.want)
		})
	}
}
