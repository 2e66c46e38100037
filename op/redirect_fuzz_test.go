package op

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// FuzzRedirectURIMatch drives the redirect_uri check of the authorization
// endpoint (validateRedirectURI: zitadel's check, narrowed) with registered
// and requested URIs:
//   - an accepted URI is registered exactly, or — native clients only,
//     RFC 8252 §7.3 — it differs from a registered loopback URI in the port
//     alone: same scheme, host, path and query, no user info or fragment;
//   - a registered http(s) URI is accepted as is, and a native client's
//     loopback URI with any other port.
func FuzzRedirectURIMatch(f *testing.F) {
	for _, s := range []struct {
		reg1, reg2, req string
		native          bool
	}{
		{"https://app.example/cb", "", "https://app.example/cb", false},
		{"https://app.example/cb", "", "https://app.example/cb/", false},
		{"https://app.example/cb", "", "https://APP.example/cb", false},
		{"https://app.example/cb", "", "https://app.example/cb?x=1", false},
		{"https://app.example/cb", "", "https://app.example:443/cb", false},
		{"http://localhost:3000/cb", "", "http://localhost:3001/cb", false},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:51234/cb", true},
		{"http://127.0.0.1/cb", "", "http://localhost:51234/cb", true},
		{"http://127.0.0.1/cb", "", "https://127.0.0.1:51234/cb", true},
		{"http://[::1]/cb", "", "http://[::1]:8080/cb", true},
		{"http://[::1]/cb", "", "http://127.0.0.1:8080/cb", true},
		{"http://127.0.0.1/cb", "", "http://user@127.0.0.1:9/cb", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:9/cb#frag", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.2:9/cb", true},
		{"http://127.0.0.1/cb?a=1", "", "http://127.0.0.1:9/cb?a=1", true},
		{"http://127.0.0.1/cb?a=1", "", "http://127.0.0.1:9/cb?a=2", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:9/CB", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:9/cb/../cb", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1.evil.example:9/cb", true},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:9@evil.example/cb", true},
		{"com.example.app:/oauth", "http://127.0.0.1/cb", "com.example.app:/oauth", true},
		{"com.example.app:/oauth", "", "com.example.app:/oauth2", true},
		{"com.example.app:/oauth", "", "com.example.app:/oauth", false},
		{"", "", "", false},
	} {
		f.Add(s.reg1, s.reg2, s.req, s.native)
	}
	f.Fuzz(func(t *testing.T, reg1, reg2, req string, native bool) {
		appType := storage.AppTypeWeb
		if native {
			appType = storage.AppTypeNative
		}
		regs := []string{reg1, reg2}
		c := &client{c: &storage.Client{ID: "app", AppType: appType, RedirectURIs: regs}}
		err := validateRedirectURI(c, req)

		exact := req != "" && slices.Contains(regs, req)
		if exact && (native || strings.HasPrefix(req, "https://") || strings.HasPrefix(req, "http://")) && err != nil {
			t.Fatalf("registered %q refused: %v", req, err)
		}
		// Any port on a registered loopback URI.
		if r := loopbackURL(reg1); native && r != nil && r.User == nil && !strings.Contains(reg1, "#") {
			// The registered string with its authority swapped, so that
			// nothing else is spelt differently.
			i := strings.Index(reg1, "://") + 3
			j := strings.IndexAny(reg1[i:], "/?")
			if j < 0 {
				j = len(reg1) - i
			}
			other := reg1[:i] + net.JoinHostPort(r.Hostname(), fmt.Sprint(1+len(req)%65535)) + reg1[i+j:]
			if err := validateRedirectURI(c, other); err != nil {
				t.Fatalf("native client: %q refused with registered %q: %v", other, reg1, err)
			}
		}
		if err != nil || exact {
			return
		}
		// Accepted without an exact match: only the loopback port rule allows that.
		if !native {
			t.Fatalf("web client: %q accepted, registered %q", req, regs)
		}
		u := loopbackURL(req)
		if u == nil {
			t.Fatalf("native client: %q accepted though not loopback; registered %q", req, regs)
		}
		if strings.Contains(req, "#") || !slices.ContainsFunc(regs, func(r string) bool { return samePortAside(loopbackURL(r), u) }) {
			t.Fatalf("native client: %q accepted, but it differs from every registered URI %q in more than the port", req, regs)
		}
	})
}

// loopbackURL parses s as an http(s) URL on a loopback host, or returns nil.
func loopbackURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil
	}
	return u
}

// samePortAside: a and b are equal but for the port.
func samePortAside(a, b *url.URL) bool {
	return a != nil && b != nil &&
		a.Scheme == b.Scheme && a.Hostname() == b.Hostname() && a.User == nil && b.User == nil &&
		a.Path == b.Path && a.RawPath == b.RawPath && a.RawQuery == b.RawQuery &&
		a.Fragment == "" && b.Fragment == "" && a.Opaque == "" && b.Opaque == ""
}
