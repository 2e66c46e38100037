package main

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// exampleApp is the relying party of the browser walk: a tiny web app on
// 127.0.0.1 that signs its (single) user in with Gatehouse through x/oauth2
// (code flow, PKCE) and go-oidc (discovery, ID token verification), and signs
// out through the end_session endpoint.
type exampleApp struct {
	srv    *httptest.Server
	issuer string

	mu         sync.Mutex
	oauth      *oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
	pending    map[string]pendingLogin // by state
	lastState  string                  // the state of the latest /login
	user       *appUser                // the signed-in user, if any
}

type pendingLogin struct{ nonce, pkce string }

type appUser struct {
	Email, Name string
	Verified    bool
	Role        string   // Gatehouse's role claim
	IDP         string   // the upstream the user signed in through ("" for a password)
	AMR         []string // how the user authenticated
	ACR         string   // the assurance level Gatehouse says the sign-in reached
	State       string
	idToken     string
}

func newExampleApp(t *testing.T) *exampleApp {
	a := &exampleApp{pending: map[string]pendingLogin{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("GET /signout", a.signout)
	mux.HandleFunc("GET /signed-out", a.signedOut)
	a.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(a.srv.Close)
	return a
}

func (a *exampleApp) redirectURI() string   { return a.srv.URL + "/callback" }
func (a *exampleApp) postLogoutURI() string { return a.srv.URL + "/signed-out" }

// configure discovers the provider and sets the client credentials.
func (a *exampleApp) configure(t *testing.T, issuer string, c createdClient) {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("discovery has no end_session_endpoint (%v)", err)
	}
	endpoint := p.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	a.mu.Lock()
	defer a.mu.Unlock()
	a.issuer = issuer
	a.endSession = meta.EndSession
	a.oauth = &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: endpoint,
		RedirectURL: a.redirectURI(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
	a.verifier = p.Verifier(&oidc.Config{ClientID: c.ClientID})
}

// latestState is the state the app put in its latest authorization request.
func (a *exampleApp) latestState() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastState
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Example app</title></head>
<body style="font-family: sans-serif; margin: 3rem">
<p>Example app</p>
<h1>{{.Title}}</h1>
{{with .User}}<p>Signed in as <span id="email">{{.Email}}</span> (<span id="name">{{.Name}}</span>);
email verified: <span id="verified">{{.Verified}}</span>.</p>
<p>Role <span id="role">{{.Role}}</span>, signed in through <span id="idp">{{with .IDP}}{{.}}{{else}}Gatehouse{{end}}</span>
with <span id="amr">{{range $i, $m := .AMR}}{{if $i}} {{end}}{{$m}}{{end}}</span>
(acr <span id="acr">{{.ACR}}</span>).</p>
<p>state <code id="state">{{.State}}</code></p>
<p><a href="/signout">Sign out</a></p>
{{else}}{{with .State}}<p>state <code id="state">{{.}}</code></p>
{{end}}{{with .Error}}<p id="error">{{.}}</p>
{{end}}<p><a href="/login">Sign in with Gatehouse</a></p>
{{end}}</body></html>
`))

type appView struct {
	Title, State, Error string
	User                *appUser
}

func (a *exampleApp) render(w http.ResponseWriter, status int, v appView) {
	var buf bytes.Buffer
	if err := appPage.Execute(&buf, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *exampleApp) fail(w http.ResponseWriter, format string, args ...any) {
	a.render(w, http.StatusBadRequest, appView{Title: "Sign-in failed", Error: fmt.Sprintf(format, args...)})
}

func (a *exampleApp) home(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	u := a.user
	a.mu.Unlock()
	if u != nil {
		a.render(w, http.StatusOK, appView{Title: "Signed in", User: u})
		return
	}
	a.render(w, http.StatusOK, appView{Title: "Welcome"})
}

// login starts the code flow: state, nonce and a PKCE verifier, remembered
// until the callback.
func (a *exampleApp) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, pkce := randomValue(), randomValue(), oauth2.GenerateVerifier()
	a.mu.Lock()
	a.pending[state] = pendingLogin{nonce: nonce, pkce: pkce}
	a.lastState = state
	target := a.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce))
	a.mu.Unlock()
	http.Redirect(w, r, target, http.StatusFound)
}

// callback checks iss and state, exchanges the code and verifies the ID token.
func (a *exampleApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	issuer, cfg, verifier := a.issuer, a.oauth, a.verifier
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	switch {
	case q.Get("iss") != issuer:
		a.fail(w, "iss = %q, want %q", q.Get("iss"), issuer)
		return
	case !ok:
		a.fail(w, "unknown state %q", q.Get("state"))
		return
	case q.Get("error") != "":
		a.fail(w, "%s: %s", q.Get("error"), q.Get("error_description"))
		return
	}
	tok, err := cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.pkce))
	if err != nil {
		a.fail(w, "code exchange: %v", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(r.Context(), raw)
	if err != nil {
		a.fail(w, "ID token: %v", err)
		return
	}
	if idt.Nonce != p.nonce {
		a.fail(w, "nonce mismatch")
		return
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		a.fail(w, "at_hash: %v", err)
		return
	}
	var claims struct {
		Email    string   `json:"email"`
		Verified bool     `json:"email_verified"`
		Name     string   `json:"name"`
		Role     string   `json:"role"`
		IDP      string   `json:"idp"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
	}
	if err := idt.Claims(&claims); err != nil {
		a.fail(w, "claims: %v", err)
		return
	}
	u := &appUser{Email: claims.Email, Name: claims.Name, Verified: claims.Verified,
		Role: claims.Role, IDP: claims.IDP, AMR: claims.AMR, ACR: claims.ACR, State: q.Get("state"), idToken: raw}
	a.mu.Lock()
	a.user = u
	a.mu.Unlock()
	a.render(w, http.StatusOK, appView{Title: "Signed in", User: u})
}

// signout sends the browser to Gatehouse's end_session endpoint with the ID
// token as hint, so the sign-out needs no confirmation.
func (a *exampleApp) signout(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	u := a.user
	a.user = nil
	state := randomValue()
	a.lastState = state
	target := a.endSession
	a.mu.Unlock()
	if u == nil {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	target += "?" + url.Values{
		"id_token_hint":            {u.idToken},
		"post_logout_redirect_uri": {a.postLogoutURI()},
		"state":                    {state},
	}.Encode()
	http.Redirect(w, r, target, http.StatusFound)
}

func (a *exampleApp) signedOut(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, appView{Title: "Signed out", State: r.URL.Query().Get("state")})
}

func randomValue() string {
	return oauth2.GenerateVerifier()[:32] // 32 URL-safe characters from crypto/rand
}

// walker drives one browser tab and saves screenshots.
type walker struct {
	t     *testing.T
	ctx   context.Context // the tab
	shots string          // folder for screenshots
	saved []string
}

const stepTimeout = 15 * time.Second

// load runs actions that load a page (following redirects) and returns the
// response of the page's document.
func (w *walker) load(what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		w.fatalf("%s: %v", what, err)
	}
	return resp
}

func (w *walker) open(u string) *network.Response {
	w.t.Helper()
	return w.load("open "+u, chromedp.Navigate(u))
}

// clickLink follows the link with exactly this text.
func (w *walker) clickLink(text string) *network.Response {
	w.t.Helper()
	return w.load("follow link "+text, chromedp.Click(fmt.Sprintf(`//a[normalize-space()=%q]`, text)))
}

// press clicks the button with exactly this text and waits for the next page.
func (w *walker) press(text string) *network.Response {
	w.t.Helper()
	return w.load("press "+text, chromedp.Click(fmt.Sprintf(`//button[normalize-space()=%q]`, text)))
}

// fill types value into the input labelled label (the label's for= names
// it), replacing what it holds.
func (w *walker) fill(label, value string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	// Find the input through its label and empty it; then type.
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
		const l = [...document.querySelectorAll("label")].find(l => l.textContent.trim() === %q);
		const i = l && l.htmlFor && document.getElementById(l.htmlFor);
		if (!i || i.tagName !== "INPUT") return "";
		i.value = "";
		return i.id;
	})()`, label)))
	if err != nil || id == "" {
		w.fatalf("no input labelled %q (%v)", label, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID(id), value)); err != nil {
		w.fatalf("type into %s: %v", label, err)
	}
}

// value is the current value of the input labelled label.
func (w *walker) value(label string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(fmt.Sprintf(`//input[@id=//label[normalize-space()=%q]/@for]`, label)))
	if err != nil {
		w.fatalf("value of %s: %v", label, err)
	}
	return v
}

// text is the visible text of the first element matching the CSS selector.
func (w *walker) text(css string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		w.fatalf("text of %s: %v", css, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// expectPage checks the page the browser shows: status, address and heading.
func (w *walker) expectPage(resp *network.Response, status int, urlPrefix, heading string) {
	w.t.Helper()
	if resp.Status != int64(status) || !strings.HasPrefix(resp.URL, urlPrefix) {
		w.fatalf("expected %d %s…, the browser shows %d %s", status, urlPrefix, resp.Status, resp.URL)
	}
	if got := w.text("h1"); got != heading {
		w.fatalf("heading on %s = %q, want %q", resp.URL, got, heading)
	}
}

// expectText checks that the element matching css shows want (a substring).
func (w *walker) expectText(css, want string) {
	w.t.Helper()
	if got := w.text(css); !strings.Contains(got, want) {
		w.fatalf("%s shows %q, want %q", css, got, want)
	}
}

// shot saves a full-page screenshot as <name>.png (rewritten only when the
// picture changed, so repeated runs leave the files alone).
func (w *walker) shot(name string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		w.fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(w.shots, name+".png")
	if old, err := os.ReadFile(p); err != nil || !bytes.Equal(old, png) {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	w.saved = append(w.saved, name)
}

// shotNarrow saves a full-page screenshot as <name>-narrow.png the way a
// phone shows the page (390 CSS pixels wide, mobile viewport), then goes
// back to the window's size.
func (w *walker) shotNarrow(name string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		w.fatalf("narrow viewport: %v", err)
	}
	w.shot(name + "-narrow")
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	})); err != nil {
		w.fatalf("reset viewport: %v", err)
	}
}

// count is the number of elements matching the CSS selector.
func (w *walker) count(css string) int {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, css)))
	if err != nil {
		w.fatalf("count %s: %v", css, err)
	}
	return n
}

// fatalf fails the walk with the address and text of the page on screen.
func (w *walker) fatalf(format string, args ...any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	w.t.Fatalf(format+"\n--- page %s:\n%s", append(args, loc, body)...)
}
