package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// dpopKey is a client's DPoP key; proofs are built with go-jose, as a client
// library would, not with Gatehouse's code.
type dpopKey struct {
	t      *testing.T
	signer jose.Signer
	jkt    string // RFC 7638 thumbprint
}

func newDPoPKey(t *testing.T, alg jose.SignatureAlgorithm) *dpopKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dpopKeyOf(t, alg, priv)
}

// dpopKeyOf makes proofs with priv.
func dpopKeyOf(t *testing.T, alg jose.SignatureAlgorithm, priv crypto.Signer) *dpopKey {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, signer: signer, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proofOpts change a proof from the valid one for a request.
type proofOpts struct {
	iat    time.Time
	nonce  string
	token  string // access token the proof covers (ath)
	noATH  bool
	claims map[string]any // extra or replaced claims
}

// proof is a DPoP proof for htm htu, issued now by the server's clock.
func (k *dpopKey) proof(ts *testServer, htm, htu string, o proofOpts) string {
	k.t.Helper()
	iat := o.iat
	if iat.IsZero() {
		iat = ts.clock.now()
	}
	c := map[string]any{"jti": randomString(k.t), "htm": htm, "htu": htu, "iat": iat.Unix()}
	if o.nonce != "" {
		c["nonce"] = o.nonce
	}
	if o.token != "" && !o.noATH {
		sum := sha256.Sum256([]byte(o.token))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for name, v := range o.claims {
		c[name] = v
	}
	payload, err := json.Marshal(c)
	if err != nil {
		k.t.Fatal(err)
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}

// dpopPost posts form to the token endpoint with the DPoP proof (if any) and
// Basic credentials (if any).
func dpopPost(t *testing.T, ts *testServer, form url.Values, user, pass, proof string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return doJSON(t, req)
}

// dpopGet calls userinfo with the Authorization header auth and the proof.
func dpopUserinfo(t *testing.T, ts *testServer, auth, proof string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.issuer+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 && json.Unmarshal(body, &m) != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %q", req.Method, req.URL, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header, m
}

// wantOAuthError checks an error response's status and code.
func wantOAuthError(t *testing.T, what string, status int, m map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || m["error"] != code {
		t.Errorf("%s: %d %v, want %d %s", what, status, m, wantStatus, code)
	}
}

// wantChallenge checks a resource's 401 DPoP challenge.
func wantChallenge(t *testing.T, what string, status int, h http.Header, code string) {
	t.Helper()
	www := h.Get("WWW-Authenticate")
	if status != http.StatusUnauthorized || !strings.HasPrefix(www, "DPoP ") || !strings.Contains(www, `error="`+code+`"`) {
		t.Errorf("%s: %d WWW-Authenticate %q, want 401 DPoP error=%q", what, status, www, code)
	}
}

// TestDPoP runs RFC 9449 through the real server: a public client's code
// flow bound to its key, the bound token at userinfo and introspection,
// a bound refresh, the checks of proofs (replay, htu, htm, iat, ath,
// another key), require_dpop, dpop_jkt at /authorize, the admin API
// refusing a bound token as Bearer, and discovery.
func TestDPoP(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ts.createUser("dpop@example.com", "Correct-Horse-42")
			spa := ts.createClient("--name", "SPA", "--type", "spa", "--public", "--redirect-uri", "http://localhost:9004/cb")
			rs := ts.createClient("--name", "API", "--grant-types", "client_credentials")
			key, other := newDPoPKey(t, jose.ES256), newDPoPKey(t, jose.EdDSA)
			tokenURL, userinfoURL := ts.issuer+"/oauth/token", ts.issuer+"/userinfo"

			var disc map[string]any
			_, _, disc = doJSON(t, mustRequest(t, ts.issuer+"/.well-known/openid-configuration"))
			if algs, _ := disc["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != "ES256" {
				t.Errorf("discovery dpop_signing_alg_values_supported = %v", disc["dpop_signing_alg_values_supported"])
			}

			// Code flow of a public client with a proof.
			r := newRP(t, ts, spa)
			ar, code := r.signIn(newBrowser(t, ts.issuer), "dpop@example.com", "Correct-Horse-42")
			codeForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.redirect},
				"code_verifier": {ar.pkceV}, "client_id": {spa.ClientID}}
			status, _, m := dpopPost(t, ts, codeForm, "", "", key.proof(ts, "POST", tokenURL, proofOpts{}))
			if status != http.StatusOK || m["token_type"] != "DPoP" {
				t.Fatalf("code exchange with a proof: %d %v, want 200 token_type DPoP", status, m)
			}
			access, refresh := m["access_token"].(string), m["refresh_token"].(string)

			// Introspection tells a resource server the key.
			status, _, m = postForm(t, ts.issuer+"/oauth/introspect", url.Values{"token": {access}}, rs.ClientID, rs.ClientSecret)
			cnf, _ := m["cnf"].(map[string]any)
			if status != 200 || m["active"] != true || m["token_type"] != "DPoP" || cnf["jkt"] != key.jkt {
				t.Errorf("introspection of the bound token: %d %v, want active, token_type DPoP, cnf.jkt %s", status, m, key.jkt)
			}

			// Userinfo: only in the DPoP scheme with a fresh proof of the key over the token.
			status, h, _ := dpopUserinfo(t, ts, "Bearer "+access, "")
			wantChallenge(t, "bound token as Bearer", status, h, "invalid_token")
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, "")
			wantChallenge(t, "DPoP scheme without a proof", status, h, "invalid_dpop_proof")
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, key.proof(ts, "GET", userinfoURL, proofOpts{token: access, noATH: true}))
			wantChallenge(t, "proof without ath", status, h, "invalid_dpop_proof")
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, other.proof(ts, "GET", userinfoURL, proofOpts{token: access}))
			wantChallenge(t, "proof made with another key", status, h, "invalid_dpop_proof")
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, key.proof(ts, "GET", userinfoURL, proofOpts{token: "another token"}))
			wantChallenge(t, "proof covering another token", status, h, "invalid_dpop_proof")
			good := key.proof(ts, "GET", userinfoURL, proofOpts{token: access})
			status, _, m = dpopUserinfo(t, ts, "DPoP "+access, good)
			if status != 200 || m["email"] != "dpop@example.com" {
				t.Fatalf("userinfo with the bound token and its proof: %d %v", status, m)
			}
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, good)
			wantChallenge(t, "the same proof again (replayed jti)", status, h, "invalid_dpop_proof")

			// Refresh: a public client's refresh token needs the same key.
			refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {spa.ClientID}}
			status, _, m = dpopPost(t, ts, refreshForm, "", "", "")
			wantOAuthError(t, "bound refresh without a proof", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, refreshForm, "", "", other.proof(ts, "POST", tokenURL, proofOpts{}))
			wantOAuthError(t, "bound refresh with another key", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, refreshForm, "", "", key.proof(ts, "POST", tokenURL, proofOpts{}))
			if status != 200 || m["token_type"] != "DPoP" {
				t.Fatalf("bound refresh with its key: %d %v", status, m)
			}

			// Proofs the token endpoint refuses before anything else.
			weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name  string
				proof string
			}{
				{"another htu", key.proof(ts, "POST", ts.issuer+"/userinfo", proofOpts{})},
				{"another htm", key.proof(ts, "GET", tokenURL, proofOpts{})},
				{"an iat two minutes old", key.proof(ts, "POST", tokenURL, proofOpts{iat: ts.clock.now().Add(-2 * time.Minute)})},
				{"an iat two minutes ahead", key.proof(ts, "POST", tokenURL, proofOpts{iat: ts.clock.now().Add(2 * time.Minute)})},
				{"no jti", key.proof(ts, "POST", tokenURL, proofOpts{claims: map[string]any{"jti": ""}})},
				{"not a JWT", "not-a-proof"},
				{"a 1024-bit RSA key", dpopKeyOf(t, jose.RS256, weakRSA).proof(ts, "POST", tokenURL, proofOpts{})},
			} {
				status, _, m := dpopPost(t, ts, url.Values{"grant_type": {"client_credentials"}}, rs.ClientID, rs.ClientSecret, tc.proof)
				wantOAuthError(t, "proof with "+tc.name, status, m, 400, "invalid_dpop_proof")
			}
			// A token request's jti is spent once.
			ccForm := url.Values{"grant_type": {"client_credentials"}}
			once := key.proof(ts, "POST", tokenURL, proofOpts{})
			if status, _, m := dpopPost(t, ts, ccForm, rs.ClientID, rs.ClientSecret, once); status != 200 || m["token_type"] != "DPoP" {
				t.Fatalf("client_credentials with a proof: %d %v", status, m)
			}
			status, _, m = dpopPost(t, ts, ccForm, rs.ClientID, rs.ClientSecret, once)
			wantOAuthError(t, "token request replaying a proof", status, m, 400, "invalid_dpop_proof")
			// Without a proof a client gets a bearer token as before.
			if status, _, m := dpopPost(t, ts, ccForm, rs.ClientID, rs.ClientSecret, ""); status != 200 || m["token_type"] != "Bearer" {
				t.Errorf("client_credentials without a proof: %d %v, want token_type Bearer", status, m)
			}

			// require_dpop: no token without a proof.
			strict := ts.createClient("--name", "strict", "--grant-types", "client_credentials", "--require-dpop", "--access-token", "jwt")
			status, _, m = dpopPost(t, ts, ccForm, strict.ClientID, strict.ClientSecret, "")
			wantOAuthError(t, "require_dpop client without a proof", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, ccForm, strict.ClientID, strict.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{}))
			if status != 200 || m["token_type"] != "DPoP" {
				t.Fatalf("require_dpop client with a proof: %d %v", status, m)
			}
			if claims := jwtPayload(t, m["access_token"].(string)); claims["cnf"] == nil || claims["cnf"].(map[string]any)["jkt"] != key.jkt {
				t.Errorf("JWT access token's cnf = %v, want jkt %s", claims["cnf"], key.jkt)
			}

			// The admin API takes bearer tokens only: a bound one is refused, saying why.
			ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"gatehouse:admin"}}
			_, _, m = dpopPost(t, ts, form, ops.ClientID, ops.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{}))
			req := mustRequest(t, ts.issuer+"/admin/api/v1/clients")
			req.Header.Set("Authorization", "Bearer "+m["access_token"].(string))
			status, _, m = doJSON(t, req)
			if detail, _ := m["detail"].(string); status != 401 || !strings.Contains(detail, "DPoP") {
				t.Errorf("admin API with a DPoP-bound token as Bearer: %d %v, want 401 naming DPoP", status, m)
			}

			// dpop_jkt binds the code to a key before it is issued (§10).
			ar, code = r.signIn(newBrowser(t, ts.issuer), "dpop@example.com", "Correct-Horse-42", oauth2.SetAuthURLParam("dpop_jkt", key.jkt))
			codeForm = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.redirect},
				"code_verifier": {ar.pkceV}, "client_id": {spa.ClientID}}
			status, _, m = dpopPost(t, ts, codeForm, "", "", other.proof(ts, "POST", tokenURL, proofOpts{}))
			wantOAuthError(t, "code bound by dpop_jkt, proof with another key", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, codeForm, "", "", "")
			wantOAuthError(t, "code bound by dpop_jkt, no proof", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, codeForm, "", "", key.proof(ts, "POST", tokenURL, proofOpts{}))
			if status != 200 || m["token_type"] != "DPoP" {
				t.Errorf("code bound by dpop_jkt, proof with its key (the refused attempts must not spend it): %d %v", status, m)
			}

			// A proof at the PAR endpoint binds the code like dpop_jkt (§10.1).
			parURL := ts.issuer + "/oauth/par"
			push := func(form url.Values, proof string) (int, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, parURL, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if proof != "" {
					req.Header.Set("DPoP", proof)
				}
				status, _, m := doJSON(t, req)
				return status, m
			}
			pk := newPKCE()
			pushed := parParams(spa, pk)
			status, m = push(pushed, key.proof(ts, "POST", tokenURL, proofOpts{}))
			wantOAuthError(t, "PAR with a proof for the token endpoint", status, m, 400, "invalid_dpop_proof")
			status, m = push(withParam(pushed, "dpop_jkt", other.jkt), key.proof(ts, "POST", parURL, proofOpts{}))
			wantOAuthError(t, "PAR with a proof and another key's dpop_jkt", status, m, 400, "invalid_dpop_proof")
			status, m = push(pushed, key.proof(ts, "POST", parURL, proofOpts{}))
			if status != http.StatusCreated {
				t.Fatalf("PAR with a proof: %d %v", status, m)
			}
			authURL := ts.issuer + "/authorize?" + url.Values{"client_id": {spa.ClientID}, "request_uri": {m["request_uri"].(string)}}.Encode()
			code = signInWith(t, r, newBrowser(t, ts.issuer), authURL, pushed.Get("state"), "dpop@example.com", "Correct-Horse-42")
			codeForm = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.redirect},
				"code_verifier": {pk.verifier}, "client_id": {spa.ClientID}}
			status, _, m = dpopPost(t, ts, codeForm, "", "", other.proof(ts, "POST", tokenURL, proofOpts{}))
			wantOAuthError(t, "code pushed with a proof, redeemed with another key", status, m, 400, "invalid_dpop_proof")
			status, _, m = dpopPost(t, ts, codeForm, "", "", key.proof(ts, "POST", tokenURL, proofOpts{}))
			if status != 200 || m["token_type"] != "DPoP" {
				t.Errorf("code pushed with a proof, redeemed with its key: %d %v", status, m)
			}
		})
	}
}

// withParam is a copy of v with k set to value.
func withParam(v url.Values, k, value string) url.Values {
	out := url.Values{}
	for name, vs := range v {
		out[name] = slices.Clone(vs)
	}
	out.Set(k, value)
	return out
}

// TestDPoPConfidentialRefresh: a confidential client's refresh tokens are
// bound by its credentials, not its key (RFC 9449 §5): its grant stays
// unbound, and each refresh binds the new access token to that request's
// proof, if any.
func TestDPoPConfidentialRefresh(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	ts.createUser("conf@example.com", "Correct-Horse-42")
	web := ts.createClient("--name", "Web", "--redirect-uri", "http://localhost:9005/cb")
	key := newDPoPKey(t, jose.ES256)
	tokenURL := ts.issuer + "/oauth/token"
	r := newRP(t, ts, web)
	ar, code := r.signIn(newBrowser(t, ts.issuer), "conf@example.com", "Correct-Horse-42")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.redirect}, "code_verifier": {ar.pkceV}}
	status, _, m := dpopPost(t, ts, form, web.ClientID, web.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{}))
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("code exchange with a proof: %d %v", status, m)
	}
	refresh := m["refresh_token"].(string)
	status, _, m = dpopPost(t, ts, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, web.ClientID, web.ClientSecret, "")
	if status != 200 || m["token_type"] != "Bearer" {
		t.Fatalf("confidential refresh without a proof: %d %v, want 200 Bearer", status, m)
	}
	status, _, _ = dpopUserinfo(t, ts, "Bearer "+m["access_token"].(string), "")
	if status != 200 {
		t.Errorf("userinfo with the unbound token from that refresh: %d", status)
	}
}

// TestDPoPNonce: with GATEHOUSE_DPOP_NONCE a proof without the server's
// nonce gets use_dpop_nonce and the nonce in DPoP-Nonce; the retry with it
// succeeds, at the token endpoint and at userinfo; a nonce from two
// windows ago is stale.
func TestDPoPNonce(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{"GATEHOUSE_DPOP_NONCE": "true"})
			ts.createUser("nonce@example.com", "Correct-Horse-42")
			web := ts.createClient("--name", "Web", "--redirect-uri", "http://localhost:9006/cb")
			key := newDPoPKey(t, jose.ES256)
			tokenURL, userinfoURL := ts.issuer+"/oauth/token", ts.issuer+"/userinfo"
			r := newRP(t, ts, web)
			ar, code := r.signIn(newBrowser(t, ts.issuer), "nonce@example.com", "Correct-Horse-42")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.redirect}, "code_verifier": {ar.pkceV}}

			status, h, m := dpopPost(t, ts, form, web.ClientID, web.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{}))
			wantOAuthError(t, "proof without a nonce", status, m, 400, "use_dpop_nonce")
			nonce := h.Get("DPoP-Nonce")
			if nonce == "" {
				t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
			}
			status, _, m = dpopPost(t, ts, form, web.ClientID, web.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{nonce: "made-up"}))
			wantOAuthError(t, "proof with a made-up nonce", status, m, 400, "use_dpop_nonce")
			status, _, m = dpopPost(t, ts, form, web.ClientID, web.ClientSecret, key.proof(ts, "POST", tokenURL, proofOpts{nonce: nonce}))
			if status != 200 || m["token_type"] != "DPoP" {
				t.Fatalf("retry with the nonce: %d %v", status, m)
			}
			access := m["access_token"].(string)

			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, key.proof(ts, "GET", userinfoURL, proofOpts{token: access}))
			wantChallenge(t, "userinfo proof without a nonce", status, h, "use_dpop_nonce")
			if h.Get("DPoP-Nonce") == "" {
				t.Error("userinfo's use_dpop_nonce without a DPoP-Nonce header")
			}
			status, _, m = dpopUserinfo(t, ts, "DPoP "+access, key.proof(ts, "GET", userinfoURL, proofOpts{token: access, nonce: h.Get("DPoP-Nonce")}))
			if status != 200 || m["email"] != "nonce@example.com" {
				t.Fatalf("userinfo with the nonce: %d %v", status, m)
			}

			ts.clock.advance(11 * time.Minute) // two nonce windows on; the token is still live
			status, h, _ = dpopUserinfo(t, ts, "DPoP "+access, key.proof(ts, "GET", userinfoURL, proofOpts{token: access, nonce: nonce}))
			wantChallenge(t, "a stale nonce", status, h, "use_dpop_nonce")
			if fresh := h.Get("DPoP-Nonce"); fresh == "" || fresh == nonce {
				t.Errorf("DPoP-Nonce after the window moved on: %q (was %q)", fresh, nonce)
			}
		})
	}
}

// jwtPayload decodes a JWT's claims without verifying it (the tests that
// care verify elsewhere).
func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	return jwtSegment(t, token, 1)
}

// jwtHeader is a compact JWT's decoded header.
func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	return jwtSegment(t, token, 0)
}

// jwtSegment decodes segment i (0 header, 1 claims) of a compact JWT.
func jwtSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
