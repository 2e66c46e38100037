package login

import "testing"

// An upstream's address is taken only when lower-casing it changes ASCII
// letters alone: Unicode case mapping would fold an address the upstream
// verified onto another one.
func TestUpstreamEmail(t *testing.T) {
	for raw, want := range map[string]string{
		" Octo@Example.COM ":       "octo@example.com",
		"ärger@example.com":        "ärger@example.com",
		"\u00c4rger@example.com":   "", // Ä → ä: not what the upstream verified
		"alice@\u0130nbox.example": "", // İ → i: another domain
		"bob@\u212Aodak.example":   "", // Kelvin sign → k
		"not an address":           "",
		"":                         "",
	} {
		if got := upstreamEmail(raw); got != want {
			t.Errorf("upstreamEmail(%q) = %q, want %q", raw, got, want)
		}
	}
}
