package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// rp is a relying party built from libraries nobody here wrote: go-oidc for
// discovery and ID token verification, x/oauth2 for the code flow.
type rp struct {
	t        *testing.T
	ts       *testServer
	provider *oidc.Provider
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	redirect string
}

func newRP(t *testing.T, ts *testServer, c createdClient, scopes ...string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), ts.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}
	}
	endpoint := p.Endpoint()
	// Explicit, as a configured RP would be: x/oauth2's auto-detection retries
	// a failed request with the other method and reports that error instead.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if c.postAuth {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &rp{
		t: t, ts: ts, provider: p,
		oauth: &oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: endpoint,
			RedirectURL: c.RedirectURIs[0], Scopes: scopes,
		},
		verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID}),
		redirect: c.RedirectURIs[0],
	}
}

// authRequest is one authorization request in flight.
type authRequest struct {
	url                 string
	state, nonce, pkceV string
}

func (r *rp) authURL(extra ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{state: randomString(r.t), nonce: randomString(r.t), pkceV: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(ar.nonce), oauth2.S256ChallengeOption(ar.pkceV)}, extra...)
	ar.url = r.oauth.AuthCodeURL(ar.state, opts...)
	return ar
}

// callbackParams checks that p redirects to the RP's redirect URI and returns
// the query it carries. Every authorization response must carry iss.
func (r *rp) callbackParams(p *page) url.Values {
	r.t.Helper()
	if p.location == nil || !strings.HasPrefix(p.location.String(), r.redirect) {
		r.t.Fatalf("expected a redirect to %s, got status %d location %v\n%s", r.redirect, p.status, p.location, p.body)
	}
	q := p.location.Query()
	if q.Get("iss") != r.ts.issuer {
		r.t.Fatalf("authorization response iss = %q, want %q (RFC 9207)", q.Get("iss"), r.ts.issuer)
	}
	return q
}

// signIn runs the code flow through the real login form and returns the code.
func (r *rp) signIn(b *browser, email, password string, extra ...oauth2.AuthCodeOption) (authRequest, string) {
	r.t.Helper()
	ar := r.authURL(extra...)
	p := b.get(ar.url)
	if p.location == nil {
		if !strings.Contains(p.body, "Sign in") {
			r.t.Fatalf("expected the sign-in form, got status %d:\n%s", p.status, p.body)
		}
		p = b.submit(p, map[string]string{"email": email, "password": password})
	}
	q := r.callbackParams(p)
	if q.Get("error") != "" {
		r.t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != ar.state {
		r.t.Fatalf("state = %q, want %q", q.Get("state"), ar.state)
	}
	return ar, q.Get("code")
}

// tokens is a verified token response.
type tokens struct {
	token   *oauth2.Token
	idToken *oidc.IDToken
	raw     string
	claims  map[string]any
}

func (r *rp) exchange(ar authRequest, code string) tokens {
	r.t.Helper()
	tok, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(ar.pkceV))
	if err != nil {
		r.t.Fatalf("code exchange: %v", err)
	}
	return r.verify(tok, ar.nonce)
}

func (r *rp) verify(tok *oauth2.Token, nonce string) tokens {
	r.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		r.t.Fatal("token response has no id_token")
	}
	idt, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		r.t.Fatalf("ID token does not verify: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		r.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		r.t.Fatalf("at_hash: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		r.t.Fatal(err)
	}
	return tokens{token: tok, idToken: idt, raw: raw, claims: claims}
}

func (r *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	src := r.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken})
	return src.Token()
}

// introspect asks the introspection endpoint about token as this client.
func (r *rp) introspect(token string) map[string]any {
	r.t.Helper()
	status, _, m := postForm(r.t, r.ts.issuer+"/oauth/introspect", url.Values{"token": {token}}, r.oauth.ClientID, r.oauth.ClientSecret)
	if status != http.StatusOK {
		r.t.Fatalf("introspect: status %d %v", status, m)
	}
	return m
}

func (r *rp) revoke(token, hint string) {
	r.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	status, _, m := postForm(r.t, r.ts.issuer+"/revoke", form, r.oauth.ClientID, r.oauth.ClientSecret)
	if status != http.StatusOK {
		r.t.Fatalf("revoke: status %d %v", status, m)
	}
}
