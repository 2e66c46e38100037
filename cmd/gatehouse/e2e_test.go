package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	testPassword = "Correct-Horse-7"
	redirectA    = "http://127.0.0.1:9001/callback"
	redirectB    = "http://127.0.0.1:9002/callback"
	logoutA      = "http://127.0.0.1:9001/signed-out"
)

// TestEndToEnd drives a real server over HTTP with go-oidc and x/oauth2, on
// every backend.
func TestEndToEnd(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			appA := ts.createClient("--name", "App A", "--redirect-uri", redirectA, "--post-logout-redirect-uri", logoutA)
			appB := ts.createClient("--name", "App B", "--redirect-uri", redirectB, "--auth-method", "client_secret_post")
			alice := ts.createUser("alice@example.com", testPassword, "--role", "ADMIN")
			bob := ts.createUser("bob@example.com", testPassword, "--unverified")

			t.Run("discovery", func(t *testing.T) { testDiscovery(t, ts) })
			t.Run("code flow claims and userinfo", func(t *testing.T) { testCodeFlow(t, ts, appA, alice, bob) })
			t.Run("refresh rotation, grace and reuse", func(t *testing.T) { testRefresh(t, ts, appA) })
			t.Run("code replay revokes", func(t *testing.T) { testCodeReplay(t, ts, appA) })
			t.Run("revocation and introspection", func(t *testing.T) { testRevocation(t, ts, appA, appB) })
			t.Run("client credentials", func(t *testing.T) { testClientCredentials(t, ts) })
			t.Run("prompt none and SSO", func(t *testing.T) { testPromptNoneAndSSO(t, ts, appA, appB) })
			t.Run("end session", func(t *testing.T) { testEndSession(t, ts, appA) })
			t.Run("request bound to its browser", func(t *testing.T) { testBrowserBinding(t, ts, appA) })
			t.Run("jwt access tokens", func(t *testing.T) { testJWTAccessTokens(t, ts) })
			t.Run("public client", func(t *testing.T) { testPublicClient(t, ts) })
			t.Run("consent", func(t *testing.T) { testConsent(t, ts) })
			t.Run("key rotation", func(t *testing.T) { testKeyRotation(t, ts, appA) })
			t.Run("authorize errors", func(t *testing.T) { testAuthorizeErrors(t, ts, appA) })
			t.Run("token endpoint errors", func(t *testing.T) { testTokenErrors(t, ts, appA, appB) })
			t.Run("nothing spent by refused requests", func(t *testing.T) { testSpentOnlyWhenRight(t, ts, appA) })
			t.Run("pages have a way on", func(t *testing.T) { testPagesHaveAWayOn(t, ts, appA) })
		})
	}
}

func testDiscovery(t *testing.T, ts *testServer) {
	resp, err := http.Get(ts.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                           ts.issuer,
		"response_types_supported":         []any{"code"},
		"code_challenge_methods_supported": []any{"S256"},
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		got, _ := json.Marshal(d[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("discovery %s = %s, want %s", k, got, exp)
		}
	}
	claims, _ := d["claims_supported"].([]any)
	for _, c := range []string{"role", "email_verified", "sub", "email", "name"} {
		if !slices.Contains(claims, any(c)) {
			t.Errorf("claims_supported lacks %q: %v", c, claims)
		}
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint", "end_session_endpoint"} {
		if s, _ := d[k].(string); !strings.HasPrefix(s, ts.issuer+"/") {
			t.Errorf("discovery %s = %v", k, d[k])
		}
	}
}

func testCodeFlow(t *testing.T, ts *testServer, c createdClient, alice, bob createdUser) {
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "Alice@Example.com ", testPassword)
	tok := r.exchange(ar, code)
	wantClaims := map[string]any{"sub": alice.ID, "role": "ADMIN", "email_verified": true, "email": "alice@example.com", "name": "Test User"}
	for k, v := range wantClaims {
		if tok.claims[k] != v {
			t.Errorf("ID token %s = %#v, want %#v", k, tok.claims[k], v)
		}
	}
	if tok.token.RefreshToken == "" {
		t.Error("no refresh token for offline_access")
	}
	ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uiClaims map[string]any
	_ = ui.Claims(&uiClaims)
	for k, v := range wantClaims {
		if uiClaims[k] != v {
			t.Errorf("userinfo %s = %#v, want %#v", k, uiClaims[k], v)
		}
	}

	// email_verified false must be present as false, not dropped; without the
	// email and profile scopes, email and name are not released.
	rb := newRP(t, ts, c, oidc.ScopeOpenID)
	b2 := newBrowser(t, ts.issuer)
	ar, code = rb.signIn(b2, "bob@example.com", testPassword)
	tok = rb.exchange(ar, code)
	if v, ok := tok.claims["email_verified"]; !ok || v != false {
		t.Errorf("ID token email_verified = %#v (present %t), want false", v, ok)
	}
	if tok.claims["role"] != "USER" || tok.claims["sub"] != bob.ID {
		t.Errorf("ID token role/sub = %v/%v", tok.claims["role"], tok.claims["sub"])
	}
	if _, ok := tok.claims["email"]; ok {
		t.Error("email released without the email scope")
	}
	if tok.token.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	intro := rb.introspect(tok.token.AccessToken)
	if intro["active"] != true || intro["role"] != "USER" || intro["client_id"] != c.ClientID {
		t.Errorf("introspection of a live token: %v", intro)
	}

	// Wrong password and unknown email: one message.
	b3 := newBrowser(t, ts.issuer)
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		p := b3.get(r.authURL().url)
		p = b3.submit(p, map[string]string{"email": email, "password": "Wrong-Passw0rd"})
		if p.location != nil || !strings.Contains(p.body, "Invalid email or password.") {
			t.Errorf("%s with a wrong password: status %d location %v", email, p.status, p.location)
		}
	}
}

func testRefresh(t *testing.T, ts *testServer, c createdClient) {
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	first := r.exchange(ar, code)
	rt0 := first.token.RefreshToken

	t1, err := r.refresh(rt0)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if t1.RefreshToken == "" || t1.RefreshToken == rt0 {
		t.Fatal("refresh token did not rotate")
	}
	if idt, _ := t1.Extra("id_token").(string); idt == "" {
		t.Error("refresh response has no id_token")
	} else if _, err := r.verifier.Verify(context.Background(), idt); err != nil {
		t.Errorf("refreshed ID token: %v", err)
	}

	// Two tabs refreshing with the same token at once, within the grace
	// window: every one gets the same successor, none fails.
	const tabs = 12
	var wg sync.WaitGroup
	results := make([]string, tabs)
	errs := make([]error, tabs)
	for i := range tabs {
		wg.Go(func() {
			tok, err := r.refresh(t1.RefreshToken)
			errs[i] = err
			if err == nil {
				results[i] = tok.RefreshToken
			}
		})
	}
	wg.Wait()
	for i := range tabs {
		if errs[i] != nil {
			t.Fatalf("parallel refresh %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("parallel refreshes got different successors: %q vs %q", results[i], results[0])
		}
	}
	t2 := results[0]
	if t2 == t1.RefreshToken {
		t.Fatal("parallel refresh did not rotate")
	}

	// The grandparent rt0 was rotated more than the grace window ago once
	// the clock moves: presenting it revokes the whole family.
	ts.clock.advance(11 * time.Second)
	if _, err := r.refresh(rt0); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reused refresh token: err = %v, want invalid_grant", err)
	}
	if _, err := r.refresh(t2); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("current refresh token after reuse detection: err = %v, want invalid_grant", err)
	}
	if got := r.introspect(t1.AccessToken); got["active"] != false {
		t.Errorf("access token of a revoked family still active: %v", got)
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func testCodeReplay(t *testing.T, ts *testServer, c createdClient) {
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	tok := r.exchange(ar, code)
	if got := r.introspect(tok.token.AccessToken); got["active"] != true {
		t.Fatalf("fresh access token inactive: %v", got)
	}
	_, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(ar.pkceV))
	if !isOAuthError(err, "invalid_grant") {
		t.Fatalf("replayed code: err = %v, want invalid_grant", err)
	}
	if got := r.introspect(tok.token.AccessToken); got["active"] != false {
		t.Errorf("access token from a replayed code still active: %v", got)
	}
	if _, err := r.refresh(tok.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Errorf("refresh token from a replayed code: err = %v, want invalid_grant", err)
	}
}

func testRevocation(t *testing.T, ts *testServer, a, bc createdClient) {
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	tok := r.exchange(ar, code)

	// Revocation takes real tokens only: an internal ID forged from what
	// introspection shows (jti) revokes nothing.
	intro := r.introspect(tok.token.AccessToken)
	forged := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"j":%q,"c":%q,"i":1,"e":4102444800}`, intro["jti"], a.ClientID))
	r.revoke(forged, "")
	r.revoke("rt:"+ar.state, "")
	if got := r.introspect(tok.token.AccessToken); got["active"] != true {
		t.Fatalf("a forged token ID revoked a real token: %v", got)
	}
	// Another client can neither revoke nor introspect this client's refresh token.
	status, _, m := postForm(t, ts.issuer+"/revoke", url.Values{"token": {tok.token.RefreshToken}, "client_id": {bc.ClientID}, "client_secret": {bc.ClientSecret}}, "", "")
	if status != 400 || m["error"] != "unauthorized_client" {
		t.Errorf("revoking another client's token: %d %v", status, m)
	}
	status, _, m = postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {tok.token.RefreshToken}, "client_id": {bc.ClientID}, "client_secret": {bc.ClientSecret}}, "", "")
	if status != 200 || m["active"] != false {
		t.Errorf("introspecting another client's refresh token: %d %v", status, m)
	}

	r.revoke(tok.token.AccessToken, "access_token")
	if got := r.introspect(tok.token.AccessToken); got["active"] != false {
		t.Errorf("revoked access token active: %v", got)
	}
	if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok.token)); err == nil {
		t.Error("userinfo accepted a revoked access token")
	}
	if got := r.introspect(tok.token.RefreshToken); got["active"] != true || got["token_type"] != "refresh_token" {
		t.Errorf("refresh token after access token revocation: %v", got)
	}
	r.revoke(tok.token.RefreshToken, "")
	if _, err := r.refresh(tok.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Errorf("revoked refresh token: err = %v", err)
	}
	r.revoke("not-a-token-at-all", "") // RFC 7009: unknown tokens are fine
	if got := r.introspect("garbage"); got["active"] != false || len(got) != 1 {
		t.Errorf("introspection of garbage: %v", got)
	}

	// client_secret_post client: revocation and introspection with its method.
	rb := newRP(t, ts, bc)
	b2 := newBrowser(t, ts.issuer)
	ar, code = rb.signIn(b2, "alice@example.com", testPassword)
	tok = rb.exchange(ar, code)
	form := url.Values{"token": {tok.token.AccessToken}, "client_id": {bc.ClientID}, "client_secret": {bc.ClientSecret}}
	status, _, m = postForm(t, ts.issuer+"/oauth/introspect", form, "", "")
	if status != 200 || m["active"] != true {
		t.Errorf("introspection with client_secret_post: %d %v", status, m)
	}
	status, _, m = postForm(t, ts.issuer+"/revoke", form, "", "")
	if status != 200 {
		t.Errorf("revocation with client_secret_post: %d %v", status, m)
	}
	status, _, m = postForm(t, ts.issuer+"/oauth/introspect", form, "", "")
	if status != 200 || m["active"] != false {
		t.Errorf("introspection after revocation: %d %v", status, m)
	}
}

func testClientCredentials(t *testing.T, ts *testServer) {
	svc := ts.createClient("--name", "Service", "--grant-types", "client_credentials")
	cc := clientcredentials.Config{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret, TokenURL: ts.issuer + "/oauth/token", Scopes: []string{"api"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	status, _, m := postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {tok.AccessToken}}, svc.ClientID, svc.ClientSecret)
	if status != 200 || m["active"] != true || m["client_id"] != svc.ClientID || m["sub"] != svc.ClientID {
		t.Errorf("introspection of a client_credentials token: %d %v", status, m)
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(context.Background()); !isOAuthError(err, "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
}

func testPromptNoneAndSSO(t *testing.T, ts *testServer, a, bc createdClient) {
	ra, rb := newRP(t, ts, a), newRP(t, ts, bc)
	b := newBrowser(t, ts.issuer)
	ar := ra.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	q := ra.callbackParams(b.get(ar.url))
	if q.Get("error") != "login_required" || q.Get("state") != ar.state {
		t.Fatalf("prompt=none without a session: %v", q)
	}
	ra.signIn(b, "alice@example.com", testPassword)
	// Second app, same browser: no form.
	ar = rb.authURL()
	q = rb.callbackParams(b.get(ar.url))
	if q.Get("code") == "" {
		t.Fatalf("SSO to the second client did not return a code: %v", q)
	}
	tok := rb.exchange(ar, q.Get("code"))
	if tok.claims["email"] != "alice@example.com" {
		t.Errorf("SSO token for %v", tok.claims["email"])
	}
	ar = ra.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	if q := ra.callbackParams(b.get(ar.url)); q.Get("code") == "" {
		t.Errorf("prompt=none with a session: %v", q)
	}
	// prompt=login and max_age=0 force the form again.
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		p := b.get(ra.authURL(opt).url)
		if p.location != nil || !strings.Contains(p.body, "Password") {
			t.Errorf("forced re-authentication showed no form: status %d location %v", p.status, p.location)
		}
	}
}

func testEndSession(t *testing.T, ts *testServer, a createdClient) {
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	tok := r.exchange(ar, code)
	if tok.claims["sid"] == nil {
		t.Fatal("ID token has no sid")
	}
	// Hint valid, but sent from another browser without the cookie: the session
	// still ends, and the redirect goes straight to the registered URI.
	other := newBrowser(t, ts.issuer)
	u := ts.issuer + "/end_session?" + url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {logoutA}, "state": {"bye"}}.Encode()
	p := other.get(u)
	if p.location == nil || !strings.HasPrefix(p.location.String(), logoutA) || p.location.Query().Get("state") != "bye" {
		t.Fatalf("end_session with a valid hint: status %d location %v", p.status, p.location)
	}
	q := r.callbackParams(b.get(r.authURL(oauth2.SetAuthURLParam("prompt", "none")).url))
	if q.Get("error") != "login_required" {
		t.Errorf("after end_session prompt=none gave %v", q)
	}
	if _, err := r.refresh(tok.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Errorf("refresh token of an ended session: %v", err)
	}
	// An unregistered post_logout_redirect_uri is never followed.
	p = other.get(ts.issuer + "/end_session?" + url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if p.location != nil || p.status != 400 {
		t.Errorf("unregistered post_logout_redirect_uri: status %d location %v", p.status, p.location)
	}
	// Without a hint the user is asked to confirm.
	r.signIn(b, "alice@example.com", testPassword)
	p = b.get(ts.issuer + "/end_session?" + url.Values{"client_id": {a.ClientID}, "post_logout_redirect_uri": {logoutA}, "state": {"s2"}}.Encode())
	if p.location != nil || p.status != 200 || !strings.Contains(p.body, "Sign out") {
		t.Fatalf("end_session without hint: status %d location %v", p.status, p.location)
	}
	p = b.submit(p, nil)
	if p.location == nil || !strings.HasPrefix(p.location.String(), logoutA) || p.location.Query().Get("state") != "s2" {
		t.Fatalf("confirmed sign-out: status %d location %v", p.status, p.location)
	}
	q = r.callbackParams(b.get(r.authURL(oauth2.SetAuthURLParam("prompt", "none")).url))
	if q.Get("error") != "login_required" {
		t.Errorf("after confirmed sign-out prompt=none gave %v", q)
	}
}

func testJWTAccessTokens(t *testing.T, ts *testServer) {
	const api, other = "https://api.example.com", "https://reports.example.com"
	c := ts.createClient("--name", "JWT app", "--redirect-uri", "http://127.0.0.1:9003/cb", "--access-token", "jwt",
		"--grant-types", "authorization_code,refresh_token,client_credentials", "--resource", api, "--resource", other)
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ks := oidc.NewRemoteKeySet(context.Background(), ts.issuer+"/keys")
	// verifyAT checks an RFC 9068 access token and returns its claims.
	verifyAT := func(name, token string, c createdClient) map[string]any {
		t.Helper()
		payload, err := ks.VerifySignature(context.Background(), token)
		if err != nil {
			t.Fatalf("%s: JWT access token does not verify against JWKS: %v", name, err)
		}
		head, _, _ := strings.Cut(token, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(head)
		var header map[string]any
		_ = json.Unmarshal(raw, &header)
		if header["typ"] != "at+jwt" || header["kid"] == nil {
			t.Errorf("%s: header %v, want typ at+jwt and a kid (RFC 9068 §2.1)", name, header)
		}
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
			if claims[k] == nil {
				t.Errorf("%s: claim %s missing: %v", name, k, claims)
			}
		}
		if claims["iss"] != ts.issuer || claims["client_id"] != c.ClientID || claims["aud"] == c.ClientID {
			t.Errorf("%s: claims %v", name, claims)
		}
		return claims
	}

	// Without a resource: aud is the client's first registered resource.
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	tok := r.exchange(ar, code)
	claims := verifyAT("code flow", tok.token.AccessToken, c)
	if claims["sub"] != tok.claims["sub"] || claims["role"] != "ADMIN" || claims["aud"] != api ||
		!strings.Contains(fmt.Sprint(claims["scope"]), "openid") {
		t.Errorf("JWT access token claims: %v", claims)
	}
	if _, ok := tok.claims["client_id"]; ok {
		t.Errorf("the ID token carries client_id: %v", tok.claims)
	}
	if got := r.introspect(tok.token.AccessToken); got["active"] != true || fmt.Sprint(got["aud"]) != "["+api+"]" {
		t.Errorf("introspection of a JWT access token: %v", got)
	}
	// An ID token is not an access token.
	if status, _, _ := bearerGet(t, ts.issuer+"/userinfo", tok.raw); status != http.StatusUnauthorized {
		t.Errorf("userinfo with an ID token: %d, want 401", status)
	}
	r.revoke(tok.token.AccessToken, "access_token")
	if got := r.introspect(tok.token.AccessToken); got["active"] != false {
		t.Errorf("revoked JWT access token active: %v", got)
	}
	// The grant remembers the audience it was issued for: a refresh cannot
	// widen it to another registered resource; repeats count once.
	if status, _, m := postForm(t, ts.issuer+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tok.token.RefreshToken}, "resource": {other}}, c.ClientID, c.ClientSecret); status != http.StatusBadRequest || m["error"] != "invalid_target" {
		t.Errorf("refresh widening the audience: %d %v", status, m)
	}
	if status, _, m := postForm(t, ts.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"resource": {api, api, api}}, c.ClientID, c.ClientSecret); status != http.StatusOK {
		t.Errorf("client_credentials with a repeated resource: %d %v", status, m)
	} else if claims := verifyAT("repeated resource", m["access_token"].(string), c); claims["aud"] != api {
		t.Errorf("aud for a resource named three times = %v", claims["aud"])
	}

	// RFC 8707: a resource named at authorization is the token's audience;
	// a refresh may narrow to it but not widen beyond what was granted.
	ar, code = r.signIn(b, "alice@example.com", testPassword, oauth2.SetAuthURLParam("resource", other))
	tok = r.exchange(ar, code)
	if claims := verifyAT("resource", tok.token.AccessToken, c); claims["aud"] != other {
		t.Errorf("aud = %v, want %s", claims["aud"], other)
	}
	status, _, m := postForm(t, ts.issuer+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tok.token.RefreshToken}, "resource": {api}}, c.ClientID, c.ClientSecret)
	if status != http.StatusBadRequest || m["error"] != "invalid_target" {
		t.Errorf("refresh for a resource not granted: %d %v", status, m)
	}
	// An unregistered resource at authorization goes back to the client.
	q := r.callbackParams(b.get(r.authURL(oauth2.SetAuthURLParam("resource", "https://evil.example")).url))
	if q.Get("error") != "invalid_target" {
		t.Errorf("unregistered resource at authorize: %v", q)
	}
	// client_credentials: sub is the client, aud the resource asked for.
	status, _, m = postForm(t, ts.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "resource": {other}}, c.ClientID, c.ClientSecret)
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, m)
	}
	if claims := verifyAT("client_credentials", m["access_token"].(string), c); claims["aud"] != other || claims["sub"] != c.ClientID {
		t.Errorf("client_credentials claims: %v", claims)
	}

	// A client with no resources: aud is the issuer (its userinfo), never the client.
	plain := ts.createClient("--name", "JWT app 2", "--redirect-uri", "http://127.0.0.1:9003/cb", "--access-token", "jwt")
	r2 := newRP(t, ts, plain)
	ar, code = r2.signIn(b, "alice@example.com", testPassword)
	if claims := verifyAT("default audience", r2.exchange(ar, code).token.AccessToken, plain); claims["aud"] != ts.issuer {
		t.Errorf("default aud = %v, want the issuer", claims["aud"])
	}
}

func testPublicClient(t *testing.T, ts *testServer) {
	c := ts.createClient("--name", "SPA", "--type", "spa", "--public", "--redirect-uri", "http://localhost:9004/cb")
	if c.ClientSecret != "" {
		t.Fatal("public client got a secret")
	}
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	tok := r.exchange(ar, code)
	if tok.token.RefreshToken == "" {
		t.Error("public client got no refresh token")
	}
	if _, err := r.refresh(tok.token.RefreshToken); err != nil {
		t.Errorf("public client refresh: %v", err)
	}
	// Without PKCE: refused at authorize.
	q := r.callbackParams(b.get(r.oauth.AuthCodeURL("st")))
	if q.Get("error") != "invalid_request" || q.Get("state") != "st" {
		t.Errorf("public client without PKCE: %v", q)
	}
}

func testConsent(t *testing.T, ts *testServer) {
	c := ts.createClient("--name", "Third Party", "--redirect-uri", "http://127.0.0.1:9005/cb", "--require-consent")
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar := r.authURL()
	p := b.get(ar.url)
	p = b.submit(p, map[string]string{"email": "bob@example.com", "password": testPassword})
	if p.location != nil || !strings.Contains(p.body, "Third Party") {
		t.Fatalf("expected the consent page, got status %d location %v", p.status, p.location)
	}
	p = b.submit(p, map[string]string{"action": "allow"})
	q := r.callbackParams(p)
	if q.Get("code") == "" {
		t.Fatalf("consent allow: %v", q)
	}
	// Remembered for the same scopes.
	if q := r.callbackParams(b.get(r.authURL().url)); q.Get("code") == "" {
		t.Errorf("consent not remembered: %v", q)
	}
	// prompt=consent asks again; deny → access_denied.
	p = b.get(r.authURL(oauth2.SetAuthURLParam("prompt", "consent")).url)
	if p.location != nil {
		t.Fatalf("prompt=consent did not ask: %v", p.location)
	}
	q = r.callbackParams(b.submit(p, map[string]string{"action": "deny"}))
	if q.Get("error") != "access_denied" {
		t.Errorf("consent deny: %v", q)
	}
}

func testKeyRotation(t *testing.T, ts *testServer, a createdClient) {
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	before := r.exchange(ar, code)
	ts.cli("", "keys", "rotate")
	// Running servers pick the change up on their next reload (every 30 s);
	// the test triggers that reload instead of waiting for it.
	if err := ts.app.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ar, code = r.signIn(b, "alice@example.com", testPassword)
	after := r.exchange(ar, code)
	kid := func(raw string) string {
		var hdr struct {
			Kid string `json:"kid"`
		}
		head, _, _ := strings.Cut(raw, ".")
		dec, _ := base64.RawURLEncoding.DecodeString(head)
		_ = json.Unmarshal(dec, &hdr)
		return hdr.Kid
	}
	if kid(before.raw) == kid(after.raw) {
		t.Fatal("keys rotate did not change the signing key")
	}
	// A fresh verifier (empty key cache) still accepts the token signed
	// before the rotation: the retired key stays in JWKS.
	fresh := newRP(t, ts, a)
	if _, err := fresh.verifier.Verify(context.Background(), before.raw); err != nil {
		t.Errorf("token signed before rotation no longer verifies: %v", err)
	}
	if _, err := fresh.verifier.Verify(context.Background(), after.raw); err != nil {
		t.Errorf("token signed after rotation does not verify: %v", err)
	}
}

// testBrowserBinding: an attacker starts an authorization request and lures a
// signed-in victim to its login URL. The victim's session must not complete
// it, and the attacker must not collect a code at the callback.
func testBrowserBinding(t *testing.T, ts *testServer, a createdClient) {
	r := newRP(t, ts, a)
	victim := newBrowser(t, ts.issuer)
	r.signIn(victim, "alice@example.com", testPassword) // the victim has an SSO session

	attacker := newBrowser(t, ts.issuer)
	ar := r.authURL()
	p := attacker.do(mustRequest(t, ar.url))
	loginURL := p.url.String() // the attacker's browser followed to /login?authRequestID=…
	id := p.url.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("no auth request id in %s", loginURL)
	}
	p = victim.get(loginURL)
	if p.location != nil || p.status != 400 || !strings.Contains(p.body, "another browser") {
		t.Fatalf("victim opening the attacker's request: status %d location %v", p.status, p.location)
	}
	p = attacker.get(ts.issuer + "/authorize/callback?id=" + id)
	if p.location != nil && p.location.Query().Get("code") != "" {
		t.Fatal("the attacker collected a code")
	}
	// The victim's browser cannot collect it either.
	p = victim.get(ts.issuer + "/authorize/callback?id=" + id)
	if p.location != nil && p.location.Query().Get("code") != "" {
		t.Fatal("a foreign browser collected a code")
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
