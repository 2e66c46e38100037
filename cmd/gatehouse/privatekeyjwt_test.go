package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// clientKey is a private key a test client signs assertions with.
type clientKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
	pub  any
}

func newEdKey(t *testing.T, kid string) clientKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{kid: kid, alg: jose.EdDSA, priv: priv, pub: pub}
}

func newECKey(t *testing.T, kid string) clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{kid: kid, alg: jose.ES256, priv: priv, pub: &priv.PublicKey}
}

// publicJWKS is the JWKS of the keys' public halves.
func publicJWKS(t *testing.T, keys ...clientKey) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertionClaims are the claims of a client assertion; zero fields are
// left out.
type assertionClaims struct {
	Iss string   `json:"iss,omitempty"`
	Sub string   `json:"sub,omitempty"`
	Aud any      `json:"aud,omitempty"`
	Exp int64    `json:"exp,omitempty"`
	Iat int64    `json:"iat,omitempty"`
	Nbf int64    `json:"nbf,omitempty"`
	Jti string   `json:"jti,omitempty"`
	_   struct{} // keyed literals only
}

// goodClaims are what a well-behaved client sends, at the server's time.
func goodClaims(t *testing.T, ts *testServer, clientID string) assertionClaims {
	now := ts.clock.now()
	return assertionClaims{Iss: clientID, Sub: clientID, Aud: ts.issuer, Iat: now.Unix(), Exp: now.Add(time.Minute).Unix(), Jti: randomString(t)}
}

func sign(t *testing.T, k clientKey, claims assertionClaims) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withAssertion adds client_assertion (and its type) to form.
func withAssertion(form url.Values, assertion string) url.Values {
	out := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	for k, v := range form {
		out[k] = v
	}
	return out
}

var ccGrant = url.Values{"grant_type": {"client_credentials"}}

// tokenWithAssertion asks for a client_credentials token; the status and
// body are returned.
func tokenWithAssertion(t *testing.T, ts *testServer, assertion string) (int, http.Header, map[string]any) {
	t.Helper()
	return postForm(t, ts.issuer+"/oauth/token", withAssertion(ccGrant, assertion), "", "")
}

func wantInvalidClient(t *testing.T, what string, status int, h http.Header, body map[string]any) {
	t.Helper()
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("%s: %d %v, want 401 invalid_client", what, status, body)
		return
	}
	if h.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", what)
	}
	if d, _ := body["error_description"].(string); d != "client authentication failed" {
		t.Errorf("%s: description %q tells the client more than that it failed", what, d)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			t.Run("registration", func(t *testing.T) { testPrivateKeyJWTRegistration(t, ts) })
			t.Run("assertion checks", func(t *testing.T) { testPrivateKeyJWTChecks(t, ts) })
			t.Run("code flow, revocation and introspection", func(t *testing.T) { testPrivateKeyJWTCodeFlow(t, ts) })
			t.Run("jwks_uri", func(t *testing.T) { testPrivateKeyJWTJWKSURI(t, ts) })
		})
	}
}

func testPrivateKeyJWTRegistration(t *testing.T, ts *testServer) {
	k := newEdKey(t, "k1")
	// A file with the private key is refused, and nothing is registered.
	priv, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv, KeyID: "k1"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(ts.getenv, "", "clients", "create", "--id", "leaky", "--auth-method", "private_key_jwt",
		"--grant-types", "client_credentials", "--jwks-file", tempFile(t, "private.json", string(priv)))
	if code == 0 || !strings.Contains(stderr, "private") {
		t.Errorf("--jwks-file with a private key: exit %d, %s", code, stderr)
	}
	for name, args := range map[string][]string{
		"no keys":                  {"--auth-method", "private_key_jwt"},
		"http jwks_uri":            {"--auth-method", "private_key_jwt", "--jwks-uri", "http://keys.example/jwks"},
		"both jwks and jwks_uri":   {"--auth-method", "private_key_jwt", "--jwks-uri", "https://keys.example/jwks", "--jwks-file", tempFile(t, "k.json", publicJWKS(t, k))},
		"keys for a secret client": {"--jwks-uri", "https://keys.example/jwks"},
	} {
		args = append([]string{"clients", "create", "--grant-types", "client_credentials"}, args...)
		if _, stderr, code := runCLI(ts.getenv, "", args...); code == 0 || !strings.Contains(stderr, "jwks") {
			t.Errorf("%s: exit %d, %s", name, code, stderr)
		}
	}
	if out := ts.cli("", "clients", "list", "--json"); strings.Contains(out, "leaky") {
		t.Errorf("a refused client was registered: %s", out)
	}

	svc := ts.createClient("--id", "keyed", "--auth-method", "private_key_jwt", "--grant-types", "client_credentials",
		"--jwks-file", tempFile(t, "public.json", publicJWKS(t, k)))
	if svc.ClientSecret != "" {
		t.Error("a private_key_jwt client was given a secret")
	}
	if _, stderr, code := runCLI(ts.getenv, "", "clients", "rotate-secret", "keyed"); code == 0 || !strings.Contains(stderr, "private_key_jwt") {
		t.Errorf("rotate-secret of a key-based client: exit %d, %s", code, stderr)
	}

	resp, err := http.Get(ts.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
		if l, _ := d[m].([]any); !slices.Contains(l, any("private_key_jwt")) {
			t.Errorf("discovery %s = %v", m, d[m])
		}
	}
	if l, _ := d["token_endpoint_auth_signing_alg_values_supported"].([]any); !slices.Contains(l, any("EdDSA")) || slices.Contains(l, any("HS256")) {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", l)
	}
}

func testPrivateKeyJWTChecks(t *testing.T, ts *testServer) {
	k1, k2 := newEdKey(t, "k1"), newECKey(t, "k2")
	svc := ts.createClient("--auth-method", "private_key_jwt", "--grant-types", "client_credentials",
		"--jwks-file", tempFile(t, "public.json", publicJWKS(t, k1, k2)))
	id := svc.ClientID

	good := sign(t, k1, goodClaims(t, ts, id))
	status, _, body := tokenWithAssertion(t, ts, good)
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("good assertion: %d %v", status, body)
	}
	status, h, body := tokenWithAssertion(t, ts, good)
	wantInvalidClient(t, "replayed assertion", status, h, body)

	// The ES256 key, by kid; and with no kid, found by trying the keys
	// that fit the alg.
	if status, _, body := tokenWithAssertion(t, ts, sign(t, k2, goodClaims(t, ts, id))); status != http.StatusOK {
		t.Errorf("ES256 assertion: %d %v", status, body)
	}
	noKid := k1
	noKid.kid = ""
	if status, _, body := tokenWithAssertion(t, ts, sign(t, noKid, goodClaims(t, ts, id))); status != http.StatusOK {
		t.Errorf("assertion without kid: %d %v", status, body)
	}
	// aud may be the token (or device authorization) endpoint, or an array naming the issuer.
	for _, aud := range []any{ts.issuer + "/oauth/token", ts.issuer + "/oauth/device_authorization", []string{"https://other.example", ts.issuer}} {
		c := goodClaims(t, ts, id)
		c.Aud = aud
		if status, _, body := tokenWithAssertion(t, ts, sign(t, k1, c)); status != http.StatusOK {
			t.Errorf("aud %v: %d %v", aud, status, body)
		}
	}

	now := ts.clock.now()
	impostor := newEdKey(t, "k1") // same kid, another key
	other := ts.createClient("--grant-types", "client_credentials")
	for name, tc := range map[string]struct {
		key    clientKey
		change func(*assertionClaims)
	}{
		"wrong key":                      {impostor, nil},
		"wrong iss":                      {k1, func(c *assertionClaims) { c.Iss = other.ClientID }},
		"wrong sub":                      {k1, func(c *assertionClaims) { c.Sub = other.ClientID }},
		"iss and sub of a secret client": {k1, func(c *assertionClaims) { c.Iss, c.Sub = other.ClientID, other.ClientID }},
		"wrong aud":                      {k1, func(c *assertionClaims) { c.Aud = "https://other.example" }},
		"aud array without us":           {k1, func(c *assertionClaims) { c.Aud = []string{"https://other.example"} }},
		"expired": {k1, func(c *assertionClaims) {
			c.Iat, c.Exp = now.Add(-3*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		}},
		"exp too far ahead":    {k1, func(c *assertionClaims) { c.Exp = now.Add(10 * time.Minute).Unix() }},
		"no exp":               {k1, func(c *assertionClaims) { c.Exp = 0 }},
		"not yet valid":        {k1, func(c *assertionClaims) { c.Nbf = now.Add(2 * time.Minute).Unix() }},
		"issued in the future": {k1, func(c *assertionClaims) { c.Iat = now.Add(2 * time.Minute).Unix() }},
		"no jti":               {k1, func(c *assertionClaims) { c.Jti = "" }},
		"unknown client":       {k1, func(c *assertionClaims) { c.Iss, c.Sub = "nobody", "nobody" }},
	} {
		c := goodClaims(t, ts, id)
		if tc.change != nil {
			tc.change(&c)
		}
		status, h, body := tokenWithAssertion(t, ts, sign(t, tc.key, c))
		wantInvalidClient(t, name, status, h, body)
	}

	// client_id, when sent, must name the assertion's client.
	form := withAssertion(ccGrant, sign(t, k1, goodClaims(t, ts, id)))
	form.Set("client_id", other.ClientID)
	status, h, body = postForm(t, ts.issuer+"/oauth/token", form, "", "")
	wantInvalidClient(t, "client_id of another client", status, h, body)

	// One method per client: this client has no secret to send (a secret
	// client's assertion is refused above), and a request may not carry
	// two methods.
	status, _, body = postForm(t, ts.issuer+"/oauth/token", ccGrant, id, "anything")
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("secret for a private_key_jwt client: %d %v", status, body)
	}
	status, _, body = postForm(t, ts.issuer+"/oauth/token", withAssertion(ccGrant, sign(t, k1, goodClaims(t, ts, id))), id, "anything")
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("assertion and Basic credentials together: %d %v", status, body)
	}

	// The server's clock decides: an assertion made for now is expired
	// once the server is 10 minutes later.
	late := sign(t, k1, goodClaims(t, ts, id))
	ts.clock.advance(10 * time.Minute)
	status, h, body = tokenWithAssertion(t, ts, late)
	wantInvalidClient(t, "assertion past its exp by the server's clock", status, h, body)
}

// The code flow with x/oauth2 (its Exchange passes extra parameters to the
// token request, so the assertion rides along), then revocation and
// introspection authenticated the same way.
func testPrivateKeyJWTCodeFlow(t *testing.T, ts *testServer) {
	k := newEdKey(t, "k1")
	app := ts.createClient("--auth-method", "private_key_jwt", "--redirect-uri", "http://127.0.0.1:9031/cb",
		"--jwks-file", tempFile(t, "public.json", publicJWKS(t, k)))
	ts.createUser("pkjwt@example.com", testPassword)
	app.postAuth = true // no Basic header: client_id goes in the body
	r := newRP(t, ts, app)
	ar, code := r.signIn(newBrowser(t, ts.issuer), "pkjwt@example.com", testPassword)
	assertion := func() oauth2.AuthCodeOption {
		return oauth2.SetAuthURLParam("client_assertion", sign(t, k, goodClaims(t, ts, app.ClientID)))
	}
	assertionType := oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	tok, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(ar.pkceV), assertion(), assertionType)
	if err != nil {
		t.Fatalf("code exchange with an assertion: %v", err)
	}
	r.verify(tok, ar.nonce)

	status, _, body := postForm(t, ts.issuer+"/oauth/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, sign(t, k, goodClaims(t, ts, app.ClientID))), "", "")
	if status != http.StatusOK || body["active"] != true || body["client_id"] != app.ClientID {
		t.Errorf("introspection with an assertion: %d %v", status, body)
	}
	impostor := newEdKey(t, "k1")
	status, h, body := postForm(t, ts.issuer+"/oauth/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, sign(t, impostor, goodClaims(t, ts, app.ClientID))), "", "")
	wantInvalidClient(t, "introspection with a wrong key", status, h, body)
	status, h, body = postForm(t, ts.issuer+"/revoke", withAssertion(url.Values{"token": {tok.RefreshToken}}, sign(t, impostor, goodClaims(t, ts, app.ClientID))), "", "")
	wantInvalidClient(t, "revocation with a wrong key", status, h, body)
	status, _, body = postForm(t, ts.issuer+"/revoke", withAssertion(url.Values{"token": {tok.RefreshToken}}, sign(t, k, goodClaims(t, ts, app.ClientID))), "", "")
	if status != http.StatusOK {
		t.Fatalf("revocation with an assertion: %d %v", status, body)
	}
	_, err = r.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err == nil {
		t.Error("the revoked refresh token still works")
	}

	// PAR (RFC 9126) authenticates clients the same way; there the PAR
	// endpoint's URL is an audience too (§2).
	push := url.Values{"response_type": {"code"}, "redirect_uri": {app.RedirectURIs[0]}, "scope": {"openid"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	c := goodClaims(t, ts, app.ClientID)
	c.Aud = ts.issuer + "/oauth/par"
	status, _, body = postForm(t, ts.issuer+"/oauth/par", withAssertion(push, sign(t, k, c)), "", "")
	if status != http.StatusCreated || body["request_uri"] == nil {
		t.Errorf("PAR with an assertion: %d %v", status, body)
	}
	status, h, body = postForm(t, ts.issuer+"/oauth/par", withAssertion(push, sign(t, impostor, goodClaims(t, ts, app.ClientID))), "", "")
	wantInvalidClient(t, "PAR with a wrong key", status, h, body)
}

// jwksServer serves a JWKS that the test can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	doc     string
}

func newJWKSServer(t *testing.T, doc string) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(s.doc))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(doc string) { s.mu.Lock(); s.doc = doc; s.mu.Unlock() }

func testPrivateKeyJWTJWKSURI(t *testing.T, ts *testServer) {
	k1, k2 := newEdKey(t, "k1"), newEdKey(t, "k2")
	keys := newJWKSServer(t, publicJWKS(t, k1)) // http://127.0.0.1:…, loopback
	svc := ts.createClient("--auth-method", "private_key_jwt", "--grant-types", "client_credentials", "--jwks-uri", keys.URL+"/jwks.json")
	for i := range 3 {
		if status, _, body := tokenWithAssertion(t, ts, sign(t, k1, goodClaims(t, ts, svc.ClientID))); status != http.StatusOK {
			t.Fatalf("assertion %d with a key from jwks_uri: %d %v", i, status, body)
		}
	}
	if n := keys.fetches.Load(); n != 1 {
		t.Errorf("jwks_uri fetched %d times for three assertions, want 1 (cached)", n)
	}

	// The client rotates to k2. Right after a fetch, an unknown kid does
	// not make Gatehouse fetch again; a minute later it does.
	keys.serve(publicJWKS(t, k2))
	status, h, body := tokenWithAssertion(t, ts, sign(t, k2, goodClaims(t, ts, svc.ClientID)))
	wantInvalidClient(t, "new kid within a minute of the last fetch", status, h, body)
	ts.clock.advance(time.Minute)
	if status, _, body := tokenWithAssertion(t, ts, sign(t, k2, goodClaims(t, ts, svc.ClientID))); status != http.StatusOK {
		t.Fatalf("rotated key after a minute: %d %v", status, body)
	}
	if n := keys.fetches.Load(); n != 2 {
		t.Errorf("jwks_uri fetched %d times, want 2", n)
	}
	status, h, body = tokenWithAssertion(t, ts, sign(t, k1, goodClaims(t, ts, svc.ClientID)))
	wantInvalidClient(t, "key removed from the JWKS", status, h, body)
}

// TestPrivateKeyJWTDuringOutage: a good assertion met by a database that
// cannot answer (reading the client, spending the jti) is a 5xx, never
// invalid_client; the jti was not spent, so the same assertion works once
// the database is back.
func TestPrivateKeyJWTDuringOutage(t *testing.T) {
	dbURL, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr()
	ts := startServer(t, "postgres", map[string]string{"DATABASE_URL": dbURL.String()})
	k := newEdKey(t, "k1")
	jwks := tempFile(t, "public.json", publicJWKS(t, k))
	cached := ts.createClient("--auth-method", "private_key_jwt", "--grant-types", "client_credentials", "--jwks-file", jwks)
	uncached := ts.createClient("--auth-method", "private_key_jwt", "--grant-types", "client_credentials", "--jwks-file", jwks)
	if status, _, body := tokenWithAssertion(t, ts, sign(t, k, goodClaims(t, ts, cached.ClientID))); status != http.StatusOK {
		t.Fatalf("before the outage: %d %v", status, body)
	}

	proxy.cut()
	kept := sign(t, k, goodClaims(t, ts, cached.ClientID))
	for name, assertion := range map[string]string{
		"cached client (jti not recorded)": kept,
		"uncached client (not loaded)":     sign(t, k, goodClaims(t, ts, uncached.ClientID)),
	} {
		status, _, body := tokenWithAssertion(t, ts, assertion)
		if status < 500 || (body["error"] != "temporarily_unavailable" && body["error"] != "server_error") {
			t.Errorf("%s during the outage: %d %v, want 5xx", name, status, body)
		}
	}
	proxy.restore()
	waitReady(t, ts.issuer)
	if status, _, body := tokenWithAssertion(t, ts, kept); status != http.StatusOK {
		t.Errorf("the assertion refused during the outage, after it: %d %v", status, body)
	}
}

// The clients file: a private_key_jwt client has keys and no secret.
func TestClientsFilePrivateKeyJWT(t *testing.T) {
	jwks := publicJWKS(t, newEdKey(t, "k1"))
	now := time.Now()
	clients, err := parseClientsFile([]byte(`{"clients": [{"id": "svc", "auth_method": "private_key_jwt",
		"grant_types": ["client_credentials"], "jwks": `+jwks+`}]}`), now)
	if err != nil || len(clients) != 1 || clients[0].JWKS == "" || len(clients[0].SecretHash) != 0 {
		t.Fatalf("private_key_jwt client with jwks: %v %+v", err, clients)
	}
	for name, body := range map[string]string{
		"with a secret": `{"clients": [{"id": "svc", "auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
			"jwks_uri": "https://svc.example/jwks", "secret": "a-long-random-secret-of-enough-length"}]}`,
		"without keys": `{"clients": [{"id": "svc", "auth_method": "private_key_jwt", "grant_types": ["client_credentials"]}]}`,
	} {
		if _, err := parseClientsFile([]byte(body), now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPrivateKeyJWTStrictAudience: with GATEHOUSE_CLIENT_ASSERTION_AUDIENCE
// =issuer an assertion's aud must be the issuer as a single string — the
// FAPI 2.0 rule against audience injection — while the default also takes
// the token endpoint's URL (TestPrivateKeyJWT).
func TestPrivateKeyJWTStrictAudience(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_CLIENT_ASSERTION_AUDIENCE": "issuer"})
	k := newEdKey(t, "k1")
	svc := ts.createClient("--auth-method", "private_key_jwt", "--grant-types", "client_credentials",
		"--jwks-file", tempFile(t, "public.json", publicJWKS(t, k)))
	for _, aud := range []any{ts.issuer + "/oauth/token", ts.issuer + "/oauth/par", []string{ts.issuer}, []string{ts.issuer, "https://other.example"}} {
		c := goodClaims(t, ts, svc.ClientID)
		c.Aud = aud
		status, h, body := tokenWithAssertion(t, ts, sign(t, k, c))
		wantInvalidClient(t, fmt.Sprintf("aud %v", aud), status, h, body)
	}
	if status, _, body := tokenWithAssertion(t, ts, sign(t, k, goodClaims(t, ts, svc.ClientID))); status != http.StatusOK {
		t.Fatalf("aud the issuer as a string: %d %v", status, body)
	}
}

// TestCLIClientAuthMethodSwitch: clients update --auth-method moves a
// secret client to private_key_jwt (the secret stops working) and back
// (no secret until rotate-secret, which the command says).
func TestCLIClientAuthMethodSwitch(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	svc := ts.createClient("--grant-types", "client_credentials")
	k := newEdKey(t, "k1")
	ts.cli("", "clients", "update", svc.ClientID, "--auth-method", "private_key_jwt", "--jwks-file", tempFile(t, "public.json", publicJWKS(t, k)))
	// The CLI is another process: the server sees its changes after its
	// client cache.
	ts.clock.advance(clientCacheTTL)
	status, _, body := postForm(t, ts.issuer+"/oauth/token", ccGrant, svc.ClientID, svc.ClientSecret)
	wantOAuthError(t, "the secret after the switch to private_key_jwt", status, body, http.StatusUnauthorized, "invalid_client")
	if status, _, body := tokenWithAssertion(t, ts, sign(t, k, goodClaims(t, ts, svc.ClientID))); status != http.StatusOK {
		t.Fatalf("an assertion after the switch: %d %v", status, body)
	}
	if out := ts.cli("", "clients", "update", svc.ClientID, "--auth-method", "client_secret_basic"); !strings.Contains(out, "rotate-secret "+svc.ClientID) {
		t.Errorf("switch back to a secret: %q does not say to rotate one in", out)
	}
	ts.clock.advance(clientCacheTTL)
	var fresh createdClient
	if err := json.Unmarshal([]byte(ts.cli("", "clients", "rotate-secret", svc.ClientID, "--json")), &fresh); err != nil || fresh.ClientSecret == "" {
		t.Fatalf("rotate-secret: %+v %v", fresh, err)
	}
	ts.clock.advance(clientCacheTTL)
	if status, _, body := postForm(t, ts.issuer+"/oauth/token", ccGrant, svc.ClientID, fresh.ClientSecret); status != http.StatusOK {
		t.Fatalf("the rotated secret: %d %v", status, body)
	}
}
