package mfa

import (
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

func TestPasskeyAMR(t *testing.T) {
	for _, tc := range []struct {
		be, uv bool
		want   []string
	}{
		{false, false, []string{"hwk"}},
		{false, true, []string{"hwk", "user"}},
		{true, false, []string{"swk"}},
		{true, true, []string{"swk", "user"}},
	} {
		got := PasskeyAMR(&storage.WebAuthnCredential{BackupEligible: tc.be}, tc.uv)
		if !slices.Equal(got, tc.want) {
			t.Errorf("PasskeyAMR(BE=%v, UV=%v) = %v, want %v", tc.be, tc.uv, got, tc.want)
		}
	}
	// After a password, a verified passkey reaches phishing-resistant; a
	// passwordless verified passkey does too.
	if got := authn.ACRFor(authn.AddFactor([]string{"pwd"}, PasskeyAMR(&storage.WebAuthnCredential{}, true)...)); got != authn.ACRPhishingResistant {
		t.Errorf("pwd + verified passkey: %s", got)
	}
	if got := authn.ACRFor(authn.AddFactor(nil, PasskeyAMR(&storage.WebAuthnCredential{BackupEligible: true}, true)...)); got != authn.ACRPhishingResistant {
		t.Errorf("verified synced passkey: %s", got)
	}
	if got := authn.ACRFor(authn.AddFactor([]string{"pwd"}, PasskeyAMR(&storage.WebAuthnCredential{}, false)...)); got != authn.ACRMFA {
		t.Errorf("pwd + unverified security key: %s", got)
	}
}
