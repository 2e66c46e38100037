package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"
)

// sealer encrypts and authenticates small values that travel through the
// browser (the upstream sign-in cookies) with AES-256-GCM. The purpose is
// the additional data, so a value sealed for one cookie never opens as
// another; the expiry is inside the sealed value.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key [32]byte) sealer {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("login: sealer: " + err.Error()) // only for a wrong key length
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("login: sealer: " + err.Error())
	}
	return sealer{aead: aead}
}

var errSealed = errors.New("sealed value invalid or expired")

// envelope carries the expiry beside the value.
type envelope struct {
	Exp int64           `json:"e"`
	V   json.RawMessage `json:"v"`
}

func (s sealer) seal(purpose string, v any, expires time.Time) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(envelope{Exp: expires.Unix(), V: raw})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return b64.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

// open decodes a value sealed for purpose into v; errSealed when it was
// tampered with, sealed for something else, or expired at now.
func (s sealer) open(purpose, sealed string, now time.Time, v any) error {
	b, err := b64.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return errSealed
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(purpose))
	if err != nil {
		return errSealed
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || now.Unix() >= env.Exp {
		return errSealed
	}
	if err := json.Unmarshal(env.V, v); err != nil {
		return errSealed
	}
	return nil
}
