package op

import (
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

// TestGrantedUserScopes: storage.ScopeAdmin stays in a user's scopes only
// for a client listing it, a user with the admin role and a two-factor
// sign-in; the login UI enforces the last too, this is the second check.
func TestGrantedUserScopes(t *testing.T) {
	p := &Provider{cfg: Config{AdminRole: "IDP_ADMIN"}}
	allowed := &storage.Client{ID: "console", AllowedScopes: []string{storage.ScopeAdmin}}
	unrestricted := &storage.Client{ID: "wiki"}
	admin := &storage.User{ID: "u1", Role: "IDP_ADMIN"}
	appAdmin := &storage.User{ID: "u2", Role: "ADMIN"}
	twoFactors := authn.AddFactor([]string{authn.AMRPassword}, authn.AMROTP)
	password := []string{authn.AMRPassword}
	asked := []string{"openid", storage.ScopeAdmin, "offline_access"}
	without := []string{"openid", "offline_access"}
	cases := []struct {
		name   string
		client *storage.Client
		user   *storage.User
		amr    []string
		want   []string
	}{
		{"all conditions hold", allowed, admin, twoFactors, asked},
		{"passkey with user verification", allowed, admin, []string{authn.AMRHardwareKey, authn.AMRUser}, asked},
		{"password only", allowed, admin, password, without},
		{"upstream sign-in only", allowed, admin, []string{authn.AMRFederated, authn.Upstream(authn.AMRPassword), authn.Upstream(authn.AMROTP)}, without},
		{"role ADMIN is not the admin role here", allowed, appAdmin, twoFactors, without},
		{"client without allowed scopes", unrestricted, admin, twoFactors, without},
		{"client listing other scopes", &storage.Client{AllowedScopes: []string{"reports:read"}}, admin, twoFactors, without},
	}
	for _, c := range cases {
		in := slices.Clone(asked)
		got := p.grantedUserScopes(in, c.client, c.user, c.amr)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if !slices.Equal(in, asked) {
			t.Errorf("%s: the scopes passed in were changed to %q", c.name, in)
		}
	}
	if got := p.grantedUserScopes(without, unrestricted, appAdmin, password); !slices.Equal(got, without) {
		t.Errorf("scopes without the admin scope: %q, want them unchanged", got)
	}
}
