package main

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestAdminScopeAllowedScopes: gatehouse:admin is issued by client_credentials
// only to a client whose allowed scopes list it; others get invalid_scope, and
// a client with allowed scopes may ask for nothing outside them.
func TestAdminScopeAllowedScopes(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
			other := ts.createClient("--name", "other", "--grant-types", "client_credentials")

			tok := ccToken(t, ts, ops, "gatehouse:admin")
			status, _, m := postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {tok}}, ops.ClientID, ops.ClientSecret)
			if status != 200 || m["active"] != true || m["scope"] != "gatehouse:admin" {
				t.Errorf("introspection of the ops token: %d %v", status, m)
			}
			if _, err := ccConfig(ts, other, "gatehouse:admin").Token(context.Background()); !isOAuthError(err, "invalid_scope") {
				t.Errorf("a client not allowed gatehouse:admin asked for it: %v, want invalid_scope", err)
			}
			// A client without allowed scopes keeps asking for its own API
			// scopes as before; one with a list is held to it.
			ccToken(t, ts, other, "api")
			if _, err := ccConfig(ts, ops, "api").Token(context.Background()); !isOAuthError(err, "invalid_scope") {
				t.Errorf("ops asked for a scope outside its allowed scopes: %v, want invalid_scope", err)
			}

			ts.cli("", "clients", "update", other.ClientID, "--allowed-scopes", "gatehouse:admin,reports:read")
			ts.clock.advance(clientCacheTTL) // the CLI is another process: the server sees it after its client cache
			ccToken(t, ts, other, "gatehouse:admin")
			var list []clientJSON
			mustUnmarshal(t, ts.cli("", "clients", "list", "--json"), &list)
			for _, c := range list {
				if c.ClientID == other.ClientID && !slices.Equal(c.AllowedScopes, []string{"gatehouse:admin", "reports:read"}) {
					t.Errorf("clients list --json after the update: allowed scopes %q", c.AllowedScopes)
				}
			}
			ts.cli("", "clients", "update", other.ClientID, "--allowed-scopes", "")
			ts.clock.advance(clientCacheTTL)
			if _, err := ccConfig(ts, other, "gatehouse:admin").Token(context.Background()); !isOAuthError(err, "invalid_scope") {
				t.Errorf("gatehouse:admin after the allowed scopes were removed: %v, want invalid_scope", err)
			}

			for _, bad := range []string{"openid", "gatehouse:root", "a b", "x,x"} {
				_, errOut, code := runCLI(ts.getenv, "", "clients", "create", "--grant-types", "client_credentials", "--allowed-scopes", bad)
				if code == 0 || !strings.Contains(errOut, "allowed scope") {
					t.Errorf("clients create --allowed-scopes %q: exit %d, %s", bad, code, errOut)
				}
			}
		})
	}
}

// ccConfig is a client_credentials configuration for c. The auth style is
// fixed: x/oauth2 would otherwise retry a refused request with the secret in
// the body and report that attempt's invalid_client instead.
// clientCacheTTL is past op.Config's default ClientCacheTTL (30s).
const clientCacheTTL = 31 * time.Second

func ccConfig(ts *testServer, c createdClient, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: ts.issuer + "/oauth/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
}

// ccToken gets a client_credentials access token for c with scopes.
func ccToken(t *testing.T, ts *testServer, c createdClient, scopes ...string) string {
	t.Helper()
	tok, err := ccConfig(ts, c, scopes...).Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials for %s with %q: %v", c.ClientID, scopes, err)
	}
	return tok.AccessToken
}

func mustUnmarshal(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// TestClientsFileAllowedScopes: allowed_scopes in the clients file reaches
// the store and the token endpoint.
func TestClientsFileAllowedScopes(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	file := tempFile(t, "clients.json", `{"clients":[
		{"id":"ops-file","secret":"`+secret+`","grant_types":["client_credentials"],"allowed_scopes":["gatehouse:admin"]}]}`)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_CLIENTS_FILE": file})
	c, err := ts.app.store.GetClient(context.Background(), "ops-file")
	if err != nil || !slices.Equal(c.AllowedScopes, []string{"gatehouse:admin"}) {
		t.Fatalf("client from the file: %+v, %v", c, err)
	}
	ccToken(t, ts, createdClient{ClientID: "ops-file", ClientSecret: secret}, "gatehouse:admin")
}
