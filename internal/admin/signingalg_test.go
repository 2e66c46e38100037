package admin

import (
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// A client's signing algorithm (id_token_signed_response_alg) is one of
// the algorithms the key manager signs with, or "" for the default; the
// same rule on create and update, audited like the other settings.
func TestClientSigningAlgorithm(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		cb := []string{"https://a.example/cb"}
		for _, bad := range []string{"HS256", "none", "rs256", "ES384", "PS256", " EdDSA"} {
			_, _, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{RedirectURIs: cb, IDTokenSigningAlg: bad})
			expectCode(t, "CreateClient with "+bad, err, CodeInvalid, "id_token_signed_response_alg")
		}
		for _, alg := range append(SigningAlgorithms(), "") {
			c, _, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{RedirectURIs: cb, IDTokenSigningAlg: alg})
			if err != nil || c.IDTokenSigningAlg != alg {
				t.Fatalf("CreateClient with %q: %+v %v", alg, c, err)
			}
			if s, _ := f.store.GetClient(f.ctx, c.ID); s.IDTokenSignedResponseAlg != alg {
				t.Fatalf("stored %q, want %q", s.IDTokenSignedResponseAlg, alg)
			}
		}
		if got := f.svc.DefaultSigningAlgorithm(); got != "ES256" { // the fixture's key manager
			t.Errorf("DefaultSigningAlgorithm = %q, want ES256", got)
		}

		c, _, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "fast", RedirectURIs: cb})
		if err != nil {
			t.Fatal(err)
		}
		f.oneEvent("fast", storage.AuditClientCreated, "admin-user")
		ed := "EdDSA"
		up, err := f.svc.UpdateClient(f.ctx, admin, "fast", ClientUpdate{IDTokenSigningAlg: &ed}, c.Version)
		if err != nil || up.IDTokenSigningAlg != "EdDSA" {
			t.Fatalf("UpdateClient to EdDSA: %+v %v", up, err)
		}
		ev := f.oneEvent("fast", storage.AuditClientUpdated, "admin-user")
		if ev.Detail["id_token_signed_response_alg"] != "EdDSA" || len(ev.Detail) != 1 {
			t.Errorf("update event detail: %v", ev.Detail)
		}
		hs := "HS256"
		_, err = f.svc.UpdateClient(f.ctx, admin, "fast", ClientUpdate{IDTokenSigningAlg: &hs}, "")
		expectCode(t, "UpdateClient to HS256", err, CodeInvalid, "id_token_signed_response_alg")
		// Other changes leave it; "" returns to the default.
		name := "Fast"
		if up, err := f.svc.UpdateClient(f.ctx, admin, "fast", ClientUpdate{Name: &name}, ""); err != nil || up.IDTokenSigningAlg != "EdDSA" {
			t.Fatalf("an unrelated update changed the algorithm: %+v %v", up, err)
		}
		none := ""
		if up, err := f.svc.UpdateClient(f.ctx, admin, "fast", ClientUpdate{IDTokenSigningAlg: &none}, ""); err != nil || up.IDTokenSigningAlg != "" {
			t.Fatalf("UpdateClient to the default: %+v %v", up, err)
		}
	})
}
