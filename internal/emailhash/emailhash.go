// Package emailhash turns an email address into a short pseudonym for log
// lines: the operator can tell that two failed sign-ins were for the same
// address, and find the lines of one address they already know (compute its
// pseudonym with the same key), without the log holding the address itself.
//
// The pseudonym is the first 16 hex characters (64 bits) of HMAC-SHA256
// under a key derived from GATEHOUSE_SECRET. A plain SHA-256 would not do:
// anyone holding the log could hash a list of known addresses and match
// them. Under the secret's key they cannot, and every instance sharing the
// secret gives the same pseudonym. 64 bits keep collisions negligible for
// any realistic number of addresses.
package emailhash

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Hasher computes pseudonyms under one key. The zero Hasher uses the zero
// key: it still hides the address from a casual reader, not from a
// dictionary; production wiring always sets a key.
type Hasher struct{ key [32]byte }

// New returns a Hasher under key.
func New(key [32]byte) Hasher { return Hasher{key: key} }

// Sum returns the pseudonym of email (trimmed and lower-cased first, as the
// store keeps addresses).
func (h Hasher) Sum(email string) string {
	m := hmac.New(sha256.New, h.key[:])
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(m.Sum(nil))[:16]
}
