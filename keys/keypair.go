package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// rsaBits is the RSA modulus size for RS256 keys: the common floor that every
// relying party accepts, and signing with 3072 or 4096 bits costs 3–8× more.
const rsaBits = 2048

// algorithms are the algorithms Gatehouse signs with, in the order JWKS and
// discovery list them after the default one. Each has an active and a next
// key at all times (docs/design.md, "Signing").
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// Algorithms returns the algorithms Gatehouse signs with: RS256, ES256 and
// EdDSA (Ed25519). A client may choose any of them for its tokens.
func Algorithms() []string {
	out := make([]string, len(algorithms))
	for i, a := range algorithms {
		out[i] = string(a)
	}
	return out
}

// CheckAlgorithm reports whether alg is one Gatehouse signs with. The
// error names the choices.
func CheckAlgorithm(alg string) error {
	if slices.Contains(algorithms, jose.SignatureAlgorithm(alg)) {
		return nil
	}
	return fmt.Errorf("keys: unsupported signing algorithm %q (want RS256, ES256 or EdDSA)", alg)
}

// generateSigner creates a fresh private key for alg.
func generateSigner(alg string) (crypto.Signer, error) {
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("keys: generate RSA key: %w", err)
		}
		return k, nil
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate P-256 key: %w", err)
		}
		return k, nil
	case jose.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate Ed25519 key: %w", err)
		}
		return k, nil
	default:
		return nil, CheckAlgorithm(alg)
	}
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub. Used as
// kid: it is stable, unique per key and lets anyone check that a kid matches its key.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// newStoredKey generates a key for alg and returns it ready for the store
// (private key encrypted) in state next. now is the creation time.
func newStoredKey(s *sealer, alg string, now time.Time) (*storage.SigningKey, error) {
	signer, err := generateSigner(alg)
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: marshal public key: %w", err)
	}
	sealed, err := s.seal(kid, priv)
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{
		ID:         kid,
		Algorithm:  alg,
		State:      storage.KeyNext,
		PrivateKey: sealed,
		PublicKey:  pub,
		CreatedAt:  now.UTC(),
	}, nil
}

// parsePublic decodes a stored public key and checks it fits the key's algorithm,
// so a corrupt row fails at load time rather than when a relying party verifies.
func parsePublic(k *storage.SigningKey) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("keys: parse public key %s: %w", k.ID, err)
	}
	if err := checkKeyType(k.Algorithm, pub); err != nil {
		return nil, fmt.Errorf("keys: public key %s: %w", k.ID, err)
	}
	return pub, nil
}

func checkKeyType(alg string, pub crypto.PublicKey) error {
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		if _, ok := pub.(*rsa.PublicKey); ok {
			return nil
		}
	case jose.ES256:
		if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P256() {
			return nil
		}
	case jose.EdDSA:
		if _, ok := pub.(ed25519.PublicKey); ok {
			return nil
		}
	default:
		return CheckAlgorithm(alg)
	}
	return fmt.Errorf("key type %T does not match algorithm %s", pub, alg)
}

// openPrivate decrypts and decodes a stored private key and checks that it
// belongs to the stored public key pub.
func openPrivate(s *sealer, k *storage.SigningKey, pub crypto.PublicKey) (crypto.Signer, error) {
	der, err := s.open(k.ID, k.PrivateKey)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: parse private key %s: %w", k.ID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: private key %s: %T cannot sign", k.ID, parsed)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if eq, ok := signer.Public().(equaler); !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("keys: private key %s does not match its public key", k.ID)
	}
	return signer, nil
}
