package policy

import (
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzNormalizeEmail: normalising is idempotent and yields a trimmed,
// lower-case string; surrounding white space and ASCII case never make two
// accounts (the same address typed otherwise normalises the same). An address
// CheckEmail accepts is one plain addr-spec that net/mail reads back
// unchanged, with no white space, control or format characters (which could
// reach a mail header, or make one address look like another).
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "  Alice@Example.COM\n", "a.b+tag@sub.example.co.uk", "élodie@exemple.fr", "ÉLODIE@EXEMPLE.FR",
		"İstanbul@example.com", "\u212Aelvin@example.com", "ſam@example.com", "ΣΑΣ@example.gr", "\u00a0a@b.co\u2028", "ali\u200bce@example.com", "alice\u202e@example.com",
		"alice@example.com\x00", "a@b.c\xff", "\"a b\"@example.com", "Alice <alice@example.com>", "a@b.c\r\nBcc: x@y.z",
		"", " ", "@", "a@@b.co", "a@b", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeEmail(s)
		if again := NormalizeEmail(n); again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, again)
		}
		if strings.TrimSpace(n) != n || strings.ToLower(n) != n {
			t.Fatalf("%q -> %q: not trimmed and lower-case", s, n)
		}
		if other := NormalizeEmail(" \t" + asciiUpper(s) + "\r\n "); other != n {
			t.Fatalf("%q -> %q, but with upper-case ASCII and white space around -> %q", s, n, other)
		}
		if CheckEmail(n) != "" {
			return
		}
		if !utf8.ValidString(n) || len(n) > MaxEmailLength || strings.Count(n, "@") != 1 ||
			strings.IndexFunc(n, func(r rune) bool { return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp, unicode.Cc, unicode.Cf) }) >= 0 {
			t.Fatalf("CheckEmail accepted %q (from %q)", n, s)
		}
		if a, err := mail.ParseAddress(n); err != nil || a.Address != n || a.Name != "" {
			t.Fatalf("CheckEmail accepted %q, which net/mail reads as %+v, %v", n, a, err)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
