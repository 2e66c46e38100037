package op

import (
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// validateRedirectURI is zitadel's redirect_uri check narrowed to RFC 8252
// §7.3: a URI is accepted when it is registered exactly, or — native clients
// only — when it differs from a registered loopback URI in the port alone.
// zitadel's loopback rule compares path and query only, so on its own it let
// a request change the scheme, move to another loopback host (127.0.0.1 to
// localhost, ::1 or 127.0.0.2), or add user info or a fragment.
func validateRedirectURI(c *client, uri string) error {
	if err := zop.ValidateAuthReqRedirectURI(c, uri, oidc.ResponseTypeCode); err != nil {
		return err
	}
	if slices.Contains(c.RedirectURIs(), uri) {
		return nil
	}
	// zitadel matched by its loopback rule (native clients only).
	if u, err := url.Parse(uri); err == nil && !strings.Contains(uri, "#") {
		for _, r := range c.RedirectURIs() {
			if reg, err := url.Parse(r); err == nil && portAside(reg, u) {
				return nil
			}
		}
	}
	return oidc.ErrInvalidRequestRedirectURI().WithDescription("The redirect_uri differs from the registered one in more than the port.")
}

// portAside: a and b are the same URL but for the port, without user info.
func portAside(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && a.Hostname() == b.Hostname() && a.User == nil && b.User == nil &&
		a.Opaque == b.Opaque && a.Path == b.Path && a.RawPath == b.RawPath &&
		a.RawQuery == b.RawQuery && a.ForceQuery == b.ForceQuery && a.Fragment == b.Fragment
}
