package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	opClientID = "gatehouse"
	// Characters that must be form-encoded inside the Basic header
	// (RFC 6749 2.3.1) and in the form.
	opClientSecret = "corp:secret+/%"
	opCallback     = "http://127.0.0.1:9/upstream/corp/callback"
	opSubject      = "user-1"
)

// testClock is Options.Now, moved by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// opSettings is how the fake provider behaves; tests change it with set.
type opSettings struct {
	// meta is merged into the discovery document (a nil value deletes a
	// member); discoveryStatus, when not 0, answers discovery with that
	// status instead.
	meta            map[string]any
	discoveryStatus int
	jwksStatus      int
	// claims edits the ID token's claims (a nil value deletes one).
	claims func(c map[string]any)
	// signWith signs ID tokens with another key (still kid "k1").
	signWith *ecdsa.PrivateKey
	// tokenStatus and tokenBody replace the token endpoint's answer.
	tokenStatus int
	tokenBody   string
	noIDToken   bool
	// userinfo is the userinfo answer; userinfoStatus replaces it.
	userinfo       map[string]any
	userinfoStatus int
	userinfoRaw    string // when set, the userinfo answer's body, as is
}

// opGrant is what an authorization code was issued for.
type opGrant struct {
	challenge, nonce, redirectURI string
}

// tokenCall records how a token request authenticated.
type tokenCall struct {
	basic, post bool
	form        url.Values
}

// fakeOP is a minimal OpenID provider: discovery, JWKS, a token endpoint
// checking client authentication, redirect_uri and PKCE, and userinfo. The
// authorization step is played by authorize, which reads the URL Gatehouse
// built instead of serving a page.
type fakeOP struct {
	t      *testing.T
	URL    string
	clock  *testClock
	key    *ecdsa.PrivateKey
	access string // the access token it hands out

	mu        sync.Mutex
	s         opSettings
	codes     map[string]opGrant
	hits      map[string]int // by path
	tokenLog  []tokenCall
	nextCode  int
	lastToken string // the last ID token issued
}

func newFakeOP(t *testing.T, clock *testClock) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{t: t, clock: clock, key: key, access: "at-" + fmt.Sprint(time.Now().UnixNano()),
		codes: map[string]opGrant{}, hits: map[string]int{}}
	op.s.userinfo = map[string]any{"sub": opSubject, "email": "ui@example.com", "email_verified": true, "name": "From Userinfo"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfoHandler)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		op.hits[r.URL.Path]++
		op.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	op.URL = srv.URL
	return op
}

func (op *fakeOP) set(f func(s *opSettings)) { op.mu.Lock(); f(&op.s); op.mu.Unlock() }

func (op *fakeOP) settings() opSettings { op.mu.Lock(); defer op.mu.Unlock(); return op.s }

func (op *fakeOP) hitCount(path string) int { op.mu.Lock(); defer op.mu.Unlock(); return op.hits[path] }

func (op *fakeOP) tokenCalls() []tokenCall {
	op.mu.Lock()
	defer op.mu.Unlock()
	return slices.Clone(op.tokenLog)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (op *fakeOP) discovery(w http.ResponseWriter, r *http.Request) {
	s := op.settings()
	if s.discoveryStatus != 0 {
		http.Error(w, "down", s.discoveryStatus)
		return
	}
	doc := map[string]any{
		"issuer":                                op.URL,
		"authorization_endpoint":                op.URL + "/authorize",
		"token_endpoint":                        op.URL + "/token",
		"jwks_uri":                              op.URL + "/jwks",
		"userinfo_endpoint":                     op.URL + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	for k, v := range s.meta {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

func (op *fakeOP) jwks(w http.ResponseWriter, r *http.Request) {
	if s := op.settings(); s.jwksStatus != 0 {
		http.Error(w, "down", s.jwksStatus)
		return
	}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}})
}

// authorize plays the user approving at the provider: it checks the URL
// Gatehouse built and returns the callback query the provider would send.
func (op *fakeOP) authorize(authURL string) url.Values {
	op.t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		op.t.Fatal(err)
	}
	if base := u.Scheme + "://" + u.Host + u.Path; base != op.URL+"/authorize" {
		op.t.Fatalf("authorization endpoint %q", base)
	}
	q := u.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != opClientID || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		op.t.Fatalf("authorization request %v", q)
	}
	op.mu.Lock()
	op.nextCode++
	code := fmt.Sprintf("code-%d", op.nextCode)
	op.codes[code] = opGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri")}
	op.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

func (op *fakeOP) tokenError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": "fakeOP: " + code})
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		op.tokenError(w, 400, "invalid_request")
		return
	}
	s := op.settings()
	call := tokenCall{form: r.PostForm}
	id, secret, basic := r.BasicAuth()
	if basic {
		call.basic = true
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if r.PostForm.Has("client_secret") {
		call.post = true
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	op.mu.Lock()
	op.tokenLog = append(op.tokenLog, call)
	g, found := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	op.mu.Unlock()

	if s.tokenStatus != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.tokenStatus)
		_, _ = io.WriteString(w, s.tokenBody)
		return
	}
	if call.basic == call.post || id != opClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(opClientSecret)) != 1 {
		op.tokenError(w, 401, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" || !found || r.PostForm.Get("redirect_uri") != g.redirectURI ||
		pkceChallenge(r.PostForm.Get("code_verifier")) != g.challenge {
		op.tokenError(w, 400, "invalid_grant")
		return
	}
	now := op.clock.Now()
	claims := map[string]any{
		"iss": op.URL, "sub": opSubject, "aud": opClientID,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": g.nonce,
		"email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
	}
	if s.claims != nil {
		s.claims(claims)
	}
	maps.DeleteFunc(claims, func(_ string, v any) bool { return v == nil })
	key := op.key
	if s.signWith != nil {
		key = s.signWith
	}
	resp := map[string]any{"access_token": op.access, "token_type": "Bearer", "expires_in": 300}
	if !s.noIDToken {
		resp["id_token"] = op.sign(key, claims)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (op *fakeOP) sign(key *ecdsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	op.mu.Lock()
	op.lastToken = raw
	op.mu.Unlock()
	return raw
}

func (op *fakeOP) userinfoHandler(w http.ResponseWriter, r *http.Request) {
	s := op.settings()
	if r.Header.Get("Authorization") != "Bearer "+op.access {
		writeJSON(w, 401, map[string]string{"error": "invalid_token"})
		return
	}
	if s.userinfoStatus != 0 {
		writeJSON(w, s.userinfoStatus, map[string]string{"error": "injected"})
		return
	}
	if s.userinfoRaw != "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, s.userinfoRaw)
		return
	}
	writeJSON(w, http.StatusOK, s.userinfo)
}

// oidcConnector is the connector for op ("corp") with options.
func oidcConnector(t *testing.T, op *fakeOP, opts Options) Connector {
	t.Helper()
	c := Config{ID: "corp", Type: TypeOIDC, Issuer: op.URL, ClientID: opClientID, ClientSecret: opClientSecret}
	c.applyDefaults()
	if opts.Now == nil {
		opts.Now = op.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	reg, err := NewRegistry([]Config{c}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return reg.Get("corp")
}

// oidcSetup is a provider and a connector to it.
func oidcSetup(t *testing.T) (*fakeOP, Connector) {
	op := newFakeOP(t, newTestClock())
	return op, oidcConnector(t, op, Options{})
}

// callback runs AuthCodeURL and the provider's approval, returning the
// callback query for leg.
func callback(t *testing.T, conn Connector, op *fakeOP, leg Leg) url.Values {
	t.Helper()
	authURL, err := conn.AuthCodeURL(context.Background(), leg, opCallback)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	return op.authorize(authURL)
}

func oidcSignIn(t *testing.T, conn Connector, op *fakeOP) (*Identity, error) {
	t.Helper()
	leg := testLeg("a")
	return conn.Exchange(context.Background(), leg, opCallback, callback(t, conn, op, leg))
}

func TestOIDCAuthCodeURL(t *testing.T) {
	op, conn := oidcSetup(t)
	leg := testLeg("a")
	s, err := conn.AuthCodeURL(context.Background(), leg, opCallback)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s)
	q := u.Query()
	for k, v := range map[string]string{
		"response_type": "code", "client_id": opClientID, "redirect_uri": opCallback, "scope": "openid email profile",
		"state": leg.State, "nonce": leg.Nonce, "code_challenge": pkceChallenge(leg.Verifier), "code_challenge_method": "S256",
	} {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if strings.Contains(s, leg.Verifier) || strings.Contains(s, url.QueryEscape(opClientSecret)) {
		t.Errorf("URL carries a secret: %s", s)
	}
	if op.hitCount("/.well-known/openid-configuration") != 1 {
		t.Errorf("discovery fetched %d times", op.hitCount("/.well-known/openid-configuration"))
	}
}

func TestOIDCSignIn(t *testing.T) {
	op, conn := oidcSetup(t)
	junk := strings.Repeat("a", 33)
	op.set(func(s *opSettings) {
		s.claims = func(c map[string]any) {
			c["amr"] = []string{"pwd", "mfa", "pwd", "bad value!", junk, "", "otp", "hwk", "sms", "swk", "fpt", "face", "kba"}
		}
	})
	id, err := oidcSignIn(t, conn, op)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Subject != opSubject || id.Email != "ada@example.com" || !id.EmailVerified || id.Name != "Ada Lovelace" {
		t.Errorf("identity %+v", *id)
	}
	if want := []string{"pwd", "mfa", "otp", "hwk", "sms", "swk", "fpt", "face"}; !slices.Equal(id.AMR, want) {
		t.Errorf("amr %q, want %q", id.AMR, want)
	}
	if n := op.hitCount("/userinfo"); n != 0 {
		t.Errorf("userinfo asked %d times though the ID token had an email", n)
	}
	calls := op.tokenCalls()
	if len(calls) != 1 {
		t.Fatalf("%d token requests", len(calls))
	}
	if f := calls[0].form; f.Get("code_verifier") != testLeg("a").Verifier || f.Get("redirect_uri") != opCallback {
		t.Errorf("token form %v", f)
	}

	// Discovery and the key set are fetched once, not per sign-in.
	if _, err := oidcSignIn(t, conn, op); err != nil {
		t.Fatal(err)
	}
	if d, k := op.hitCount("/.well-known/openid-configuration"), op.hitCount("/jwks"); d != 1 || k != 1 {
		t.Errorf("discovery fetched %d times, JWKS %d times; want once each", d, k)
	}
}

func TestOIDCEmailVerified(t *testing.T) {
	for _, tc := range []struct {
		name     string
		verified any // nil: absent
		want     bool
	}{
		{"true", true, true},
		{"string true", "true", true},
		{"false", false, false},
		{"string false", "false", false},
		{"absent", nil, false},
		{"number", 1, false},
		{"string yes", "yes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, conn := oidcSetup(t)
			op.set(func(s *opSettings) { s.claims = func(c map[string]any) { c["email_verified"] = tc.verified } })
			id, err := oidcSignIn(t, conn, op)
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != "ada@example.com" || id.EmailVerified != tc.want {
				t.Errorf("email %q verified %v, want %v", id.Email, id.EmailVerified, tc.want)
			}
		})
	}
}

func TestOIDCBadIDToken(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(s *opSettings, op *fakeOP)
	}{
		{"nonce mismatch", func(s *opSettings, _ *fakeOP) { s.claims = func(c map[string]any) { c["nonce"] = "nonce-b" } }},
		{"nonce missing", func(s *opSettings, _ *fakeOP) { s.claims = func(c map[string]any) { c["nonce"] = nil } }},
		{"wrong aud", func(s *opSettings, _ *fakeOP) { s.claims = func(c map[string]any) { c["aud"] = "someone-else" } }},
		{"several audiences without azp", func(s *opSettings, _ *fakeOP) {
			s.claims = func(c map[string]any) { c["aud"] = []string{opClientID, "someone-else"} }
		}},
		{"several audiences, azp another client", func(s *opSettings, _ *fakeOP) {
			s.claims = func(c map[string]any) { c["aud"] = []string{opClientID, "someone-else"}; c["azp"] = "someone-else" }
		}},
		{"expired", func(s *opSettings, op *fakeOP) {
			s.claims = func(c map[string]any) { c["exp"] = op.clock.Now().Add(-time.Second).Unix() }
		}},
		{"wrong iss", func(s *opSettings, _ *fakeOP) {
			s.claims = func(c map[string]any) { c["iss"] = "https://evil.example" }
		}},
		{"no sub", func(s *opSettings, _ *fakeOP) { s.claims = func(c map[string]any) { c["sub"] = nil } }},
		{"sub too long", func(s *opSettings, _ *fakeOP) {
			s.claims = func(c map[string]any) { c["sub"] = strings.Repeat("s", 256) }
		}},
		{"signed by another key", func(s *opSettings, _ *fakeOP) { s.signWith = other }},
		{"no id_token", func(s *opSettings, _ *fakeOP) { s.noIDToken = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, conn := oidcSetup(t)
			op.set(func(s *opSettings) { tc.edit(s, op) })
			id, err := oidcSignIn(t, conn, op)
			wantKind(t, err, "corp", Invalid)
			if id != nil {
				t.Errorf("identity %+v returned with the error", *id)
			}
		})
	}
}

func TestOIDCAudienceWithAZP(t *testing.T) {
	op, conn := oidcSetup(t)
	op.set(func(s *opSettings) {
		s.claims = func(c map[string]any) { c["aud"] = []string{"someone-else", opClientID}; c["azp"] = opClientID }
	})
	if _, err := oidcSignIn(t, conn, op); err != nil {
		t.Fatalf("several audiences with azp = this client refused: %v", err)
	}
}

func TestOIDCExpiryUsesOptionsNow(t *testing.T) {
	// The token is valid for 5 minutes by the provider's clock; moving the
	// connector's clock past that (Options.Now) makes it expired.
	clock := newTestClock()
	op := newFakeOP(t, clock)
	connClock := newTestClock()
	conn := oidcConnector(t, op, Options{Now: connClock.Now})
	connClock.Advance(6 * time.Minute)
	_, err := oidcSignIn(t, conn, op)
	wantKind(t, err, "corp", Invalid)
}

func TestOIDCIssParameter(t *testing.T) {
	ctx := context.Background()
	leg := testLeg("a")

	t.Run("iss differs", func(t *testing.T) {
		op, conn := oidcSetup(t)
		cb := callback(t, conn, op, leg)
		cb.Set("iss", "https://other-upstream.example")
		_, err := conn.Exchange(ctx, leg, opCallback, cb)
		wantKind(t, err, "corp", Invalid)
		if len(op.tokenCalls()) != 0 {
			t.Error("the code was sent to the token endpoint despite the mix-up")
		}
	})
	t.Run("iss twice", func(t *testing.T) {
		op, conn := oidcSetup(t)
		cb := callback(t, conn, op, leg)
		cb["iss"] = []string{op.URL, "https://other-upstream.example"}
		_, err := conn.Exchange(ctx, leg, opCallback, cb)
		wantKind(t, err, "corp", Invalid)
	})
	t.Run("iss matches, not promised", func(t *testing.T) {
		op, conn := oidcSetup(t)
		cb := callback(t, conn, op, leg)
		cb.Set("iss", op.URL)
		if _, err := conn.Exchange(ctx, leg, opCallback, cb); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("promised and missing", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) { s.meta = map[string]any{"authorization_response_iss_parameter_supported": true} })
		cb := callback(t, conn, op, leg)
		_, err := conn.Exchange(ctx, leg, opCallback, cb)
		wantKind(t, err, "corp", Invalid)
		if len(op.tokenCalls()) != 0 {
			t.Error("the code was sent to the token endpoint")
		}
	})
	t.Run("promised and present", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) { s.meta = map[string]any{"authorization_response_iss_parameter_supported": true} })
		cb := callback(t, conn, op, leg)
		cb.Set("iss", op.URL)
		if _, err := conn.Exchange(ctx, leg, opCallback, cb); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("promised, error response without iss", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) { s.meta = map[string]any{"authorization_response_iss_parameter_supported": true} })
		_, err := conn.Exchange(ctx, leg, opCallback, url.Values{"error": {"access_denied"}, "state": {leg.State}})
		wantKind(t, err, "corp", Invalid)
	})
}

func TestOIDCCallbackErrors(t *testing.T) {
	op, conn := oidcSetup(t)
	ctx := context.Background()
	leg := testLeg("a")
	for _, tc := range []struct {
		cb   url.Values
		want Kind
	}{
		{url.Values{"error": {"access_denied"}}, Denied},
		{url.Values{"error": {"login_required"}}, Denied},
		{url.Values{"error": {"consent_required"}}, Denied},
		{url.Values{"error": {"access_denied"}, "iss": {op.URL}}, Denied},
		{url.Values{"error": {"invalid_scope"}}, Invalid},
		{url.Values{"error": {"server_error"}}, Unavailable},
		{url.Values{"error": {"temporarily_unavailable"}}, Unavailable},
		{url.Values{"state": {leg.State}}, Invalid},
		{url.Values{"code": {""}}, Invalid},
	} {
		_, err := conn.Exchange(ctx, leg, opCallback, tc.cb)
		if KindOf(err) != tc.want {
			t.Errorf("callback %v: %v, want %v", tc.cb, err, tc.want)
		}
	}
	if len(op.tokenCalls()) != 0 {
		t.Errorf("%d token requests for callbacks without a usable code", len(op.tokenCalls()))
	}
}

func TestOIDCTokenEndpoint(t *testing.T) {
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Kind
	}{
		{"invalid_grant", 400, `{"error":"invalid_grant","error_description":"code expired"}`, Invalid},
		{"invalid_client", 401, `{"error":"invalid_client"}`, Invalid},
		{"error with status 200", 200, `{"error":"invalid_grant"}`, Invalid},
		{"503", 503, `<html>maintenance</html>`, Unavailable},
		{"500", 500, `{"error":"server_error"}`, Unavailable},
		{"429", 429, ``, Unavailable},
		{"200 not JSON", 200, `<html>hello</html>`, Invalid},
		{"200 without access_token", 200, `{"token_type":"Bearer","id_token":"x"}`, Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, conn := oidcSetup(t)
			op.set(func(s *opSettings) { s.tokenStatus, s.tokenBody = tc.status, tc.body })
			_, err := oidcSignIn(t, conn, op)
			wantKind(t, err, "corp", tc.want)
		})
	}

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		op, conn := oidcSetup(t)
		leg := testLeg("a")
		cb := callback(t, conn, op, leg)
		other := leg
		other.Verifier = testLeg("b").Verifier
		_, err := conn.Exchange(ctx, other, opCallback, cb)
		wantKind(t, err, "corp", Invalid)
		if !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("err %v", err)
		}
	})

	t.Run("code reused", func(t *testing.T) {
		op, conn := oidcSetup(t)
		leg := testLeg("a")
		cb := callback(t, conn, op, leg)
		if _, err := conn.Exchange(ctx, leg, opCallback, cb); err != nil {
			t.Fatal(err)
		}
		_, err := conn.Exchange(ctx, leg, opCallback, cb)
		wantKind(t, err, "corp", Invalid)
	})

	t.Run("hangs", func(t *testing.T) {
		op := newFakeOP(t, newTestClock())
		conn := oidcConnector(t, op, Options{HTTPClient: NewHTTPClient(200*time.Millisecond, 0)})
		leg := testLeg("a")
		cb := callback(t, conn, op, leg)
		// Swap the token endpoint for one that never answers.
		done := make(chan struct{})
		hang := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// net/http notices the client hanging up only once the
			// request body has been read.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-done:
			}
		}))
		t.Cleanup(func() { close(done) }) // before the server's Close
		oc := conn.(*oidcConn)
		oc.mu.Lock()
		oc.disc.oauth.Endpoint.TokenURL = hang.URL
		oc.mu.Unlock()
		_, err := conn.Exchange(ctx, leg, opCallback, cb)
		wantKind(t, err, "corp", Unavailable)
	})
}

func TestOIDCClientAuth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		methods any // token_endpoint_auth_methods_supported; nil: absent
		post    bool
	}{
		{"default", nil, false},
		{"basic listed", []string{"client_secret_basic"}, false},
		{"both listed", []string{"client_secret_post", "client_secret_basic"}, false},
		{"post only", []string{"client_secret_post"}, true},
		{"post and private_key_jwt", []string{"private_key_jwt", "client_secret_post"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, conn := oidcSetup(t)
			op.set(func(s *opSettings) { s.meta = map[string]any{"token_endpoint_auth_methods_supported": tc.methods} })
			if _, err := oidcSignIn(t, conn, op); err != nil {
				t.Fatalf("sign-in: %v", err)
			}
			calls := op.tokenCalls()
			if len(calls) != 1 {
				t.Fatalf("%d token calls", len(calls))
			}
			c := calls[0]
			if c.post != tc.post || c.basic == tc.post {
				t.Errorf("secret in form %v, Basic header %v; want form %v", c.post, c.basic, tc.post)
			}
			if tc.post && c.form.Get("client_id") != opClientID {
				t.Errorf("client_id %q in the form", c.form.Get("client_id"))
			}
		})
	}
}

func TestOIDCUserinfo(t *testing.T) {
	noEmail := func(s *opSettings) {
		s.claims = func(c map[string]any) { c["email"], c["email_verified"], c["name"] = nil, nil, nil }
	}

	t.Run("used when the ID token has no email", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) {
			noEmail(s)
			s.userinfo = map[string]any{"sub": opSubject, "email": "ui@example.com", "email_verified": "true", "preferred_username": "ada"}
		})
		id, err := oidcSignIn(t, conn, op)
		if err != nil {
			t.Fatal(err)
		}
		if id.Email != "ui@example.com" || !id.EmailVerified || id.Name != "ada" || id.Subject != opSubject {
			t.Errorf("identity %+v", *id)
		}
		if op.hitCount("/userinfo") != 1 {
			t.Errorf("userinfo asked %d times", op.hitCount("/userinfo"))
		}
	})

	t.Run("name from the ID token kept", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) {
			s.claims = func(c map[string]any) { c["email"], c["email_verified"] = nil, nil }
			s.userinfo = map[string]any{"sub": opSubject, "email": "ui@example.com", "name": "Other"}
		})
		id, err := oidcSignIn(t, conn, op)
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != "Ada Lovelace" || id.Email != "ui@example.com" || id.EmailVerified {
			t.Errorf("identity %+v", *id)
		}
	})

	t.Run("sub differs", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) {
			noEmail(s)
			s.userinfo = map[string]any{"sub": "someone-else", "email": "victim@example.com", "email_verified": true}
		})
		_, err := oidcSignIn(t, conn, op)
		wantKind(t, err, "corp", Invalid)
	})

	t.Run("no userinfo endpoint", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) {
			noEmail(s)
			s.meta = map[string]any{"userinfo_endpoint": nil}
		})
		id, err := oidcSignIn(t, conn, op)
		if err != nil {
			t.Fatal(err)
		}
		if id.Email != "" || id.EmailVerified || op.hitCount("/userinfo") != 0 {
			t.Errorf("identity %+v, userinfo hits %d", *id, op.hitCount("/userinfo"))
		}
	})

	for _, tc := range []struct {
		status int
		want   Kind
	}{{401, Invalid}, {403, Invalid}, {429, Unavailable}, {500, Unavailable}, {503, Unavailable}} {
		t.Run(fmt.Sprintf("userinfo %d", tc.status), func(t *testing.T) {
			op, conn := oidcSetup(t)
			op.set(func(s *opSettings) { noEmail(s); s.userinfoStatus = tc.status })
			_, err := oidcSignIn(t, conn, op)
			wantKind(t, err, "corp", tc.want)
		})
	}
}

func TestOIDCUserinfoMalformed(t *testing.T) {
	for _, body := range []string{`<html>`, `{"sub": 5}`} {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) {
			s.claims = func(c map[string]any) { c["email"] = nil }
			s.userinfoRaw = body
		})
		_, err := oidcSignIn(t, conn, op)
		wantKind(t, err, "corp", Invalid)
	}
}

func TestOIDCKeySetDown(t *testing.T) {
	op, conn := oidcSetup(t)
	op.set(func(s *opSettings) { s.jwksStatus = 503 })
	_, err := oidcSignIn(t, conn, op)
	wantKind(t, err, "corp", Unavailable)
}

func TestOIDCDiscovery(t *testing.T) {
	const disc = "/.well-known/openid-configuration"
	ctx := context.Background()

	t.Run("down, remembered, retried", func(t *testing.T) {
		clock := newTestClock()
		op := newFakeOP(t, clock)
		op.set(func(s *opSettings) { s.discoveryStatus = 503 })
		conn := oidcConnector(t, op, Options{DiscoveryRetry: time.Minute})
		leg := testLeg("a")

		_, err := conn.AuthCodeURL(ctx, leg, opCallback)
		wantKind(t, err, "corp", Unavailable)
		if op.hitCount(disc) != 1 {
			t.Fatalf("discovery hits %d", op.hitCount(disc))
		}
		// Within the retry window: the failure is remembered, for the
		// callback too.
		op.set(func(s *opSettings) { s.discoveryStatus = 0 })
		clock.Advance(59 * time.Second)
		_, err = conn.AuthCodeURL(ctx, leg, opCallback)
		wantKind(t, err, "corp", Unavailable)
		_, err = conn.Exchange(ctx, leg, opCallback, url.Values{"code": {"x"}})
		wantKind(t, err, "corp", Unavailable)
		if op.hitCount(disc) != 1 {
			t.Errorf("discovery asked again within the retry window: %d hits", op.hitCount(disc))
		}
		// After it: tried again, and kept once it works.
		clock.Advance(time.Second)
		if _, err := conn.AuthCodeURL(ctx, leg, opCallback); err != nil {
			t.Fatalf("after the retry window: %v", err)
		}
		if _, err := oidcSignIn(t, conn, op); err != nil {
			t.Fatal(err)
		}
		if op.hitCount(disc) != 2 {
			t.Errorf("discovery hits %d, want 2", op.hitCount(disc))
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		srv := newServer(t, http.NotFoundHandler())
		issuer := srv.URL
		srv.Close()
		c := Config{ID: "corp", Type: TypeOIDC, Issuer: issuer, ClientID: opClientID, ClientSecret: opClientSecret}
		c.applyDefaults()
		reg, err := NewRegistry([]Config{c}, Options{Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = reg.Get("corp").AuthCodeURL(ctx, testLeg("a"), opCallback)
		wantKind(t, err, "corp", Unavailable)
	})

	t.Run("issuer mismatch", func(t *testing.T) {
		op, conn := oidcSetup(t)
		op.set(func(s *opSettings) { s.meta = map[string]any{"issuer": op.URL + "/"} })
		_, err := conn.AuthCodeURL(ctx, testLeg("a"), opCallback)
		if err == nil {
			t.Fatal("discovery naming another issuer accepted")
		}
		if !strings.Contains(err.Error(), "did not match") {
			t.Errorf("err %v does not say the issuer did not match", err)
		}
	})

	t.Run("not JSON", func(t *testing.T) {
		op := newFakeOP(t, newTestClock())
		conn := oidcConnector(t, op, Options{})
		op.set(func(s *opSettings) { s.meta = map[string]any{"issuer": 5} })
		_, err := conn.AuthCodeURL(ctx, testLeg("a"), opCallback)
		if err == nil {
			t.Fatal("malformed discovery accepted")
		}
	})

	t.Run("cancelled request not remembered", func(t *testing.T) {
		_, conn := oidcSetup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := conn.AuthCodeURL(cctx, testLeg("a"), opCallback); err == nil {
			t.Fatal("discovery with a cancelled context succeeded")
		}
		// One visitor giving up must not make the upstream look down to
		// everyone else for the retry window.
		if _, err := conn.AuthCodeURL(ctx, testLeg("a"), opCallback); err != nil {
			t.Fatalf("after a cancelled discovery: %v", err)
		}
	})

	t.Run("concurrent first use", func(t *testing.T) {
		op, conn := oidcSetup(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := conn.AuthCodeURL(ctx, testLeg("a"), opCallback)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := op.hitCount(disc); n != 1 {
			t.Errorf("discovery fetched %d times", n)
		}
	})
}

func TestSanitizeAMR(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{``, nil},
		{`null`, nil},
		{`"pwd"`, nil},
		{`["pwd", 5]`, nil},
		{`{"a": "pwd"}`, nil},
		{`[]`, nil},
		{`["pwd", "pwd", "PWD"]`, []string{"pwd", "PWD"}},
		{`["urn:x:1", "a_b.c-d", "a b", "é", "<script>", "a\nb"]`, []string{"urn:x:1", "a_b.c-d"}},
		{`["` + strings.Repeat("x", 32) + `", "` + strings.Repeat("y", 33) + `"]`, []string{strings.Repeat("x", 32)}},
		{`["a","b","c","d","e","f","g","h","i","j"]`, []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
	} {
		if got := sanitizeAMR(json.RawMessage(tc.raw)); !slices.Equal(got, tc.want) {
			t.Errorf("sanitizeAMR(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestOIDCErrorWraps guards the assumption exchangeError builds on: oauth2
// reports token endpoint answers as *oauth2.RetrieveError, whose error code
// ends up in the log message.
func TestOIDCErrorWraps(t *testing.T) {
	op, conn := oidcSetup(t)
	op.set(func(s *opSettings) { s.tokenStatus, s.tokenBody = 400, `{"error":"invalid_grant"}` })
	_, err := oidcSignIn(t, conn, op)
	var e *Error
	if !errors.As(err, &e) || e.Op != "token exchange" || !strings.Contains(e.Error(), "invalid_grant") {
		t.Errorf("err %v", err)
	}
}

// An app asking Gatehouse for a fresh or recent sign-in makes the leg ask
// the upstream for one (prompt=login / max_age) and check the ID token's
// auth_time: a silent upstream session must not satisfy prompt=login.
func TestOIDCFreshSignIn(t *testing.T) {
	op, conn := oidcSetup(t)
	now := op.clock.Now()
	zero, hour := int64(0), int64(3600)
	cases := []struct {
		name     string
		maxAge   *int64
		authTime any // nil: claim absent
		wantErr  bool
		prompt   string
	}{
		{"no freshness asked, no auth_time", nil, nil, false, ""},
		{"prompt=login, authenticated now", &zero, now.Unix(), false, "login"},
		{"prompt=login, no auth_time", &zero, nil, true, "login"},
		{"prompt=login, an old upstream session", &zero, now.Add(-10 * time.Minute).Unix(), true, "login"},
		{"max_age=3600, 30 minutes ago", &hour, now.Add(-30 * time.Minute).Unix(), false, ""},
		{"max_age=3600, 2 hours ago", &hour, now.Add(-2 * time.Hour).Unix(), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op.set(func(s *opSettings) {
				s.claims = func(m map[string]any) { m["auth_time"] = c.authTime }
			})
			leg := testLeg(c.name)
			leg.MaxAge, leg.Started = c.maxAge, now
			authURL, err := conn.AuthCodeURL(context.Background(), leg, opCallback)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(authURL)
			if got := u.Query().Get("prompt"); got != c.prompt {
				t.Fatalf("prompt = %q, want %q", got, c.prompt)
			}
			if (c.maxAge != nil) != u.Query().Has("max_age") {
				t.Fatalf("max_age in %s, want it iff asked", authURL)
			}
			_, err = conn.Exchange(context.Background(), leg, opCallback, op.authorize(authURL))
			if (err != nil) != c.wantErr || (err != nil && KindOf(err) != Invalid) {
				t.Fatalf("err = %v, want error %t (Invalid)", err, c.wantErr)
			}
		})
	}
}
