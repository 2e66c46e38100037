package backchannel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/keys"
)

// staticKeys is a KeySource with fixed keys, the first the default.
type staticKeys []keys.ActiveKey

func (s staticKeys) ActiveFor(alg jose.SignatureAlgorithm) keys.ActiveKey {
	for _, k := range s {
		if alg == "" || k.Algorithm == alg {
			return k
		}
	}
	return keys.ActiveKey{}
}

func edKey(t testing.TB) keys.ActiveKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keys.ActiveKey{ID: "ed-kid-1", Algorithm: jose.EdDSA, Signer: k}
}

func rsaKey(t testing.TB) keys.ActiveKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return keys.ActiveKey{ID: "rsa-kid-1", Algorithm: jose.RS256, Signer: k}
}

func ecKey(t testing.TB) keys.ActiveKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keys.ActiveKey{ID: "ec-kid-1", Algorithm: jose.ES256, Signer: k}
}

// verifyLogoutToken checks token's signature against pub and its header, and
// returns its claims as a generic map (so unexpected members show).
func verifyLogoutToken(t *testing.T, token string, key keys.ActiveKey) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{key.Algorithm})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("signatures = %d", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if h.KeyID != key.ID || h.Algorithm != string(key.Algorithm) {
		t.Errorf("header kid=%q alg=%q, want %q %q", h.KeyID, h.Algorithm, key.ID, key.Algorithm)
	}
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	payload, err := jws.Verify(key.Signer.Public())
	if err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	// A different key of the same kind must not verify it.
	var other crypto.Signer
	switch key.Algorithm {
	case jose.RS256:
		other = rsaKey(t).Signer
	case jose.EdDSA:
		other = edKey(t).Signer
	default:
		other = ecKey(t).Signer
	}
	if _, err := jws.Verify(other.Public()); err == nil {
		t.Error("verifies against an unrelated key")
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestMint(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	all := staticKeys{rsaKey(t), ecKey(t), edKey(t)}
	for _, key := range all {
		t.Run(string(key.Algorithm), func(t *testing.T) {
			// The client's algorithm picks the key.
			m := NewMinter("https://id.example", all, func() time.Time { return now }, 0)
			token, jti, err := m.Mint("app-1", key.Algorithm, "user-42", "sess-9", false)
			if err != nil {
				t.Fatal(err)
			}
			claims := verifyLogoutToken(t, token, key)
			want := []string{"aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"}
			if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, want) {
				t.Errorf("claims %v, want exactly %v (no nonce)", got, want)
			}
			checks := map[string]any{
				"iss": "https://id.example", "aud": "app-1", "sub": "user-42", "sid": "sess-9",
				"iat": float64(now.Unix()), "exp": float64(now.Add(2 * time.Minute).Unix()), "jti": jti,
			}
			for k, v := range checks {
				if claims[k] != v {
					t.Errorf("%s = %v, want %v", k, claims[k], v)
				}
			}
			if len(jti) < 20 {
				t.Errorf("jti %q too short to be unguessable", jti)
			}
			events, ok := claims["events"].(map[string]any)
			if !ok || len(events) != 1 {
				t.Fatalf("events = %#v, want one member", claims["events"])
			}
			if ev, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(ev) != 0 {
				t.Errorf("events = %#v, want the back-channel logout event with an empty object", events)
			}
		})
	}
}

func TestMintFreshJTIAndLifetime(t *testing.T) {
	key := ecKey(t)
	now := time.Unix(1_800_000_000, 0)
	m := NewMinter("https://id.example", staticKeys{key}, func() time.Time { return now }, 30*time.Second)
	seen := map[string]bool{}
	for range 20 {
		token, jti, err := m.Mint("app", "", "u", "", false)
		if err != nil {
			t.Fatal(err)
		}
		if seen[jti] {
			t.Fatalf("jti %q minted twice", jti)
		}
		seen[jti] = true
		claims := verifyLogoutToken(t, token, key)
		if claims["exp"].(float64)-claims["iat"].(float64) != 30 {
			t.Errorf("exp-iat = %v, want the configured 30 s", claims["exp"].(float64)-claims["iat"].(float64))
		}
		if _, ok := claims["sid"]; ok {
			t.Errorf("sid sent without a session ID: %v", claims["sid"])
		}
		if claims["jti"] != jti {
			t.Errorf("jti claim %v, returned %q", claims["jti"], jti)
		}
	}
}

func TestMintErrors(t *testing.T) {
	m := NewMinter("https://id.example", staticKeys{ecKey(t)}, nil, 0)
	if _, _, err := m.Mint("app", "", "u", "", true); !errors.Is(err, ErrSessionRequired) {
		t.Errorf("session required without a session: %v, want ErrSessionRequired", err)
	}
	if _, _, err := m.Mint("app", "", "u", "s", true); err != nil {
		t.Errorf("session required with a session: %v", err)
	}
	if _, _, err := m.Mint("app", "", "", "s", false); err == nil {
		t.Error("minted without a subject")
	}
	if _, _, err := m.Mint("", "", "u", "s", false); err == nil {
		t.Error("minted without a client")
	}
	if _, _, err := m.Mint("app", jose.EdDSA, "u", "s", false); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("without a key of the client's algorithm: %v, want ErrNoSigningKey", err)
	}
	none := NewMinter("https://id.example", staticKeys{}, nil, 0)
	if _, _, err := none.Mint("app", "", "u", "s", false); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("without a key: %v, want ErrNoSigningKey", err)
	}
}
