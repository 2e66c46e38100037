package mfa

import (
	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

// PasskeyAMR returns the amr values a WebAuthn assertion with credential c
// proves: authn.AMRSoftwareKey for a backup-eligible (syncable) passkey,
// authn.AMRHardwareKey for a device-bound one, and AMRUser when the assertion
// verified the user (the userVerified result of FinishLogin or
// FinishDiscoverableLogin, not c.UserVerified, which is about
// registration).
func PasskeyAMR(c *storage.WebAuthnCredential, userVerified bool) []string {
	key := authn.AMRHardwareKey
	if c.BackupEligible {
		key = authn.AMRSoftwareKey
	}
	if userVerified {
		return []string{key, authn.AMRUser}
	}
	return []string{key}
}
