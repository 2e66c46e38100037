package keys

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestDeriveKeyKnownAnswer(t *testing.T) {
	// RFC 5869 appendix A.3: SHA-256, zero-length salt and info. DeriveKey uses no
	// salt, so with an empty purpose it must give the first 32 bytes of that OKM.
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	want := "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	got := DeriveKey(ikm, "")
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("DeriveKey = %x, want %s", got, want)
	}
}

func TestDeriveKeySeparatesPurposesAndSecrets(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := DeriveKey(secret, PurposeSigningKeyEncryption)
	if a != DeriveKey(secret, PurposeSigningKeyEncryption) {
		t.Fatal("DeriveKey is not deterministic")
	}
	if a == DeriveKey(secret, "csrf") {
		t.Fatal("different purposes gave the same key")
	}
	if a == DeriveKey([]byte("another secret, just as long...."), PurposeSigningKeyEncryption) {
		t.Fatal("different secrets gave the same key")
	}
}
