package main

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// The issue-13 client settings in the admin console, on every backend,
// through the real forms: each toggle set in the console takes effect at
// the protocol endpoints at once (require PAR refuses a plain /authorize,
// require DPoP a token request without a proof, the device grant opens
// device authorization), private_key_jwt with an inline JWKS or a
// jwks_uri replaces the secret and a switch back makes a new one, and a
// bad JWKS or a mistake in the keys is a friendly form error with what
// was typed kept, never a 500 and never a change.
func TestAdminConsoleClientSecurity(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			ts.createUser("ada@example.com", testPassword)
			ctx := context.Background()

			// A web app created with the new-client page's defaults.
			p := admin.submit(admin.get(ts.issuer+"/admin/clients/new"), map[string]string{"name": "Shop", "redirect_uris": redirectA})
			if p.status != http.StatusCreated {
				t.Fatalf("create client: status %d\n%s", p.status, p.body)
			}
			id, secret := elementText(t, p, "client-id"), elementText(t, p, "client-secret")
			if c, err := ts.app.store.GetClient(ctx, id); err != nil || c.AuthMethod != storage.AuthMethodBasic ||
				strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" || c.RequirePAR || c.RequireDPoP {
				t.Fatalf("client created with the defaults: %+v %v", c, err)
			}
			app := createdClient{ClientID: id, ClientSecret: secret, RedirectURIs: []string{redirectA}}
			settings := func() *page {
				return formContaining(t, admin.get(ts.issuer+"/admin/clients/"+id), `action="/admin/clients/`+id+`"`)
			}
			save := func(what string, fields map[string]string) *page {
				t.Helper()
				p := admin.submit(settings(), fields)
				if p.status != http.StatusOK || !strings.Contains(p.body, "The client was saved.") {
					t.Fatalf("%s: status %d\n%s", what, p.status, p.body)
				}
				return p
			}
			stored := func() *storage.Client {
				t.Helper()
				c, err := ts.app.store.GetClient(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}

			// Require PAR: a plain request is refused, a pushed one signs in.
			p = save("require PAR", map[string]string{"require_par": "true"})
			if !stored().RequirePAR || !strings.Contains(p.body, `id="require_par" name="require_par" type="checkbox" value="true" checked`) {
				t.Fatalf("require PAR not saved or not shown:\n%s", p.body)
			}
			r := newRP(t, ts, app)
			q := r.callbackParams(newBrowser(t, ts.issuer).get(r.authURL().url))
			if q.Get("error") != "invalid_request" || q.Get("error_description") != "pushed authorization request required" {
				t.Fatalf("plain /authorize of a require-PAR client: %v", q)
			}
			ar, uri := pushAuthorization(t, ts, app, nil)
			authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {id}, "request_uri": {uri}}.Encode()
			r.exchange(ar, signInWith(t, r, newBrowser(t, ts.issuer), authURL, ar.state, "ada@example.com", testPassword))
			save("PAR off", map[string]string{"require_par": ""})
			if p := newBrowser(t, ts.issuer).get(r.authURL().url); p.location != nil || p.url.Path != "/login" {
				t.Fatalf("plain /authorize after PAR was switched off: %s location %v", p.url, p.location)
			}

			// Client credentials and DPoP: a token request without a proof
			// is refused, one with a proof gets a bound token.
			cc := url.Values{"grant_type": {"client_credentials"}}
			status, _, body := dpopPost(t, ts, cc, id, secret, "")
			wantOAuthError(t, "client_credentials before the grant was ticked", status, body, http.StatusBadRequest, "unauthorized_client")
			save("client credentials and DPoP", map[string]string{"grant_client_credentials": "true", "require_dpop": "true"})
			if c := stored(); !c.RequireDPoP || strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token client_credentials" {
				t.Fatalf("stored after ticking client credentials and DPoP: %+v", c)
			}
			status, _, body = dpopPost(t, ts, cc, id, secret, "")
			wantOAuthError(t, "a require-DPoP client's token request without a proof", status, body, http.StatusBadRequest, "invalid_dpop_proof")
			key := newDPoPKey(t, jose.ES256)
			tokenProof := func() string { return key.proof(ts, http.MethodPost, ts.issuer+"/oauth/token", proofOpts{}) }
			if status, _, body = dpopPost(t, ts, cc, id, secret, tokenProof()); status != http.StatusOK || body["token_type"] != "DPoP" {
				t.Fatalf("with a proof: %d %v", status, body)
			}

			// The device grant.
			deviceAuth := func(user, pass string) (int, map[string]any) {
				form := url.Values{"scope": {"openid"}}
				if pass == "" {
					form.Set("client_id", user)
					user = ""
				}
				status, _, body := postForm(t, ts.issuer+"/oauth/device_authorization", form, user, pass)
				return status, body
			}
			status, body = deviceAuth(id, secret)
			wantOAuthError(t, "device authorization before the grant was ticked", status, body, http.StatusBadRequest, "unauthorized_client")
			save("device grant", map[string]string{"grant_device_code": "true"})
			if status, body = deviceAuth(id, secret); status != http.StatusOK || body["device_code"] == nil {
				t.Fatalf("device authorization after ticking the grant: %d %v", status, body)
			}
			if p := admin.submit(settings(), map[string]string{"grant_authorization_code": "", "grant_refresh_token": "",
				"grant_client_credentials": "", "grant_device_code": ""}); p.status != http.StatusUnprocessableEntity ||
				!strings.Contains(p.body, "Tick at least one grant type.") || len(stored().GrantTypes) != 4 {
				t.Fatalf("every grant unticked: status %d\n%s", p.status, p.body)
			}

			// private_key_jwt: mistakes first. Each is explained on the
			// form with what was typed kept; nothing changes.
			k1, k2 := newEdKey(t, "k1"), newEdKey(t, "k2")
			privateJWK, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k1.priv, KeyID: "k1"}}})
			if err != nil {
				t.Fatal(err)
			}
			pkjwt := storage.AuthMethodPrivateKeyJWT
			version := stored().Version
			for _, tc := range []struct {
				what   string
				fields map[string]string
				want   string
			}{
				{"no keys", map[string]string{"auth_method": pkjwt}, "needs the client&#39;s public keys"},
				{"a JWKS that is not JSON", map[string]string{"auth_method": pkjwt, "jwks": "my keys, please"}, "JWKS must be a JSON object"},
				{"a private key", map[string]string{"auth_method": pkjwt, "jwks": string(privateJWK)}, "register the public keys only"},
				{"no usable key", map[string]string{"auth_method": pkjwt, "jwks": `{"keys":[]}`}, "no public signing key"},
				{"both a JWKS and a jwks_uri", map[string]string{"auth_method": pkjwt, "jwks": publicJWKS(t, k1), "jwks_uri": "https://shop.example/jwks.json"}, "Give jwks or jwks_uri, not both."},
				{"a jwks_uri over http", map[string]string{"auth_method": pkjwt, "jwks_uri": "http://shop.example/jwks.json"}, "must use https"},
				{"keys for a secret", map[string]string{"jwks_uri": "https://shop.example/jwks.json"}, "are for auth method private_key_jwt"},
			} {
				p := admin.submit(settings(), tc.fields)
				if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `role="alert"`) || !strings.Contains(p.body, tc.want) {
					t.Errorf("%s: status %d, want 422 saying %q\n%s", tc.what, p.status, tc.want, p.body)
				}
				if doc := tc.fields["jwks"]; doc != "" && !strings.Contains(p.body, html.EscapeString(doc)+"</textarea>") {
					t.Errorf("%s: the JWKS typed is not kept on the form", tc.what)
				}
				if uri := tc.fields["jwks_uri"]; uri != "" && !strings.Contains(p.body, `value="`+uri+`"`) {
					t.Errorf("%s: the jwks_uri typed is not kept on the form", tc.what)
				}
				if c := stored(); c.Version != version || c.AuthMethod != storage.AuthMethodBasic {
					t.Errorf("%s changed the client: %+v", tc.what, c)
				}
			}

			// An inline JWKS: the secret is gone, assertions work (with a
			// DPoP proof still, which the client requires).
			save("private_key_jwt with a JWKS", map[string]string{"auth_method": pkjwt, "jwks": publicJWKS(t, k1)})
			if c := stored(); c.AuthMethod != pkjwt || len(c.SecretHash) != 0 || !strings.Contains(c.JWKS, `"kid":"k1"`) {
				t.Fatalf("stored after the switch to private_key_jwt: %+v", c)
			}
			status, _, body = dpopPost(t, ts, cc, id, secret, tokenProof())
			wantOAuthError(t, "the old secret of a private_key_jwt client", status, body, http.StatusUnauthorized, "invalid_client")
			assertion := func(k clientKey) url.Values { return withAssertion(cc, sign(t, k, goodClaims(t, ts, id))) }
			if status, _, body = dpopPost(t, ts, assertion(k1), "", "", tokenProof()); status != http.StatusOK || body["token_type"] != "DPoP" {
				t.Fatalf("an assertion after the switch: %d %v", status, body)
			}
			shown := admin.get(ts.issuer + "/admin/clients/" + id)
			if strings.Contains(shown.body, "/secret\"") || !strings.Contains(shown.body, "&#34;kid&#34;: &#34;k1&#34;") {
				t.Errorf("the page of a private_key_jwt client: a secret action, or its JWKS not shown indented\n%s", shown.body)
			}
			// The JWKS shown goes back as it came: saving changes nothing.
			version = stored().Version
			admin.submit(settings(), nil)
			if v := stored().Version; v != version {
				t.Errorf("saving the page unchanged wrote the client: version %d → %d", version, v)
			}

			// A jwks_uri instead (the JWKS emptied).
			keys := newJWKSServer(t, publicJWKS(t, k2))
			save("a jwks_uri", map[string]string{"jwks": "", "jwks_uri": keys.URL + "/jwks.json"})
			if c := stored(); c.JWKS != "" || c.JWKSURI != keys.URL+"/jwks.json" {
				t.Fatalf("stored after the switch to a jwks_uri: %+v", c)
			}
			if status, _, body = dpopPost(t, ts, assertion(k2), "", "", tokenProof()); status != http.StatusOK {
				t.Fatalf("an assertion with a key from the jwks_uri: %d %v", status, body)
			}
			status, _, body = dpopPost(t, ts, assertion(k1), "", "", tokenProof())
			wantOAuthError(t, "the key of the replaced JWKS", status, body, http.StatusUnauthorized, "invalid_client")

			// Back to a secret: the page shows the new one once; the old
			// secret stays dead.
			p = admin.submit(settings(), map[string]string{"auth_method": storage.AuthMethodBasic, "jwks_uri": ""})
			fresh := elementText(t, p, "client-secret")
			if p.status != http.StatusOK || len(fresh) < 32 || fresh == secret || !strings.Contains(p.body, "authenticates with a secret now") {
				t.Fatalf("switch back to a secret: status %d secret %q\n%s", p.status, fresh, p.body)
			}
			if c := stored(); c.AuthMethod != storage.AuthMethodBasic || c.JWKSURI != "" || len(c.SecretHash) == 0 {
				t.Fatalf("stored after the switch back: %+v", c)
			}
			status, _, body = dpopPost(t, ts, cc, id, secret, tokenProof())
			wantOAuthError(t, "the secret from before private_key_jwt", status, body, http.StatusUnauthorized, "invalid_client")
			if status, _, body = dpopPost(t, ts, cc, id, fresh, tokenProof()); status != http.StatusOK {
				t.Fatalf("the new secret: %d %v", status, body)
			}

			// New clients: a TV app (public, the device grant only, DPoP,
			// no redirect URI) and a service with keys.
			newClient := func(fields map[string]string) *page {
				return admin.submit(admin.get(ts.issuer+"/admin/clients/new"), fields)
			}
			p = newClient(map[string]string{"name": "TV", "type": "native", "auth_method": storage.AuthMethodNone,
				"grant_authorization_code": "", "grant_refresh_token": "", "grant_device_code": "true", "require_dpop": "true"})
			tv := elementText(t, p, "client-id")
			if p.status != http.StatusCreated || elementText(t, p, "client-secret") != "" {
				t.Fatalf("create the TV app: status %d\n%s", p.status, p.body)
			}
			if c, _ := ts.app.store.GetClient(ctx, tv); c.AuthMethod != storage.AuthMethodNone || !c.RequireDPoP ||
				strings.Join(c.GrantTypes, " ") != "urn:ietf:params:oauth:grant-type:device_code" {
				t.Fatalf("stored TV app: %+v", c)
			}
			if strings.Contains(p.body, `id="auth_method"`) {
				t.Error("a public client's page offers an auth method")
			}
			if status, body = deviceAuth(tv, ""); status != http.StatusOK || body["device_code"] == nil {
				t.Fatalf("device authorization by the TV app: %d %v", status, body)
			}

			p = newClient(map[string]string{"name": "Reports", "auth_method": pkjwt, "grant_authorization_code": "",
				"grant_refresh_token": "", "grant_client_credentials": "true", "jwks": string(privateJWK)})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "register the public keys only") ||
				!strings.Contains(p.body, `<option value="private_key_jwt" selected>`) || !strings.Contains(p.body, `value="Reports"`) {
				t.Fatalf("a new client with a private key: status %d\n%s", p.status, p.body)
			}
			p = newClient(map[string]string{"name": "Nothing", "grant_authorization_code": "", "grant_refresh_token": ""})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Tick at least one grant type.") {
				t.Fatalf("a new client without a grant: status %d\n%s", p.status, p.body)
			}
			p = newClient(map[string]string{"name": "Reports", "auth_method": pkjwt, "grant_authorization_code": "",
				"grant_refresh_token": "", "grant_client_credentials": "true", "jwks_uri": keys.URL + "/jwks.json"})
			reports := elementText(t, p, "client-id")
			if p.status != http.StatusCreated || elementText(t, p, "client-secret") != "" {
				t.Fatalf("a new private_key_jwt client: status %d\n%s", p.status, p.body)
			}
			claims := goodClaims(t, ts, reports)
			if status, _, body := tokenWithAssertion(t, ts, sign(t, k2, claims)); status != http.StatusOK {
				t.Fatalf("the new private_key_jwt client's assertion: %d %v", status, body)
			}
		})
	}
}
