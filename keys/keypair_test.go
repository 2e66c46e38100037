package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func TestThumbprintRFC7638Example(t *testing.T) {
	// The example key and thumbprint of RFC 7638 section 3.1.
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestStoredKeyRoundTrip(t *testing.T) {
	s := mustSealer(t, testSecret)
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		alg  string
		want any
	}{
		{"RS256", &rsa.PrivateKey{}},
		{"ES256", &ecdsa.PrivateKey{}},
		{"EdDSA", ed25519.PrivateKey{}},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			k, err := newStoredKey(s, tc.alg, now)
			if err != nil {
				t.Fatal(err)
			}
			if k.State != storage.KeyNext || k.Algorithm != tc.alg || !k.CreatedAt.Equal(now) {
				t.Fatalf("unexpected key fields: %+v", k)
			}
			pub, err := parsePublic(k)
			if err != nil {
				t.Fatal(err)
			}
			if kid, _ := thumbprint(pub); kid != k.ID {
				t.Fatalf("kid %s is not the thumbprint %s of the public key", k.ID, kid)
			}
			signer, err := openPrivate(s, k, pub)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.want.(type) {
			case *rsa.PrivateKey:
				if key, ok := signer.(*rsa.PrivateKey); !ok || key.N.BitLen() != 2048 {
					t.Fatalf("signer is %T, want a 2048-bit RSA key", signer)
				}
			case *ecdsa.PrivateKey:
				if key, ok := signer.(*ecdsa.PrivateKey); !ok || key.Curve.Params().Name != "P-256" {
					t.Fatalf("signer is %T, want a P-256 key", signer)
				}
			case ed25519.PrivateKey:
				if _, ok := signer.(ed25519.PrivateKey); !ok {
					t.Fatalf("signer is %T, want an Ed25519 key", signer)
				}
			}
			verifySignature(t, tc.alg, signer, pub)
		})
	}
}

func TestParsePublicRejectsMismatchedAlgorithm(t *testing.T) {
	for _, tc := range []struct{ made, stored string }{{"ES256", "RS256"}, {"ES256", "EdDSA"}, {"EdDSA", "ES256"}} {
		k, err := newStoredKey(mustSealer(t, testSecret), tc.made, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		k.Algorithm = tc.stored
		if _, err := parsePublic(k); err == nil {
			t.Fatalf("a %s key stored as %s was accepted", tc.made, tc.stored)
		}
	}
}

func TestOpenPrivateRejectsForeignPublicKey(t *testing.T) {
	s := mustSealer(t, testSecret)
	a, err := newStoredKey(s, "ES256", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := newStoredKey(s, "ES256", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pubB, err := parsePublic(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openPrivate(s, a, pubB); err == nil {
		t.Fatal("a private key was accepted with another key's public key")
	}
}

// verifySignature signs a message the way JWS RS256/ES256/EdDSA does and checks it with pub.
func verifySignature(t *testing.T, alg string, signer crypto.Signer, pub crypto.PublicKey) {
	t.Helper()
	if alg == "EdDSA" { // Ed25519 signs the message itself
		msg := []byte("header.payload")
		sig, err := signer.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			t.Fatal("EdDSA signature does not verify")
		}
		return
	}
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	switch alg {
	case "RS256":
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("RS256 signature does not verify: %v", err)
		}
	case "ES256":
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatal("ES256 signature does not verify")
		}
	}
}
