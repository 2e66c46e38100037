package op

// Micro-benchmarks of the pure functions on the token hot path. The
// end-to-end numbers over HTTP are in cmd/gatehouse/bench_test.go; these say
// how much of a request each step costs.
//
//	go test ./op -run '^$' -bench . -benchmem

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

func benchAccessToken() *accessToken {
	now := time.Unix(1_760_000_000, 0)
	return &accessToken{
		ID: randomToken(16), GrantID: randomToken(16), ClientID: "gh-0123456789abcdef0123",
		IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(),
		Scopes: []string{"openid", "email", "profile", "offline_access"},
	}
}

func BenchmarkAccessTokenEncode(b *testing.B) {
	t := benchAccessToken()
	b.ReportAllocs()
	for b.Loop() {
		_ = t.encode()
	}
}

func BenchmarkDecodeAccessToken(b *testing.B) {
	s := benchAccessToken().encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeAccessToken(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewAccessToken is what CreateAccessToken does per token: a random
// ID plus the encoding, before zitadel encrypts (opaque) or signs (JWT) it.
func BenchmarkNewAccessToken(b *testing.B) {
	p := &Provider{}
	now := time.Now()
	scopes := []string{"openid", "email"}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.newAccessToken("grant-id-0123456789", "gh-0123456789abcdef0123", "", scopes, []string{"https://api.example.com"}, now, now.Add(time.Hour))
	}
}

func BenchmarkSuccessorRefreshToken(b *testing.B) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		b.Fatal(err)
	}
	parent := randomToken(32)
	b.ReportAllocs()
	for b.Loop() {
		_ = successorRefreshToken(key, parent)
	}
}

// BenchmarkOpaqueAccessToken seals and opens an opaque access token the way
// the provider does: zitadel's AES-256-GCM crypto (a compact JWE with A256GCMKW)
// around "<token id>:<subject>".
func BenchmarkOpaqueAccessToken(b *testing.B) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		b.Fatal(err)
	}
	c := zop.NewAES256GCMCrypto(key, "gh1")
	plain := benchAccessToken().encode() + ":gh-0123456789abcdef0123"
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encrypt(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	sealed, err := c.Encrypt(plain)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decrypt(sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSign signs an ID-token-sized payload with each algorithm a
// client may choose (keys as package keys makes them: RSA 2048, P-256,
// Ed25519) and reports signatures per second, and verifies it, which is
// what userinfo and introspection do for JWT access tokens (and relying
// parties for ID tokens). Short runs are enough to compare them:
//
//	go test ./op -run '^$' -bench Sign -benchtime 200ms
func BenchmarkSign(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{
		"iss": "https://id.example.com", "sub": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "aud": []string{"gh-0123456789abcdef0123"},
		"exp": 1_760_003_600, "iat": 1_760_000_000, "auth_time": 1_760_000_000, "nonce": "n-0S6_WzA2Mj",
		"at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "sid": "s-0123456789", "role": "USER", "email_verified": true,
		"email": "alice@example.com", "name": "Alice Example",
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.RS256, rsaKey}, {jose.ES256, ecKey}, {jose.EdDSA, edKey}} {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(tc.alg)+"/sign", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				jws, err := signer.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
		})
		jws, err := signer.Sign(payload)
		if err != nil {
			b.Fatal(err)
		}
		compact, err := jws.CompactSerialize()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(tc.alg)+"/verify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{tc.alg})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := parsed.Verify(tc.key.Public()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verify/s")
		})
	}
}
