package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// maxSteps bounds the requests of one trip through a provider's pages: a
// loop of redirects must fail, not spin.
const maxSteps = 12

// maxBody bounds what is read of any response.
const maxBody = 1 << 20

// errSignInPage is returned when a provider shows a page where an SSO session
// should have let the browser through.
var errSignInPage = errors.New("a sign-in page was shown although the browser has an SSO session")

// account is what a browser types into a provider's sign-in form.
type account struct {
	login, password string
}

// browser walks through a provider's pages the way a browser does: it keeps
// cookies, follows redirects itself (so it sees the one to the app), and
// submits the sign-in and consent forms it is shown.
type browser struct {
	hc *http.Client
}

func newBrowser(tr http.RoundTripper) *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &browser{hc: &http.Client{
		Jar: jar, Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// codeFlow is one authorization code flow of an app with PKCE, from the
// authorization request to the tokens.
type codeFlow struct {
	t      *target
	app    client
	scope  string
	extra  url.Values // more authorization request parameters (e.g. prompt)
	signIn *account   // nil: an SSO session must let the browser through
}

// tokens is the part of a token response the driver checks.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// run drives the browser from the authorization request to the redirect to
// the app, exchanges the code, and returns the tokens and the number of
// HTTP requests the flow took (the browser's and the token request).
func (f codeFlow) run(ctx context.Context, br *browser) (tokens, int, error) {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.app.ID},
		"redirect_uri":          {f.t.redirectURI},
		"scope":                 {f.scope},
		"state":                 {state},
		"nonce":                 {rand.Text()},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	for k, v := range f.extra {
		q[k] = v
	}
	code, n, err := br.authorize(ctx, f.t.disc.AuthorizationEndpoint+"?"+q.Encode(), f.t.redirectURI, state, f.signIn)
	if err != nil {
		return tokens{}, n, err
	}
	tok, err := f.t.token(ctx, f.app, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.t.redirectURI},
		"code_verifier": {verifier},
	})
	if err != nil {
		return tokens{}, n + 1, fmt.Errorf("code exchange: %w", err)
	}
	if tok.IDToken == "" {
		return tokens{}, n + 1, errors.New("code exchange: no id_token")
	}
	return tok, n + 1, nil
}

// authorize follows the provider from authURL until it redirects to
// redirectURI, filling in the sign-in form with acct and submitting any
// other form (consent) as it is; it returns the code and the number of
// requests made.
func (br *browser) authorize(ctx context.Context, authURL, redirectURI, state string, acct *account) (string, int, error) {
	next, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", 0, err
	}
	forms := 0
	for step := 1; step <= maxSteps; step++ {
		resp, err := br.hc.Do(next)
		if err != nil {
			return "", step, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return "", step, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return "", step, fmt.Errorf("%s: redirect without a location", next.URL)
			}
			if strings.HasPrefix(loc.String(), redirectURI) {
				q := loc.Query()
				if e := q.Get("error"); e != "" {
					return "", step, fmt.Errorf("the provider answered the app with %s: %s", e, q.Get("error_description"))
				}
				if q.Get("state") != state || q.Get("code") == "" {
					return "", step, fmt.Errorf("the redirect to the app has no code or the wrong state: %s", loc)
				}
				return q.Get("code"), step, nil
			}
			if next, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil); err != nil {
				return "", step, err
			}
		case resp.StatusCode == http.StatusOK:
			f, err := parseForm(string(body), resp.Request.URL)
			if err != nil {
				return "", step, fmt.Errorf("%s: %w", resp.Request.URL, err)
			}
			if f.hasPassword && acct == nil {
				return "", step, errSignInPage
			}
			if forms++; forms > 3 {
				return "", step, fmt.Errorf("%s: a fourth form in one flow", resp.Request.URL)
			}
			if f.hasPassword {
				f.values.Set(f.loginField, acct.login)
				f.values.Set(f.passwordField, acct.password)
			}
			if next, err = http.NewRequestWithContext(ctx, http.MethodPost, f.action, strings.NewReader(f.values.Encode())); err != nil {
				return "", step, err
			}
			next.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// A browser sends Origin with every POST; CSRF defences check it.
			next.Header.Set("Origin", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host)
		default:
			return "", step, fmt.Errorf("%s %s: status %d: %.200s", next.Method, next.URL, resp.StatusCode, body)
		}
	}
	return "", maxSteps, fmt.Errorf("no redirect to the app after %d requests", maxSteps)
}

// form is a POST form of a page, ready to submit.
type form struct {
	action                    string
	values                    url.Values
	hasPassword               bool
	loginField, passwordField string
}

// loginNames are the names of the account field in the forms of the systems
// compared: Gatehouse, node-oidc-provider's dev login, zitadel's example.
var loginNames = map[string]bool{"email": true, "login": true, "username": true}

// parseForm returns the page's sign-in form (the first POST form with a
// password field) or, without one, its first POST form (a consent page),
// with the values a browser would submit: hidden and prefilled fields, and
// the name and value of the first named submit button.
func parseForm(page string, base *url.URL) (form, error) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return form{}, err
	}
	var forms []*html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(attr(n, "method"), "post") {
			forms = append(forms, n)
		}
	}
	if len(forms) == 0 {
		return form{}, fmt.Errorf("no POST form on the page: %.200s", page)
	}
	var best form
	for i, node := range forms {
		f := form{values: url.Values{}}
		button := false
		for n := range node.Descendants() {
			if n.Type != html.ElementNode || attr(n, "name") == "" {
				continue
			}
			name, typ := attr(n, "name"), strings.ToLower(attr(n, "type"))
			switch {
			case n.Data == "input" && typ == "password":
				f.hasPassword, f.passwordField = true, name
			case n.Data == "input" && loginNames[name] && (typ == "" || typ == "text" || typ == "email"):
				f.loginField = name
			case (n.Data == "button" && (typ == "" || typ == "submit")) || (n.Data == "input" && typ == "submit"):
				if !button {
					f.values.Set(name, attr(n, "value"))
					button = true
				}
				continue
			case n.Data != "input" || typ == "checkbox" || typ == "radio" || typ == "button":
				continue
			}
			f.values.Set(name, attr(n, "value"))
		}
		action, err := base.Parse(attr(node, "action"))
		if err != nil {
			return form{}, err
		}
		f.action = action.String()
		if f.hasPassword && f.loginField == "" {
			return form{}, errors.New("a password field without a login field")
		}
		if i == 0 || (f.hasPassword && !best.hasPassword) {
			best = f
		}
	}
	return best, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// token sends a token request as app (client_secret_basic) and returns the
// tokens; any status but 200 is an error.
func (t *target) token(ctx context.Context, app client, form url.Values) (tokens, error) {
	body, err := t.post(ctx, t.disc.TokenEndpoint, app, form)
	if err != nil {
		return tokens{}, err
	}
	var tok tokens
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return tokens{}, fmt.Errorf("no access_token in %.200s", body)
	}
	return tok, nil
}

// post sends form to u as app with client_secret_basic (RFC 6749 §2.3.1:
// the credentials are form-encoded before base64) and returns the body of a
// 200 answer.
func (t *target) post(ctx context.Context, u string, app client, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(app.ID), url.QueryEscape(app.Secret))
	return t.do(req)
}

func (t *target) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return t.do(req)
}

func (t *target) do(req *http.Request) ([]byte, error) {
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}

// jwtAlg returns the alg of a compact JWS's header, or "" when tok is not
// one (an opaque token).
func jwtAlg(tok string) string {
	head, _, ok := strings.Cut(tok, ".")
	if !ok || strings.Count(tok, ".") != 2 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Alg
}
