package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
)

// TestBrowserWalkGitHub walks sign-in through an upstream in a real, headless
// Chromium: the example app sends the browser to Gatehouse's sign-in page,
// which offers "Continue with GitHub" (a fake GitHub Enterprise on loopback)
// and a second, OpenID Connect upstream; choosing GitHub and approving there
// creates a passwordless account and lands in the app with an ID token that
// says idp=github and amr fed. The account page lists GitHub and refuses to
// disconnect it (the only way to sign in). Then a user with a password
// connects another GitHub account from the account page, signs in with it
// through the app, and disconnects it again.
func TestBrowserWalkGitHub(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()

	gh := githubtest.New(t, "gh-client-id", "gh-client-secret")
	gh.AddUser(githubtest.User{ID: 583231, Login: "octocat", Name: "The Octocat", Emails: []githubtest.Email{
		{Email: "octocat@example.com", Primary: true, Verified: true, Visibility: "public"},
		{Email: "octo-old@example.net", Verified: false},
	}})
	gh.AddUser(githubtest.User{ID: 108109, Login: "hubot", Name: "Hubot", Emails: []githubtest.Email{
		{Email: "hubot@example.org", Primary: true, Verified: true},
	}})
	gh.SetApprover("") // a chooser page the browser clicks through

	// The second upstream is only there to be listed: an OIDC upstream is
	// discovered when somebody chooses it, so its issuer must never be asked.
	var corpHits atomic.Int32
	corp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		corpHits.Add(1)
		http.Error(w, "not expected", http.StatusTeapot)
	}))
	t.Cleanup(corp.Close)
	upstreamsFile := tempFile(t, "upstreams.json", `{"upstreams": [
		{"id": "corp", "type": "oidc", "name": "Corp SSO", "issuer": "`+corp.URL+`",
		 "client_id": "gatehouse", "client_secret": "corp-secret"}]}`)

	ts := startServer(t, "sqlite", map[string]string{
		"GATEHOUSE_GITHUB_CLIENT_ID":     "gh-client-id",
		"GATEHOUSE_GITHUB_CLIENT_SECRET": "gh-client-secret",
		"GATEHOUSE_GITHUB_URL":           gh.URL,
		"GATEHOUSE_UPSTREAMS_FILE":       upstreamsFile,
	})
	app := newExampleApp(t)
	client := ts.createClient("--name", "Example App",
		"--redirect-uri", app.redirectURI(),
		"--post-logout-redirect-uri", app.postLogoutURI())
	app.configure(t, ts.issuer, client)

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, tab := startBrowser(t, chromium)
	w := &walker{t: t, ctx: tab, shots: shots}
	iss := ts.issuer
	const chooser = "Authorize application" // the fake GitHub's page

	// 1. The sign-in page offers both upstreams under the password form.
	resp := w.open(app.srv.URL + "/")
	w.expectPage(resp, http.StatusOK, app.srv.URL, "Welcome")
	resp = w.clickLink("Sign in with Gatehouse")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.expectText("#upstream-github", "Continue with GitHub")
	w.expectText("#upstream-corp", "Continue with Corp SSO")
	w.shot("signin-upstreams")
	w.shotNarrow("signin-upstreams")

	// 2. GitHub: approve as octocat, whose primary email is verified. No
	// account has that email, so one is created and the app gets a
	// verified user with the default role, signed in through GitHub.
	resp = w.clickLink("Continue with GitHub")
	w.expectPage(resp, http.StatusOK, gh.URL+"/login/oauth/authorize?", chooser)
	resp = w.press("Sign in as octocat")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", "octocat@example.com")
	w.expectText("#name", "The Octocat")
	w.expectText("#verified", "true")
	w.expectText("#role", "USER")
	w.expectText("#idp", "github")
	if amr := strings.Fields(w.text("#amr")); !slices.Contains(amr, "fed") {
		t.Errorf("ID token amr = %q, want it to contain fed", amr)
	}
	if got, want := w.text("#state"), app.latestState(); got != want {
		t.Errorf("app shows state %q, want %q", got, want)
	}
	octocat := findUser(t, ts, "octocat@example.com")
	if octocat.HasPassword || !octocat.EmailVerified || octocat.Role != "USER" ||
		len(octocat.Linked) != 1 || octocat.Linked[0].Upstream != "github" || octocat.Linked[0].Subject != "583231" {
		t.Errorf("account created through GitHub = %+v, want verified USER without password, linked to github 583231", octocat)
	}

	// 3. The account page (same browser, same session) lists GitHub and
	// that no password is set; the other upstream can be connected.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText(".methods li:first-child", "Password not set")
	w.expectText("#linked-github", "GitHub octocat@example.com · last used")
	w.expectText("#connect-corp", "Connect Corp SSO")
	if n := w.count("#connect-github"); n != 0 {
		t.Errorf("the account page offers to connect GitHub, which is linked already")
	}
	// Changing the email or deleting the account asks for the current
	// password, which this account has not: those forms are not offered.
	w.expectText("main", "You sign in without a password.")
	if n := w.count("#em-new, #del-password"); n != 0 {
		t.Errorf("the account page of an account without a password shows %d password-confirmed forms", n)
	}
	w.shot("account-linked")
	w.shotNarrow("account-linked")

	// 4. Disconnecting the only way to sign in is refused, and says why.
	resp = w.press("Disconnect")
	w.expectPage(resp, http.StatusConflict, iss+"/account/upstreams/unlink", "Your account")
	w.expectText("#form-error", "You cannot disconnect GitHub: it is the only way you can sign in.")
	w.expectText("#linked-github", "octocat@example.com")
	w.shot("account-unlink-refused")
	if u := findUser(t, ts, "octocat@example.com"); len(u.Linked) != 1 {
		t.Errorf("after the refused disconnect the account has links %+v, want github", u.Linked)
	}

	// 5. Sign out, then sign in to /account with a password.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	resp = w.press("Sign out")
	w.expectPage(resp, http.StatusOK, iss+"/logout", "Signed out")
	const (
		email    = "grace@example.com"
		password = "Copper-Lantern-57"
	)
	grace := ts.createUser(email, password)
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	w.fill("Email", email)
	w.fill("Password", password)
	resp = w.press("Sign in")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText(".methods li:first-child", "Password set")
	if n := w.count("#pw-current, #em-new, #del-password"); n != 3 {
		t.Errorf("the account page of an account with a password shows %d of its 3 password-confirmed forms", n)
	}
	if n := w.count(".methods li[id^=linked-]"); n != 0 {
		t.Errorf("a new account lists %d linked identities", n)
	}

	// 6. Connect GitHub as hubot, whose email is not the account's: being
	// signed in is the proof here, email plays no part.
	resp = w.clickLink("Connect GitHub")
	w.expectPage(resp, http.StatusOK, gh.URL+"/login/oauth/authorize?", chooser)
	resp = w.press("Sign in as hubot")
	w.expectPage(resp, http.StatusOK, iss+"/account?notice=connected", "Your account")
	w.expectText(".notice", "Connected.")
	w.expectText("#linked-github", "GitHub hubot@example.org · last used never")
	if n := w.count("#connect-github"); n != 0 {
		t.Errorf("after connecting, the account page still offers to connect GitHub")
	}
	w.shot("account-connected")

	// 7. hubot now signs in to grace's account through the app.
	resp = w.press("Sign out")
	w.expectPage(resp, http.StatusOK, iss+"/logout", "Signed out")
	resp = w.open(app.srv.URL + "/login")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	resp = w.clickLink("Continue with GitHub")
	w.expectPage(resp, http.StatusOK, gh.URL+"/login/oauth/authorize?", chooser)
	resp = w.press("Sign in as hubot")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", email)
	w.expectText("#idp", "github")

	// 8. With a password set, disconnecting works and the entry goes.
	resp = w.open(iss + "/account")
	w.expectPage(resp, http.StatusOK, iss+"/account", "Your account")
	w.expectText("#linked-github", "hubot@example.org · last used")
	if got := w.text("#linked-github"); strings.Contains(got, "never") {
		t.Errorf("after signing in with it, the linked entry says %q", got)
	}
	resp = w.press("Disconnect")
	w.expectPage(resp, http.StatusOK, iss+"/account?notice=disconnected", "Your account")
	w.expectText(".notice", "Disconnected.")
	if n := w.count("#linked-github"); n != 0 {
		t.Errorf("after disconnecting, the account page still lists GitHub")
	}
	w.expectText("#connect-github", "Connect GitHub")
	if u := findUser(t, ts, email); u.ID != grace.ID || len(u.Linked) != 0 {
		t.Errorf("after disconnecting, %s has links %+v", email, u.Linked)
	}

	// 9. …and hubot no longer gets in: GitHub answers for an identity no
	// account is linked to, whose email has no account, so a new one is
	// made, not grace's.
	resp = w.press("Sign out")
	w.expectPage(resp, http.StatusOK, iss+"/logout", "Signed out")
	resp = w.open(app.srv.URL + "/login")
	w.expectPage(resp, http.StatusOK, iss+"/login?", "Sign in")
	resp = w.clickLink("Continue with GitHub")
	w.expectPage(resp, http.StatusOK, gh.URL+"/login/oauth/authorize?", chooser)
	resp = w.press("Sign in as hubot")
	w.expectPage(resp, http.StatusOK, app.redirectURI()+"?", "Signed in")
	w.expectText("#email", "hubot@example.org")

	if n := corpHits.Load(); n != 0 {
		t.Errorf("the Corp SSO issuer was asked %d times, though nobody chose it", n)
	}
	t.Logf("GitHub browser walk done in %s; screenshots in %s: %v", time.Since(start).Round(time.Millisecond), shots, w.saved)
}

// findUser returns the user with this email as `users list --json` shows it,
// with linked identities.
func findUser(t *testing.T, ts *testServer, email string) userJSON {
	t.Helper()
	var users []userJSON
	if err := json.Unmarshal([]byte(ts.cli("", "users", "list", "--json")), &users); err != nil {
		t.Fatalf("users list --json: %v", err)
	}
	for _, u := range users {
		if u.Email == email {
			return u
		}
	}
	t.Fatalf("no user %s in %+v", email, users)
	return userJSON{}
}
