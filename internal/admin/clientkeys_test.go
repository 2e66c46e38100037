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

// Switching a confidential client's auth method: to private_key_jwt needs
// keys and drops the secret, so switching back cannot revive it; away from
// it drops the keys and leaves no secret until one is rotated in. A public
// client stays public.
func TestClientAuthMethodSwitch(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		cc := []string{GrantClientCredentials}
		c, oldSecret, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "svc", GrantTypes: cc})
		if err != nil || oldSecret == "" {
			t.Fatalf("create: %+v %q %v", c, oldSecret, err)
		}
		pkjwt, basic, post, none := storage.AuthMethodPrivateKeyJWT, storage.AuthMethodBasic, storage.AuthMethodPost, storage.AuthMethodNone
		_, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{AuthMethod: &pkjwt}, "")
		expectCode(t, "switch to private_key_jwt without keys", err, CodeInvalid, "jwks")

		uri := "https://svc.example/jwks.json"
		up, err := f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{AuthMethod: &pkjwt, JWKSURI: &uri}, "")
		if err != nil || up.AuthMethod != pkjwt || up.HasSecret || up.JWKSURI != uri {
			t.Fatalf("switch to private_key_jwt: %+v %v", up, err)
		}
		if st, _ := f.store.GetClient(f.ctx, "svc"); len(st.SecretHash) != 0 {
			t.Fatalf("a private_key_jwt client keeps its old secret hash %x", st.SecretHash)
		}

		// Back to a secret: the keys go, no secret until one is rotated in.
		up, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{AuthMethod: &post}, "")
		if err != nil || up.AuthMethod != post || up.HasSecret || up.JWKSURI != "" || up.JWKS != nil {
			t.Fatalf("switch to client_secret_post: %+v %v", up, err)
		}
		_, secret, err := f.svc.RotateSecret(f.ctx, admin, "svc", up.Version)
		if err != nil || secret == "" || secret == oldSecret {
			t.Fatalf("rotate after the switch: %q %v", secret, err)
		}

		// With an inline JWKS, and away again: the keys given explicitly
		// as nothing are removed too.
		doc := json.RawMessage(publicJWKS)
		if up, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{AuthMethod: &pkjwt, JWKS: &doc}, ""); err != nil || up.JWKS == nil {
			t.Fatalf("switch to private_key_jwt with a JWKS: %+v %v", up, err)
		}
		emptyDoc, emptyURI := json.RawMessage(""), ""
		if up, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{AuthMethod: &basic, JWKS: &emptyDoc, JWKSURI: &emptyURI}, ""); err != nil || up.JWKS != nil || up.HasSecret {
			t.Fatalf("switch to client_secret_basic clearing the keys: %+v %v", up, err)
		}
		// Keys on a secret method are refused by the usual rule.
		_, err = f.svc.UpdateClient(f.ctx, admin, "svc", ClientUpdate{JWKS: &doc}, "")
		expectCode(t, "a JWKS on client_secret_basic", err, CodeInvalid, "jwks")

		if _, _, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "spa", Type: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"}}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.UpdateClient(f.ctx, admin, "spa", ClientUpdate{AuthMethod: &basic}, "")
		expectCode(t, "a public client given a secret method", err, CodeInvalid, "auth_method")
		_, err = f.svc.UpdateClient(f.ctx, admin, "spa", ClientUpdate{AuthMethod: &none}, "")
		if err != nil {
			t.Errorf("a public client given none (no change): %v", err)
		}
	})
}
