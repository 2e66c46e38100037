package githubtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	clientID     = "Iv1.test"
	clientSecret = "s3cret"
	callback     = "http://127.0.0.1:9/callback"
	verifier     = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func newServer(t *testing.T) *Server {
	s := New(t, clientID, clientSecret)
	s.AddUser(User{ID: 42, Login: "ada", Name: "Ada Lovelace", PublicEmail: "ada@public.example",
		Emails: []Email{{Email: "ada@example.com", Primary: true, Verified: true, Visibility: "private"},
			{Email: "ada@old.example", Verified: false}},
		Orgs: []Org{{Login: "analytical", ID: 7, Public: true}, {Login: "secret-club", ID: 8}}})
	s.AddUser(User{Login: "bob"})
	return s
}

// authorize asks for a code and returns the redirect's query.
func authorize(t *testing.T, s *Server, extra url.Values) url.Values {
	t.Helper()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {callback}, "scope": {"read:user user:email"},
		"state": {"st4te"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	resp, err := noRedirects.Get(s.URL + "/login/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return redirectQuery(t, resp)
}

func redirectQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("redirect to %q, want %s?...", resp.Header.Get("Location"), callback)
	}
	return loc.Query()
}

// exchange redeems code; the client credentials go in the form unless basic.
func exchange(t *testing.T, s *Server, form url.Values, accept string, basic bool) (int, url.Values) {
	t.Helper()
	if basic {
		form.Del("client_secret")
	}
	req, _ := http.NewRequest("POST", s.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if basic {
		req.SetBasicAuth(clientID, clientSecret)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := url.Values{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("token body %q: %v", body, err)
		}
		for k, v := range m {
			out.Set(k, v)
		}
	} else if resp.StatusCode == http.StatusOK {
		out, _ = url.ParseQuery(string(body))
	}
	return resp.StatusCode, out
}

func tokenForm(code string) url.Values {
	return url.Values{"client_id": {clientID}, "client_secret": {clientSecret}, "code": {code},
		"redirect_uri": {callback}, "code_verifier": {verifier}}
}

// api GETs an API path with a token and decodes the JSON answer into out.
func api(t *testing.T, s *Server, scheme, tok, path string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/api/v3"+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", scheme+" "+tok)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp
}

func wantError(t *testing.T, status int, got url.Values, code string) {
	t.Helper()
	if status != http.StatusOK || got.Get("error") != code || got.Get("access_token") != "" ||
		!strings.HasPrefix(got.Get("error_uri"), "https://docs.github.com/") {
		t.Fatalf("got %d %v, want 200 with error %s", status, got, code)
	}
}

func TestDance(t *testing.T) {
	s := newServer(t)
	s.SetApprover("ada")

	// A wrong verifier is refused and spends the code.
	q := authorize(t, s, nil)
	if q.Get("state") != "st4te" || !regexp.MustCompile(`^[0-9a-f]{20}$`).MatchString(q.Get("code")) {
		t.Fatalf("redirect query %v", q)
	}
	bad := tokenForm(q.Get("code"))
	bad.Set("code_verifier", strings.Repeat("x", 43))
	status, got := exchange(t, s, bad, "application/json", false)
	wantError(t, status, got, "bad_verification_code")
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	wantError(t, status, got, "bad_verification_code")

	// A missing verifier is refused too.
	q = authorize(t, s, nil)
	noVerifier := tokenForm(q.Get("code"))
	noVerifier.Del("code_verifier")
	status, got = exchange(t, s, noVerifier, "application/json", false)
	wantError(t, status, got, "bad_verification_code")

	// The right one works once.
	q = authorize(t, s, nil)
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	tok := got.Get("access_token")
	if status != 200 || !strings.HasPrefix(tok, "gho_") || got.Get("token_type") != "bearer" || got.Get("scope") != "read:user,user:email" {
		t.Fatalf("token response %d %v", status, got)
	}
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	wantError(t, status, got, "bad_verification_code")

	var user map[string]any
	resp := api(t, s, "Bearer", tok, "/user", &user)
	if resp.StatusCode != 200 || user["login"] != "ada" || user["id"] != float64(42) || user["name"] != "Ada Lovelace" ||
		user["email"] != "ada@public.example" || resp.Header.Get("X-OAuth-Scopes") != "read:user, user:email" {
		t.Fatalf("/user: %d %v %v", resp.StatusCode, user, resp.Header)
	}
	var emails []map[string]any
	if resp := api(t, s, "token", tok, "/user/emails", &emails); resp.StatusCode != 200 || len(emails) != 2 ||
		emails[0]["email"] != "ada@example.com" || emails[0]["primary"] != true || emails[0]["verified"] != true ||
		emails[0]["visibility"] != "private" || emails[1]["verified"] != false || emails[1]["visibility"] != nil {
		t.Fatalf("/user/emails: %d %v", resp.StatusCode, emails)
	}
	// Without read:org only the public membership shows.
	var orgs []map[string]any
	if resp := api(t, s, "Bearer", tok, "/user/orgs", &orgs); resp.StatusCode != 200 || len(orgs) != 1 ||
		orgs[0]["login"] != "analytical" || orgs[0]["id"] != float64(7) {
		t.Fatalf("/user/orgs: %d %v", resp.StatusCode, orgs)
	}

	// The log shows PKCE and Accept were sent, without the secrets.
	var sawToken bool
	for _, r := range s.Requests() {
		if r.Path == "/login/oauth/authorize" && r.Values.Get("code_challenge_method") != "S256" {
			t.Errorf("authorize logged without PKCE: %+v", r)
		}
		if r.Path == "/login/oauth/access_token" {
			sawToken = true
			if r.Accept != "application/json" || r.Values.Get("client_secret") != "[redacted]" ||
				(r.Values.Has("code_verifier") && r.Values.Get("code_verifier") != "[redacted]") {
				t.Errorf("token request logged as %+v", r)
			}
		}
		if strings.HasPrefix(r.Path, "/api/v3/") && r.AuthScheme != "Bearer" && r.AuthScheme != "token" {
			t.Errorf("API request logged as %+v", r)
		}
	}
	if !sawToken || s.TokenRequests() != 5 {
		t.Errorf("token requests: %d", s.TokenRequests())
	}
}

func TestTokenErrors(t *testing.T) {
	s := newServer(t)
	s.SetApprover("ada")

	q := authorize(t, s, nil)
	wrong := tokenForm(q.Get("code"))
	wrong.Set("client_secret", "nope")
	status, got := exchange(t, s, wrong, "application/json", false)
	wantError(t, status, got, "incorrect_client_credentials")
	// Client authentication failed before the code was looked at: it still works, via Basic.
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", true)
	if status != 200 || got.Get("access_token") == "" {
		t.Fatalf("basic auth: %d %v", status, got)
	}

	q = authorize(t, s, nil)
	other := tokenForm(q.Get("code"))
	other.Set("redirect_uri", callback+"/elsewhere")
	status, got = exchange(t, s, other, "application/json", false)
	wantError(t, status, got, "redirect_uri_mismatch")

	q = authorize(t, s, nil)
	s.Advance(10*time.Minute + time.Second)
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	wantError(t, status, got, "bad_verification_code")

	// Without Accept: application/json the answer is form-encoded.
	q = authorize(t, s, url.Values{"code_challenge": nil, "code_challenge_method": nil, "scope": {"read:org"}})
	status, got = exchange(t, s, tokenForm(q.Get("code")), "", false)
	if status != 200 || !strings.HasPrefix(got.Get("access_token"), "gho_") || got.Get("scope") != "read:org" {
		t.Fatalf("form-encoded token response: %d %v", status, got)
	}
}

func TestScopes(t *testing.T) {
	s := newServer(t)
	var msg map[string]any
	if resp := api(t, s, "Bearer", "", "/user", &msg); resp.StatusCode != 401 || msg["message"] != "Bad credentials" {
		t.Fatalf("no token: %d %v", resp.StatusCode, msg)
	}
	if resp := api(t, s, "Bearer", "gho_unknown", "/user", &msg); resp.StatusCode != 401 {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
	if resp := api(t, s, "Basic", s.IssueToken("ada"), "/user", &msg); resp.StatusCode != 401 {
		t.Fatalf("Basic scheme: %d", resp.StatusCode)
	}

	bare := s.IssueToken("ada", "read:user")
	if resp := api(t, s, "Bearer", bare, "/user/emails", &msg); resp.StatusCode != 404 || msg["message"] != "Not Found" {
		t.Fatalf("emails without user:email: %d %v", resp.StatusCode, msg)
	}
	var emails []map[string]any
	if resp := api(t, s, "Bearer", s.IssueToken("ada", "user"), "/user/emails", &emails); resp.StatusCode != 200 || len(emails) != 2 {
		t.Fatalf("emails with user: %d %v", resp.StatusCode, emails)
	}
	var orgs []map[string]any
	if resp := api(t, s, "Bearer", s.IssueToken("ada", "read:org"), "/user/orgs", &orgs); resp.StatusCode != 200 || len(orgs) != 2 {
		t.Fatalf("orgs with read:org: %d %v", resp.StatusCode, orgs)
	}
	if resp := api(t, s, "Bearer", s.IssueToken("bob"), "/user/orgs", &orgs); resp.StatusCode != 200 || len(orgs) != 0 {
		t.Fatalf("bob's orgs: %d %v", resp.StatusCode, orgs)
	}
	// bob has neither name nor public email, and an assigned ID.
	var user map[string]any
	if resp := api(t, s, "Bearer", s.IssueToken("bob"), "/user", &user); resp.StatusCode != 200 || user["login"] != "bob" ||
		user["id"].(float64) == 0 || user["email"] != nil || user["name"] != nil {
		t.Fatalf("bob: %d %v", resp.StatusCode, user)
	}
}

func TestPagination(t *testing.T) {
	s := New(t, clientID, clientSecret)
	u := User{Login: "many"}
	for _, o := range []string{"a", "b", "c", "d", "e"} {
		u.Orgs = append(u.Orgs, Org{Login: o, Public: true})
	}
	s.AddUser(u)
	tok := s.IssueToken("many")
	var orgs []map[string]any
	resp := api(t, s, "Bearer", tok, "/user/orgs?per_page=2", &orgs)
	link := resp.Header.Get("Link")
	if len(orgs) != 2 || orgs[0]["login"] != "a" || !strings.Contains(link, `page=2&per_page=2>; rel="next"`) ||
		!strings.Contains(link, `page=3&per_page=2>; rel="last"`) || !strings.HasPrefix(link, "<"+s.URL+"/api/v3/user/orgs?") {
		t.Fatalf("page 1: %v, Link %q", orgs, link)
	}
	resp = api(t, s, "Bearer", tok, "/user/orgs?per_page=2&page=3", &orgs)
	link = resp.Header.Get("Link")
	if len(orgs) != 1 || orgs[0]["login"] != "e" || !strings.Contains(link, `rel="prev"`) || strings.Contains(link, `rel="next"`) {
		t.Fatalf("page 3: %v, Link %q", orgs, link)
	}
	if api(t, s, "Bearer", tok, "/user/orgs?per_page=2&page=4", &orgs); len(orgs) != 0 {
		t.Fatalf("page 4: %v", orgs)
	}
	if resp := api(t, s, "Bearer", tok, "/user/orgs?per_page=100", &orgs); len(orgs) != 5 || resp.Header.Get("Link") != "" {
		t.Fatalf("one page: %v, Link %q", orgs, resp.Header.Get("Link"))
	}
}

func TestChooserAndDeny(t *testing.T) {
	s := newServer(t)
	q := url.Values{"client_id": {clientID}, "redirect_uri": {callback}, "scope": {"user:email"}, "state": {"xyz"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	resp, err := noRedirects.Get(s.URL + "/login/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`action="/login/oauth/authorize/approve"`, `id="approve-ada"`, `id="approve-bob"`,
		`Sign in as bob`, `name="state" value="xyz"`, `id="deny"`} {
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("chooser page (%d) lacks %s:\n%s", resp.StatusCode, want, body)
		}
	}

	// Submit bob's form as a browser would.
	form := url.Values{"login": {"bob"}}
	for k, v := range q {
		form[k] = v
	}
	resp, err = noRedirects.PostForm(s.URL+"/login/oauth/authorize/approve", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back := redirectQuery(t, resp)
	status, got := exchange(t, s, tokenForm(back.Get("code")), "application/json", false)
	var user map[string]any
	if api(t, s, "Bearer", got.Get("access_token"), "/user", &user); status != 200 || back.Get("state") != "xyz" || user["login"] != "bob" {
		t.Fatalf("approved as bob: %d %v %v", status, back, user)
	}

	// The Cancel button, and Deny, both send access_denied with the state.
	form.Set("deny", "1")
	resp, err = noRedirects.PostForm(s.URL+"/login/oauth/authorize/approve", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, back := range []url.Values{redirectQuery(t, resp), func() url.Values { s.Deny(true); return authorize(t, s, nil) }()} {
		if back.Get("error") != "access_denied" || back.Get("error_description") != "The user has denied your application access." ||
			back.Get("code") != "" || back.Get("state") == "" {
			t.Fatalf("denied: %v", back)
		}
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := newServer(t)
	s.SetApprover("ada")
	resp, err := noRedirects.Get(s.URL + "/login/oauth/authorize?client_id=nope&redirect_uri=" + url.QueryEscape(callback))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
		t.Fatalf("unknown client: %d", resp.StatusCode)
	}
	if q := authorize(t, s, url.Values{"code_challenge_method": {"plain"}}); q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Fatalf("plain PKCE: %v", q)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t)
	s.SetApprover("ada")
	q := authorize(t, s, nil)

	s.FailToken(http.StatusInternalServerError)
	if status, _ := exchange(t, s, tokenForm(q.Get("code")), "application/json", false); status != 500 {
		t.Fatalf("FailToken(500): %d", status)
	}
	s.FailToken(http.StatusOK)
	status, got := exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	wantError(t, status, got, "server_error")
	// The injected failures did not spend the code.
	s.FailToken(0)
	status, got = exchange(t, s, tokenForm(q.Get("code")), "application/json", false)
	tok := got.Get("access_token")
	if status != 200 || tok == "" || s.TokenRequests() != 3 {
		t.Fatalf("after FailToken(0): %d %v, %d requests", status, got, s.TokenRequests())
	}

	s.FailAPI("/user/emails", http.StatusBadGateway)
	var v any
	if resp := api(t, s, "Bearer", tok, "/user/emails", &v); resp.StatusCode != 502 {
		t.Fatalf("FailAPI: %d", resp.StatusCode)
	}
	if resp := api(t, s, "Bearer", tok, "/user", &v); resp.StatusCode != 200 {
		t.Fatalf("FailAPI hit another path: %d", resp.StatusCode)
	}

	// Oversize: valid JSON behind more than 2 MiB of padding.
	s.Oversize("/api/v3/user")
	req, _ := http.NewRequest("GET", s.URL+"/api/v3/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var user map[string]any
	if err != nil || len(body) <= 2<<20 || json.Unmarshal(body, &user) != nil || user["login"] != "ada" {
		t.Fatalf("oversize: %d bytes, %v, %v", len(body), err, user)
	}

	// A hanging API answers nothing until the client gives up.
	s.HangAPI()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v3/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := noRedirects.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("HangAPI: %v %v", resp, err)
	}
}

// The fake works with golang.org/x/oauth2, whichever way it authenticates.
func TestXOAuth2(t *testing.T) {
	s := newServer(t)
	s.SetApprover("ada")
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		conf := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: callback,
			Scopes: []string{"read:user", "user:email"},
			Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/login/oauth/authorize",
				TokenURL: s.URL + "/login/oauth/access_token", AuthStyle: style}}
		resp, err := noRedirects.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		q := redirectQuery(t, resp)
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, noRedirects)
		if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong"+verifier)); err == nil {
			t.Fatalf("style %d: wrong verifier accepted", style)
		}
		q = authorize(t, s, nil)
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || !strings.HasPrefix(tok.AccessToken, "gho_") || tok.Extra("scope") != "read:user,user:email" {
			t.Fatalf("style %d: %v %+v", style, err, tok)
		}
		var user map[string]any
		if api(t, s, tok.Type(), tok.AccessToken, "/user", &user); user["login"] != "ada" {
			t.Fatalf("style %d: /user %v", style, user)
		}
	}
}
