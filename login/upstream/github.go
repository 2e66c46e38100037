package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// github signs in through a GitHub OAuth app: the authorization code flow
// with state and PKCE, then the REST API for who the user is. GitHub issues
// no ID token, so the identity comes from GET /user (the numeric id is the
// subject: logins can be renamed and reused, ids cannot) and GET
// /user/emails (the email is the primary address, and only if GitHub marks
// it verified: the public profile email is whatever the user typed).
type github struct {
	cfg    Config
	api    string
	client *http.Client
	log    *slog.Logger
}

func newGitHub(c Config, o Options) *github {
	return &github{cfg: c, api: c.APIURL(), client: o.HTTPClient, log: o.Logger.With("upstream", c.ID)}
}

func (g *github) Config() Config { return g.cfg }

// pkceChallenge is the S256 code challenge of verifier (RFC 7636).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (g *github) AuthCodeURL(_ context.Context, leg Leg, redirectURI string) (string, error) {
	q := url.Values{
		"client_id":             {g.cfg.ClientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {strings.Join(g.cfg.Scopes, " ")},
		"state":                 {leg.State},
		"code_challenge":        {pkceChallenge(leg.Verifier)},
		"code_challenge_method": {"S256"},
	}
	return g.cfg.URL + "/login/oauth/authorize?" + q.Encode(), nil
}

func (g *github) fail(kind Kind, op string, format string, args ...any) *Error {
	return &Error{Kind: kind, Upstream: g.cfg.ID, Op: op, Err: fmt.Errorf(format, args...)}
}

func (g *github) Exchange(ctx context.Context, leg Leg, redirectURI string, cb url.Values) (*Identity, error) {
	if e := cb.Get("error"); e != "" {
		kind := Invalid
		if e == "access_denied" {
			kind = Denied
		}
		return nil, g.fail(kind, "authorization", "GitHub answered error=%q: %q", e, cb.Get("error_description"))
	}
	code := cb.Get("code")
	if code == "" {
		return nil, g.fail(Invalid, "authorization", "callback without code")
	}
	token, err := g.exchangeCode(ctx, leg, redirectURI, code)
	if err != nil {
		return nil, err
	}

	var user struct {
		ID    json.Number `json:"id"`
		Login string      `json:"login"`
		Name  string      `json:"name"`
	}
	if err := g.get(ctx, token, "/user", &user); err != nil {
		return nil, err
	}
	if _, err := strconv.ParseInt(user.ID.String(), 10, 64); err != nil || user.ID.String() == "0" {
		return nil, g.fail(Invalid, "GET /user", "missing or non-numeric id %q", user.ID)
	}
	id := &Identity{Subject: user.ID.String(), Name: strings.TrimSpace(user.Name)}
	if id.Name == "" {
		id.Name = user.Login
	}

	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := g.get(ctx, token, "/user/emails", &emails); err != nil {
		return nil, err
	}
	for _, e := range emails {
		if e.Primary {
			// The primary address, verified or not: the caller decides
			// what an unverified one may do (nothing by email).
			id.Email, id.EmailVerified = strings.TrimSpace(e.Email), e.Verified
			break
		}
	}

	if len(g.cfg.AllowedOrgs) > 0 {
		if err := g.checkOrgs(ctx, token, user.Login); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// exchangeCode trades the code for an access token. GitHub answers errors
// with status 200 and an "error" member, so both are checked.
func (g *github) exchangeCode(ctx context.Context, leg Leg, redirectURI, code string) (string, error) {
	const op = "token exchange"
	form := url.Values{
		"client_id":     {g.cfg.ClientID},
		"client_secret": {g.cfg.ClientSecret},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {leg.Verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", g.fail(Invalid, op, "%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := g.client.Do(req)
	if err != nil {
		return "", classify(g.cfg.ID, op, 0, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		return "", classify(g.cfg.ID, op, resp.StatusCode, nil)
	}
	if err := decodeJSON(g.cfg.ID, op, resp.Body, &body); err != nil {
		return "", err
	}
	switch {
	case body.Error == "incorrect_client_credentials" || body.Error == "redirect_uri_mismatch":
		// Gatehouse's registration at GitHub is wrong: the admin must fix it.
		g.log.ErrorContext(ctx, "GitHub refused Gatehouse's OAuth app settings; check the client ID, secret and callback URL",
			"error", body.Error, "callback_url", redirectURI)
		return "", g.fail(Invalid, op, "GitHub answered error=%q: %q", body.Error, body.Description)
	case body.Error != "":
		return "", g.fail(Invalid, op, "GitHub answered error=%q: %q", body.Error, body.Description)
	case body.AccessToken == "":
		return "", g.fail(Invalid, op, "no access_token in the answer")
	}
	return body.AccessToken, nil
}

const userAgent = "Gatehouse (+https://github.com/gatehouse-id/gatehouse)"

// get calls the REST API with the user's token and decodes the JSON answer.
func (g *github) get(ctx context.Context, token, path string, into any) error {
	op := "GET " + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+path, nil)
	if err != nil {
		return g.fail(Invalid, op, "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", userAgent)
	resp, err := g.client.Do(req)
	if err != nil {
		return classify(g.cfg.ID, op, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		// GitHub answers an exhausted (primary or secondary) rate limit
		// with 403 as well as 429, marked by x-ratelimit-remaining: 0 or
		// retry-after: worth trying again later, unlike a plain 403.
		if resp.StatusCode == http.StatusForbidden &&
			(resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != "") {
			return g.fail(Unavailable, op, "rate limited (HTTP 403)")
		}
		return classify(g.cfg.ID, op, resp.StatusCode, nil)
	}
	return decodeJSON(g.cfg.ID, op, resp.Body, into)
}

// maxOrgPages bounds the organisation listing (100 per page).
const maxOrgPages = 10

// checkOrgs requires membership of one of the allowed organisations.
func (g *github) checkOrgs(ctx context.Context, token, login string) error {
	var seen []string
	for page := 1; page <= maxOrgPages; page++ {
		var orgs []struct {
			Login string `json:"login"`
		}
		if err := g.get(ctx, token, "/user/orgs?per_page=100&page="+strconv.Itoa(page), &orgs); err != nil {
			return err
		}
		for _, o := range orgs {
			for _, allowed := range g.cfg.AllowedOrgs {
				if strings.EqualFold(o.Login, allowed) {
					return nil
				}
			}
			seen = append(seen, o.Login)
		}
		if len(orgs) < 100 {
			break
		}
	}
	g.log.InfoContext(ctx, "GitHub user is not a member of an allowed organisation", "login", login, "member_of", seen)
	return g.fail(NotAllowed, "organisation check", "%s is not a member of %v", login, g.cfg.AllowedOrgs)
}

// drain reads a little of an unwanted body so the connection can be reused.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
}
