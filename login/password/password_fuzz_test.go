package password

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// FuzzParseHash: the stored-hash parsers never panic, and what they accept is
// what Hash could have written:
//   - argon2id: parameters and lengths within the limits, and the hash is its
//     own canonical encoding (encodeArgon2 of what was parsed), numbers aside
//     (leading zeros are read as the number);
//   - bcrypt: 60 characters of the bcrypt alphabet whose cost the bcrypt
//     package reads the same.
//
// Verify on any input returns ok only without error, and for a hash that does
// not parse an ErrMalformedHash or ErrUnsupportedHash (checked where the hash
// is cheap to compute).
func FuzzParseHash(f *testing.F) {
	h, err := New(Config{Argon2Memory: 64, Argon2Time: 1})
	if err != nil {
		f.Fatal(err)
	}
	argon, _ := h.Hash(context.Background(), "pw")
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, s := range []string{
		argon,
		strings.Replace(argon, "m=64,", "m=064,", 1),
		strings.Replace(argon, "m=64,", "m=+64,", 1),
		strings.Replace(argon, "$argon2id$", "$argon2i$", 1),
		argon + "=",
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=1048577,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		string(bc),
		"$2y$" + string(bc[4:]),
		"$2b$04$" + strings.Repeat(".", 53),
		"$2a$31$" + strings.Repeat("a", 53),
		"$2a$4$" + strings.Repeat("a", 54),
		"$2a$ 4$" + strings.Repeat("a", 53),
		"", "$", "$2", "$argon2", "plain", "{SSHA}abc",
	} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, hash, pw string) {
		parsed := false
		switch {
		case strings.HasPrefix(hash, "$argon2"):
			p, salt, key, err := parseArgon2(hash)
			if err != nil {
				if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash) {
					t.Fatalf("parseArgon2(%q): unclassified error %v", hash, err)
				}
				break
			}
			parsed = true
			if p.time < 1 || p.time > maxArgon2Time || p.threads < 1 || p.memory < 8*uint32(p.threads) || p.memory > maxArgon2Memory ||
				len(salt) < minArgon2Salt || len(key) < minArgon2Key || len(key) > maxArgon2Key {
				t.Fatalf("parseArgon2(%q) accepted out-of-range %+v, salt %d, key %d bytes", hash, p, len(salt), len(key))
			}
			canon := encodeArgon2(p, salt, key)
			parts, cparts := strings.Split(hash, "$"), strings.Split(canon, "$")
			parts[3] = cparts[3] // the one place a number may be spelt with leading zeros
			if strings.Join(parts, "$") != canon {
				t.Fatalf("parseArgon2 accepted %q, not the encoding %q of what it read", hash, canon)
			}
			if p2, s2, k2, err := parseArgon2(canon); err != nil || p2 != p || string(s2) != string(salt) || string(k2) != string(key) {
				t.Fatalf("canonical %q reads back as %+v, %v", canon, p2, err)
			}
			if uint64(p.memory)*uint64(p.time) > 1024 {
				return // too slow to verify on every input
			}
		case strings.HasPrefix(hash, "$2"):
			cost, err := parseBcrypt(hash)
			if err != nil {
				if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash) {
					t.Fatalf("parseBcrypt(%q): unclassified error %v", hash, err)
				}
				break
			}
			parsed = true
			if len(hash) != 60 || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
				t.Fatalf("parseBcrypt(%q) accepted cost %d", hash, cost)
			}
			if c, err := bcrypt.Cost([]byte(hash)); err != nil || c != cost {
				t.Fatalf("parseBcrypt(%q) = cost %d; bcrypt reads %d, %v", hash, cost, c, err)
			}
			if cost > bcrypt.MinCost {
				return // too slow to verify on every input
			}
		}
		ok, rehash, err := h.Verify(context.Background(), hash, pw)
		switch {
		case err != nil && (ok || rehash):
			t.Fatalf("Verify(%q) = %v, %v with error %v", hash, ok, rehash, err)
		case !parsed && err == nil:
			t.Fatalf("Verify(%q) = %v, no error, for a hash that does not parse", hash, ok)
		case !parsed && !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash):
			t.Fatalf("Verify(%q): unclassified error %v", hash, err)
		}
	})
}

// FuzzHashVerify: a password verifies against its own hash, and no other
// password does — for argon2id, and for bcrypt within its 72 bytes (beyond
// them bcrypt reads only the first 72, as bcryptjs did). Errors are never
// returned for a hash Hash made.
func FuzzHashVerify(f *testing.F) {
	for _, s := range []string{"pw", "", "Passw0rd-long", "ünïcödé", "\x00", "\xff\xfe", strings.Repeat("a", 72), strings.Repeat("a", 100)} {
		f.Add(s, s+"x")
	}
	f.Add("same", "same")
	f.Add("a-bcrypt-password", "a-bcrypt-password\x00")
	argon, err := New(Config{Argon2Memory: 64, Argon2Time: 1})
	if err != nil {
		f.Fatal(err)
	}
	const bcryptPassword = "a-bcrypt-password"
	bc, err := bcrypt.GenerateFromPassword([]byte(bcryptPassword), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, pw, other string) {
		hash, err := argon.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := parseArgon2(hash); err != nil {
			t.Fatalf("Hash wrote %q, which does not parse: %v", hash, err)
		}
		if ok, rehash, err := argon.Verify(ctx, hash, pw); !ok || rehash || err != nil {
			t.Fatalf("argon2id: own password: %v, %v, %v", ok, rehash, err)
		}
		if ok, _, err := argon.Verify(ctx, hash, other); ok != (other == pw) || err != nil {
			t.Fatalf("argon2id: %q against the hash of %q: %v, %v", other, pw, ok, err)
		}
		// bcrypt: one fixed hash, so that each input costs one comparison.
		ok, _, err := argon.Verify(ctx, string(bc), pw)
		if err != nil || ok != (pw == bcryptPassword) {
			t.Fatalf("bcrypt: %q against the hash of %q: %v, %v", pw, bcryptPassword, ok, err)
		}
	})
}
