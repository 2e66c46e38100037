// Package storagetest is the conformance suite every storage.Store backend
// passes, in the style of Dex's storage/conformance: a backend's own test calls
// Run with a constructor for empty stores.
//
// The suite checks the contract written in package storage's doc comments, not
// a backend's incidental behaviour, so it is also the executable form of that
// contract. Time is injected everywhere; nothing sleeps.
package storagetest

import (
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Run runs every conformance test as a subtest. newStore is called once per
// subtest and must return an empty, migrated store that is not shared with any
// other subtest; it registers its own cleanup (t.Cleanup) to close it.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"Users", userTests()},
		{"Clients", clientTests()},
		{"AuthRequests", authRequestTests()},
		{"Grants", grantTests()},
		{"RefreshTokens", refreshTokenTests()},
		{"DenyList", denyListTests()},
		{"Sessions", sessionTests()},
		{"Consents", consentTests()},
		{"SigningKeys", signingKeyTests()},
		{"SigningAlgorithms", signingAlgorithmTests()},
		{"LoginAttempts", loginAttemptTests()},
		{"OneTimeTokens", oneTimeTokenTests()},
		{"Maintenance", maintenanceTests()},
		{"Audit", auditTests()},
		{"LinkedIdentities", linkedIdentityTests()},
		{"UsedMarkers", usedMarkerTests()},
		{"WebAuthn", webAuthnTests()},
		{"TOTP", totpTests()},
		{"RecoveryCodes", recoveryCodeTests()},
		{"MFA", []namedTest{{"DeleteMFA", testDeleteMFA}}},
		{"LogoutDeliveries", logoutDeliveryTests()},
		{"Import", importTests()},
		{"PushedRequests", pushedRequestTests()},
		{"DeviceAuthorizations", deviceTests()},
		{"DPoP", dpopTests()},
		{"Registration", registrationTests()},
		{"ClientKeys", clientKeyTests()}, // private_key_jwt
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

// namedTest is one conformance test; it gets a fresh store.
type namedTest struct {
	name string
	run  func(t *testing.T, s storage.Store)
}
