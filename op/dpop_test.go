package op

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestSameHTU(t *testing.T) {
	const endpoint = "https://id.example.com/oauth/token"
	for _, tc := range []struct {
		htu  string
		same bool
	}{
		{"https://id.example.com/oauth/token", true},
		{"https://ID.Example.COM/oauth/token", true},
		{"HTTPS://id.example.com:443/oauth/token", true},
		{"https://id.example.com/oauth/token?x=1#f", true},
		{"https://id.example.com/oauth/token/", false},
		{"https://id.example.com/OAUTH/token", false},
		{"http://id.example.com/oauth/token", false},
		{"https://id.example.com:8443/oauth/token", false},
		{"https://evil.example.com/oauth/token", false},
		{"https://user@id.example.com/oauth/token", false},
		{"", false},
	} {
		if got := sameHTU(tc.htu, endpoint); got != tc.same {
			t.Errorf("sameHTU(%q) = %t, want %t", tc.htu, got, tc.same)
		}
	}
}

// A nonce is good for its window and the next, and only under its key.
func TestDPoPNonceWindows(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	p := &Provider{cfg: Config{DPoPNonceKey: [32]byte{1}}}
	n := p.dpopNonce(now)
	if !p.validDPoPNonce(n, now) || !p.validDPoPNonce(n, now.Add(dpopNonceWindow)) {
		t.Fatal("a fresh nonce is refused within its window or the next")
	}
	if p.validDPoPNonce(n, now.Add(2*dpopNonceWindow)) {
		t.Error("a nonce two windows old is accepted")
	}
	other := &Provider{cfg: Config{DPoPNonceKey: [32]byte{2}}}
	if other.validDPoPNonce(n, now) {
		t.Error("a nonce made under another key is accepted")
	}
	if p.validDPoPNonce("", now) || p.validDPoPNonce(n[:len(n)-1], now) {
		t.Error("an empty or cut nonce is accepted")
	}
}

// Proofs a client library would never send: each is invalid_dpop_proof,
// checked without any store.
func TestParseDPoPRefuses(t *testing.T) {
	now := time.Now().UTC()
	p := &Provider{cfg: Config{Issuer: "https://id.example.com", Now: func() time.Time { return now }}}
	endpoint := p.cfg.Issuer + pathToken
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := func() map[string]any {
		return map[string]any{"jti": "j1", "htm": "POST", "htu": endpoint, "iat": now.Unix()}
	}
	sign := func(alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, c map[string]any) string {
		t.Helper()
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(c)
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	good := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	withoutJWK := (&jose.SignerOptions{}).WithType("dpop+jwt")
	wrongType := (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT")
	privateJWK := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: priv})

	req := func(proof string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, endpoint, nil)
		r.Header.Set("DPoP", proof)
		return r
	}
	if proof, err := p.parseDPoP(req(sign(jose.ES256, priv, good, claims())), endpoint, ""); err != nil || proof == nil || proof.jkt == "" {
		t.Fatalf("a valid proof: %v %v", proof, err)
	}
	noneCase := strings.Join([]string{"eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ", "eyJqdGkiOiJqMSJ9", ""}, ".")
	for name, proof := range map[string]string{
		"HS256":             sign(jose.HS256, []byte("0123456789abcdef0123456789abcdef"), withoutJWK, claims()),
		"alg none":          noneCase,
		"no jwk":            sign(jose.ES256, priv, withoutJWK, claims()),
		"typ JWT":           sign(jose.ES256, priv, wrongType, claims()),
		"private jwk":       sign(jose.ES256, priv, privateJWK, claims()),
		"too long":          strings.Repeat("a", maxDPoPProof+1),
		"iat as a string":   sign(jose.ES256, priv, good, map[string]any{"jti": "j1", "htm": "POST", "htu": endpoint, "iat": "now"}),
		"iat missing":       sign(jose.ES256, priv, good, map[string]any{"jti": "j1", "htm": "POST", "htu": endpoint}),
		"jti over the size": sign(jose.ES256, priv, good, map[string]any{"jti": strings.Repeat("j", maxDPoPJTI+1), "htm": "POST", "htu": endpoint, "iat": now.Unix()}),
	} {
		_, err := p.parseDPoP(req(proof), endpoint, "")
		var de *dpopError
		if !errors.As(err, &de) || de.code != errInvalidDPoPProof {
			t.Errorf("%s: %v, want invalid_dpop_proof", name, err)
		}
	}
	two := req(sign(jose.ES256, priv, good, claims()))
	two.Header.Add("DPoP", sign(jose.ES256, priv, good, claims()))
	if _, err := p.parseDPoP(two, endpoint, ""); err == nil {
		t.Error("two DPoP headers accepted")
	}
}
