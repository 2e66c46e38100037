package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
)

// Upstream sign-in end to end (issue 9): a relying party built from go-oidc
// asks Gatehouse; Gatehouse sends the browser to a fake GitHub on loopback
// (login/upstream/githubtest) or to a second Gatehouse acting as an OpenID
// Connect upstream; the linking rules decide which account signs in.

const (
	ghClientID     = "gh-client"
	ghClientSecret = "gh-secret-0123456789"
)

// githubVars enables the GitHub upstream against gh.
func githubVars(gh *githubtest.Server, extra map[string]string) map[string]string {
	v := map[string]string{
		"GATEHOUSE_GITHUB_CLIENT_ID":     ghClientID,
		"GATEHOUSE_GITHUB_CLIENT_SECRET": ghClientSecret,
		"GATEHOUSE_GITHUB_URL":           gh.URL,
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// elementAttr returns attribute key of the element with id in p's HTML, or
// "" when there is none.
func elementAttr(t *testing.T, p *page, id, key string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	var found string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			found = attr(n, key)
			return
		}
		for c := n.FirstChild; c != nil && found == ""; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

// toUpstream follows the "Continue with …" link of upstream id on the
// sign-in page p and returns the redirect to the upstream.
func (b *browser) toUpstream(p *page, id string) *url.URL {
	b.t.Helper()
	href := elementAttr(b.t, p, "upstream-"+id, "href")
	if href == "" {
		b.t.Fatalf("no Continue-with link for upstream %q on %s (status %d):\n%s", id, p.url, p.status, p.body)
	}
	start := b.get(b.issuer + href)
	if start.location == nil || start.status != http.StatusSeeOther {
		b.t.Fatalf("start of upstream %q: want a 303 to the upstream, got status %d\n%s", id, start.status, start.body)
	}
	return start.location
}

// viaGitHub runs the leg through the fake GitHub (which approves at once as
// its approver) and returns what Gatehouse answered at the end.
func (b *browser) viaGitHub(p *page) *page {
	b.t.Helper()
	return b.get(b.toUpstream(p, "github").String())
}

// signInPage opens ar at Gatehouse and expects its sign-in page.
func (r *rp) signInPage(b *browser) (authRequest, *page) {
	r.t.Helper()
	ar := r.authURL()
	p := b.get(ar.url)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Sign in") {
		r.t.Fatalf("expected the sign-in page, got status %d\n%s", p.status, p.body)
	}
	return ar, p
}

// codeFrom checks that p is the redirect to the RP with a code for ar.
func (r *rp) codeFrom(ar authRequest, p *page) string {
	r.t.Helper()
	q := r.callbackParams(p)
	if q.Get("error") != "" || q.Get("state") != ar.state || q.Get("code") == "" {
		r.t.Fatalf("want a code for state %q, got %v", ar.state, q)
	}
	return q.Get("code")
}

type listedUser struct {
	ID     string `json:"id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
	Pw     bool   `json:"has_password"`
	Linked []struct {
		Upstream string `json:"upstream"`
		Subject  string `json:"subject"`
		Email    string `json:"email"`
	} `json:"linked_identities"`
}

func (ts *testServer) users() map[string]listedUser {
	ts.t.Helper()
	var list []listedUser
	if err := json.Unmarshal([]byte(ts.cli("", "users", "list", "--json")), &list); err != nil {
		ts.t.Fatal(err)
	}
	out := map[string]listedUser{}
	for _, u := range list {
		out[u.Email] = u
	}
	return out
}

func octocat(id int64, login, email string, verified bool) githubtest.User {
	u := githubtest.User{ID: id, Login: login, Name: strings.ToUpper(login[:1]) + login[1:]}
	if email != "" {
		u.Emails = []githubtest.Email{{Email: email, Primary: true, Verified: verified, Visibility: "private"}}
	}
	return u
}

// An unknown GitHub identity with a verified primary email creates an
// account (verified, role USER, no password) and signs in; the ID token
// says how (amr fed, idp github). The next sign-in finds the link by
// GitHub's user ID — even after the address changed at GitHub.
func TestUpstreamGitHubSignUp(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			gh := githubtest.New(t, ghClientID, ghClientSecret)
			gh.AddUser(octocat(583231, "octocat", "Octo@Example.com", true))
			gh.SetApprover("octocat")
			ts := startServer(t, backend, githubVars(gh, nil))
			r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

			b := newBrowser(t, ts.issuer)
			ar, p := r.signInPage(b)
			tok := r.exchange(ar, r.codeFrom(ar, b.viaGitHub(p)))
			c := tok.claims
			if c["email"] != "octo@example.com" || c["email_verified"] != true || c["role"] != "USER" || c["idp"] != "github" {
				t.Fatalf("ID token claims: %v", c)
			}
			if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
				t.Fatalf("amr = %v, want [fed]", c["amr"])
			}
			u := ts.users()["octo@example.com"]
			if u.ID != tok.idToken.Subject || u.Pw || len(u.Linked) != 1 || u.Linked[0].Upstream != "github" || u.Linked[0].Subject != "583231" {
				t.Fatalf("users list: %+v", u)
			}
			// Refreshed tokens keep idp and amr (they come from the grant).
			nt, err := r.refresh(tok.token.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if rt := r.verify(nt, ""); rt.claims["idp"] != "github" {
				t.Fatalf("refreshed ID token idp = %v", rt.claims["idp"])
			}

			// The address changes at GitHub; the link is by user ID.
			gh.AddUser(octocat(583231, "octocat", "new-address@example.com", true))
			b2 := newBrowser(t, ts.issuer)
			ar, p = r.signInPage(b2)
			tok2 := r.exchange(ar, r.codeFrom(ar, b2.viaGitHub(p)))
			if tok2.idToken.Subject != u.ID || tok2.claims["email"] != "octo@example.com" {
				t.Fatalf("second sign-in: sub %s email %v, want the same account %s", tok2.idToken.Subject, tok2.claims["email"], u.ID)
			}
			if n := len(ts.users()); n != 1 {
				t.Fatalf("%d users after two sign-ins of one GitHub account, want 1", n)
			}
		})
	}
}

// An upstream email that is not verified never creates an account and never
// joins one by email — the takeover GitHub-without-verification would allow.
func TestUpstreamUnverifiedEmailNeverLinks(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(1, "mallory", "victim@example.com", false))
	gh.AddUser(octocat(2, "noemail", "", false))
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	victim := ts.createUser("victim@example.com", "Victim-Passw0rd")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	gh.SetApprover("mallory")
	b := newBrowser(t, ts.issuer)
	_, p := r.signInPage(b)
	got := b.viaGitHub(p)
	if got.status != http.StatusForbidden || !strings.Contains(got.body, "did not confirm that this email address is yours") {
		t.Fatalf("unverified email: status %d\n%s", got.status, got.body)
	}
	if got.location != nil {
		t.Fatalf("the app got a redirect: %v", got.location)
	}
	users := ts.users()
	if len(users) != 1 || len(users["victim@example.com"].Linked) != 0 {
		t.Fatalf("users after the attempt: %+v", users)
	}
	// The victim's own sign-in is untouched.
	b2 := newBrowser(t, ts.issuer)
	if _, code := r.signIn(b2, "victim@example.com", "Victim-Passw0rd"); code == "" {
		t.Fatal("victim cannot sign in")
	}
	_ = victim

	gh.SetApprover("noemail")
	b3 := newBrowser(t, ts.issuer)
	_, p = r.signInPage(b3)
	got = b3.viaGitHub(p)
	if got.status != http.StatusForbidden || !strings.Contains(got.body, "did not share a verified email address") {
		t.Fatalf("no email: status %d\n%s", got.status, got.body)
	}
	if len(ts.users()) != 1 {
		t.Fatal("an account was created without an email")
	}
}

// A verified upstream email that belongs to an existing account is linked
// only after that account's password, in the same browser; afterwards the
// upstream alone signs in.
func TestUpstreamVerifiedEmailLinksOnlyAfterPassword(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(42, "bob", "bob@example.com", true))
	gh.SetApprover("bob")
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	bob := ts.createUser("bob@example.com", "Bob-Passw0rd-1")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	got := b.viaGitHub(p)
	if got.status != http.StatusOK || !strings.Contains(got.body, "An account with this email already exists — sign in with your password to link GitHub.") {
		t.Fatalf("status %d\n%s", got.status, got.body)
	}
	if n := len(ts.users()["bob@example.com"].Linked); n != 0 {
		t.Fatalf("linked before the password: %d links", n)
	}
	// A wrong password links nothing.
	wrong := b.submit(got, map[string]string{"email": "bob@example.com", "password": "not-bobs-password"})
	if wrong.status != http.StatusBadRequest || len(ts.users()["bob@example.com"].Linked) != 0 {
		t.Fatalf("wrong password: status %d, links %v", wrong.status, ts.users()["bob@example.com"].Linked)
	}
	done := b.submit(wrong, map[string]string{"email": "bob@example.com", "password": "Bob-Passw0rd-1"})
	tok := r.exchange(ar, r.codeFrom(ar, done))
	if amr, _ := tok.claims["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" || tok.claims["idp"] != nil {
		t.Fatalf("password sign-in claims: amr %v idp %v", tok.claims["amr"], tok.claims["idp"])
	}
	u := ts.users()["bob@example.com"]
	if len(u.Linked) != 1 || u.Linked[0].Subject != "42" {
		t.Fatalf("after the password: %+v", u)
	}
	// Now GitHub alone signs bob in.
	b2 := newBrowser(t, ts.issuer)
	ar, p = r.signInPage(b2)
	tok = r.exchange(ar, r.codeFrom(ar, b2.viaGitHub(p)))
	if tok.idToken.Subject != bob.ID || tok.claims["idp"] != "github" {
		t.Fatalf("GitHub sign-in after linking: sub %s idp %v", tok.idToken.Subject, tok.claims["idp"])
	}
	// The audit trail has the link.
	if out := ts.cli("", "audit", "list", "--user", "bob@example.com"); !strings.Contains(out, "identity_linked") {
		t.Fatalf("audit list has no identity_linked:\n%s", out)
	}
}

// A pending link is for the account the email matched: signing in to
// another account with its password links nothing.
func TestUpstreamPendingLinkNeedsThatAccount(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(7, "carol", "carol@example.com", true))
	gh.SetApprover("carol")
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	ts.createUser("carol@example.com", "Carol-Passw0rd-1")
	ts.createUser("dave@example.com", "Dave-Passw0rd-1")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	got := b.viaGitHub(p)
	r.codeFrom(ar, b.submit(got, map[string]string{"email": "dave@example.com", "password": "Dave-Passw0rd-1"}))
	for email, u := range ts.users() {
		if len(u.Linked) != 0 {
			t.Fatalf("%s got linked: %+v", email, u.Linked)
		}
	}
}

// With sign-up through upstreams off, an unknown identity gets an answer
// and no account.
func TestUpstreamSignupOff(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(9, "newcomer", "newcomer@example.com", true))
	gh.SetApprover("newcomer")
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_UPSTREAM_SIGNUP": "false"}))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	_, p := r.signInPage(b)
	got := b.viaGitHub(p)
	if got.status != http.StatusForbidden || !strings.Contains(got.body, "new accounts cannot be created with GitHub") {
		t.Fatalf("status %d\n%s", got.status, got.body)
	}
	if n := len(ts.users()); n != 0 {
		t.Fatalf("%d users created with sign-up off", n)
	}
}

// The callback is refused when the leg does not belong to this browser,
// was used before, carries another state, or arrives at another upstream's
// callback (mix-up).
func TestUpstreamCallbackRefusals(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(11, "erin", "erin@example.com", true))
	upstreams := tempFile(t, "upstreams.json", `{"upstreams":[{"id":"corp","type":"oidc","name":"Corp SSO",
		"issuer":"http://127.0.0.1:9","client_id":"gatehouse","client_secret":"s"}]}`)
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_UPSTREAMS_FILE": upstreams}))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	// legCallback starts a GitHub leg in b and returns the callback URL the
	// fake GitHub redirects to, without following it.
	legCallback := func(b *browser) *url.URL {
		t.Helper()
		_, p := r.signInPage(b)
		authorize := b.toUpstream(p, "github")
		gh.SetApprover("erin")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(authorize.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || cb.Query().Get("code") == "" {
			t.Fatalf("fake GitHub answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return cb
	}
	cookieOf := func(b *browser, name string) *http.Cookie {
		u, _ := url.Parse(ts.issuer)
		for _, c := range b.client.Jar.Cookies(u) {
			if c.Name == name {
				return c
			}
		}
		return nil
	}

	t.Run("another browser", func(t *testing.T) {
		cb := legCallback(newBrowser(t, ts.issuer))
		got := newBrowser(t, ts.issuer).get(cb.String())
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "started in another browser") {
			t.Fatalf("status %d\n%s", got.status, got.body)
		}
	})
	t.Run("wrong state", func(t *testing.T) {
		b := newBrowser(t, ts.issuer)
		cb := legCallback(b)
		q := cb.Query()
		q.Set("state", "forged-"+q.Get("state"))
		cb.RawQuery = q.Encode()
		got := b.get(cb.String())
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "does not belong to the sign-in started in this browser") {
			t.Fatalf("status %d\n%s", got.status, got.body)
		}
	})
	t.Run("replay", func(t *testing.T) {
		b := newBrowser(t, ts.issuer)
		cb := legCallback(b)
		leg := cookieOf(b, "gatehouse_upstream")
		if leg == nil {
			t.Fatal("no leg cookie after the start")
		}
		first := b.get(cb.String())
		if first.location == nil {
			t.Fatalf("first callback: status %d\n%s", first.status, first.body)
		}
		if cookieOf(b, "gatehouse_upstream") != nil {
			t.Fatal("the leg cookie outlived its callback")
		}
		// An attacker holding a copy of the cookie and the callback URL.
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(ts.issuer)
		jar.SetCookies(u, []*http.Cookie{{Name: leg.Name, Value: leg.Value, Path: "/"}})
		thief := newBrowser(t, ts.issuer)
		thief.client.Jar = jar
		got := thief.get(cb.String())
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "was already used") {
			t.Fatalf("replay: status %d\n%s", got.status, got.body)
		}
	})
	t.Run("mix-up", func(t *testing.T) {
		b := newBrowser(t, ts.issuer)
		cb := legCallback(b)
		cb.Path = "/upstream/corp/callback"
		got := b.get(cb.String())
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "did not come from the provider you chose") {
			t.Fatalf("status %d\n%s", got.status, got.body)
		}
		if gh.TokenRequests() != 1 { // only the replay subtest's first callback exchanged a code
			t.Fatalf("%d token requests at GitHub, want 1: a refused callback must not exchange its code", gh.TokenRequests())
		}
	})
	t.Run("unknown upstream", func(t *testing.T) {
		if got := newBrowser(t, ts.issuer).get(ts.issuer + "/upstream/nope/start"); got.status != http.StatusNotFound {
			t.Fatalf("status %d", got.status)
		}
	})
}

// Failures at the upstream come back to the sign-in page with the pending
// request intact; the app gets nothing, and the password still works.
func TestUpstreamFailuresReturnToSignIn(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(21, "frank", "frank@example.com", true))
	gh.SetApprover("frank")
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_GITHUB_ALLOWED_ORGS": "acme"}))
	ts.createUser("grace@example.com", "Grace-Passw0rd-1")
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	cases := []struct {
		name   string
		setup  func()
		status int
		text   string
	}{
		{"denied", func() { gh.Deny(true) }, http.StatusForbidden, "was cancelled or not allowed there"},
		{"token endpoint down", func() { gh.Deny(false); gh.FailToken(http.StatusInternalServerError) }, http.StatusServiceUnavailable, "We could not reach GitHub"},
		{"api down", func() { gh.FailToken(0); gh.FailAPI("/user", http.StatusBadGateway) }, http.StatusServiceUnavailable, "We could not reach GitHub"},
		{"not in the org", func() { gh.FailAPI("/user", 0) }, http.StatusForbidden, "not a member of an allowed organisation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			b := newBrowser(t, ts.issuer)
			ar, p := r.signInPage(b)
			got := b.viaGitHub(p)
			if got.status != c.status || !strings.Contains(got.body, c.text) || got.location != nil {
				t.Fatalf("status %d location %v\n%s", got.status, got.location, got.body)
			}
			// The page still carries the app's request: the password works.
			r.codeFrom(ar, b.submit(got, map[string]string{"email": "grace@example.com", "password": "Grace-Passw0rd-1"}))
		})
	}
	// A member of the allowed organisation gets in.
	gh.AddUser(githubtest.User{ID: 21, Login: "frank", Name: "Frank",
		Emails: []githubtest.Email{{Email: "frank@example.com", Primary: true, Verified: true}},
		Orgs:   []githubtest.Org{{Login: "ACME"}}})
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p))
}

// Lockout counts password failures; it does not stop a sign-in through a
// linked upstream, where no password is checked.
func TestUpstreamSignInWhileLocked(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(31, "heidi", "heidi@example.com", true))
	gh.SetApprover("heidi")
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "2"}))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p)) // account created and linked
	ts.cli("Heidi-Passw0rd-1\n", "users", "set-password", "heidi@example.com", "--password-stdin")

	b2 := newBrowser(t, ts.issuer)
	_, p = r.signInPage(b2)
	for range 2 {
		p = b2.submit(p, map[string]string{"email": "heidi@example.com", "password": "wrong-password"})
	}
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "temporarily locked") {
		t.Fatalf("not locked after 2 failures: status %d", p.status)
	}
	b3 := newBrowser(t, ts.issuer)
	ar, p = r.signInPage(b3)
	r.codeFrom(ar, b3.viaGitHub(p))
}

// Federation between two Gatehouse instances: one is an OpenID Connect
// upstream of the other. The upstream's own password sign-in shows in amr
// after "fed"; an unverified address there creates nothing here.
func TestUpstreamFederationBetweenGatehouses(t *testing.T) {
	// The upstream lives on "localhost", the downstream on 127.0.0.1: a
	// browser keeps cookies per host name, not per port, and both use the
	// same cookie names.
	upLn := listenLoopback(t)
	upIssuer := "http://localhost:" + portOf(upLn.Addr().String())
	up := startServerOn(t, upLn, serverVars(t, upIssuer, nil), nil)
	up.createUser("ivan@example.com", "Ivan-Passw0rd-1")
	up.createUser("judy@example.com", "Judy-Passw0rd-1", "--unverified")

	downLn := listenLoopback(t)
	downIssuer := "http://" + downLn.Addr().String()
	peer := up.createClient("--name", "Downstream", "--redirect-uri", downIssuer+"/upstream/peer/callback")
	file := tempFile(t, "upstreams.json", fmt.Sprintf(`{"upstreams":[{"id":"peer","type":"oidc","name":"Peer Gatehouse",
		"issuer":%q,"client_id":%q,"client_secret":%q}]}`, upIssuer, peer.ClientID, peer.ClientSecret))
	down := startServerOn(t, downLn, serverVars(t, downIssuer, map[string]string{"GATEHOUSE_UPSTREAMS_FILE": file}), nil)
	r := newRP(t, down, down.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	// viaPeer signs in at the upstream Gatehouse's own form.
	viaPeer := func(b *browser, p *page, email, password string) *page {
		t.Helper()
		authorize := b.toUpstream(p, "peer")
		ub := &browser{t: t, client: b.client, issuer: upIssuer}
		// The shared jar follows the upstream's redirects, then ours.
		saved := b.client.CheckRedirect
		defer func() { b.client.CheckRedirect = saved }()
		b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), downIssuer+"/") || strings.HasPrefix(req.URL.String(), upIssuer+"/") {
				return nil
			}
			return http.ErrUseLastResponse
		}
		form := ub.get(authorize.String())
		if form.status != http.StatusOK || !strings.Contains(form.body, "Sign in") {
			t.Fatalf("upstream sign-in page: status %d\n%s", form.status, form.body)
		}
		return ub.submit(form, map[string]string{"email": email, "password": password})
	}

	b := newBrowser(t, downIssuer)
	ar, p := r.signInPage(b)
	tok := r.exchange(ar, r.codeFrom(ar, viaPeer(b, p, "ivan@example.com", "Ivan-Passw0rd-1")))
	amr, _ := tok.claims["amr"].([]any)
	if tok.claims["idp"] != "peer" || len(amr) != 2 || amr[0] != "fed" || amr[1] != "pwd" || tok.claims["email"] != "ivan@example.com" || tok.claims["email_verified"] != true {
		t.Fatalf("claims: %v", tok.claims)
	}
	if u := down.users()["ivan@example.com"]; len(u.Linked) != 1 || u.Linked[0].Upstream != "peer" {
		t.Fatalf("downstream account: %+v", u)
	}

	// prompt=login travels on: the upstream's own session (browser b is
	// signed in there) must not answer silently, so its form shows again.
	ar = r.authURL(oauth2.SetAuthURLParam("prompt", "login"))
	p = b.get(ar.url)
	if p.status != http.StatusOK {
		t.Fatalf("prompt=login: status %d", p.status)
	}
	tok = r.exchange(ar, r.codeFrom(ar, viaPeer(b, p, "ivan@example.com", "Ivan-Passw0rd-1")))
	if tok.claims["idp"] != "peer" {
		t.Fatalf("claims after prompt=login: %v", tok.claims)
	}

	b2 := newBrowser(t, downIssuer)
	_, p = r.signInPage(b2)
	got := viaPeer(b2, p, "judy@example.com", "Judy-Passw0rd-1")
	if got.status != http.StatusForbidden || !strings.Contains(got.body, "did not confirm") {
		t.Fatalf("unverified upstream address: status %d\n%s", got.status, got.body)
	}
	if _, ok := down.users()["judy@example.com"]; ok {
		t.Fatal("an account was created from an unverified upstream address")
	}
}

func portOf(hostport string) string {
	return hostport[strings.LastIndex(hostport, ":")+1:]
}

// The account page lists links, connects another account at an upstream
// (while signed in: no email involved) and refuses to disconnect the only
// way to sign in.
func TestUpstreamAccountPage(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(51, "kim", "kim@example.com", true))
	gh.AddUser(octocat(52, "kims-work", "kim@work.example", true))
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	// kim signs up through GitHub: no password.
	gh.SetApprover("kim")
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p))
	acct := b.get(ts.issuer + "/account")
	if elementAttr(t, acct, "linked-github", "id") == "" || !strings.Contains(acct.body, "not set") {
		t.Fatalf("account page:\n%s", acct.body)
	}
	refused := b.submit(formByAction(t, acct, "/account/upstreams/unlink"), map[string]string{})
	if refused.status != http.StatusConflict || !strings.Contains(refused.body, "only way you can sign in") {
		t.Fatalf("unlink of the only method: status %d\n%s", refused.status, refused.body)
	}

	// lee has a password and connects GitHub from the account page.
	ts.createUser("lee@example.com", "Lee-Passw0rd-1")
	b2 := newBrowser(t, ts.issuer)
	r.signIn(b2, "lee@example.com", "Lee-Passw0rd-1")
	acct = b2.get(ts.issuer + "/account")
	connect := elementAttr(t, acct, "connect-github", "href")
	if connect == "" {
		t.Fatalf("no Connect GitHub link:\n%s", acct.body)
	}
	// Without the page's token the link is refused.
	if got := b2.get(ts.issuer + "/upstream/github/start?mode=link"); got.status != http.StatusForbidden {
		t.Fatalf("connect without token: status %d", got.status)
	}
	// kim's GitHub account is taken.
	gh.SetApprover("kim")
	start := b2.get(ts.issuer + connect)
	taken := b2.get(start.location.String())
	if taken.status != http.StatusConflict || !strings.Contains(taken.body, "already connected to another account") {
		t.Fatalf("connect a taken identity: status %d\n%s", taken.status, taken.body)
	}
	gh.SetApprover("kims-work") // a verified email of another address: irrelevant when signed in
	acct = b2.get(ts.issuer + "/account")
	start = b2.get(ts.issuer + elementAttr(t, acct, "connect-github", "href"))
	done := b2.get(start.location.String())
	if done.status != http.StatusOK || !strings.Contains(done.body, "Connected.") || elementAttr(t, done, "linked-github", "id") == "" {
		t.Fatalf("connect: status %d\n%s", done.status, done.body)
	}
	if u := ts.users()["lee@example.com"]; len(u.Linked) != 1 || u.Linked[0].Subject != "52" {
		t.Fatalf("lee: %+v", u)
	}
	// lee has a password: disconnecting is allowed.
	gone := b2.submit(formByAction(t, done, "/account/upstreams/unlink"), map[string]string{})
	if gone.status != http.StatusOK || !strings.Contains(gone.body, "Disconnected.") || len(ts.users()["lee@example.com"].Linked) != 0 {
		t.Fatalf("disconnect: status %d\n%s", gone.status, gone.body)
	}
}

// formByAction returns p with only the form posting to action kept first,
// so browser.submit sends that one.
func formByAction(t *testing.T, p *page, action string) *page {
	t.Helper()
	i := strings.Index(p.body, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form posting to %s on %s:\n%s", action, p.url, p.body)
	}
	start := strings.LastIndex(p.body[:i], "<form")
	cp := *p
	cp.body = p.body[start:]
	return &cp
}

// The CLI lists links and removes one; `upstreams list` prints the callback
// URL to register; a bad upstreams entry stops everything naming the entry
// and the field.
func TestUpstreamCLI(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(61, "mia", "mia@example.com", true))
	gh.SetApprover("mia")
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p))

	out := ts.cli("", "users", "list")
	if !strings.Contains(out, "mia@example.com") || !strings.Contains(out, "linked=github") {
		t.Fatalf("users list:\n%s", out)
	}
	if out := ts.cli("", "users", "unlink", "mia@example.com", "github"); !strings.Contains(out, "unlinked") {
		t.Fatalf("users unlink: %s", out)
	}
	if n := len(ts.users()["mia@example.com"].Linked); n != 0 {
		t.Fatalf("%d links after unlink", n)
	}
	if _, errOut, code := runCLI(ts.getenv, "", "users", "unlink", "mia@example.com", "github"); code == 0 || !strings.Contains(errOut, "no link") {
		t.Fatalf("second unlink: exit %d %s", code, errOut)
	}

	list := ts.cli("", "upstreams", "list")
	if !strings.Contains(list, "callback="+ts.issuer+"/upstream/github/callback") {
		t.Fatalf("upstreams list:\n%s", list)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(ts.cli("", "upstreams", "list", "--json")), &js); err != nil || len(js) != 1 || js[0]["api_url"] != gh.URL+"/api/v3" {
		t.Fatalf("upstreams list --json: %v %v", js, err)
	}
	if strings.Contains(list, ghClientSecret) {
		t.Fatal("upstreams list prints the client secret")
	}

	bad := []struct{ file, want string }{
		{`{"upstreams":[{"id":"corp","type":"oidc","issuer":"http://sso.example.com","client_id":"x","client_secret":"y"}]}`, `upstream "corp": field "issuer"`},
		{`{"upstreams":[{"id":"Corp!","type":"oidc","issuer":"https://sso.example.com","client_id":"x","client_secret":"y"}]}`, `field "id"`},
		{`{"upstreams":[{"id":"corp","type":"oidc","issuer":"https://sso.example.com","client_id":"x"}]}`, `upstream "corp": field "client_secret"`},
		{`{"upstreams":[{"id":"corp","type":"saml","client_id":"x","client_secret":"y"}]}`, `field "type"`},
		{`{"upstreams":[{"id":"corp","type":"oidc","issuer":"https://sso.example.com","client_id":"x","client_secret_env":"NOPE_UNSET"}]}`, `field "client_secret_env"`},
	}
	for _, c := range bad {
		vars := serverVars(t, "http://127.0.0.1:9", map[string]string{"GATEHOUSE_UPSTREAMS_FILE": tempFile(t, "u.json", c.file)})
		_, errOut, code := runCLI(func(k string) string { return vars[k] }, "", "upstreams", "list")
		if code == 0 || !strings.Contains(errOut, "GATEHOUSE_UPSTREAMS_FILE") || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("file %s: exit %d, stderr %q; want one line naming %s", c.file, code, errOut, c.want)
		}
	}
	vars := serverVars(t, "http://127.0.0.1:9", map[string]string{"GATEHOUSE_GITHUB_CLIENT_ID": "x"})
	if _, errOut, code := runCLI(func(k string) string { return vars[k] }, "", "serve"); code == 0 || !strings.Contains(errOut, "GATEHOUSE_GITHUB_CLIENT_SECRET") {
		t.Errorf("GitHub id without secret: exit %d %q", code, errOut)
	}
}

// The per-IP sign-in limit applies to upstream sign-ins (lockout does not:
// see TestUpstreamSignInWhileLocked); the refusal comes before the upstream
// is asked to exchange its code.
func TestUpstreamRateLimitedPerIP(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(71, "nina", "nina@example.com", true))
	gh.SetApprover("nina")
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_RATE_LOGIN_IP": "1/1m"}))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p))

	b2 := newBrowser(t, ts.issuer)
	_, p = r.signInPage(b2)
	got := b2.viaGitHub(p)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" || got.location != nil {
		t.Fatalf("second upstream sign-in from one IP: status %d\n%s", got.status, got.body)
	}
	if n := gh.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests at GitHub, want 1", n)
	}
}
