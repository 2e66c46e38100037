package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
	"golang.org/x/oauth2"
)

// Dynamic client registration (RFC 7591) and its management (RFC 7592),
// against the real server on both backends.

// regResponse is an answer of the registration endpoint.
type regResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r regResponse) str(k string) string { s, _ := r.body[k].(string); return s }

// regCall sends method to the registration endpoint path with body (JSON
// unless a string) and bearer token ("" for none).
func regCall(t *testing.T, ts *testServer, method, path, token string, body any) regResponse {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.issuer+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := regResponse{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: status %d, body not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return out
}

// expectError checks a refusal: its status, its RFC error code and, for
// 401, the Bearer challenge.
func expectError(t *testing.T, what string, r regResponse, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Errorf("%s: status %d %v, want %d %s", what, r.status, r.body, status, code)
	}
	if status == http.StatusUnauthorized && !strings.Contains(r.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Errorf("%s: WWW-Authenticate %q", what, r.header.Get("WWW-Authenticate"))
	}
}

// registrationToken creates an initial access token with the CLI.
func registrationToken(t *testing.T, ts *testServer, args ...string) (id, token string) {
	t.Helper()
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	mustUnmarshal(t, ts.cli("", append([]string{"clients", "registration-token", "create", "--json"}, args...)...), &out)
	if out.ID == "" || out.Token == "" {
		t.Fatalf("registration-token create printed no id or token: %+v", out)
	}
	return out.ID, out.Token
}

// webClient is the metadata of a confidential web client.
func webClient(redirect string) map[string]any {
	return map[string]any{"client_name": "Registered App", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}}
}

// auditActorOf is who the audit trail says did action to subject.
func auditActorOf(t *testing.T, ts *testServer, action, subject string) string {
	t.Helper()
	evs, err := ts.app.store.ListAudit(context.Background(), storage.AuditFilter{Subjects: []string{subject}, Actions: []string{action}})
	if err != nil || len(evs) == 0 {
		t.Fatalf("no %s event for %s: %v", action, subject, err)
	}
	return evs[0].Actor
}

func TestClientRegistrationToken(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_CLIENT_REGISTRATION": "token",
				"GATEHOUSE_RATE_CLIENT_REGISTRATION_IP": "1000/1h"})
			ts.createUser("reg@example.com", testPassword)
			if got := discoveryDoc(t, ts)["registration_endpoint"]; got != ts.issuer+"/oauth/register" {
				t.Errorf("discovery registration_endpoint = %v", got)
			}
			t.Run("InitialAccessToken", func(t *testing.T) { testRegistrationNeedsToken(t, ts) })
			t.Run("Metadata", func(t *testing.T) { testRegistrationMetadata(t, ts) })
			t.Run("SignInWithConsent", func(t *testing.T) { testRegisteredClientSignsIn(t, ts) })
			t.Run("Management", func(t *testing.T) { testRegistrationManagement(t, ts) })
			t.Run("READMECurl", func(t *testing.T) { testRegistrationREADMECurl(t, ts) })
			t.Run("SigningAlgorithm", func(t *testing.T) { testRegistrationSigningAlgorithm(t, ts) })
			t.Run("TokenExpiry", func(t *testing.T) { testRegistrationTokenExpiry(t, ts) }) // moves the clock: last
		})
	}
}

func testRegistrationNeedsToken(t *testing.T, ts *testServer) {
	meta := webClient("https://app.example/cb")
	expectError(t, "no token", regCall(t, ts, "POST", "/oauth/register", "", meta), 401, "invalid_token")
	expectError(t, "unknown token", regCall(t, ts, "POST", "/oauth/register", "not-a-token", meta), 401, "invalid_token")

	id, token := registrationToken(t, ts, "--uses", "1")
	r := regCall(t, ts, "POST", "/oauth/register", token, meta)
	if r.status != http.StatusCreated || r.str("client_id") == "" {
		t.Fatalf("register with a token: %d %v", r.status, r.body)
	}
	if got := auditActorOf(t, ts, storage.AuditClientCreated, r.str("client_id")); got != "registration:"+id {
		t.Errorf("client_created actor = %q, want registration:%s", got, id)
	}
	expectError(t, "used-up token", regCall(t, ts, "POST", "/oauth/register", token, meta), 401, "invalid_token")

	// A refused registration costs the token no use.
	_, two := registrationToken(t, ts, "--uses", "1")
	bad := regCall(t, ts, "POST", "/oauth/register", two, map[string]any{"redirect_uris": []string{"http://app.example/cb"}})
	expectError(t, "http redirect off loopback", bad, 400, "invalid_redirect_uri")
	if r := regCall(t, ts, "POST", "/oauth/register", two, meta); r.status != http.StatusCreated {
		t.Errorf("token after a refused registration: %d %v", r.status, r.body)
	}

	// Revoked: refused; list never shows a token.
	rid, revoked := registrationToken(t, ts)
	ts.cli("", "clients", "registration-token", "revoke", rid)
	expectError(t, "revoked token", regCall(t, ts, "POST", "/oauth/register", revoked, meta), 401, "invalid_token")
	list := ts.cli("", "clients", "registration-token", "list", "--json")
	if strings.Contains(list, token) || strings.Contains(list, rid) || !strings.Contains(list, id) {
		t.Errorf("registration-token list: %s", list)
	}
	if got := auditActorOf(t, ts, storage.AuditRegistrationTokenRevoked, rid); got != storage.ActorCLI {
		t.Errorf("revocation actor = %q", got)
	}
}

func testRegistrationMetadata(t *testing.T, ts *testServer) {
	_, token := registrationToken(t, ts)
	cases := []struct {
		name string
		body any
		code string
	}{
		{"not an object", `["https://app.example/cb"]`, "invalid_client_metadata"},
		{"redirect_uris a string", `{"redirect_uris":"https://app.example/cb"}`, "invalid_client_metadata"},
		{"no redirect URI", map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
		{"redirect with fragment", map[string]any{"redirect_uris": []string{"https://app.example/cb#x"}}, "invalid_redirect_uri"},
		{"custom scheme for web", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}, "invalid_redirect_uri"},
		{"post-logout over http", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"post_logout_redirect_uris": []string{"http://app.example/bye"}}, "invalid_redirect_uri"},
		{"implicit response type", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"response_types": []string{"token"}}, "invalid_client_metadata"},
		{"implicit grant", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{"unknown auth method", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"token_endpoint_auth_method": "private_key_jwt_maybe"}, "invalid_client_metadata"},
		{"public client_credentials", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"token_endpoint_auth_method": "none", "grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
		{"unknown application type", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"application_type": "desktop"}, "invalid_client_metadata"},
		{"back-channel over http", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "http://app.example/bc"}, "invalid_client_metadata"},
		{"admin scope", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"scope": "openid gatehouse:admin"}, "invalid_client_metadata"},
		{"another gatehouse scope", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"scope": "gatehouse:users"}, "invalid_client_metadata"},
		// Review of issue 13 (an attacker's look at registration):
		{"admin scope in capitals", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"scope": "GATEHOUSE:admin"}, "invalid_client_metadata"},
		{"back-channel to loopback", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://127.0.0.1:6379/"}, "invalid_client_metadata"},
		{"back-channel to a private address", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://10.0.0.1/bc"}, "invalid_client_metadata"},
		{"back-channel to IPv6 link-local", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://[fe80::1]/bc"}, "invalid_client_metadata"},
		{"back-channel to an internal name", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://metadata.google.internal/bc"}, "invalid_client_metadata"},
		{"back-channel to localhost", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://LOCALHOST./bc"}, "invalid_client_metadata"},
		{"javascript: redirect for a native app", map[string]any{"application_type": "native",
			"redirect_uris": []string{"javascript:alert(document.domain)//"}}, "invalid_redirect_uri"},
		{"data: redirect for a native app", map[string]any{"application_type": "native",
			"redirect_uris": []string{"data:text/html,hi"}}, "invalid_redirect_uri"},
		{"name with a right-to-left override", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"client_name": "Bank\u202eppA"}, "invalid_client_metadata"},
		{"name with a newline", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"client_name": "Bank\nApproved"}, "invalid_client_metadata"},
		{"name too long", map[string]any{"redirect_uris": []string{"https://app.example/cb"},
			"client_name": strings.Repeat("a", 101)}, "invalid_client_metadata"},
		{"too many redirect URIs", map[string]any{"redirect_uris": manyURIs(21)}, "invalid_client_metadata"},
		{"data after the object", `{"redirect_uris":["https://app.example/cb"]} {}`, "invalid_client_metadata"},
	}
	for _, c := range cases {
		expectError(t, c.name, regCall(t, ts, "POST", "/oauth/register", token, c.body), 400, c.code)
	}
	// A back-channel receiver on the public internet is fine.
	if r := regCall(t, ts, "POST", "/oauth/register", token, map[string]any{"redirect_uris": manyURIs(20),
		"client_name": "Ünïcode App ✓", "backchannel_logout_uri": "https://app.example/bc"}); r.status != http.StatusCreated {
		t.Errorf("20 redirect URIs, a Unicode name and a public back-channel URI: %d %v", r.status, r.body)
	}

	// Unknown members are ignored; OpenID Connect scopes need no listing;
	// a native app without a secret is a public native client.
	r := regCall(t, ts, "POST", "/oauth/register", token, map[string]any{
		"redirect_uris": []string{"com.example.app:/cb", "http://127.0.0.1/cb"}, "application_type": "native",
		"token_endpoint_auth_method": "none", "logo_uri": "https://app.example/logo.png", "software_id": "x",
		"scope": "openid email reports:read reports:read",
	})
	if r.status != http.StatusCreated {
		t.Fatalf("native public client: %d %v", r.status, r.body)
	}
	if r.str("client_secret") != "" || r.body["client_secret_expires_at"] != nil || r.str("application_type") != "native" ||
		r.str("token_endpoint_auth_method") != "none" || r.str("scope") != "reports:read" || r.body["logo_uri"] != nil {
		t.Errorf("native public client registered as %v", r.body)
	}
	if g := r.body["grant_types"]; !slices.Equal(toStrings(g), []string{"authorization_code"}) {
		t.Errorf("default grant_types = %v", g)
	}
	// A web app without a secret is a browser app (spa): public, PKCE.
	r = regCall(t, ts, "POST", "/oauth/register", token, map[string]any{
		"redirect_uris": []string{"https://spa.example/cb"}, "token_endpoint_auth_method": "none"})
	if r.status != http.StatusCreated || r.str("application_type") != "web" {
		t.Fatalf("web public client: %d %v", r.status, r.body)
	}
	c, err := ts.app.store.GetClient(context.Background(), r.str("client_id"))
	if err != nil || c.AppType != storage.AppTypeSPA || !c.RequireConsent || len(c.SecretHash) != 0 {
		t.Errorf("web public client stored as %+v (%v)", c, err)
	}
}

func manyURIs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("https://app.example/cb%d", i)
	}
	return out
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// testRegisteredClientSignsIn: a confidential registered client asks the
// user for consent, exchanges a code with its secret (x/oauth2, go-oidc),
// and gets client_credentials tokens.
func testRegisteredClientSignsIn(t *testing.T, ts *testServer) {
	_, token := registrationToken(t, ts)
	r := regCall(t, ts, "POST", "/oauth/register", token, webClient("http://127.0.0.1:9010/cb"))
	if r.status != http.StatusCreated || r.str("client_secret") == "" || r.body["client_secret_expires_at"] != float64(0) {
		t.Fatalf("register: %d %v", r.status, r.body)
	}
	c := createdClient{ClientID: r.str("client_id"), ClientSecret: r.str("client_secret"), RedirectURIs: []string{"http://127.0.0.1:9010/cb"}}
	rp := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar := rp.authURL()
	p := b.submit(b.get(ar.url), map[string]string{"email": "reg@example.com", "password": testPassword})
	if p.location != nil || !strings.Contains(p.body, "Registered App") {
		t.Fatalf("expected the consent page for the registered client, got status %d location %v", p.status, p.location)
	}
	q := rp.callbackParams(b.submit(p, map[string]string{"action": "allow"}))
	tok := rp.exchange(ar, q.Get("code"))
	if tok.idToken.Subject == "" {
		t.Error("no subject in the ID token")
	}
	own := ccToken(t, ts, c)
	if own == "" {
		t.Fatal("client_credentials gave no access token")
	}

	// Review of issue 13: a self-registered client learns nothing from
	// introspection about other clients' tokens, only about its own; an
	// administrator's client (a resource server) still learns about all.
	active := func(token string, as createdClient) bool {
		t.Helper()
		status, _, m := postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {token}}, as.ClientID, as.ClientSecret)
		if status != http.StatusOK {
			t.Fatalf("introspect as %s: %d %v", as.ClientID, status, m)
		}
		return m["active"] == true
	}
	adminApp := ts.createClient("--redirect-uri", "https://rs.example/cb")
	victim := newRP(t, ts, adminApp)
	vb := newBrowser(t, ts.issuer)
	var vtok *oauth2.Token
	{
		ar := victim.authURL()
		vq := victim.callbackParams(vb.submit(vb.get(ar.url), map[string]string{"email": "reg@example.com", "password": testPassword}))
		vtok = victim.exchange(ar, vq.Get("code")).token
	}
	if active(vtok.AccessToken, c) {
		t.Error("a registered client introspected another client's access token as active")
	}
	if !active(own, c) {
		t.Error("a registered client cannot introspect its own access token")
	}
	if !active(vtok.AccessToken, adminApp) || !active(own, adminApp) {
		t.Error("an administrator's confidential client can no longer introspect access tokens")
	}
}

func testRegistrationManagement(t *testing.T, ts *testServer) {
	_, token := registrationToken(t, ts)
	r := regCall(t, ts, "POST", "/oauth/register", token, webClient("https://app.example/cb"))
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %v", r.status, r.body)
	}
	id, secret, rat, uri := r.str("client_id"), r.str("client_secret"), r.str("registration_access_token"), r.str("registration_client_uri")
	if uri != ts.issuer+"/oauth/register/"+id || rat == "" || r.body["client_id_issued_at"] == nil {
		t.Fatalf("registration response: %v", r.body)
	}
	path := "/oauth/register/" + id
	other := regCall(t, ts, "POST", "/oauth/register", token, webClient("https://other.example/cb"))

	// Read: with the token only; never the secret.
	got := regCall(t, ts, "GET", path, rat, nil)
	if got.status != 200 || got.str("client_id") != id || got.str("client_secret") != "" || got.str("client_name") != "Registered App" ||
		got.str("registration_access_token") != rat {
		t.Errorf("GET: %d %v", got.status, got.body)
	}
	expectError(t, "GET without a token", regCall(t, ts, "GET", path, "", nil), 401, "invalid_token")
	expectError(t, "GET with a wrong token", regCall(t, ts, "GET", path, rat+"x", nil), 401, "invalid_token")
	expectError(t, "GET with another client's token", regCall(t, ts, "GET", path, other.str("registration_access_token"), nil), 401, "invalid_token")
	expectError(t, "GET with the initial access token", regCall(t, ts, "GET", path, token, nil), 401, "invalid_token")
	cli := ts.createClient("--redirect-uri", "https://cli.example/cb")
	expectError(t, "GET of a client made on the command line", regCall(t, ts, "GET", "/oauth/register/"+cli.ClientID, rat, nil), 401, "invalid_token")

	// Replace: the whole metadata, client_id must match, a secret given must be the one.
	update := map[string]any{"client_id": id, "client_name": "Renamed", "redirect_uris": []string{"https://app.example/new"},
		"token_endpoint_auth_method": "client_secret_post"}
	bad := with(update, "client_id", "someone-else")
	expectError(t, "PUT for another client_id", regCall(t, ts, "PUT", path, rat, bad), 400, "invalid_client_metadata")
	expectError(t, "PUT with a wrong secret", regCall(t, ts, "PUT", path, rat, with(update, "client_secret", "wrong")), 400, "invalid_client_metadata")
	expectError(t, "PUT to a public client", regCall(t, ts, "PUT", path, rat, with(update, "token_endpoint_auth_method", "none")), 400, "invalid_client_metadata")
	expectError(t, "PUT with the admin scope", regCall(t, ts, "PUT", path, rat, with(update, "scope", "gatehouse:admin")), 400, "invalid_client_metadata")
	expectError(t, "PUT with a wrong token", regCall(t, ts, "PUT", path, "nope", update), 401, "invalid_token")
	put := regCall(t, ts, "PUT", path, rat, with(update, "client_secret", secret))
	if put.status != 200 || put.str("client_name") != "Renamed" || !slices.Equal(toStrings(put.body["redirect_uris"]), []string{"https://app.example/new"}) ||
		put.str("token_endpoint_auth_method") != "client_secret_post" || !slices.Equal(toStrings(put.body["grant_types"]), []string{"authorization_code"}) {
		t.Errorf("PUT: %d %v", put.status, put.body)
	}
	c, err := ts.app.store.GetClient(context.Background(), id)
	if err != nil || c.Name != "Renamed" || !slices.Equal(c.RedirectURIs, []string{"https://app.example/new"}) || !c.RequireConsent {
		t.Errorf("after PUT the client is %+v (%v)", c, err)
	}
	if got := auditActorOf(t, ts, storage.AuditClientUpdated, id); got != "client:"+id {
		t.Errorf("client_updated actor = %q", got)
	}

	// Delete: wrong token refused, then gone with its registration.
	expectError(t, "DELETE with a wrong token", regCall(t, ts, "DELETE", path, other.str("registration_access_token"), nil), 401, "invalid_token")
	if d := regCall(t, ts, "DELETE", path, rat, nil); d.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %v", d.status, d.body)
	}
	if _, err := ts.app.store.GetClient(context.Background(), id); err == nil {
		t.Error("the client is still there after DELETE")
	}
	expectError(t, "GET after DELETE", regCall(t, ts, "GET", path, rat, nil), 401, "invalid_token")
	if got := auditActorOf(t, ts, storage.AuditClientDeleted, id); got != "client:"+id {
		t.Errorf("client_deleted actor = %q", got)
	}
}

// testRegistrationSigningAlgorithm: id_token_signed_response_alg is
// registered, echoed, replaced by an update, and signs the client's ID
// tokens; omitted it is the specification's RS256; an algorithm Gatehouse
// does not sign with is invalid_client_metadata.
func testRegistrationSigningAlgorithm(t *testing.T, ts *testServer) {
	_, token := registrationToken(t, ts)
	stored := func(id string) string {
		t.Helper()
		c, err := ts.app.store.GetClient(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c.IDTokenSignedResponseAlg
	}
	plain := regCall(t, ts, "POST", "/oauth/register", token, webClient("https://plain.example/cb"))
	if plain.status != http.StatusCreated || plain.str("id_token_signed_response_alg") != "RS256" || stored(plain.str("client_id")) != "RS256" {
		t.Errorf("register without an algorithm: %d %v", plain.status, plain.body)
	}
	for _, bad := range []string{"HS256", "none", "ES512"} {
		r := regCall(t, ts, "POST", "/oauth/register", token, with(webClient("https://bad.example/cb"), "id_token_signed_response_alg", bad))
		expectError(t, "register with "+bad, r, http.StatusBadRequest, "invalid_client_metadata")
		if !strings.Contains(r.str("error_description"), "id_token_signed_response_alg") {
			t.Errorf("register with %s: %v", bad, r.body)
		}
	}
	redirect := "http://127.0.0.1:9011/cb"
	r := regCall(t, ts, "POST", "/oauth/register", token, with(webClient(redirect), "id_token_signed_response_alg", "ES256"))
	id := r.str("client_id")
	if r.status != http.StatusCreated || r.str("id_token_signed_response_alg") != "ES256" || stored(id) != "ES256" {
		t.Fatalf("register with ES256: %d %v", r.status, r.body)
	}
	update := map[string]any{"client_id": id, "client_name": "Registered App", "redirect_uris": []string{redirect},
		"id_token_signed_response_alg": "EdDSA"}
	put := regCall(t, ts, "PUT", "/oauth/register/"+id, r.str("registration_access_token"), update)
	if put.status != http.StatusOK || put.str("id_token_signed_response_alg") != "EdDSA" || stored(id) != "EdDSA" {
		t.Fatalf("PUT with EdDSA: %d %v", put.status, put.body)
	}
	c := createdClient{ClientID: id, ClientSecret: r.str("client_secret"), RedirectURIs: []string{redirect}}
	rp := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	ar := rp.authURL()
	consent := b.submit(b.get(ar.url), map[string]string{"email": "reg@example.com", "password": testPassword})
	q := rp.callbackParams(b.submit(consent, map[string]string{"action": "allow"}))
	if h := jwtHeader(t, rp.exchange(ar, q.Get("code")).raw); h["alg"] != "EdDSA" {
		t.Errorf("the registered EdDSA client's ID token: header %v", h)
	}
}

// with is m with k set to v (a copy).
func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

func testRegistrationTokenExpiry(t *testing.T, ts *testServer) {
	_, token := registrationToken(t, ts, "--expires", "1h")
	meta := webClient("https://app.example/cb")
	if r := regCall(t, ts, "POST", "/oauth/register", token, meta); r.status != http.StatusCreated {
		t.Fatalf("fresh token: %d %v", r.status, r.body)
	}
	ts.clock.advance(time.Hour + time.Second)
	expectError(t, "expired token", regCall(t, ts, "POST", "/oauth/register", token, meta), 401, "invalid_token")
	if list := ts.cli("", "clients", "registration-token", "list"); !strings.Contains(list, "expired or used up") {
		t.Errorf("list does not show the expired token as such:\n%s", list)
	}
}

// TestClientRegistrationLoopback: open registration for loopback clients,
// refused with invalid_redirect_uri (400, not 401: the request is fine but
// for its URIs) for any other without a token; a token still allows them.
// Registrations are rate limited per IP.
func TestClientRegistrationLoopback(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_CLIENT_REGISTRATION": "loopback"})
			calls := 0
			reg := func(token string, body any) regResponse {
				calls++
				return regCall(t, ts, "POST", "/oauth/register", token, body)
			}
			for _, uri := range []string{"http://127.0.0.1:8765/cb", "http://localhost/cb", "http://[::1]:9/cb"} {
				r := reg("", map[string]any{"redirect_uris": []string{uri}, "token_endpoint_auth_method": "none",
					"post_logout_redirect_uris": []string{"http://localhost:3000/"}})
				if r.status != http.StatusCreated {
					t.Fatalf("open registration of %s: %d %v", uri, r.status, r.body)
				}
				if got := auditActorOf(t, ts, storage.AuditClientCreated, r.str("client_id")); got != "registration" {
					t.Errorf("actor of an open registration = %q", got)
				}
			}
			open := reg("", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
			for _, c := range []struct {
				name string
				body map[string]any
				code string
			}{
				{"https redirect", map[string]any{"redirect_uris": []string{"https://app.example/cb"}}, "invalid_redirect_uri"},
				{"loopback name that is not loopback", map[string]any{"redirect_uris": []string{"http://localhost.evil.example/cb"}}, "invalid_redirect_uri"},
				{"custom scheme", map[string]any{"redirect_uris": []string{"com.example:/cb"}, "application_type": "native"}, "invalid_redirect_uri"},
				{"https post-logout", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"},
					"post_logout_redirect_uris": []string{"https://app.example/bye"}}, "invalid_redirect_uri"},
				{"https back-channel", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"},
					"backchannel_logout_uri": "https://app.example/bc"}, "invalid_client_metadata"},
				{"client_credentials", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"},
					"grant_types": []string{"authorization_code", "client_credentials"}}, "invalid_client_metadata"},
				// Review of issue 13: a device grant's tokens go to whoever
				// polls, and Gatehouse itself calls a back-channel URI.
				{"device grant", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none",
					"grant_types": []string{"authorization_code", "urn:ietf:params:oauth:grant-type:device_code"}}, "invalid_client_metadata"},
				{"loopback back-channel", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"},
					"backchannel_logout_uri": "http://127.0.0.1:6379/"}, "invalid_client_metadata"},
			} {
				expectError(t, "without a token: "+c.name, reg("", c.body), 400, c.code)
			}
			// An openly registered client stays a loopback one.
			expectError(t, "PUT of an open registration to https", regCall(t, ts, "PUT", "/oauth/register/"+open.str("client_id"),
				open.str("registration_access_token"), map[string]any{"client_id": open.str("client_id"),
					"redirect_uris": []string{"https://app.example/cb"}}), 400, "invalid_redirect_uri")

			_, token := registrationToken(t, ts)
			if r := reg(token, webClient("https://app.example/cb")); r.status != http.StatusCreated {
				t.Errorf("with a token: %d %v", r.status, r.body)
			}
			expectError(t, "bad token", reg("bad", webClient("http://127.0.0.1/cb")), 401, "invalid_token")

			// 20 registrations an hour per IP: the next is 429 with Retry-After.
			for calls < 20 {
				reg("", map[string]any{})
			}
			r := reg("", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.str("error") == "" {
				t.Errorf("registration past the limit: %d %v %v", r.status, r.header, r.body)
			}
		})
	}
}

// TestClientRegistrationOff: by default there is no endpoint and discovery
// names none.
func TestClientRegistrationOff(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			if _, ok := discoveryDoc(t, ts)["registration_endpoint"]; ok {
				t.Error("discovery lists a registration_endpoint while registration is off")
			}
			_, token := registrationToken(t, ts) // tokens can be made ahead of time
			for _, c := range []struct{ method, path string }{{"POST", "/oauth/register"}, {"GET", "/oauth/register/x"}} {
				r := regCall(t, ts, c.method, c.path, token, webClient("http://127.0.0.1/cb"))
				if r.status != http.StatusNotFound || r.str("error") == "" {
					t.Errorf("%s %s while off: %d %v", c.method, c.path, r.status, r.body)
				}
			}
		})
	}
}

// testRegistrationREADMECurl runs the README's curl snippet as it is
// written, with ISSUER and TOKEN set, and checks that it registers a client.
func testRegistrationREADMECurl(t *testing.T, ts *testServer) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Letting tools register clients")
	section, _, _ = strings.Cut(section, "\n## ")
	m := regexp.MustCompile("(?s)```sh\n(curl .*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("README section has no curl snippet")
	}
	_, token := registrationToken(t, ts)
	cmd := exec.Command("bash", "-euc", m[1])
	cmd.Env = append(os.Environ(), "ISSUER="+ts.issuer, "TOKEN="+token)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("README curl snippet: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil || got["client_id"] == nil || got["client_secret"] == nil ||
		got["registration_access_token"] == nil || got["client_name"] != "My tool" {
		t.Fatalf("README curl snippet printed %s (%v)", out, err)
	}
}

// TestRegistrationManagementBudget: wrong registration access tokens for
// a client, however many, do not use up its owner's budget of management
// calls: the budget is per client and address.
func TestRegistrationManagementBudget(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_CLIENT_REGISTRATION": "loopback", "GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1,::1"})
	reg := regCall(t, ts, "POST", "/oauth/register", "", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
	if reg.status != http.StatusCreated {
		t.Fatalf("register: %d %v", reg.status, reg.body)
	}
	get := func(token, from string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.issuer+"/oauth/register/"+reg.str("client_id"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limited := false
	for i := 0; i < 100 && !limited; i++ {
		switch s := get("wrong", "192.0.2.9"); s {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited = true
		default:
			t.Fatalf("guess %d: %d", i, s)
		}
	}
	if !limited {
		t.Fatal("100 wrong registration access tokens an hour from one address were never refused")
	}
	if s := get(reg.str("registration_access_token"), "198.51.100.4"); s != http.StatusOK {
		t.Fatalf("the owner, after someone else guessed from another address: %d, want 200", s)
	}
}
