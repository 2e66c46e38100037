package admin

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// FuzzCheckRedirectURI: a redirect URI accepted at registration is absolute,
// has no fragment, and is https with a host, http on a loopback host, or — for
// a native client — a custom scheme; and the authorization endpoint's check
// accepts it back verbatim for that type of client, so no registration can
// produce a client that can never sign in.
func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example/cb", "https://app.example:8443/cb?x=1", "http://localhost:3000/cb", "http://127.0.0.1/cb",
		"http://[::1]:8080/cb", "http://app.localhost/cb", "com.example.app:/oauth", "com.example.app://cb",
		"http://app.example/cb", "https:///cb", "https:app.example", "/cb", "", "https://app.example/cb#f",
		"https://app.example/cb#", "HTTPS://app.example/cb", "Http://localhost/cb", "http://127.0.0.1.nip.io/cb",
		"http://localhost@evil.example/cb", "javascript:alert(1)", "https://user:pw@app.example/cb", "https://app.example/\x7f",
		"http://[::1%25lo]/cb", "http://0x7f.1/cb", "http://127.1/cb",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, native bool) {
		appType := storage.AppTypeWeb
		if native {
			appType = storage.AppTypeNative
		}
		if err := CheckRedirectURI(raw, appType); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() {
			t.Fatalf("accepted %q: not an absolute URL", raw)
		}
		if strings.Contains(raw, "#") {
			t.Fatalf("accepted %q with a fragment", raw)
		}
		switch u.Scheme {
		case "https":
			if u.Host == "" {
				t.Fatalf("accepted %q without a host", raw)
			}
		case "http":
			h := u.Hostname()
			if ip := net.ParseIP(h); h != "localhost" && !strings.HasSuffix(h, ".localhost") && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("accepted http %q on a host that is not loopback", raw)
			}
		default:
			if !native {
				t.Fatalf("accepted custom scheme %q for a %s client", raw, appType)
			}
		}
		c := registered{appType: zop.ApplicationTypeWeb, uris: []string{raw}}
		if native {
			c.appType = zop.ApplicationTypeNative
		}
		if err := zop.ValidateAuthReqRedirectURI(c, raw, oidc.ResponseTypeCode); err != nil {
			t.Fatalf("registered %q for a %s client, but the authorization endpoint refuses it: %v", raw, appType, err)
		}
	})
}

// registered is the part of op's client adapter that the redirect_uri check
// reads (DevMode as there: registration, not the library, decides which
// http:// URIs are allowed). Other methods are not called.
type registered struct {
	zop.Client
	appType zop.ApplicationType
	uris    []string
}

func (r registered) ApplicationType() zop.ApplicationType { return r.appType }
func (r registered) RedirectURIs() []string               { return r.uris }
func (r registered) DevMode() bool                        { return true }
