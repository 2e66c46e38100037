package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// Per-client signing algorithms (issue 14): every client's ID tokens, JWT
// access tokens and refreshed ID tokens come in the algorithm it registered
// (id_token_signed_response_alg), or the default RS256 for one that chose
// none. Each is checked by go-oidc restricted to that one algorithm (a token
// in any other fails), including at_hash (SHA-512 for EdDSA). JWKS publishes
// an active and a next key of each algorithm, discovery lists them all with
// the default first, Gatehouse's own verifiers (introspection, userinfo)
// accept each, and `keys rotate` rotates every algorithm, keeping each
// previous key published.
func TestPerClientSigningAlgorithm(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ts.createUser("alg@example.com", testPassword)

			var disc struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			getJSONInto(t, ts.issuer+"/.well-known/openid-configuration", &disc)
			if want := []string{"RS256", "ES256", "EdDSA"}; !slices.Equal(disc.Algs, want) {
				t.Fatalf("id_token_signing_alg_values_supported = %v, want %v (the default first)", disc.Algs, want)
			}
			before := publishedKeys(t, ts)
			for _, alg := range disc.Algs {
				if n := len(before.of(alg)); n != 2 {
					t.Errorf("JWKS has %d %s keys, want 2 (active and next): %+v", n, alg, before)
				}
			}
			if ed := before.of("EdDSA"); len(ed) == 0 || ed[0].Kty != "OKP" || ed[0].Crv != "Ed25519" || ed[0].Use != "sig" {
				t.Errorf("EdDSA key in JWKS: %+v, want an OKP Ed25519 signing key", ed)
			}

			ks := oidc.NewRemoteKeySet(context.Background(), ts.issuer+"/keys")
			type app struct {
				alg string
				rp  *rp
			}
			var apps []app
			for _, tc := range []struct{ flag, want string }{{"", "RS256"}, {"ES256", "ES256"}, {"EdDSA", "EdDSA"}} {
				args := []string{"--name", "App " + tc.want, "--redirect-uri", "http://127.0.0.1:9/" + tc.want, "--access-token", "jwt"}
				if tc.flag != "" {
					args = append(args, "--id-token-signing-alg", tc.flag)
				}
				c := ts.createClient(args...)
				r := newRP(t, ts, c)
				r.verifier = r.provider.Verifier(&oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: []string{tc.want}})
				apps = append(apps, app{tc.want, r})

				ar, code := r.signIn(newBrowser(t, ts.issuer), "alg@example.com", testPassword)
				tok := r.exchange(ar, code) // go-oidc for this algorithm only, at_hash included
				active := ts.app.keys.ActiveFor(jose.SignatureAlgorithm(tc.want)).ID
				if h := jwtHeader(t, tok.raw); h["alg"] != tc.want || h["kid"] != active {
					t.Errorf("%s client: ID token header %v, want alg %s kid %s", tc.want, h, tc.want, active)
				}

				// The JWT access token follows the client's algorithm, and
				// Gatehouse's own checks (introspection, userinfo) take it.
				at := tok.token.AccessToken
				if h := jwtHeader(t, at); h["alg"] != tc.want || h["typ"] != "at+jwt" || h["kid"] != active {
					t.Errorf("%s client: access token header %v", tc.want, h)
				}
				if _, err := ks.VerifySignature(context.Background(), at); err != nil {
					t.Errorf("%s client: access token does not verify against JWKS: %v", tc.want, err)
				}
				if got := r.introspect(at); got["active"] != true {
					t.Errorf("%s client: introspection of its access token: %v", tc.want, got)
				}
				if status, _, ui := bearerGet(t, ts.issuer+"/userinfo", at); status != http.StatusOK || ui["sub"] != tok.claims["sub"] {
					t.Errorf("%s client: userinfo with its access token: %d %v", tc.want, status, ui)
				}

				// A refreshed ID token too.
				nt, err := r.refresh(tok.token.RefreshToken)
				if err != nil {
					t.Fatalf("%s client: refresh: %v", tc.want, err)
				}
				if h := jwtHeader(t, r.verify(nt, "").raw); h["alg"] != tc.want {
					t.Errorf("%s client: refreshed ID token alg %v", tc.want, h["alg"])
				}
			}

			// A relying party that expects another algorithm refuses the
			// token: the algorithm really is per client.
			es := apps[1].rp
			strict := es.provider.Verifier(&oidc.Config{ClientID: es.oauth.ClientID, SupportedSigningAlgs: []string{"RS256"}})
			ar, code := es.signIn(newBrowser(t, ts.issuer), "alg@example.com", testPassword)
			tok := es.exchange(ar, code)
			if _, err := strict.Verify(context.Background(), tok.raw); err == nil {
				t.Error("an ES256 client's ID token verified as RS256")
			}

			// keys rotate rotates every algorithm; each previous key stays
			// published, and the next tokens carry the new keys.
			var rotated struct {
				Active     string `json:"active_kid"`
				Previous   string `json:"previous_kid"`
				Algorithms []struct {
					Alg      string `json:"alg"`
					Active   string `json:"active_kid"`
					Previous string `json:"previous_kid"`
				} `json:"algorithms"`
			}
			if err := json.Unmarshal([]byte(ts.cli("", "keys", "rotate", "--json")), &rotated); err != nil {
				t.Fatal(err)
			}
			// The server loads the rotation on its next tick (30 s); now.
			if err := ts.app.keys.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(rotated.Algorithms) != 3 || rotated.Algorithms[0].Alg != "RS256" || rotated.Active != rotated.Algorithms[0].Active {
				t.Fatalf("keys rotate --json: %+v", rotated)
			}
			after := publishedKeys(t, ts)
			for _, r := range rotated.Algorithms {
				kids := after.kids(r.Alg)
				if r.Active == r.Previous || !slices.Contains(kids, r.Active) || !slices.Contains(kids, r.Previous) || len(kids) != 3 {
					t.Errorf("%s after rotation: JWKS %v, rotated %+v; want the new active, the retired one and a new next", r.Alg, kids, r)
				}
				if r.Previous != before.active(r.Alg) {
					t.Errorf("%s: previous %s, want the key active before %s", r.Alg, r.Previous, before.active(r.Alg))
				}
			}
			for i, a := range apps {
				ar, code := a.rp.signIn(newBrowser(t, ts.issuer), "alg@example.com", testPassword)
				if kid := jwtKid(t, a.rp.exchange(ar, code).raw); kid != rotated.Algorithms[i].Active {
					t.Errorf("%s ID token after rotation signed by %s, want %s", a.alg, kid, rotated.Algorithms[i].Active)
				}
			}
		})
	}
}

// Logout tokens follow the client's algorithm, and an id_token_hint in any
// algorithm ends the session at end_session: three apps in one SSO session,
// one per algorithm, each get a logout token in their own when the EdDSA
// app's hint ends it.
func TestSigningAlgorithmLogoutTokens(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ts.createUser("bye@example.com", testPassword)
			b := newBrowser(t, ts.issuer)
			type app struct {
				alg string
				c   createdClient
				rcv *logoutReceiver
				tok tokens
			}
			var apps []app
			for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
				args := []string{"--name", "App " + alg, "--redirect-uri", "http://127.0.0.1:9/" + alg, "--post-logout-redirect-uri", "http://127.0.0.1:9/bye"}
				if alg != "RS256" {
					args = append(args, "--id-token-signing-alg", alg)
				}
				c := ts.createClient(args...)
				rcv := newLogoutReceiver(t, ts.issuer, c.ClientID)
				setBackchannel(t, ts, c.ClientID, rcv.srv.URL+"/backchannel-logout")
				r := newRP(t, ts, c)
				apps = append(apps, app{alg, c, rcv, r.exchange(r.signIn(b, "bye@example.com", testPassword))})
			}
			ed := apps[2]
			if h := jwtHeader(t, ed.tok.raw); h["alg"] != "EdDSA" {
				t.Fatalf("EdDSA app's ID token header %v", h)
			}
			// A valid hint goes straight to the post-logout URI; one
			// Gatehouse could not verify would ask the user to confirm.
			q := url.Values{"id_token_hint": {ed.tok.raw}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"s1"}}
			p := newBrowser(t, ts.issuer).get(ts.issuer + "/end_session?" + q.Encode())
			if p.location == nil || !strings.HasPrefix(p.location.String(), "http://127.0.0.1:9/bye") {
				t.Fatalf("end_session with an EdDSA id_token_hint: status %d location %v", p.status, p.location)
			}
			for _, a := range apps {
				c := a.rcv.next(t)
				if c["_alg"] != a.alg || c["sid"] != a.tok.claims["sid"] {
					t.Errorf("%s app's logout token: %v, want alg %s and sid %v", a.alg, c, a.alg, a.tok.claims["sid"])
				}
			}
		})
	}
}

// jwk is a published key as JWKS shows it.
type jwk struct {
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Use string `json:"use"`
}

type jwkSet []jwk

func (s jwkSet) of(alg string) []jwk {
	var out []jwk
	for _, k := range s {
		if k.Alg == alg {
			out = append(out, k)
		}
	}
	return out
}

func (s jwkSet) kids(alg string) []string {
	var out []string
	for _, k := range s.of(alg) {
		out = append(out, k.Kid)
	}
	return out
}

// active is the kid of alg's first published key: JWKS lists the active
// keys before the others.
func (s jwkSet) active(alg string) string {
	if k := s.of(alg); len(k) > 0 {
		return k[0].Kid
	}
	return ""
}

func publishedKeys(t *testing.T, ts *testServer) jwkSet {
	t.Helper()
	var set struct {
		Keys jwkSet `json:"keys"`
	}
	getJSONInto(t, ts.issuer+"/keys", &set)
	return set.Keys
}

// The setting on every surface, by the one rule (admin.ClientSpec): the
// CLI's --id-token-signing-alg on create and update, the admin API's field
// on POST and PATCH, the console's select; an unknown algorithm is a clear
// error naming the choices, never a change and never a 500.
func TestSigningAlgorithmSettings(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_SIGNING_ALG": "ES256"})
			ctx := context.Background()
			stored := func(id string) string {
				t.Helper()
				c, err := ts.app.store.GetClient(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return c.IDTokenSignedResponseAlg
			}

			// The CLI.
			for _, args := range [][]string{
				{"clients", "create", "--redirect-uri", "https://a.example/cb", "--id-token-signing-alg", "HS256"},
				{"clients", "create", "--redirect-uri", "https://a.example/cb", "--id-token-signing-alg", "none"},
			} {
				out, errOut, code := runCLI(ts.getenv, "", args...)
				if code == 0 || out != "" || !strings.Contains(errOut, "RS256, ES256, EdDSA") {
					t.Errorf("gatehouse %s: exit %d, stdout %q, stderr %q; want a refusal naming the algorithms", strings.Join(args, " "), code, out, errOut)
				}
			}
			c := ts.createClient("--id", "cli-app", "--redirect-uri", "https://a.example/cb", "--id-token-signing-alg", "EdDSA")
			if got := stored(c.ClientID); got != "EdDSA" {
				t.Fatalf("created with EdDSA, stored %q", got)
			}
			if _, errOut, code := runCLI(ts.getenv, "", "clients", "update", "cli-app", "--id-token-signing-alg", "RS512"); code == 0 || !strings.Contains(errOut, "RS512") {
				t.Errorf("update to RS512: exit %d %q", code, errOut)
			}
			ts.cli("", "clients", "update", "cli-app", "--name", "Renamed")
			if got := stored("cli-app"); got != "EdDSA" {
				t.Errorf("an update without the flag changed the algorithm to %q", got)
			}
			var list []map[string]any
			if err := json.Unmarshal([]byte(ts.cli("", "clients", "list", "--json")), &list); err != nil || len(list) != 1 || list[0]["id_token_signed_response_alg"] != "EdDSA" {
				t.Errorf("clients list --json: %v %v", list, err)
			}
			ts.cli("", "clients", "update", "cli-app", "--id-token-signing-alg", "")
			if got := stored("cli-app"); got != "" {
				t.Errorf("update to the default stored %q", got)
			}

			// The admin API.
			tok := adminToken(t, ts)
			r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"api-app","redirect_uris":["https://b.example/cb"],"id_token_signed_response_alg":"HS256"}`)
			wantProblem(t, "POST with HS256", r, 422, "invalid")
			if r.body["field"] != "id_token_signed_response_alg" {
				t.Errorf("POST with HS256: field %v", r.body["field"])
			}
			r = apiCall(t, ts, tok, "POST", "/clients", `{"id":"api-app","redirect_uris":["https://b.example/cb"],"id_token_signed_response_alg":"ES256"}`)
			if r.status != 201 || r.body["id_token_signed_response_alg"] != "ES256" {
				t.Fatalf("POST with ES256: %d %v", r.status, r.body)
			}
			etag := r.header.Get("ETag")
			r = apiCall(t, ts, tok, "PATCH", "/clients/api-app", `{"id_token_signed_response_alg":"es256"}`, "If-Match", etag)
			wantProblem(t, "PATCH with es256", r, 422, "invalid")
			r = apiCall(t, ts, tok, "PATCH", "/clients/api-app", `{"id_token_signed_response_alg":"EdDSA"}`, "If-Match", etag)
			if r.status != 200 || r.body["id_token_signed_response_alg"] != "EdDSA" || stored("api-app") != "EdDSA" {
				t.Fatalf("PATCH to EdDSA: %d %v", r.status, r.body)
			}
			r = apiCall(t, ts, tok, "GET", "/clients/cli-app", "")
			if v, ok := r.body["id_token_signed_response_alg"]; !ok || v != "" {
				t.Errorf("a client on the default: id_token_signed_response_alg %v (present %t), want \"\"", v, ok)
			}

			// The console.
			_, admin, _ := consoleAdmin(t, ts, "admin@example.com")
			newPage := admin.get(ts.issuer + "/admin/clients/new")
			if !strings.Contains(newPage.body, `<option value="" selected>Server default (ES256)</option>`) {
				t.Errorf("the new-client page does not offer the default, named:\n%s", newPage.body)
			}
			p := admin.submit(newPage, map[string]string{"name": "Console app", "redirect_uris": "https://c.example/cb", "id_token_signed_response_alg": "ES256"})
			if p.status != http.StatusCreated {
				t.Fatalf("create in the console: %d\n%s", p.status, p.body)
			}
			id := elementText(t, p, "client-id")
			if got := stored(id); got != "ES256" {
				t.Fatalf("created in the console with ES256, stored %q", got)
			}
			settings := func() *page {
				return formContaining(t, admin.get(ts.issuer+"/admin/clients/"+id), `action="/admin/clients/`+id+`"`)
			}
			if s := settings(); !strings.Contains(s.body, `<option value="ES256" selected>`) {
				t.Errorf("the client page does not show ES256 selected:\n%s", s.body)
			}
			p = admin.submit(settings(), map[string]string{"id_token_signed_response_alg": "HS256"})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `role="alert"`) || !strings.Contains(p.body, "RS256, ES256, EdDSA") {
				t.Errorf("saving HS256 in the console: %d\n%s", p.status, p.body)
			}
			if got := stored(id); got != "ES256" {
				t.Errorf("a refused save changed the algorithm to %q", got)
			}
			p = admin.submit(settings(), map[string]string{"id_token_signed_response_alg": "EdDSA"})
			if p.status != http.StatusOK || stored(id) != "EdDSA" {
				t.Errorf("saving EdDSA in the console: %d, stored %q", p.status, stored(id))
			}
			p = admin.submit(settings(), map[string]string{"id_token_signed_response_alg": ""})
			if p.status != http.StatusOK || stored(id) != "" {
				t.Errorf("saving the default in the console: %d, stored %q", p.status, stored(id))
			}
		})
	}
}

// GATEHOUSE_SIGNING_ALG=EdDSA makes EdDSA the default: discovery lists it
// first, a client without a setting gets EdDSA, one that asked for RS256
// still gets RS256.
func TestSigningAlgorithmEdDSADefault(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_SIGNING_ALG": "EdDSA"})
			ts.createUser("ed@example.com", testPassword)
			var disc struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			getJSONInto(t, ts.issuer+"/.well-known/openid-configuration", &disc)
			if want := []string{"EdDSA", "RS256", "ES256"}; !slices.Equal(disc.Algs, want) {
				t.Fatalf("id_token_signing_alg_values_supported = %v, want %v", disc.Algs, want)
			}
			if keys := publishedKeys(t, ts); len(keys) != 6 || keys[0].Alg != "EdDSA" {
				t.Errorf("JWKS %+v, want 6 keys, the default's active key first", keys)
			}
			for _, tc := range []struct{ flag, want string }{{"", "EdDSA"}, {"RS256", "RS256"}} {
				args := []string{"--redirect-uri", "http://127.0.0.1:9/" + tc.want}
				if tc.flag != "" {
					args = append(args, "--id-token-signing-alg", tc.flag)
				}
				r := newRP(t, ts, ts.createClient(args...)) // go-oidc takes the algorithms from discovery
				tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), "ed@example.com", testPassword))
				if h := jwtHeader(t, tok.raw); h["alg"] != tc.want {
					t.Errorf("client with %q: ID token alg %v, want %s", tc.flag, h["alg"], tc.want)
				}
			}
		})
	}
}
