package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

// FuzzClientsFile: parseClientsFile accepts only a single JSON document, and
// every client it returns is valid (ID pattern, unique IDs, known type, auth
// method and grants, a 32-byte secret hash exactly for confidential clients,
// redirect URIs that registration accepts). Writing the result back as a
// clients file and parsing that gives the same clients: what it accepts is
// already normalised.
func FuzzClientsFile(f *testing.F) {
	for _, s := range []string{
		`{"clients":[{"id":"shop","name":"Shop","secret":"a-long-random-secret-at-least-16-characters","redirect_uris":["https://shop.example.com/cb"],"post_logout_redirect_uris":["https://shop.example.com/"]},{"id":"spa","type":"spa","public":true,"redirect_uris":["https://app.example.com/callback"]}]}`,
		`{"clients":[{"id":"cli","type":"native","public":true,"redirect_uris":["http://127.0.0.1/cb","com.example.app:/oauth"],"access_token":"jwt","require_consent":true}]}`,
		`{"clients":[{"id":"svc","grant_types":["client_credentials"],"secret_sha256":"` + hex.EncodeToString(admin.HashClientSecret("0123456789abcdef")) + `"}]}`,
		`{"clients":[{"id":"app","auth_method":"client_secret_post","secret":"0123456789abcdef","name":"  App  ","redirect_uris":["http://localhost:3000/cb"]}]}`,
		`{"clients":[{"id":"admin","secret":"0123456789abcdef","redirect_uris":["https://admin.example/cb"],"require_mfa":true,"resources":["https://api.example/"]}]}`,
		`{"clients":[]}`, `{}`, `null`, `[]`, ``, `{"clients":null}`,
		`{"clients":[{"id":"x","redirect_uris":["https://a/cb"]}]}`,                                        // no secret
		`{"clients":[{"id":"x","public":true,"redirect_uris":["https://a/cb"]}]} {"clients":[]}`,           // two documents
		`{"clients":[{"id":"x","public":true,"redirect_uris":["https://a/cb"]}]} trailing`,                 // trailing garbage
		`{"clients":[{"id":"x","public":true,"redirect_uris":["https://a/cb"],"colour":"red"}]}`,           // unknown field
		`{"clients":[{"id":"x","public":true,"redirect_uris":["https://a/cb"]},{"id":"x","public":true}]}`, // twice
		`{"clients":[{"ID":"x","Public":true,"Redirect_URIs":["https://a/cb"]}]}`,                          // case-folded keys
		`{"clients":[{"id":"x","public":true,"secret":"0123456789abcdef","redirect_uris":["https://a/cb"]}]}`,
		`{"clients":[{"id":"x","secret":"short","redirect_uris":["https://a/cb"]}]}`,
		`{"clients":[{"id":"x","secret_sha256":"zz","redirect_uris":["https://a/cb"]}]}`,
		`{"clients":[{"id":"-x","public":true,"redirect_uris":["https://a/cb"]}]}`,
		`{"clients":[{"id":"x","public":true,"grant_types":[],"redirect_uris":[]}]}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// The README's example is a seed, and must itself be accepted.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		f.Fatal(err)
	}
	example := regexp.MustCompile("(?s)### Clients file.*?```json\n(.*?)```").FindSubmatch(readme)
	if example == nil {
		f.Fatal("README: no clients file example")
	}
	if _, err := parseClientsFile(example[1], now); err != nil {
		f.Fatalf("README's clients file example: %v", err)
	}
	f.Add(example[1])
	f.Fuzz(func(t *testing.T, b []byte) {
		clients, err := parseClientsFile(b, now)
		if err != nil {
			if clients != nil {
				t.Fatalf("error %v with clients %v", err, clients)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted %q, which is not one JSON document", b)
		}
		seen := map[string]bool{}
		specs := make([]fileClient, 0, len(clients))
		for _, c := range clients {
			checkClient(t, c, now)
			if seen[c.ID] {
				t.Fatalf("client %q returned twice", c.ID)
			}
			seen[c.ID] = true
			specs = append(specs, specOf(c))
		}
		out, err := json.Marshal(clientsFile{Clients: specs})
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseClientsFile(out, now)
		if err != nil {
			t.Fatalf("re-written file %s refused: %v", out, err)
		}
		if len(clients) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, clients) {
			t.Fatalf("re-written file parses differently:\n %+v\n %+v", clients, again)
		}
	})
}

func checkClient(t *testing.T, c *storage.Client, now time.Time) {
	t.Helper()
	switch {
	case !validClientID.MatchString(c.ID):
		t.Fatalf("client id %q", c.ID)
	case c.Name == "" || !c.CreatedAt.Equal(now) || !c.UpdatedAt.Equal(now):
		t.Fatalf("client %q: name %q, times %v %v", c.ID, c.Name, c.CreatedAt, c.UpdatedAt)
	case !slices.Contains([]string{storage.AppTypeWeb, storage.AppTypeNative, storage.AppTypeSPA}, c.AppType):
		t.Fatalf("client %q: type %q", c.ID, c.AppType)
	case !slices.Contains([]string{storage.AccessTokenOpaque, storage.AccessTokenJWT}, c.AccessTokenFormat):
		t.Fatalf("client %q: access token %q", c.ID, c.AccessTokenFormat)
	case len(c.GrantTypes) == 0:
		t.Fatalf("client %q: no grant types", c.ID)
	}
	switch c.AuthMethod {
	case storage.AuthMethodNone:
		if c.SecretHash != nil || slices.Contains(c.GrantTypes, admin.GrantClientCredentials) {
			t.Fatalf("public client %q: secret %x, grants %v", c.ID, c.SecretHash, c.GrantTypes)
		}
	case storage.AuthMethodBasic, storage.AuthMethodPost:
		if len(c.SecretHash) != 32 {
			t.Fatalf("confidential client %q: secret hash %x", c.ID, c.SecretHash)
		}
	default:
		t.Fatalf("client %q: auth method %q", c.ID, c.AuthMethod)
	}
	for _, g := range c.GrantTypes {
		if g != admin.GrantAuthorizationCode && g != admin.GrantRefreshToken && g != admin.GrantClientCredentials {
			t.Fatalf("client %q: grant %q", c.ID, g)
		}
	}
	if slices.Contains(c.GrantTypes, admin.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		t.Fatalf("client %q: code grant without a redirect URI", c.ID)
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		if err := admin.CheckRedirectURI(u, c.AppType); err != nil {
			t.Fatalf("client %q: redirect URI %q: %v", c.ID, u, err)
		}
	}
}

// validClientID is the client ID rule, restated as the fuzz test's oracle.
var validClientID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// specOf writes a client back as the clients file describes it, the secret as
// its hash.
func specOf(c *storage.Client) fileClient {
	s := fileClient{ClientSpec: admin.ClientSpec{
		ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		Type: c.AppType, GrantTypes: c.GrantTypes, AccessToken: c.AccessTokenFormat, RequireConsent: c.RequireConsent,
		RequireMFA: c.RequireMFA, Resources: c.Resources,
	}}
	if c.AuthMethod == storage.AuthMethodNone {
		s.Public = true
	} else {
		s.AuthMethod = c.AuthMethod
		s.SecretSHA256 = hex.EncodeToString(c.SecretHash)
	}
	return s
}
