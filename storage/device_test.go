package storage

import "testing"

func TestNormalizeUserCode(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdfghjk", "BCDFGHJK", true},
		{" bcdf ghjk ", "BCDFGHJK", true},
		{"bcdf-ghj", "", false},       // too short
		{"bcdf-ghjkl", "", false},     // too long
		{"ABCD-GHJK", "", false},      // a vowel: never in a code
		{"BCDF-GHJ1", "", false},      // a digit
		{"BCDF-GHJ\u212a", "", false}, // the Kelvin sign is not a K
		{"", "", false},
	} {
		got, ok := NormalizeUserCode(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if got := FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("FormatUserCode = %q", got)
	}
}
