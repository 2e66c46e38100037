package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The load client: a relying party and browsers that load workers can use
// from their own goroutines. Every failure is returned (t.Fatal must not be
// called off the test goroutine), and a request that got no response at all
// is told apart from one the server answered: after a kill -9 only the first
// kind is expected, and its outcome is unknown.

// errNoResponse marks a request that got no HTTP response (connection
// refused or reset, timeout): the server may or may not have acted on it.
var errNoResponse = errors.New("no response")

// loadRP is a confidential client with the code flow and refresh tokens.
type loadRP struct {
	issuer   string
	client   createdClient
	redirect string
	hc       *http.Client // no cookies, no redirects
}

func newLoadRP(issuer string, c createdClient) *loadRP {
	return &loadRP{
		issuer: issuer, client: c, redirect: c.RedirectURIs[0],
		hc: &http.Client{
			// Its own transport, so connections to a killed server can be dropped.
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			Timeout:       20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// tokenReply is a token endpoint answer: a 200 with a refresh token, or an error.
type tokenReply struct {
	status       int
	errCode      string // the OAuth "error" of a non-200 answer
	refreshToken string
}

func (r tokenReply) String() string {
	if r.status == http.StatusOK {
		return "200"
	}
	return fmt.Sprintf("%d %s", r.status, r.errCode)
}

// token posts form to the token endpoint with client_secret_basic. err is
// errNoResponse (wrapped) or an unreadable answer; an OAuth error is a reply.
func (l *loadRP) token(ctx context.Context, form url.Values) (tokenReply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return tokenReply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(l.client.ClientID), url.QueryEscape(l.client.ClientSecret))
	resp, err := l.hc.Do(req)
	if err != nil {
		return tokenReply{}, fmt.Errorf("token (%s): %w: %w", form.Get("grant_type"), errNoResponse, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenReply{}, fmt.Errorf("token (%s): %w: read body: %v", form.Get("grant_type"), errNoResponse, err)
	}
	var m struct {
		Error        string `json:"error"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return tokenReply{}, fmt.Errorf("token (%s): status %d, body is not JSON: %.200q", form.Get("grant_type"), resp.StatusCode, body)
	}
	return tokenReply{status: resp.StatusCode, errCode: m.Error, refreshToken: m.RefreshToken}, nil
}

func (l *loadRP) redeem(ctx context.Context, code, verifier string) (tokenReply, error) {
	return l.token(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {l.redirect}, "code_verifier": {verifier},
	})
}

func (l *loadRP) refresh(ctx context.Context, refreshToken string) (tokenReply, error) {
	return l.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// dropConnections forgets kept-alive connections (to a server that was killed).
func (l *loadRP) dropConnections() { l.hc.CloseIdleConnections() }

// loadBrowser is one browser (its own cookie jar) that follows redirects
// by hand, so a caller knows which response said what.
type loadBrowser struct {
	rp *loadRP
	hc *http.Client
}

func (l *loadRP) newBrowser() *loadBrowser {
	jar, _ := cookiejar.New(nil) // never fails without options
	hc := *l.hc
	hc.Jar = jar
	return &loadBrowser{rp: l, hc: &hc}
}

// loadPage is a response with its body read.
type loadPage struct {
	status   int
	url      *url.URL
	location *url.URL // of a redirect
	body     string
}

func (b *loadBrowser) do(req *http.Request) (*loadPage, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", req.Method, req.URL.Path, errNoResponse, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: read body: %v", req.Method, req.URL.Path, errNoResponse, err)
	}
	p := &loadPage{status: resp.StatusCode, url: req.URL, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = req.URL.Parse(loc)
	}
	return p, nil
}

// follow GETs u and follows redirects while they stay on the issuer.
func (b *loadBrowser) follow(ctx context.Context, u string) (*loadPage, error) {
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		p, err := b.do(req)
		if err != nil || p.location == nil || !strings.HasPrefix(p.location.String(), b.rp.issuer+"/") {
			return p, err
		}
		u = p.location.String()
	}
	return nil, errors.New("too many redirects")
}

// post submits the first POST form of p with fields, as a browser would.
func (b *loadBrowser) post(ctx context.Context, p *loadPage, fields map[string]string) (*loadPage, error) {
	action, values, err := firstPostForm(&http.Response{
		Body: io.NopCloser(strings.NewReader(p.body)), Request: &http.Request{URL: p.url},
	})
	if err != nil {
		return nil, fmt.Errorf("status %d: %w", p.status, err)
	}
	for k, v := range fields {
		values.Set(k, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(values.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.rp.issuer)
	return b.do(req)
}

// pendingCode is an authorization request on its way to a code.
type pendingCode struct {
	state, verifier string
}

func (b *loadBrowser) authorizeURL(pc *pendingCode) string {
	cfg := &oauth2.Config{
		ClientID: b.rp.client.ClientID, RedirectURL: b.rp.redirect,
		Scopes:   []string{"openid", "email", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: b.rp.issuer + "/authorize"},
	}
	return cfg.AuthCodeURL(pc.state, oauth2.S256ChallengeOption(pc.verifier))
}

// authorize starts a code flow and returns the sign-in page, or — with an
// SSO session — the redirect to the client.
func (b *loadBrowser) authorize(ctx context.Context) (*pendingCode, *loadPage, error) {
	pc := &pendingCode{state: oauth2.GenerateVerifier()[:16], verifier: oauth2.GenerateVerifier()}
	p, err := b.follow(ctx, b.authorizeURL(pc))
	return pc, p, err
}

// code follows p (the answer to a sign-in or registration form) to the
// client's redirect URI and returns the code it carries.
func (b *loadBrowser) code(ctx context.Context, pc *pendingCode, p *loadPage) (string, error) {
	var err error
	if p.location != nil && strings.HasPrefix(p.location.String(), b.rp.issuer+"/") {
		if p, err = b.follow(ctx, p.location.String()); err != nil {
			return "", err
		}
	}
	if p.location == nil || !strings.HasPrefix(p.location.String(), b.rp.redirect) {
		return "", fmt.Errorf("expected a redirect to the client, got status %d location %v: %.300s", p.status, p.location, p.body)
	}
	q := p.location.Query()
	if q.Get("error") != "" || q.Get("state") != pc.state || q.Get("code") == "" {
		return "", fmt.Errorf("authorization response %v", q)
	}
	return q.Get("code"), nil
}

// signInResult is where a sign-in got to.
type signInResult struct {
	accepted bool // the form post was answered with a redirect: signed in
	code     string
	pc       *pendingCode
	page     *loadPage // the answer to the form post, when it was not accepted
}

// signIn runs the code flow through the sign-in form.
func (b *loadBrowser) signIn(ctx context.Context, email, password string) (signInResult, error) {
	pc, p, err := b.authorize(ctx)
	if err != nil {
		return signInResult{}, err
	}
	res := signInResult{pc: pc}
	if p.location == nil { // the form (no SSO session)
		if p.status != http.StatusOK {
			return res, fmt.Errorf("authorize: status %d: %.300s", p.status, p.body)
		}
		if p, err = b.post(ctx, p, map[string]string{"email": email, "password": password}); err != nil {
			return res, err
		}
		if p.location == nil {
			res.page = p
			return res, fmt.Errorf("sign-in refused: status %d", p.status)
		}
	}
	res.accepted = true
	res.code, err = b.code(ctx, pc, p)
	return res, err
}

var registerLink = regexp.MustCompile(`<a[^>]*href="([^"]+)"[^>]*>Create account`)

// register runs the code flow through the registration form. sent says the
// registration form was posted; accepted that it was answered with a
// redirect (the account exists: the acknowledged write).
func (b *loadBrowser) register(ctx context.Context, name, email, password string) (res signInResult, sent bool, err error) {
	pc, p, err := b.authorize(ctx)
	if err != nil {
		return res, false, err
	}
	res.pc = pc
	m := registerLink.FindStringSubmatch(p.body)
	if m == nil {
		return res, false, fmt.Errorf("no registration link on the sign-in page (status %d)", p.status)
	}
	u, err := p.url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		return res, false, err
	}
	if p, err = b.follow(ctx, u.String()); err != nil {
		return res, false, err
	}
	if p.status != http.StatusOK {
		return res, false, fmt.Errorf("registration form: status %d: %.300s", p.status, p.body)
	}
	p, err = b.post(ctx, p, map[string]string{"name": name, "email": email, "password": password})
	if err != nil {
		return res, true, err
	}
	if p.location == nil {
		res.page = p
		return res, true, fmt.Errorf("registration refused: status %d: %.300s", p.status, p.body)
	}
	res.accepted = true
	res.code, err = b.code(ctx, pc, p)
	return res, true, err
}
