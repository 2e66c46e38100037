// Package rp is a small relying party for Gatehouse built only on
// github.com/coreos/go-oidc/v3 and golang.org/x/oauth2: the code flow with
// PKCE, state and nonce, ID token verification, and RP-initiated logout.
// It is the code the README's Go snippet comes from, and Gatehouse's
// end-to-end tests run it.
package rp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config names the issuer and this app's registration.
type Config struct {
	Issuer                string // e.g. http://localhost:8080
	ClientID              string
	ClientSecret          string
	RedirectURL           string // e.g. http://localhost:8000/callback
	PostLogoutRedirectURL string // e.g. http://localhost:8000/ (registered with --post-logout-redirect-uri)
}

// App is the relying party: an http.Handler with /, /login, /callback, /logout.
type App struct {
	cfg      Config
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	endSess  string

	mu       sync.Mutex
	pending  map[string]pending // by state
	sessions map[string]Session // by session cookie
}

type pending struct {
	nonce, codeVerifier string
	expires             time.Time
}

// Session is what the app keeps about a signed-in user.
type Session struct {
	Subject       string
	Email         string
	Role          string
	EmailVerified bool
	IDToken       string
}

// New discovers the issuer and builds the app.
func New(ctx context.Context, cfg Config) (*App, error) {
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSessionEndpoint string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery: %w", err)
	}
	return &App{
		cfg:      cfg,
		provider: provider,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  cfg.RedirectURL,
			Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		endSess:  meta.EndSessionEndpoint,
		pending:  make(map[string]pending),
		sessions: make(map[string]Session),
	}, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		a.home(w, r)
	case "/login":
		a.login(w, r)
	case "/callback":
		a.callback(w, r)
	case "/logout":
		a.logout(w, r)
	default:
		http.NotFound(w, r)
	}
}

// login starts the authorization code flow with PKCE (S256), state and nonce.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.mu.Lock()
	for k, v := range a.pending { // forget abandoned sign-ins
		if time.Now().After(v.expires) {
			delete(a.pending, k)
		}
	}
	a.pending[state] = pending{nonce: nonce, codeVerifier: verifier, expires: time.Now().Add(10 * time.Minute)}
	a.mu.Unlock()
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback checks state and iss (RFC 9207), redeems the code and verifies the ID token.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	switch {
	case !ok || time.Now().After(p.expires):
		http.Error(w, "unknown or expired state", http.StatusBadRequest)
		return
	case q.Get("iss") != a.cfg.Issuer:
		http.Error(w, "authorization response from the wrong issuer", http.StatusBadRequest)
		return
	case q.Get("error") != "":
		http.Error(w, "sign-in failed: "+q.Get("error"), http.StatusForbidden)
		return
	}
	tok, err := a.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.codeVerifier))
	if err != nil {
		http.Error(w, "code exchange failed", http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := a.verifier.Verify(r.Context(), raw)
	if err != nil || idToken.Nonce != p.nonce {
		http.Error(w, "invalid ID token", http.StatusBadGateway)
		return
	}
	var claims struct {
		Email         string `json:"email"`
		Role          string `json:"role"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idToken.Claims(&claims); err != nil {
		http.Error(w, "invalid ID token claims", http.StatusBadGateway)
		return
	}
	sid := random()
	a.mu.Lock()
	a.sessions[sid] = Session{Subject: idToken.Subject, Email: claims.Email, Role: claims.Role, EmailVerified: claims.EmailVerified, IDToken: raw}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "rp_session", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

// logout forgets the local session and ends the Gatehouse session too
// (RP-initiated logout with id_token_hint).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s, sid, ok := a.session(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	a.mu.Lock()
	delete(a.sessions, sid)
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "rp_session", Path: "/", MaxAge: -1})
	v := url.Values{"id_token_hint": {s.IDToken}, "post_logout_redirect_uri": {a.cfg.PostLogoutRedirectURL}}
	http.Redirect(w, r, a.endSess+"?"+v.Encode(), http.StatusFound)
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html><title>Go RP</title>
{{if .}}<p>Signed in as <strong id="email">{{.Email}}</strong> (role <span id="role">{{.Role}}</span>, email verified: {{.EmailVerified}})</p>
<p><a href="/logout">Sign out</a></p>{{else}}<p><a href="/login">Sign in with Gatehouse</a></p>{{end}}`))

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	var s *Session
	if sess, _, ok := a.session(r); ok {
		s = &sess
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = homePage.Execute(w, s)
}

func (a *App) session(r *http.Request) (Session, string, bool) {
	c, err := r.Cookie("rp_session")
	if err != nil {
		return Session{}, "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	return s, c.Value, ok
}

func random() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed"))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
