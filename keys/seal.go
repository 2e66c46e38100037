package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrWrongSecret is wrapped by errors from decrypting a stored private key. The
// usual cause is a GATEHOUSE_SECRET different from the one the key was written with.
var ErrWrongSecret = errors.New("wrong GATEHOUSE_SECRET?")

// sealer encrypts private keys at rest with AES-256-GCM. The kid is additional
// authenticated data, so a ciphertext copied onto another key's row fails to
// decrypt instead of silently signing under the wrong kid.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(secret []byte) (*sealer, error) {
	k := DeriveKey(secret, PurposeSigningKeyEncryption)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("keys: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: gcm: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext. A random 96-bit nonce is safe here: far
// fewer than 2^32 keys are ever encrypted under one secret.
func (s *sealer) seal(kid string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(kid)), nil
}

func (s *sealer) open(kid string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("cannot decrypt signing key %s: ciphertext too short (%d bytes)", kid, len(sealed))
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		// GCM gives no detail beyond "authentication failed"; by far the most
		// likely cause is a different secret, so say so.
		return nil, fmt.Errorf("cannot decrypt signing key %s: %w", kid, ErrWrongSecret)
	}
	return plain, nil
}
