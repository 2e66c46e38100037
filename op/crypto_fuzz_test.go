package op

import (
	"crypto/rand"
	"strings"
	"testing"
)

// FuzzGCMCrypto: Decrypt never panics and opens only what Encrypt sealed with
// the same key. The key is random per run, so no input the fuzzer makes up
// can be authentic; and every alteration of a real token — one byte changed,
// cut short, extended — is refused, not opened to the same or another text.
func FuzzGCMCrypto(f *testing.F) {
	f.Add("token-id:subject", "", uint16(0), byte(1), "")
	f.Add("", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uint16(5), byte(0x20), "A")
	f.Add(strings.Repeat("x", 100), "%%%not base64%%%", uint16(1<<15), byte(0xff), "==")
	f.Add("a", "a===", uint16(37), byte(3), "\x00")
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		f.Fatal(err)
	}
	c, err := newGCMCrypto(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, plain, token string, pos uint16, flip byte, tail string) {
		if got, err := c.Decrypt(token); err == nil {
			t.Fatalf("made-up token %q opened to %q", token, got)
		} else if got != "" {
			t.Fatalf("refused token %q still returned %q", token, got)
		}

		sealed, err := c.Encrypt(plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) <= 8<<10 { // Decrypt's bound on input; real tokens are far smaller
			if got, err := c.Decrypt(sealed); err != nil || got != plain {
				t.Fatalf("round trip of %q: %q, %v", plain, got, err)
			}
		}

		// One byte changed, anywhere.
		b := []byte(sealed)
		i := int(pos) % len(b)
		b[i] ^= flip
		if mutated := string(b); mutated != sealed {
			if got, err := c.Decrypt(mutated); err == nil {
				t.Fatalf("token with byte %d changed (%q -> %q) opened to %q", i, sealed[i], b[i], got)
			}
		}
		// Cut short, or extended.
		if got, err := c.Decrypt(sealed[:i]); err == nil {
			t.Fatalf("token cut to %d bytes opened to %q", i, got)
		}
		if tail != "" {
			if got, err := c.Decrypt(sealed + tail); err == nil {
				t.Fatalf("token with %q appended opened to %q", tail, got)
			}
		}
	})
}
