package mfa

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

var recoveryFormat = regexp.MustCompile(`^[23456789abcdefghjkmnpqrstuvwxyz]{4}-[23456789abcdefghjkmnpqrstuvwxyz]{4}-[23456789abcdefghjkmnpqrstuvwxyz]{4}$`)

func TestNewRecoveryCodes(t *testing.T) {
	seen := map[string]bool{}
	symbols := map[rune]int{}
	const batches = 50
	for b := 0; b < batches; b++ {
		codes, hashes := NewRecoveryCodes()
		if len(codes) != RecoveryCodeCount || len(hashes) != RecoveryCodeCount {
			t.Fatalf("%d codes, %d hashes; want %d", len(codes), len(hashes), RecoveryCodeCount)
		}
		for i, c := range codes {
			if !recoveryFormat.MatchString(c) {
				t.Errorf("code %q: want xxxx-xxxx-xxxx in the unambiguous alphabet", c)
			}
			if seen[c] {
				t.Errorf("code %q repeated", c)
			}
			seen[c] = true
			if !bytes.Equal(hashes[i], HashRecoveryCode(c)) {
				t.Errorf("hash %d is not HashRecoveryCode(%q)", i, c)
			}
			for _, r := range strings.ReplaceAll(c, "-", "") {
				symbols[r]++
			}
		}
	}
	// 6000 symbols: every one of the 31 turns up (each misses with odds
	// below 10^-80), so none is excluded by a sampling bug.
	if len(symbols) != len(recoveryAlphabet) {
		t.Errorf("%d distinct symbols used, want %d: %v", len(symbols), len(recoveryAlphabet), symbols)
	}
	// And none dominates: uniform is about 194 each; rejection sampling
	// gone wrong (folding 31 onto 0) would double one.
	for r, n := range symbols {
		if n > 2*batches*RecoveryCodeCount*12/len(recoveryAlphabet) {
			t.Errorf("symbol %q drawn %d times", r, n)
		}
	}
}

func TestHashRecoveryCode(t *testing.T) {
	want := HashRecoveryCode("k7f3-9qxm-2pza")
	if len(want) != 32 {
		t.Fatalf("hash length %d, want 32 (SHA-256)", len(want))
	}
	for _, in := range []string{"k7f39qxm2pza", "K7F3-9QXM-2PZA", " k7f3 9qxm 2pza ", "k7f3 - 9qxm - 2pza", "k7f3\t9qxm\n2pza", "K7f3--9qXm2pZa"} {
		if !bytes.Equal(HashRecoveryCode(in), want) {
			t.Errorf("HashRecoveryCode(%q) differs from the canonical form", in)
		}
	}
	for _, in := range []string{"k7f3-9qxm-2pzb", "k7f3-9qxm-2pz", "k7f3_9qxm_2pza", ""} {
		if bytes.Equal(HashRecoveryCode(in), want) {
			t.Errorf("HashRecoveryCode(%q) matches a different code", in)
		}
	}
}

func TestRecoveryCodesText(t *testing.T) {
	codes, _ := NewRecoveryCodes()
	now := time.Date(2026, 3, 4, 15, 6, 0, 0, time.FixedZone("CET", 3600))
	txt := RecoveryCodesText("Gatehouse\r\nInjected: yes", "alice@example.com", codes, now)
	lines := strings.Split(strings.TrimSuffix(txt, "\n"), "\n")
	if !strings.Contains(lines[0], "GatehouseInjected: yes recovery codes for alice@example.com") {
		t.Errorf("first line %q: want product (control characters dropped) and email", lines[0])
	}
	if !strings.Contains(txt, "2026-03-04 14:06 UTC") {
		t.Errorf("text lacks the creation time in UTC:\n%s", txt)
	}
	got := lines[len(lines)-len(codes):]
	for i, c := range codes {
		if got[i] != c {
			t.Errorf("line for code %d is %q, want %q", i, got[i], c)
		}
	}
	if n := strings.Count(txt, "\n"); n != len(lines) {
		t.Errorf("%d newlines for %d lines (missing final newline?)", n, len(lines))
	}
}
