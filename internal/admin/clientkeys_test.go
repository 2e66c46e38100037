package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// A public Ed25519 key (RFC 8037 A.2) and the same key with its private
// half (RFC 8037 A.1).
const (
	publicJWKS  = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`
	privateJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`
)

// private_key_jwt clients: keys, never a secret; one of jwks and jwks_uri;
// the rules shared by the CLI, the clients file and the API.
func TestClientKeys(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		cc := []string{GrantClientCredentials}
		c, secret, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "svc", AuthMethod: storage.AuthMethodPrivateKeyJWT, GrantTypes: cc, JWKS: json.RawMessage(publicJWKS)})
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" || c.HasSecret || c.AuthMethod != storage.AuthMethodPrivateKeyJWT || !strings.Contains(string(c.JWKS), `"kid":"k1"`) {
			t.Fatalf("created: %+v, secret %q", c, secret)
		}
		_, _, err = f.svc.RotateSecret(f.ctx, admin, "svc", "")
		expectCode(t, "RotateSecret(private_key_jwt)", err, CodeConflict, "")

		for _, tc := range []struct {
			spec  ClientSpec
			field string
		}{
			{ClientSpec{AuthMethod: storage.AuthMethodPrivateKeyJWT, GrantTypes: cc}, "jwks"},
			{ClientSpec{AuthMethod: storage.AuthMethodPrivateKeyJWT, GrantTypes: cc, JWKS: json.RawMessage(privateJWKS)}, "jwks"},
			{ClientSpec{AuthMethod: storage.AuthMethodPrivateKeyJWT, GrantTypes: cc, JWKS: json.RawMessage(publicJWKS), JWKSURI: "https://svc.example/jwks"}, "jwks"},
			{ClientSpec{AuthMethod: storage.AuthMethodPrivateKeyJWT, GrantTypes: cc, JWKSURI: "http://svc.example/jwks"}, "jwks_uri"},
			{ClientSpec{GrantTypes: cc, JWKSURI: "https://svc.example/jwks"}, "jwks"},
			{ClientSpec{Public: true, AuthMethod: storage.AuthMethodPrivateKeyJWT, Type: "spa", RedirectURIs: []string{"https://a.example/cb"}}, "auth_method"},
		} {
			_, _, err := f.svc.CreateClient(f.ctx, admin, tc.spec)
			expectCode(t, fmt.Sprintf("CreateClient(%+v)", tc.spec), err, CodeInvalid, tc.field)
		}

		// Giving a jwks_uri replaces the JWKS, and the other way round.
		uri := "https://svc.example/jwks.json"
		up, err := f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{JWKSURI: &uri}, "")
		if err != nil || up.JWKSURI != uri || up.JWKS != nil {
			t.Fatalf("switch to jwks_uri: %+v %v", up, err)
		}
		doc := json.RawMessage(publicJWKS)
		up, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{JWKS: &doc}, "")
		if err != nil || up.JWKSURI != "" || up.JWKS == nil {
			t.Fatalf("switch back to jwks: %+v %v", up, err)
		}
		// The same keys again change nothing (the stored form is normalised).
		again, err := f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{JWKS: &doc}, "")
		if err != nil || again.Version != up.Version {
			t.Fatalf("same JWKS again: version %s → %s, %v", up.Version, again.Version, err)
		}
		bad := json.RawMessage(privateJWKS)
		_, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{JWKS: &bad}, "")
		expectCode(t, "UpdateClient(private key)", err, CodeInvalid, "jwks")
	})
}
