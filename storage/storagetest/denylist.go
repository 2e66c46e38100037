package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func denyListTests() []namedTest {
	return []namedTest{{"DenyAndCheck", testDenyList}}
}

func testDenyList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	assertDenied(t, s, "jti-1", false)
	mustNot(t, "deny jti-1", s.DenyAccessToken(ctx, "jti-1", at(time.Hour)))
	assertDenied(t, s, "jti-1", true)
	assertDenied(t, s, "jti-2", false)
	// Revocation may be requested twice (retries, two revocation calls).
	mustNot(t, "deny jti-1 again", s.DenyAccessToken(ctx, "jti-1", at(time.Hour)))
	assertDenied(t, s, "jti-1", true)
}

func assertDenied(t *testing.T, s storage.Store, tokenID string, want bool) {
	t.Helper()
	denied, err := s.IsAccessTokenDenied(context.Background(), tokenID)
	mustNot(t, "IsAccessTokenDenied("+tokenID+")", err)
	if denied != want {
		t.Errorf("IsAccessTokenDenied(%s) = %v, want %v", tokenID, denied, want)
	}
}
