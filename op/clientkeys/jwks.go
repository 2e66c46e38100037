// Package clientkeys holds the rules for the public keys a client registers
// for private_key_jwt authentication (RFC 7523 §2.2, OIDC Core §9): which
// keys and algorithms are accepted, where a JWKS may be served from, and a
// bounded, cached fetch of a client's jwks_uri. The admin service checks
// registrations with it; package op verifies assertions with it.
package clientkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the JWS algorithms a client assertion may be signed with
// (token_endpoint_auth_signing_alg_values_supported). No HMAC: a shared
// secret is what client_secret_* is for, and Gatehouse keeps only hashes of
// secrets.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// MaxJWKSBytes bounds a JWKS, registered or fetched: a handful of keys fits
// in a few KiB.
const MaxJWKSBytes = 64 << 10

// maxKeys bounds the keys of one set: each one may be tried per assertion
// without a kid.
const maxKeys = 16

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// privateMembers are the JWK members (RFC 7518 §6) that carry private or
// symmetric key material. A registration must hold public keys only: the
// private half belongs to the client alone, and Gatehouse should not be
// where it leaks from.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWKS parses a JWKS and keeps the keys usable for client assertions.
// A key with private or symmetric material fails the whole set. With strict
// (a registration), any key that cannot verify assertions is an error naming
// it; without (a document fetched from the client's jwks_uri, which may also
// publish encryption keys), such keys are skipped. The set must keep at
// least one key.
func ParseJWKS(raw []byte, strict bool) (*jose.JSONWebKeySet, error) {
	if len(raw) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWKS is larger than %d KiB", MaxJWKSBytes>>10)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errors.New(`JWKS must be a JSON object {"keys": [...]}`)
	}
	if len(doc.Keys) > maxKeys {
		return nil, fmt.Errorf("JWKS has %d keys; at most %d", len(doc.Keys), maxKeys)
	}
	set := &jose.JSONWebKeySet{}
	for i, rawKey := range doc.Keys {
		k, err := parseKey(rawKey)
		if err == nil {
			err = checkKey(k)
		}
		if errors.Is(err, errPrivate) {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if err != nil {
			if strict {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			continue
		}
		if k.KeyID != "" && len(set.Key(k.KeyID)) > 0 {
			if strict {
				return nil, fmt.Errorf("key %d: kid %q is used twice", i+1, k.KeyID)
			}
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS has no public signing key Gatehouse can use (RSA ≥ 2048 bits, EC P-256 or Ed25519)")
	}
	return set, nil
}

// Normalize checks a JWKS given at registration (strictly, see ParseJWKS)
// and returns it as Gatehouse stores it: compact JSON of the public keys.
func Normalize(raw []byte) (string, error) {
	set, err := ParseJWKS(raw, true)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("encode JWKS: %w", err)
	}
	return string(b), nil
}

var errPrivate = errors.New("contains private or symmetric key material; register the public keys only")

func parseKey(raw json.RawMessage) (jose.JSONWebKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return jose.JSONWebKey{}, errors.New("not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return jose.JSONWebKey{}, fmt.Errorf("%w (member %q)", errPrivate, m)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("not a valid JWK: %v", err)
	}
	return k, nil
}

// checkKey: a public signing key of a supported type and strength, whose
// use and alg (when given) fit client assertions.
func checkKey(k jose.JSONWebKey) error {
	if !k.IsPublic() {
		return errPrivate
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q: only signing keys (use \"sig\") verify assertions", k.Use)
	}
	if k.Algorithm != "" && !slices.Contains(Algorithms, jose.SignatureAlgorithm(k.Algorithm)) {
		return fmt.Errorf("alg %q: use one of %s", k.Algorithm, algList())
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits: at least %d", pub.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return fmt.Errorf("EC curve %s: only P-256 (ES256)", pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("key type %T: use RSA, EC P-256 or Ed25519", k.Key)
	}
	return nil
}

// Fits reports whether key k may verify a signature made with alg: its
// declared alg (if any) is alg, and its type is alg's.
func Fits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256 || alg == jose.PS256
	case *ecdsa.PublicKey:
		return alg == jose.ES256
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

func algList() string {
	names := make([]string, 0, len(Algorithms))
	for _, a := range Algorithms {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// ValidateURI checks a jwks_uri like Gatehouse's other client URIs: an
// absolute https URL with a host, or http on a loopback host (localhost,
// 127.0.0.0/8, [::1]) for development; no fragment, no user name or
// password. As with back-channel logout URIs, whether the host is internal
// is not checked: administrators register clients and may mean an internal
// host; only registered URIs are ever fetched, and redirects are not
// followed.
func ValidateURI(raw string) error {
	if strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Hostname() == "" {
		return errors.New("must be an absolute URL with a host")
	}
	if u.User != nil {
		return errors.New("must not contain a user name or password")
	}
	switch {
	case u.Scheme == "https" && strings.HasPrefix(raw, "https:"):
		return nil
	case u.Scheme == "http" && strings.HasPrefix(raw, "http:") && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("must use https (http only on localhost or a loopback address), scheme in lower case")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
