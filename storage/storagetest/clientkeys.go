package storagetest

import (
	"context"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// private_key_jwt: a client's registered keys (JWKS or JWKS URI).

func clientKeyTests() []namedTest {
	return []namedTest{
		{"JWKSRoundTrip", testClientJWKSRoundTrip},
	}
}

// The keys a private_key_jwt client registered come back as written, by
// Get, List and Update; switching from a document to a URI leaves no
// document behind (a stale key would keep verifying assertions).
func testClientJWKSRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const doc = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`
	c := newClient("pk")
	c.SecretHash, c.AuthMethod, c.JWKS = nil, storage.AuthMethodPrivateKeyJWT, doc
	mustNot(t, "create client", s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, "pk")
	mustNot(t, "get client", err)
	assertEqual(t, "GetClient", got, c)
	list, err := s.ListClients(ctx)
	mustNot(t, "list clients", err)
	if len(list) != 1 || list[0].JWKS != doc || list[0].JWKSURI != "" {
		t.Fatalf("ListClients: %+v", list)
	}

	got.JWKS, got.JWKSURI = "", "https://pk.example/jwks.json"
	mustNot(t, "update client", s.UpdateClient(ctx, got))
	again, err := s.GetClient(ctx, "pk")
	mustNot(t, "get client", err)
	if again.JWKS != "" || again.JWKSURI != "https://pk.example/jwks.json" || again.AuthMethod != storage.AuthMethodPrivateKeyJWT {
		t.Fatalf("after switching to a JWKS URI: jwks %q, jwks_uri %q, auth %q", again.JWKS, again.JWKSURI, again.AuthMethod)
	}
}
