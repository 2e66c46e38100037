package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// RecoveryCodeCount is how many codes NewRecoveryCodes makes.
const RecoveryCodeCount = 10

// recoveryAlphabet is lower-case letters and digits without the ones people
// misread or mistype for each other (0 o, 1 l i): 31 symbols.
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// Each code is 12 symbols in groups of 4: 12·log2(31) ≈ 59 bits, so a
// guess at one of a user's ten codes succeeds with odds of about 10 in
// 6·10^17, and the store's hash (plain SHA-256) needs no stretching.
const (
	recoveryGroups    = 3
	recoveryGroupSize = 4
)

// NewRecoveryCodes returns RecoveryCodeCount distinct codes from
// crypto/rand, formatted like "k7f3-9qxm-2pza" for showing once, and their
// hashes (HashRecoveryCode) in the same order for
// storage.ReplaceRecoveryCodes.
func NewRecoveryCodes() (codes []string, hashes [][]byte) {
	seen := make(map[string]bool, RecoveryCodeCount)
	codes = make([]string, 0, RecoveryCodeCount)
	hashes = make([][]byte, 0, RecoveryCodeCount)
	// A repeat has odds of about 45 in 10^17; the loop is bounded anyway.
	for i := 0; len(codes) < RecoveryCodeCount && i < 10*RecoveryCodeCount; i++ {
		c := newRecoveryCode()
		if seen[c] {
			continue
		}
		seen[c] = true
		codes = append(codes, c)
		hashes = append(hashes, HashRecoveryCode(c))
	}
	if len(codes) < RecoveryCodeCount {
		panic("mfa: crypto/rand keeps repeating itself")
	}
	return codes, hashes
}

func newRecoveryCode() string {
	n := recoveryGroups * recoveryGroupSize
	symbols := make([]byte, 0, n)
	var buf [32]byte
	for len(symbols) < n {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
		for _, b := range buf {
			// Rejection sampling keeps every symbol equally likely: 31
			// does not divide 256, so values 248..255 (and 31 of each 32)
			// are dropped rather than folded onto the first symbols.
			v := b & 31
			if v >= byte(len(recoveryAlphabet)) {
				continue
			}
			symbols = append(symbols, recoveryAlphabet[v])
			if len(symbols) == n {
				break
			}
		}
	}
	var sb strings.Builder
	for g := 0; g < recoveryGroups; g++ {
		if g > 0 {
			sb.WriteByte('-')
		}
		sb.Write(symbols[g*recoveryGroupSize : (g+1)*recoveryGroupSize])
	}
	return sb.String()
}

// HashRecoveryCode returns the SHA-256 of input normalised the way people
// type a code back: lower-cased, with spaces (any white space) and dashes
// removed. "K7F3 9QXM 2PZA" and "k7f39qxm2pza" hash like "k7f3-9qxm-2pza".
func HashRecoveryCode(input string) []byte {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, input)
	sum := sha256.Sum256([]byte(norm))
	return sum[:]
}

// RecoveryCodesText is the text file a user downloads at enrolment: a short
// header naming product, account and date, then one code per line.
func RecoveryCodesText(product, email string, codes []string, now time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s recovery codes for %s\n", oneLine(product), oneLine(email))
	fmt.Fprintf(&sb, "Created %s. Each code works once, in place of your second factor.\n", now.UTC().Format("2006-01-02 15:04 UTC"))
	sb.WriteString("Keep them somewhere safe; making new codes voids these.\n\n")
	for _, c := range codes {
		sb.WriteString(c)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// oneLine drops control characters, so a value cannot add lines to the
// header.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
