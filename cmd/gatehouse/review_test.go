package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"
)

// testSpentOnlyWhenRight covers what an attacker's review of the hardening
// found: signing out stops a code not yet redeemed; a refused resource does
// not spend the code; parameter names are case-insensitive to the parser, so
// repeats are counted that way; token parameters are not taken from the URL;
// an answered request's binding cookie is cleared.
func testSpentOnlyWhenRight(t *testing.T, ts *testServer, a createdClient) {
	r := newRP(t, ts, a)
	tokenURL := ts.issuer + "/oauth/token"
	exchange := func(ar authRequest, code string, extra ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectA}, "code_verifier": {ar.pkceV}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Add(extra[i], extra[i+1])
		}
		status, _, m := postForm(t, tokenURL, form, a.ClientID, a.ClientSecret)
		return status, m
	}

	// Signing out also stops a code issued before it.
	b := newBrowser(t, ts.issuer)
	ar, code := r.signIn(b, "alice@example.com", testPassword)
	b.submit(b.get(ts.issuer+"/logout"), nil)
	if status, m := exchange(ar, code); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("code redeemed after sign-out: %d %v", status, m)
	}

	// A resource the client may not ask for is refused before the code is spent.
	b = newBrowser(t, ts.issuer)
	ar, code = r.signIn(b, "alice@example.com", testPassword)
	if status, m := exchange(ar, code, "resource", "https://unregistered.example"); status != http.StatusBadRequest || m["error"] != "invalid_target" {
		t.Errorf("unregistered resource: %d %v", status, m)
	}
	// A repeat spelled in another case is still a repeat.
	if status, m := exchange(ar, code, "CODE", "garbage"); status != http.StatusBadRequest || m["error"] != "invalid_request" {
		t.Errorf("code and CODE: %d %v", status, m)
	}
	// Token parameters in the URL are refused (they would land in access logs).
	q := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectA}, "code_verifier": {ar.pkceV}}
	if status, _, m := postForm(t, tokenURL+"?"+q.Encode(), url.Values{}, a.ClientID, a.ClientSecret); status != http.StatusBadRequest || m["error"] != "invalid_request" {
		t.Errorf("token request in the URL: %d %v", status, m)
	}
	if status, m := exchange(ar, code); status != http.StatusOK {
		t.Errorf("the code was spent by refused requests: %d %v", status, m)
	}

	// state and STATE at /authorize: refused, neither echoed.
	u, _ := url.Parse(r.authURL().url)
	u.RawQuery += "&STATE=smuggled"
	if q := r.callbackParams(b.get(u.String())); q.Get("error") != "invalid_request" || q.Has("state") {
		t.Errorf("state and STATE: %v", q)
	}

	// An answered request leaves no binding cookie behind (prompt=none
	// without a session is answered at once).
	fresh := newBrowser(t, ts.issuer)
	for range 3 {
		r.callbackParams(fresh.get(r.authURL(oauth2.SetAuthURLParam("prompt", "none")).url))
	}
	iss, _ := url.Parse(ts.issuer)
	for _, c := range fresh.client.Jar.Cookies(iss) {
		if strings.HasPrefix(c.Name, "gatehouse_ar_") {
			t.Errorf("binding cookie %s left after the request was answered", c.Name)
		}
	}
}

// TestFailedRedemptionCanBeRetried: when storing the tokens fails after the
// code was marked used (here a trigger makes every grant, or every refresh
// token, insert fail), the
// client gets a 5xx, and its retry once the store works gets the tokens —
// not invalid_grant, which would sign the user out.
func TestFailedRedemptionCanBeRetried(t *testing.T) {
	// grants: the first write of a redemption; refresh_tokens: the last one
	// (the grant and its first refresh token are one transaction).
	for _, table := range []string{"grants", "refresh_tokens"} {
		t.Run(table, func(t *testing.T) { testFailedRedemptionRetried(t, table) })
	}
}

func testFailedRedemptionRetried(t *testing.T, table string) {
	ts := startServer(t, "postgres", nil)
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ts.createUser("erin@example.com", testPassword)
	r := newRP(t, ts, app)
	ar, code := r.signIn(newBrowser(t, ts.issuer), "erin@example.com", testPassword)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ts.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`CREATE FUNCTION refuse_grants() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'grants refused by the test'; END $$`,
		`CREATE TRIGGER refuse_grants BEFORE INSERT ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION refuse_grants()`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectA}, "code_verifier": {ar.pkceV}}
	status, _, m := postForm(t, ts.issuer+"/oauth/token", form, app.ClientID, app.ClientSecret)
	if status < 500 || strings.Contains(fmt.Sprint(m), "refused by the test") {
		t.Fatalf("token request while grants cannot be stored: %d %v, want a 5xx without detail", status, m)
	}
	if _, err := conn.Exec(ctx, `DROP TRIGGER refuse_grants ON `+table); err != nil {
		t.Fatal(err)
	}
	tok := r.exchange(ar, code) // the retry succeeds
	if tok.token.AccessToken == "" {
		t.Fatal("no access token on retry")
	}
	// And the code is single-use again from here on: a replay is refused
	// and revokes what it issued.
	status, _, m = postForm(t, ts.issuer+"/oauth/token", form, app.ClientID, app.ClientSecret)
	if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("replay after the successful retry: %d %v", status, m)
	}
	if got := r.introspect(tok.token.AccessToken); got["active"] != false {
		t.Errorf("the replay did not revoke the tokens: %v", got)
	}
}

// testPagesHaveAWayOn: the issuer's home page and the pages of a sign-in
// that cannot start carry the product's header and a way on — to the
// account when signed in, else to sign in.
func testPagesHaveAWayOn(t *testing.T, ts *testServer, a createdClient) {
	b := newBrowser(t, ts.issuer)
	check := func(name string, p *page, wantStatus int, wantLink string) {
		t.Helper()
		if p.status != wantStatus || !strings.Contains(p.body, `class="brand"`) || !strings.Contains(p.body, wantLink) {
			t.Errorf("%s: status %d, want %d with the header and a link to %s:\n%s", name, p.status, wantStatus, wantLink, p.body)
		}
	}
	unknown := ts.issuer + "/authorize?client_id=nope&redirect_uri=" + url.QueryEscape(redirectA)
	check("home, signed out", b.get(ts.issuer+"/"), http.StatusOK, `href="/login?return=%2Faccount"`)
	check("authorize error, signed out", b.get(unknown), http.StatusBadRequest, `href="/login?return=%2Faccount"`)
	newRP(t, ts, a).signIn(b, "alice@example.com", testPassword)
	check("home, signed in", b.get(ts.issuer+"/"), http.StatusOK, `href="/account"`)
	check("authorize error, signed in", b.get(unknown), http.StatusBadRequest, `href="/account"`)
	check("expired sign-in link, signed in", b.get(ts.issuer+"/login?authRequestID=gone"), http.StatusBadRequest, `href="/account"`)
}
