package op

import (
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// TestValidateRedirectURI: exact matches, and for native clients the RFC 8252
// loopback rule with only the port free.
func TestValidateRedirectURI(t *testing.T) {
	native := &client{c: &storage.Client{AppType: storage.AppTypeNative, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:7000/cb?x=1", "com.example.app:/oauth"}}}
	web := &client{c: &storage.Client{AppType: storage.AppTypeWeb, RedirectURIs: []string{"https://app.example/cb", "http://localhost:3000/cb"}}}
	for _, tc := range []struct {
		c    *client
		uri  string
		want bool
	}{
		{native, "http://127.0.0.1/cb", true},
		{native, "http://127.0.0.1:51234/cb", true},
		{native, "http://[::1]/cb?x=1", true},
		{native, "http://[::1]:1/cb?x=1", true},
		{native, "com.example.app:/oauth", true},
		{native, "http://localhost:51234/cb", false},   // another loopback host
		{native, "http://127.0.0.2:51234/cb", false},   // another loopback address
		{native, "https://127.0.0.1:51234/cb", false},  // another scheme
		{native, "http://u@127.0.0.1:51234/cb", false}, // user info
		{native, "http://127.0.0.1:9/cb#f", false},     // fragment
		{native, "http://127.0.0.1:9/cb#", false},
		{native, "http://127.0.0.1:9/c%62", false}, // same path, spelt otherwise
		{native, "http://127.0.0.1:9/cb?", false},
		{native, "http://[::1]:1/cb?x=2", false},
		{native, "http://127.0.0.1:9/cb/", false},
		{native, "com.example.app:/oauth2", false},
		{web, "https://app.example/cb", true},
		{web, "http://localhost:3000/cb", true},
		{web, "http://localhost:3001/cb", false}, // the port rule is for native clients
		{web, "https://app.example:443/cb", false},
	} {
		if err := validateRedirectURI(tc.c, tc.uri); (err == nil) != tc.want {
			t.Errorf("%s %q: err %v, want accepted=%v", tc.c.c.AppType, tc.uri, err, tc.want)
		}
	}
}
