package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// Purposes for DeriveKey. Each use of GATEHOUSE_SECRET gets its own purpose so a
// key leaked or misused in one place says nothing about the others.
const (
	// PurposeSigningKeyEncryption encrypts signing private keys at rest.
	PurposeSigningKeyEncryption = "signing-key-encryption"
)

// DeriveKey derives a 32-byte key for one purpose from the server secret with
// HKDF-SHA256 (RFC 5869), using purpose as the info parameter. The same secret
// and purpose always give the same key, so every instance sharing
// GATEHOUSE_SECRET derives the same keys.
//
// No salt is used: the secret is expected to be high-entropy already, and a salt
// would have to be shared by every instance anyway.
func DeriveKey(secret []byte, purpose string) [32]byte {
	k, err := hkdf.Key(sha256.New, secret, nil, purpose, 32)
	if err != nil {
		// hkdf.Key fails only for lengths above 255*32 bytes (or when the FIPS
		// module forbids short secrets); 32 bytes is always allowed otherwise.
		panic("keys: hkdf: " + err.Error())
	}
	var out [32]byte
	copy(out[:], k)
	return out
}
