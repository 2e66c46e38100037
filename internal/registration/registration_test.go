package registration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// failingLimiter cannot decide.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, ratelimit.Rule, string) (bool, time.Duration, error) {
	return false, 0, errors.New("redis and memory both gone")
}

// TestLimiterFailsClosed: a limiter that cannot decide refuses with 503 and
// Retry-After, before any token or store is looked at (the nil store would
// panic).
func TestLimiterFailsClosed(t *testing.T) {
	h, err := New(Config{Mode: ModeToken, Issuer: "https://id.example", Service: &admin.Service{}, Store: nilStore{}, Limiter: failingLimiter{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{{"POST", Path}, {"GET", Path + "/client"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader(`{}`)))
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" {
			t.Errorf("%s %s: %d %v %v", c.method, c.path, rec.Code, rec.Header(), body)
		}
	}
}

// nilStore is a Store whose every method would panic.
type nilStore struct{ Store }

func TestModes(t *testing.T) {
	if _, err := New(Config{Mode: "open"}); err == nil {
		t.Error("an unknown mode is accepted")
	}
	if _, err := New(Config{Mode: ModeToken}); err == nil {
		t.Error("token mode without a service or store is accepted")
	}
	h, err := New(Config{Mode: ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", Path, nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Header().Get("Content-Type"), "json") {
		t.Errorf("off: %d %v", rec.Code, rec.Header())
	}
}

func TestLoopbackURI(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1/cb": true, "http://127.0.0.1:8080/cb": true, "http://localhost:3000/": true,
		"http://[::1]:9/cb": true, "https://127.0.0.1/cb": false, "http://127.0.0.2/cb": false,
		"http://localhost.example/cb": false, "http://user@localhost/cb": false, "com.example:/cb": false,
	} {
		if got := loopbackURI(u); got != want {
			t.Errorf("loopbackURI(%q) = %t", u, got)
		}
	}
}

func TestScopes(t *testing.T) {
	got, err := allowedScopes("openid email reports:read offline_access reports:read files")
	if err != nil || strings.Join(got, " ") != "reports:read files" {
		t.Errorf("allowedScopes: %q, %v", got, err)
	}
	for _, bad := range []string{storage.ScopeAdmin, "openid gatehouse:anything"} {
		var e *Error
		if _, err := allowedScopes(bad); !errors.As(err, &e) || e.Code != "invalid_client_metadata" {
			t.Errorf("allowedScopes(%q): %v", bad, err)
		}
	}
}

// id_token_signed_response_alg: OpenID Connect Dynamic Client Registration's
// default is RS256 whatever the server's default for its own clients, and
// only the algorithms Gatehouse signs with may be registered.
func TestSigningAlgorithmMetadata(t *testing.T) {
	for given, want := range map[string]string{"": "RS256", "RS256": "RS256", "ES256": "ES256", "EdDSA": "EdDSA"} {
		m := Metadata{RedirectURIs: []string{"https://app.example/cb"}, IDTokenSignedResponseAlg: given}
		spec, err := m.spec()
		if err != nil || spec.IDTokenSigningAlg != want {
			t.Errorf("id_token_signed_response_alg %q: %q, %v; want %q", given, spec.IDTokenSigningAlg, err, want)
		}
	}
	for _, bad := range []string{"HS256", "none", "es256", "PS256"} {
		m := Metadata{RedirectURIs: []string{"https://app.example/cb"}, IDTokenSignedResponseAlg: bad}
		var e *Error
		if _, err := m.spec(); !errors.As(err, &e) || e.Code != "invalid_client_metadata" || !strings.Contains(e.Description, "id_token_signed_response_alg") {
			t.Errorf("id_token_signed_response_alg %q: %v, want invalid_client_metadata naming the field", bad, err)
		}
	}
}
