package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestPushedAuthorizationRequests drives RFC 9126 by hand (x/oauth2 has no
// PAR): push, sign in through the real pages with only client_id and
// request_uri in the browser, redeem the code with x/oauth2; and every way a
// request_uri or a push is refused, on every backend.
func TestPushedAuthorizationRequests(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			other := ts.createClient("--name", "Other", "--redirect-uri", redirectB)
			strict := ts.createClient("--name", "Strict", "--redirect-uri", redirectA, "--require-par")
			public := ts.createClient("--name", "SPA", "--type", "spa", "--public", "--redirect-uri", redirectB)
			ts.createUser("par@example.com", "Correct-Horse-9")

			t.Run("discovery", func(t *testing.T) {
				doc := discoveryDoc(t, ts)
				if doc["pushed_authorization_request_endpoint"] != ts.issuer+"/oauth/par" {
					t.Errorf("pushed_authorization_request_endpoint = %v", doc["pushed_authorization_request_endpoint"])
				}
				if doc["require_pushed_authorization_requests"] != false {
					t.Errorf("require_pushed_authorization_requests = %v, want false", doc["require_pushed_authorization_requests"])
				}
			})
			t.Run("sign in, then the request_uri is spent", func(t *testing.T) {
				r := newRP(t, ts, app)
				ar, uri := pushAuthorization(t, ts, app, nil)
				b := newBrowser(t, ts.issuer)
				// Front-channel parameters other than client_id and request_uri
				// are ignored (RFC 9101 §6.3): the pushed state comes back.
				authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {app.ClientID}, "request_uri": {uri}, "state": {"front"}}.Encode()
				code := signInWith(t, r, b, authURL, ar.state, "par@example.com", "Correct-Horse-9")
				tok := r.exchange(ar, code)
				if tok.claims["email"] != "par@example.com" {
					t.Errorf("email claim = %v", tok.claims["email"])
				}

				// Replayed: an error page, no redirect (the browser named no redirect_uri)...
				p := newBrowser(t, ts.issuer).get(authURL)
				if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "expired or was already used") {
					t.Fatalf("replayed request_uri: status %d location %v\n%s", p.status, p.location, p.body)
				}
				// ...or invalid_request_uri to a registered redirect_uri it did name.
				p = newBrowser(t, ts.issuer).get(authURL + "&" + url.Values{"redirect_uri": {redirectA}}.Encode())
				q := r.callbackParams(p)
				if q.Get("error") != "invalid_request_uri" || q.Get("state") != "front" {
					t.Fatalf("replay with a redirect_uri: %v, want error=invalid_request_uri state=front", q)
				}
			})
			t.Run("expired request_uri refused", func(t *testing.T) {
				_, uri := pushAuthorization(t, ts, app, nil)
				ts.clock.advance(61 * time.Second)
				p := newBrowser(t, ts.issuer).get(ts.issuer + "/authorize?" + url.Values{"client_id": {app.ClientID}, "request_uri": {uri}}.Encode())
				if p.status != http.StatusBadRequest || !strings.Contains(p.body, "expired or was already used") {
					t.Fatalf("expired request_uri: status %d\n%s", p.status, p.body)
				}
			})
			t.Run("another client's request_uri refused and not spent", func(t *testing.T) {
				ar, uri := pushAuthorization(t, ts, app, nil)
				p := newBrowser(t, ts.issuer).get(ts.issuer + "/authorize?" + url.Values{"client_id": {other.ClientID}, "request_uri": {uri}}.Encode())
				if p.status != http.StatusBadRequest || !strings.Contains(p.body, "expired or was already used") {
					t.Fatalf("request_uri under another client_id: status %d\n%s", p.status, p.body)
				}
				authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {app.ClientID}, "request_uri": {uri}}.Encode()
				signInWith(t, newRP(t, ts, app), newBrowser(t, ts.issuer), authURL, ar.state, "par@example.com", "Correct-Horse-9")
			})
			t.Run("require-par", func(t *testing.T) {
				r := newRP(t, ts, strict)
				p := newBrowser(t, ts.issuer).get(r.authURL().url)
				q := r.callbackParams(p)
				if q.Get("error") != "invalid_request" || q.Get("error_description") != "pushed authorization request required" {
					t.Fatalf("plain request of a client that requires PAR: %v", q)
				}
				ar, uri := pushAuthorization(t, ts, strict, nil)
				authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {strict.ClientID}, "request_uri": {uri}}.Encode()
				r.exchange(ar, signInWith(t, r, newBrowser(t, ts.issuer), authURL, ar.state, "par@example.com", "Correct-Horse-9"))

				var listed []map[string]any
				if err := json.Unmarshal([]byte(ts.cli("", "clients", "list", "--json")), &listed); err != nil {
					t.Fatal(err)
				}
				for _, c := range listed {
					if want := c["client_id"] == strict.ClientID; (c["require_par"] == true) != want {
						t.Errorf("clients list: %v has require_par %v", c["client_id"], c["require_par"])
					}
				}
			})
			t.Run("public client pushes with client_id only", func(t *testing.T) {
				pushAuthorization(t, ts, public, nil)
			})
			t.Run("refused pushes", func(t *testing.T) {
				base := func() url.Values { return parParams(app, newPKCE()) }
				with := func(k, v string) url.Values {
					f := base()
					if v == "" {
						f.Del(k)
					} else {
						f.Set(k, v)
					}
					return f
				}
				cases := []struct {
					name           string
					form           url.Values
					user, password string
					status         int
					code           string
				}{
					{"wrong secret", base(), app.ClientID, "wrong", http.StatusUnauthorized, "invalid_client"},
					{"no client authentication", base(), "", "", http.StatusUnauthorized, "invalid_client"},
					{"another client's secret", base(), app.ClientID, other.ClientSecret, http.StatusUnauthorized, "invalid_client"},
					{"client_id of another client", with("client_id", other.ClientID), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_request"},
					{"unregistered redirect_uri", with("redirect_uri", redirectB), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_request"},
					{"no redirect_uri", with("redirect_uri", ""), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_request"},
					{"no openid scope", with("scope", "email"), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_scope"},
					{"unsupported response_type", with("response_type", "token"), app.ClientID, app.ClientSecret, http.StatusBadRequest, "unsupported_response_type"},
					{"plain PKCE", with("code_challenge_method", "plain"), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_request"},
					{"request_uri pushed", with("request_uri", "urn:ietf:params:oauth:request_uri:x"), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_request"},
					{"unregistered resource", with("resource", "https://api.example/"), app.ClientID, app.ClientSecret, http.StatusBadRequest, "invalid_target"},
					{"public client without PKCE", with("code_challenge", ""), "", "", http.StatusBadRequest, "invalid_request"},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						form := tc.form
						if tc.name == "public client without PKCE" {
							form = parParams(public, pkce{})
						}
						status, h, body := postForm(t, ts.issuer+"/oauth/par", form, tc.user, tc.password)
						if status != tc.status || body["error"] != tc.code {
							t.Fatalf("status %d %v, want %d %s", status, body, tc.status, tc.code)
						}
						if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
							t.Error("401 without WWW-Authenticate")
						}
					})
				}
				resp, err := http.Get(ts.issuer + "/oauth/par")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("GET /oauth/par: status %d, want 405", resp.StatusCode)
				}
			})
		})
	}
}

// TestRequirePARSetting: GATEHOUSE_REQUIRE_PAR makes every client push, and
// discovery says so.
func TestRequirePARSetting(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_REQUIRE_PAR": "true"})
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			ts.createUser("par@example.com", "Correct-Horse-9")
			if doc := discoveryDoc(t, ts); doc["require_pushed_authorization_requests"] != true {
				t.Errorf("require_pushed_authorization_requests = %v, want true", doc["require_pushed_authorization_requests"])
			}
			r := newRP(t, ts, app)
			q := r.callbackParams(newBrowser(t, ts.issuer).get(r.authURL().url))
			if q.Get("error") != "invalid_request" || q.Get("error_description") != "pushed authorization request required" {
				t.Fatalf("plain request with GATEHOUSE_REQUIRE_PAR: %v", q)
			}
			ar, uri := pushAuthorization(t, ts, app, nil)
			authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {app.ClientID}, "request_uri": {uri}}.Encode()
			r.exchange(ar, signInWith(t, r, newBrowser(t, ts.issuer), authURL, ar.state, "par@example.com", "Correct-Horse-9"))
		})
	}
}

// TestRequirePKCESetting: with GATEHOUSE_REQUIRE_PKCE a confidential
// client, too, must send a PKCE challenge, at /authorize and when pushing.
func TestRequirePKCESetting(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_REQUIRE_PKCE": "true"})
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ts.createUser("pkce@example.com", "Correct-Horse-9")
	r := newRP(t, ts, app)
	plain := parParams(app, pkce{verifier: "x"})
	q := r.callbackParams(newBrowser(t, ts.issuer).get(ts.issuer + "/authorize?" + plain.Encode()))
	if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "PKCE") {
		t.Fatalf("a confidential client without PKCE: %v, want invalid_request naming PKCE", q)
	}
	if status, _, body := postForm(t, ts.issuer+"/oauth/par", plain, app.ClientID, app.ClientSecret); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("a push without PKCE: %d %v", status, body)
	}
	ar, code := r.signIn(newBrowser(t, ts.issuer), "pkce@example.com", "Correct-Horse-9") // x/oauth2 with S256
	r.exchange(ar, code)
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := oauth2.GenerateVerifier()
	return pkce{v, oauth2.S256ChallengeFromVerifier(v)}
}

// parParams is a valid authorization request of client c (PKCE when given).
func parParams(c createdClient, pk pkce) url.Values {
	f := url.Values{
		"client_id": {c.ClientID}, "response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]},
		"scope": {"openid email"}, "state": {"st-" + pk.verifier[:min(8, len(pk.verifier))]}, "nonce": {"n-" + pk.challenge},
	}
	if pk.challenge != "" {
		f.Set("code_challenge", pk.challenge)
		f.Set("code_challenge_method", "S256")
	}
	return f
}

// pushAuthorization pushes a valid request of c (Basic auth for a
// confidential client, client_id alone for a public one), with extra
// parameters set, and checks the 201 answer.
func pushAuthorization(t *testing.T, ts *testServer, c createdClient, extra url.Values) (authRequest, string) {
	t.Helper()
	pk := newPKCE()
	form := parParams(c, pk)
	form.Set("state", randomString(t))
	form.Set("nonce", randomString(t))
	for k, v := range extra {
		form[k] = v
	}
	user, pass := c.ClientID, c.ClientSecret
	if pass == "" {
		user = ""
	}
	status, h, body := postForm(t, ts.issuer+"/oauth/par", form, user, pass)
	if status != http.StatusCreated {
		t.Fatalf("push: status %d %v", status, body)
	}
	uri, _ := body["request_uri"].(string)
	if !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || len(uri) < 60 {
		t.Fatalf("request_uri = %q", uri)
	}
	if body["expires_in"] != float64(60) {
		t.Errorf("expires_in = %v, want 60", body["expires_in"])
	}
	if !strings.Contains(h.Get("Cache-Control"), "no-store") {
		t.Errorf("Cache-Control = %q, want no-store", h.Get("Cache-Control"))
	}
	return authRequest{state: form.Get("state"), nonce: form.Get("nonce"), pkceV: pk.verifier}, uri
}

// signInWith opens authURL, signs in on the real form and returns the code;
// the response must carry wantState.
func signInWith(t *testing.T, r *rp, b *browser, authURL, wantState, email, password string) string {
	t.Helper()
	p := b.get(authURL)
	if p.location == nil {
		if !strings.Contains(p.body, "Sign in") {
			t.Fatalf("expected the sign-in form, got status %d:\n%s", p.status, p.body)
		}
		p = b.submit(p, map[string]string{"email": email, "password": password})
	}
	q := r.callbackParams(p)
	if q.Get("error") != "" || q.Get("state") != wantState || q.Get("code") == "" {
		t.Fatalf("authorization response %v, want a code and state %q", q, wantState)
	}
	return q.Get("code")
}

func discoveryDoc(t *testing.T, ts *testServer) map[string]any {
	t.Helper()
	resp, err := http.Get(ts.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestPublicClientBudgets: the per-client rate limits of the PAR and
// device authorization endpoints cannot be spent by someone who merely
// names a public client's client_id (which anyone can read): a public
// client's budget is per client and address, while a confidential
// client's, spent only after it authenticates, is its own.
func TestPublicClientBudgets(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1,::1"})
			spa := ts.createClient("--type", "spa", "--public", "--redirect-uri", redirectB)
			tv := ts.createClient("--public", "--grant-types", "device_code")
			post := func(path string, form url.Values, from string) int {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, ts.issuer+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", from)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}

			t.Run("PAR", func(t *testing.T) {
				push := func(from string) int { return post("/oauth/par", parParams(spa, newPKCE()), from) }
				// 300 a minute, refilled as time passes: push until refused.
				limited := false
				for i := 0; i < 400 && !limited; i++ {
					switch s := push("192.0.2.1"); s {
					case http.StatusCreated:
					case http.StatusTooManyRequests:
						limited = i >= 300
						if !limited {
							t.Fatalf("refused after %d pushes, want 300", i)
						}
					default:
						t.Fatalf("push %d from one address: %d", i, s)
					}
				}
				if !limited {
					t.Fatal("400 pushes a minute from one address were never refused")
				}
				if s := push("198.51.100.7"); s != http.StatusCreated {
					t.Fatalf("the app's real user after someone spent the budget from elsewhere: %d, want 201", s)
				}
			})
			t.Run("device authorization", func(t *testing.T) {
				ask := func(from string) int {
					return post("/oauth/device_authorization", url.Values{"client_id": {tv.ClientID}, "scope": {"openid"}}, from)
				}
				// 30 a minute per address, 60 per client: two addresses
				// would have spent the client's whole budget.
				for _, from := range []string{"192.0.2.1", "192.0.2.2"} {
					for i := range 30 {
						if s := ask(from); s != http.StatusOK {
							t.Fatalf("request %d from %s: %d", i, from, s)
						}
					}
				}
				if s := ask("198.51.100.7"); s != http.StatusOK {
					t.Fatalf("a real device after others spent 60 requests: %d, want 200", s)
				}
			})
		})
	}
}

// TestFAPIStyleSettings runs the README's "Towards FAPI 2.0" configuration
// end to end: a private_key_jwt client that must use DPoP pushes its
// request (assertion with aud the issuer, DPoP proof with the server's
// nonce, PKCE), the user signs in with only client_id and request_uri in
// the browser, and the code is redeemed with both again for an ES256 ID
// token and a DPoP-bound access token.
func TestFAPIStyleSettings(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{
		"GATEHOUSE_REQUIRE_PAR": "true", "GATEHOUSE_REQUIRE_PKCE": "true", "GATEHOUSE_CLIENT_ASSERTION_AUDIENCE": "issuer",
		"GATEHOUSE_SIGNING_ALG": "ES256", "GATEHOUSE_DPOP_NONCE": "true",
	})
	ck := newECKey(t, "bank-1")
	bank := ts.createClient("--name", "bank", "--redirect-uri", redirectA, "--auth-method", "private_key_jwt",
		"--jwks-file", tempFile(t, "jwks.json", publicJWKS(t, ck)), "--require-dpop")
	ts.createUser("fapi@example.com", "Correct-Horse-9")
	dk := newDPoPKey(t, "ES256")
	assertion := func() string { return sign(t, ck, goodClaims(t, ts, bank.ClientID)) }
	// post sends form with a DPoP proof for url, fetching the server's nonce first.
	post := func(endpoint string, form url.Values) (int, map[string]any) {
		t.Helper()
		var nonce string
		for range 2 {
			req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(withAssertion(form, assertion()).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("DPoP", dk.proof(ts, "POST", endpoint, proofOpts{nonce: nonce}))
			status, h, m := doJSON(t, req)
			if status == http.StatusBadRequest && m["error"] == "use_dpop_nonce" && nonce == "" {
				nonce = h.Get("DPoP-Nonce")
				continue
			}
			return status, m
		}
		t.Fatalf("POST %s: use_dpop_nonce twice", endpoint)
		return 0, nil
	}

	pk := newPKCE()
	form := parParams(bank, pk)
	status, m := post(ts.issuer+"/oauth/par", form)
	if status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, m)
	}
	r := newRP(t, ts, bank)
	authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {bank.ClientID}, "request_uri": {m["request_uri"].(string)}}.Encode()
	code := signInWith(t, r, newBrowser(t, ts.issuer), authURL, form.Get("state"), "fapi@example.com", "Correct-Horse-9")
	status, m = post(ts.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirectA}, "code_verifier": {pk.verifier}})
	if status != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("code exchange: %d %v, want 200 token_type DPoP", status, m)
	}
	tok := (&oauth2.Token{AccessToken: m["access_token"].(string)}).WithExtra(map[string]any{"id_token": m["id_token"]})
	got := r.verify(tok, form.Get("nonce"))
	if alg := jwtHeader(t, got.raw)["alg"]; alg != "ES256" || got.claims["email"] != "fapi@example.com" {
		t.Errorf("ID token alg %v, claims %v", alg, got.claims)
	}
}
