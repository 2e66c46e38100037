package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func testAuthorizeErrors(t *testing.T, ts *testServer, a createdClient) {
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	base := func(mod func(q url.Values)) string {
		ar := r.authURL()
		u, _ := url.Parse(ar.url)
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	// Never redirected: unknown client, unregistered redirect_uri, missing client_id.
	for name, u := range map[string]string{
		"unknown client":       base(func(q url.Values) { q.Set("client_id", "nope") }),
		"unregistered uri":     base(func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }),
		"redirect uri variant": base(func(q url.Values) { q.Set("redirect_uri", redirectA+"/") }),
		"missing client_id":    base(func(q url.Values) { q.Del("client_id") }),
		"missing redirect_uri": base(func(q url.Values) { q.Del("redirect_uri") }),
	} {
		p := b.get(u)
		if p.location != nil || p.status != http.StatusBadRequest {
			t.Errorf("%s: status %d location %v, want a 400 page", name, p.status, p.location)
		}
	}
	// Redirected to the client with error, state and iss.
	cases := []struct {
		name, want string
		mod        func(q url.Values)
	}{
		{"response_type token", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "token") }},
		{"response_type id_token", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "id_token") }},
		{"missing response_type", "invalid_request", func(q url.Values) { q.Del("response_type") }},
		{"PKCE plain", "invalid_request", func(q url.Values) { q.Set("code_challenge_method", "plain") }},
		{"PKCE without method", "invalid_request", func(q url.Values) { q.Del("code_challenge_method") }},
		{"no openid scope", "invalid_scope", func(q url.Values) { q.Set("scope", "email") }},
		{"prompt none with login", "invalid_request", func(q url.Values) { q.Set("prompt", "none login") }},
		{"request object", "request_not_supported", func(q url.Values) { q.Set("request", "eyJ.x.y") }},
		{"response_mode fragment", "invalid_request", func(q url.Values) { q.Set("response_mode", "fragment") }},
		{"nonce over its cap", "invalid_request", func(q url.Values) { q.Set("nonce", strings.Repeat("n", 513)) }},
		{"login_hint over its cap", "invalid_request", func(q url.Values) { q.Set("login_hint", strings.Repeat("h", 321)) }},
		{"scope over its cap", "invalid_request", func(q url.Values) { q.Set("scope", "openid "+strings.Repeat("x", 2<<10)) }},
		{"repeated scope", "invalid_request", func(q url.Values) { q.Add("scope", "openid") }},
		{"control character", "invalid_request", func(q url.Values) { q.Set("nonce", "a\x01b") }},
		{"invalid UTF-8", "invalid_request", func(q url.Values) { q.Set("login_hint", "a\xffb") }},
		{"repeated code_challenge", "invalid_request", func(q url.Values) { q.Add("code_challenge", q.Get("code_challenge")) }},
	}
	for _, c := range cases {
		p := b.get(base(c.mod))
		q := r.callbackParams(p)
		if q.Get("error") != c.want || q.Get("state") == "" {
			t.Errorf("%s: got %v, want error %s with state", c.name, q, c.want)
		}
	}
	// A state over its cap, or sent twice, is refused and not echoed.
	for name, mod := range map[string]func(q url.Values){
		"state over its cap": func(q url.Values) { q.Set("state", strings.Repeat("s", 2<<10+1)) },
		"repeated state":     func(q url.Values) { q.Add("state", "other") },
	} {
		q := r.callbackParams(b.get(base(mod)))
		if q.Get("error") != "invalid_request" || q.Has("state") {
			t.Errorf("%s: got %v, want invalid_request without state", name, q)
		}
	}
	// Where the client or the redirect is in doubt, or the whole request is
	// too long to trust, a page and no redirect.
	for name, u := range map[string]string{
		"repeated client_id":    base(func(q url.Values) { q.Add("client_id", "other") }),
		"repeated redirect_uri": base(func(q url.Values) { q.Add("redirect_uri", redirectA) }),
		"query over 8 KB":       base(func(q url.Values) { q.Set("x", strings.Repeat("x", 8<<10)) }),
	} {
		p := b.get(u)
		if p.location != nil || p.status != http.StatusBadRequest {
			t.Errorf("%s: status %d location %v, want a 400 page", name, p.status, p.location)
		}
	}
	// form_post: the response is a self-submitting form with code, state and iss.
	ar := r.authURL(oauth2.SetAuthURLParam("response_mode", "form_post"))
	p := b.get(ar.url)
	if p.location == nil && strings.Contains(p.body, "Password") {
		p = b.submit(p, map[string]string{"email": "alice@example.com", "password": testPassword})
	}
	action, form := parseForm(t, p)
	if action != redirectA || form.Get("code") == "" || form.Get("state") != ar.state || form.Get("iss") != ts.issuer {
		t.Fatalf("form_post response: action %q fields %v", action, form)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(p.body, "onload") {
		t.Errorf("form_post page must not use inline script: CSP %q", csp)
	}
	r.exchange(ar, form.Get("code"))
}

func testTokenErrors(t *testing.T, ts *testServer, a, bc createdClient) {
	tokenURL := ts.issuer + "/oauth/token"
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)

	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	exchange := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectA, "code_verifier", ar.pkceV)

	// Token responses are never cached (RFC 6749 §5.1), errors included.
	if _, h, _ := postForm(t, tokenURL, form("grant_type", "client_credentials"), a.ClientID, a.ClientSecret); h.Get("Cache-Control") != "no-store" {
		t.Errorf("token response Cache-Control = %q", h.Get("Cache-Control"))
	}
	// Wrong secret with Basic: 401, invalid_client, WWW-Authenticate.
	status, h, m := postForm(t, tokenURL, exchange, a.ClientID, "wrong-secret")
	if status != 401 || m["error"] != "invalid_client" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong secret: %d %v WWW-Authenticate=%q", status, m, h.Get("WWW-Authenticate"))
	}
	// No client authentication at all: 401 too (RFC 6749 §5.2).
	status, h, m = postForm(t, tokenURL, form("grant_type", "client_credentials"), "", "")
	if status != 401 || m["error"] != "invalid_client" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no client authentication: %d %v", status, m)
	}
	// Unknown client: same answer.
	status, _, m = postForm(t, tokenURL, exchange, "nope", "x")
	if status != 401 || m["error"] != "invalid_client" {
		t.Errorf("unknown client: %d %v", status, m)
	}
	// A basic client posting its secret in the body is refused.
	withPost := form("grant_type", "client_credentials", "client_id", a.ClientID, "client_secret", a.ClientSecret)
	status, _, m = postForm(t, tokenURL, withPost, "", "")
	if status != 401 || m["error"] != "invalid_client" {
		t.Errorf("basic client using client_secret_post: %d %v", status, m)
	}
	// And the reverse.
	status, _, m = postForm(t, tokenURL, form("grant_type", "refresh_token", "refresh_token", "x"), bc.ClientID, bc.ClientSecret)
	if status != 401 || m["error"] != "invalid_client" {
		t.Errorf("post client using basic: %d %v", status, m)
	}
	// Grant types.
	status, _, m = postForm(t, tokenURL, form("grant_type", "password", "username", "a", "password", "b"), a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "unsupported_grant_type" {
		t.Errorf("password grant: %d %v", status, m)
	}
	status, _, m = postForm(t, tokenURL, form("grant_type", "client_credentials"), a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "unauthorized_client" {
		t.Errorf("client_credentials for a client without that grant: %d %v", status, m)
	}
	status, _, m = postForm(t, tokenURL, form(), a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "invalid_request" {
		t.Errorf("missing grant_type: %d %v", status, m)
	}
	// Code exchange mistakes (each burns nothing but its own request).
	status, _, m = postForm(t, tokenURL, form("grant_type", "authorization_code", "code", "bogus", "redirect_uri", redirectA, "code_verifier", ar.pkceV), a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("bogus code: %d %v", status, m)
	}
	noVerifier := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectA)
	status, _, m = postForm(t, tokenURL, noVerifier, a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("missing code_verifier: %d %v", status, m)
	}
	// A code presented by another client, or with a wrong code_verifier, is
	// refused without being used up: the client it was issued to still
	// redeems it.
	status, _, m = postForm(t, tokenURL, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectA,
		"code_verifier", ar.pkceV, "client_id", bc.ClientID, "client_secret", bc.ClientSecret), "", "")
	if status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("code of another client: %d %v", status, m)
	}
	status, _, m = postForm(t, tokenURL, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectA,
		"code_verifier", oauth2.GenerateVerifier()), a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("wrong code_verifier: %d %v", status, m)
	}
	// A repeated parameter is refused (RFC 6749 §3.2), before anything else.
	repeated := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectA, "code_verifier", ar.pkceV)
	repeated.Add("redirect_uri", redirectB)
	status, _, m = postForm(t, tokenURL, repeated, a.ClientID, a.ClientSecret)
	if status != 400 || m["error"] != "invalid_request" {
		t.Errorf("repeated redirect_uri: %d %v", status, m)
	}
	r.exchange(ar, code)
	// Malformed and oversized bodies are 4xx, never 5xx.
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("%zz=%%%"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.ClientID, a.ClientSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 500 || resp.StatusCode < 400 {
		t.Errorf("malformed body: %v %v", resp.Status, err)
	}
	big := strings.Repeat("a", 200<<10)
	req, _ = http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=authorization_code&code="+big))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.ClientID, a.ClientSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 500 || resp.StatusCode < 400 {
		t.Errorf("oversized body: %v %v", resp.Status, err)
	}
	// Userinfo without or with a bad token: 401 with a Bearer challenge.
	for _, auth := range []string{"", "Bearer garbage"} {
		req, _ := http.NewRequest(http.MethodGet, ts.issuer+"/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("userinfo with %q: %d %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// An expired code is refused.
	ar, code = r.signIn(b, "alice@example.com", testPassword)
	ts.clock.advance(2 * time.Minute)
	if _, err := r.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(ar.pkceV)); !isOAuthError(err, "invalid_grant") {
		t.Errorf("expired code: %v", err)
	}
}
