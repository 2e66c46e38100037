package op

import (
	"strings"
	"testing"
)

func TestGCMCrypto(t *testing.T) {
	c, err := newGCMCrypto([32]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.Encrypt("token-id:subject")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "subject") {
		t.Fatal("plaintext visible in the sealed token")
	}
	if got, err := c.Decrypt(sealed); err != nil || got != "token-id:subject" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	again, _ := c.Encrypt("token-id:subject")
	if again == sealed {
		t.Error("two seals of the same text are equal: the nonce is not random")
	}
	other, _ := newGCMCrypto([32]byte{9})
	// Tampering, another key, truncation and garbage are all refused, without panics.
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 'A' ^ 'B'
	// The same bytes spelt another way: a spare bit of the last character set
	// (44 bytes leave 2 spare bits), or a line break the plain decoder skips.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sealed[len(sealed)-1])
	respelt := sealed[:len(sealed)-1] + string(alphabet[last^1])
	for name, in := range map[string]string{
		"spare bit": respelt,
		"newline":   sealed[:5] + "\n" + sealed[5:],
		"crlf":      sealed + "\r\n",
		"tampered":  string(flipped),
		"truncated": sealed[:10],
		"empty":     "",
		"garbage":   "%%%not base64%%%",
		"huge":      strings.Repeat("A", 9<<10),
	} {
		if _, err := c.Decrypt(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := other.Decrypt(sealed); err == nil {
		t.Error("another key opened the token")
	}
}
