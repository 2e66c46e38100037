package backchannel

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ValidateURI checks a backchannel_logout_uri when a client is registered:
// an absolute https URL, or http only when the host is loopback (localhost,
// 127.0.0.0/8, ::1, for receivers on the same machine, as in development);
// with no fragment and no userinfo. A query is allowed (Back-Channel Logout
// 1.0 §2.2). Whether the host is internal is not checked: clients are
// registered by administrators, who may mean an internal receiver; what
// protects against SSRF is that only registered URIs are ever called and
// redirects are not followed.
func ValidateURI(raw string) error {
	if raw == "" {
		return errors.New("backchannel logout URI is empty")
	}
	// url.Parse drops an empty fragment ("…#"), so look for the marker.
	if strings.Contains(raw, "#") {
		return fmt.Errorf("backchannel logout URI %q must not have a fragment", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("backchannel logout URI: %w", err)
	}
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return fmt.Errorf("backchannel logout URI %q must be an absolute URL with a host", raw)
	}
	if u.User != nil {
		// Credentials in a URI end up in logs and listings.
		return fmt.Errorf("backchannel logout URI %q must not contain a user name or password", u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("backchannel logout URI %q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(host) {
			return nil
		}
		return fmt.Errorf("backchannel logout URI %q must use https (http only on loopback: localhost, 127.0.0.1, [::1])", raw)
	default:
		return fmt.Errorf("backchannel logout URI %q must use https", raw)
	}
}

// isLoopback reports whether host is localhost or a loopback IP literal.
// Other names are not resolved: what a name resolves to can change after
// registration.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
