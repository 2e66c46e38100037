package op

import (
	"slices"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

// A user's token with storage.ScopeAdmin is worth as much as the admin
// console, so it is granted only when all of these hold at the time of
// issuing (code exchange and every refresh):
//
//   - the client lists the scope in its allowed scopes (allowedScope: a
//     client without a list does not get it; the same rule as for
//     client_credentials, and the authorization endpoint already drops it
//     for such a client, see client.IsScopeAllowed);
//   - the user's role is the admin role (Config.AdminRole) now, not only
//     when they signed in;
//   - the sign-in behind the token reached two factors (acr mfa or
//     stronger). The login UI asks for the second factor when an admin
//     asks for the scope (login's requiredACR); this is the second check.
//
// Otherwise the scope is dropped, not refused: OAuth lets a server grant
// less than asked (RFC 6749 §3.3), and the token response's scope says what
// was granted. A refresh that drops it also drops it from the successor
// refresh token, so a demoted user's grant does not regain it when they are
// promoted again; they sign in anew.

// grantedUserScopes is scopes without storage.ScopeAdmin unless the rule
// above allows it for user u of client c, whose sign-in had amr.
func (p *Provider) grantedUserScopes(scopes []string, c *storage.Client, u *storage.User, amr []string) []string {
	if !slices.Contains(scopes, storage.ScopeAdmin) {
		return scopes
	}
	if allowedScope(c, storage.ScopeAdmin) && u.Role == p.cfg.AdminRole &&
		authn.Satisfies(authn.ACRFor(amr), []string{authn.ACRMFA}) {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == storage.ScopeAdmin })
}
