package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	gorp "github.com/gatehouse-id/gatehouse/examples/go-rp/rp"
)

// TestGoExampleRP runs the README's Go example app (examples/go-rp) against
// a real server: sign in through the form, claims shown, sign out through
// end_session.
func TestGoExampleRP(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	var app http.Handler = http.NotFoundHandler()
	rpServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer rpServer.Close()
	c := ts.createClient("--name", "Go RP", "--redirect-uri", rpServer.URL+"/callback", "--post-logout-redirect-uri", rpServer.URL+"/")
	ts.createUser("gopher@example.com", testPassword, "--role", "ADMIN")
	a, err := gorp.New(context.Background(), gorp.Config{
		Issuer: ts.issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		RedirectURL: rpServer.URL + "/callback", PostLogoutRedirectURL: rpServer.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	app = a

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(rpServer.URL + "/login")
	if !strings.HasPrefix(resp.Request.URL.String(), ts.issuer+"/login") {
		t.Fatalf("expected the Gatehouse sign-in page, at %s", resp.Request.URL)
	}
	p := &page{status: resp.StatusCode, url: resp.Request.URL, body: body}
	action, form := parseForm(t, p)
	form.Set("email", "gopher@example.com")
	form.Set("password", testPassword)
	target, _ := resp.Request.URL.Parse(action)
	req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.issuer)
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.String() != rpServer.URL+"/" || !strings.Contains(string(b), `<strong id="email">gopher@example.com</strong>`) || !strings.Contains(string(b), `<span id="role">ADMIN</span>`) {
		t.Fatalf("after sign-in at %s:\n%s", resp.Request.URL, b)
	}
	resp, body = get(rpServer.URL + "/logout")
	if resp.Request.URL.String() != rpServer.URL+"/" || !strings.Contains(body, "Sign in with Gatehouse") {
		t.Fatalf("after sign-out at %s:\n%s", resp.Request.URL, body)
	}
	// The Gatehouse session ended too: signing in again shows the form.
	resp, _ = get(rpServer.URL + "/login")
	if u, _ := url.Parse(resp.Request.URL.String()); u.Path != "/login" {
		t.Errorf("after sign-out, sign-in went to %s without a form", resp.Request.URL)
	}
}
