package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func jwksJSON(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func edKey(t *testing.T, kid string) (jose.JSONWebKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}, priv
}

func TestNormalizeRefusesPrivateAndWeakKeys(t *testing.T) {
	pub, priv := edKey(t, "k1")
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := map[string]struct {
		doc  []byte
		want string
	}{
		"private Ed25519": {jwksJSON(t, jose.JSONWebKey{Key: priv, KeyID: "k1"}), "private"},
		"symmetric":       {jwksJSON(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h"}), "private or symmetric"},
		"EC P-384":        {jwksJSON(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "e"}), "P-256"},
		"RSA 1024":        {jwksJSON(t, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "r"}), "2048"},
		"encryption key":  {jwksJSON(t, jose.JSONWebKey{Key: pub.Key, KeyID: "x", Use: "enc"}), "use"},
		"HMAC alg":        {jwksJSON(t, jose.JSONWebKey{Key: pub.Key, KeyID: "x", Algorithm: "HS256"}), "alg"},
		"duplicate kid":   {jwksJSON(t, pub, pub), "twice"},
		"no keys":         {[]byte(`{"keys":[]}`), "no public signing key"},
		"not a JWKS":      {[]byte(`[1,2]`), "JSON object"},
		"too big":         {[]byte(`{"keys":[],"pad":"` + strings.Repeat("a", MaxJWKSBytes) + `"}`), "larger"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Normalize(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Normalize = %v, want an error with %q", err, tc.want)
			}
		})
	}

	// A private key is refused even when fetched (lenient) …
	if _, err := ParseJWKS(jwksJSON(t, pub, jose.JSONWebKey{Key: priv, KeyID: "k2"}), false); err == nil {
		t.Error("a fetched JWKS with a private key was accepted")
	}
	// … while a fetched set's unusable keys are skipped, not fatal.
	set, err := ParseJWKS(jwksJSON(t, pub, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "e"}), false)
	if err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" {
		t.Fatalf("lenient parse: %v, %+v", err, set)
	}
}

func TestNormalizeKeepsPublicKeysOnly(t *testing.T) {
	pub, _ := edKey(t, "k1")
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	out, err := Normalize(jwksJSON(t, pub, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r1", Algorithm: "PS256"}))
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseJWKS([]byte(out), true)
	if err != nil || len(set.Keys) != 2 || !Fits(set.Keys[1], jose.PS256) || Fits(set.Keys[1], jose.RS256) || !Fits(set.Keys[0], jose.EdDSA) {
		t.Fatalf("normalized set: %v %s", err, out)
	}
}

func TestValidateURI(t *testing.T) {
	for _, ok := range []string{"https://app.example/jwks.json", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/k"} {
		if err := ValidateURI(ok); err != nil {
			t.Errorf("ValidateURI(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"http://app.example/jwks", "ftp://app.example/jwks", "https://u:p@app.example/jwks", "https://app.example/jwks#k", "/jwks", "HTTPS://app.example/jwks", "https:///jwks"} {
		if err := ValidateURI(bad); err == nil {
			t.Errorf("ValidateURI(%q) accepted", bad)
		}
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer serves whatever doc holds and counts the requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	doc  []byte
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		d := s.doc
		s.mu.Unlock()
		if d == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) { s.mu.Lock(); s.doc = doc; s.mu.Unlock() }

func TestFetcherCachesAndPicksUpRotation(t *testing.T) {
	ctx := context.Background()
	k1, _ := edKey(t, "k1")
	k2, _ := edKey(t, "k2")
	srv := newJWKSServer(t, jwksJSON(t, k1))
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := NewFetcher(FetcherConfig{Now: clk.now})
	uri := srv.URL + "/jwks"

	for range 3 {
		set, err := f.Keys(ctx, uri, "k1")
		if err != nil || len(set.Key("k1")) != 1 {
			t.Fatalf("Keys: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for three look-ups within the TTL, want 1", n)
	}

	// The client rotates to k2. An assertion naming k2 causes one refetch,
	// but not before a minute since the last one.
	srv.set(jwksJSON(t, k2))
	if set, _ := f.Keys(ctx, uri, "k2"); set == nil || len(set.Key("k2")) != 0 {
		t.Fatal("refetched within a minute of the last fetch")
	}
	clk.advance(refetchEvery)
	set, err := f.Keys(ctx, uri, "k2")
	if err != nil || len(set.Key("k2")) != 1 || len(set.Key("k1")) != 0 {
		t.Fatalf("after the rotation: %v, %+v", err, set)
	}
	if _, err := f.Keys(ctx, uri, "unknown"); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (an unknown kid right after a fetch must not fetch again)", n)
	}

	// The host fails: the set fetched before keeps serving (a blip) …
	srv.set(nil)
	clk.advance(cacheTTL)
	if set, err := f.Keys(ctx, uri, "k2"); err != nil || len(set.Key("k2")) != 1 {
		t.Fatalf("stale set while the host fails: %v", err)
	}
	// … but not for ever.
	clk.advance(maxStale)
	if _, err := f.Keys(ctx, uri, "k2"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("an hour-old set still served, err %v", err)
	}
}

func TestFetcherRefusesOversizeSlowAndRedirects(t *testing.T) {
	ctx := context.Background()
	k1, _ := edKey(t, "k1")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(jwksJSON(t, k1)[:10])
			_, _ = w.Write([]byte(strings.Repeat(" ", MaxJWKSBytes)))
		case "/slow":
			select { // answers only when the client gives up (or the test ends)
			case <-r.Context().Done():
			case <-release:
			}
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/ok":
			_, _ = w.Write(jwksJSON(t, k1))
		}
	}))
	t.Cleanup(srv.Close)
	f := NewFetcher(FetcherConfig{Timeout: 300 * time.Millisecond})

	if _, err := f.Keys(ctx, srv.URL+"/big", ""); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversize JWKS: %v", err)
	}
	start := time.Now()
	if _, err := f.Keys(ctx, srv.URL+"/slow", ""); err == nil {
		t.Error("slow JWKS accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow JWKS held the caller %v (timeout 300ms)", d)
	}
	if _, err := f.Keys(ctx, srv.URL+"/redirect", ""); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect: %v (must not be followed)", err)
	}
	if _, err := f.Keys(ctx, "http://example.com/jwks", ""); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http on a non-loopback host: %v", err)
	}
	if set, err := f.Keys(ctx, srv.URL+"/ok", "k1"); err != nil || len(set.Keys) != 1 {
		t.Errorf("good JWKS: %v", err)
	}
}
