package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// DPoP (RFC 9449): what binds tokens to a client's key must be read back as
// written. Losing a grant's key would let a stolen refresh token of a public
// client be used without the key; losing RequireDPoP would let the client's
// tokens be issued unbound.
func dpopTests() []namedTest {
	return []namedTest{
		{"ClientRequireDPoP", testClientRequireDPoP},
		{"GrantKey", testGrantDPoPKey},
		{"AuthRequestKey", testAuthRequestDPoPKey},
	}
}

func testClientRequireDPoP(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := newClient("c1")
	c.RequireDPoP = true
	mustNot(t, "create client", s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	if !got.RequireDPoP {
		t.Fatal("RequireDPoP is false for a client created with it")
	}
	for _, want := range []bool{false, true, false} {
		c.RequireDPoP = want
		c.Version = 0
		mustNot(t, "update client", s.UpdateClient(ctx, c))
		got, err := s.GetClient(ctx, "c1")
		mustNot(t, "get client", err)
		if got.RequireDPoP != want {
			t.Fatalf("GetClient after UpdateClient: RequireDPoP = %t, want %t", got.RequireDPoP, want)
		}
		list, err := s.ListClients(ctx)
		mustNot(t, "list clients", err)
		if len(list) != 1 || list[0].RequireDPoP != want {
			t.Fatalf("ListClients after UpdateClient: RequireDPoP of %+v, want %t", list, want)
		}
	}
}

func testGrantDPoPKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	bound := newGrant("g1", "alice", "spa", sd.aliceSession.ID)
	bound.DPoPJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	mustNot(t, "create grant with refresh token", s.CreateGrantWithRefreshToken(ctx, bound, newRefreshToken("first", "g1")))
	got, err := s.GetGrant(ctx, "g1")
	mustNot(t, "get grant", err)
	assertEqual(t, "bound grant", got, bound)

	plain := newGrant("g2", "alice", "web", sd.aliceSession.ID)
	mustNot(t, "create grant", s.CreateGrant(ctx, plain))
	got, err = s.GetGrant(ctx, "g2")
	mustNot(t, "get grant", err)
	if got.DPoPJKT != "" {
		t.Errorf("unbound grant read back with key %q", got.DPoPJKT)
	}
	keyed := newGrant("g3", "alice", "spa", sd.aliceSession.ID)
	keyed.DPoPJKT = "another-thumbprint"
	mustNot(t, "create grant", s.CreateGrant(ctx, keyed))
	got, err = s.GetGrant(ctx, "g3")
	mustNot(t, "get grant", err)
	assertEqual(t, "bound grant without refresh token", got, keyed)
}

func testAuthRequestDPoPKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	want := newAuthRequest("ar1", "spa")
	want.Done, want.UserID, want.SessionID, want.AuthTime = true, "alice", sd.aliceSession.ID, t0()
	want.DPoPJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	mustNot(t, "create auth request", s.CreateAuthRequest(ctx, want))
	got, err := s.GetAuthRequest(ctx, "ar1")
	mustNot(t, "get auth request", err)
	assertEqual(t, "bound auth request", got, want)

	mustNot(t, "save auth code", s.SaveAuthCode(ctx, "ar1", hash("code"), at(time.Minute)))
	want.CodeExpiresAt = at(time.Minute)
	used := at(time.Second)
	got, err = s.RedeemAuthCode(ctx, hash("code"), used)
	mustNot(t, "redeem", err)
	want.CodeUsedAt = &used
	assertEqual(t, "redeemed bound auth request", got, want)
}
