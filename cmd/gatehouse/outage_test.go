package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// TestDatabaseOutageIsNeverTheClientsFault cuts every connection to
// PostgreSQL (through a proxy, so the shared server keeps running) while a
// relying party holds an unredeemed code, a refresh token and an access
// token. Every endpoint must answer 5xx — never invalid_grant,
// invalid_client or an inactive introspection, which strict clients take as
// "sign the user out" — with a request ID and no database detail. When the
// database is back, the very same code, refresh token and access token work,
// with no restart.
func TestDatabaseOutageIsNeverTheClientsFault(t *testing.T) {
	dbURL, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr()
	ts := startServer(t, "postgres", map[string]string{"DATABASE_URL": dbURL.String()})

	grants := "--grant-types=authorization_code,refresh_token,client_credentials"
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA, grants)
	fresh := ts.createClient("--name", "Never used yet", "--redirect-uri", redirectB, grants)
	ts.createUser("carol@example.com", testPassword)
	r := newRP(t, ts, app)
	b := newBrowser(t, ts.issuer)
	pendingAR, pendingCode := r.signIn(b, "carol@example.com", testPassword) // redeemed after the outage
	ar, code := r.signIn(b, "carol@example.com", testPassword)               // SSO: no form this time
	tok := r.exchange(ar, code).token

	proxy.cut()
	token := ts.issuer + "/oauth/token"
	checkFailure := func(name string, status int, h http.Header, body map[string]any) {
		t.Helper()
		desc := fmt.Sprint(body["error_description"])
		switch {
		case status < 500:
			t.Errorf("%s during the outage: status %d %v, want 5xx", name, status, body)
		case body["error"] != "temporarily_unavailable" && body["error"] != "server_error":
			t.Errorf("%s: error %v, want temporarily_unavailable or server_error", name, body["error"])
		case status == http.StatusServiceUnavailable && h.Get("Retry-After") == "":
			t.Errorf("%s: 503 without Retry-After", name)
		case h.Get("X-Request-Id") == "" || !strings.Contains(desc, h.Get("X-Request-Id")):
			t.Errorf("%s: description %q does not name the request ID %q", name, desc, h.Get("X-Request-Id"))
		}
		for _, leak := range []string{"postgres", "127.0.0.1", dbURL.Port(), "dial", "SELECT", "refresh token", "pool"} {
			if strings.Contains(desc, leak) {
				t.Errorf("%s: description %q leaks %q", name, desc, leak)
			}
		}
	}
	status, h, body := postForm(t, token, url.Values{
		"grant_type": {"authorization_code"}, "code": {pendingCode},
		"redirect_uri": {redirectA}, "code_verifier": {pendingAR.pkceV},
	}, app.ClientID, app.ClientSecret)
	checkFailure("authorization_code", status, h, body)
	status, h, body = postForm(t, token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, app.ClientID, app.ClientSecret)
	checkFailure("refresh_token", status, h, body)
	// A client the server has not cached must not be told its credentials are wrong.
	status, h, body = postForm(t, token, url.Values{"grant_type": {"client_credentials"}}, fresh.ClientID, fresh.ClientSecret)
	checkFailure("client_credentials (uncached client)", status, h, body)
	status, h, body = postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {tok.AccessToken}}, app.ClientID, app.ClientSecret)
	checkFailure("introspection", status, h, body)
	status, h, body = postForm(t, ts.issuer+"/revoke", url.Values{"token": {tok.RefreshToken}}, app.ClientID, app.ClientSecret)
	checkFailure("revocation", status, h, body)
	status, h, body = bearerGet(t, ts.issuer+"/userinfo", tok.AccessToken)
	checkFailure("userinfo", status, h, body)

	// A person on the sign-in page is told to try again (503), with a
	// reference and no detail.
	page := newBrowser(t, ts.issuer).get(r.authURL().url)
	if page.status != http.StatusServiceUnavailable || page.header.Get("Retry-After") == "" ||
		!strings.Contains(page.body, "try again") || !strings.Contains(page.body, "Reference: "+page.header.Get("X-Request-Id")) ||
		strings.Contains(page.body, "postgres") || strings.Contains(page.body, dbURL.Port()) {
		t.Errorf("sign-in page during the outage: %d Retry-After %q\n%s", page.status, page.header.Get("Retry-After"), page.body)
	}
	status, h, body = bearerGet(t, ts.issuer+"/readyz", "")
	if status != http.StatusServiceUnavailable || body["failed"] != "store" || h.Get("Retry-After") == "" {
		t.Errorf("/readyz during the outage: %d %v", status, body)
	}
	if raw := fmt.Sprint(body); strings.Contains(raw, "postgres") || strings.Contains(raw, dbURL.Port()) {
		t.Errorf("/readyz leaks database detail: %s", raw)
	}
	if status, _, _ := bearerGet(t, ts.issuer+"/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200 (liveness only)", status)
	}

	proxy.restore()
	waitReady(t, ts.issuer)
	got := r.exchange(pendingAR, pendingCode) // the code survived the outage unspent
	if got.claims["sub"] == "" {
		t.Error("no sub after the outage")
	}
	next, err := r.refresh(tok.RefreshToken) // so did the refresh token
	if err != nil {
		t.Fatalf("refresh after the outage: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Error("refresh after the outage did not rotate")
	}
	if status, _, body := bearerGet(t, ts.issuer+"/userinfo", tok.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo after the outage: %d %v", status, body)
	}
}

// bearerGet GETs u (with a bearer token unless empty) and decodes the JSON body.
func bearerGet(t *testing.T, u, token string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

// waitReady polls /readyz until it answers 200 (bounded).
func waitReady(t *testing.T, issuer string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if status, _, _ := bearerGet(t, issuer+"/readyz", ""); status == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("/readyz did not recover within 20s")
		case <-tick.C:
		}
	}
}
