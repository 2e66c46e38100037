package adminapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// fakeVerifier admits "good:<client>" as a client_credentials token of
// client with the admin scope, and nothing else.
type fakeVerifier struct{ calls atomic.Int64 }

func (v *fakeVerifier) Verify(_ context.Context, token string) (*Token, error) {
	v.calls.Add(1)
	if client, ok := strings.CutPrefix(token, "good:"); ok {
		return &Token{ClientID: client, Scopes: []string{storage.ScopeAdmin}}, nil
	}
	return nil, ErrInvalidToken
}

type noSessions struct{}

func (noSessions) EndSession(context.Context, *storage.Session, string) (bool, error) {
	return false, nil
}
func (noSessions) EndUserSessions(context.Context, string, string) (int, error) { return 0, nil }

// failingLimiter cannot decide.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, ratelimit.Rule, string) (bool, time.Duration, error) {
	return false, 0, errors.New("limiter down")
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newLimitedAPI is the API on an empty store with a memory limiter on clk.
func newLimitedAPI(t *testing.T, clk *clock, limiter ratelimit.Limiter, limits Limits) (*API, *fakeVerifier) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := admin.New(admin.Config{Store: st, Sessions: noSessions{}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	v := &fakeVerifier{}
	api, err := New(Config{Service: svc, Verifier: v, Limiter: limiter, Limits: limits, Now: clk.now,
		ClientIP: func(r *http.Request) string { ip, _, _ := strings.Cut(r.RemoteAddr, ":"); return ip }})
	if err != nil {
		t.Fatal(err)
	}
	return api, v
}

// get sends GET /clients from addr with token and returns the recorder.
func get(api *API, addr, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", Prefix+"/clients", nil)
	req.RemoteAddr = addr + ":1234"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	return w
}

func wantLimited(t *testing.T, what string, w *httptest.ResponseRecorder, retryAfter string) {
	t.Helper()
	if w.Code != 429 || w.Header().Get("Retry-After") != retryAfter || !strings.Contains(w.Body.String(), `"code":"rate_limited"`) {
		t.Fatalf("%s: %d Retry-After %q %s, want 429 rate_limited with Retry-After %s", what, w.Code, w.Header().Get("Retry-After"), w.Body, retryAfter)
	}
}

// Failed authentications are limited per address: once over, even a good
// token from there is refused before it is checked, until the budget
// refills; other addresses and callers go on.
func TestRateLimitFailedAuth(t *testing.T) {
	clk := &clock{time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	api, v := newLimitedAPI(t, clk, ratelimit.NewMemory(0, clk.now), Limits{FailedAuthPerIP: Rate{3, time.Minute}})
	for i := range 4 { // the 4th is refused by the limiter: answered 401, remembered
		if w := get(api, "192.0.2.1", "bad"); w.Code != 401 {
			t.Fatalf("bad token %d: %d", i+1, w.Code)
		}
	}
	checked := v.calls.Load()
	wantLimited(t, "a bad token over the budget", get(api, "192.0.2.1", "bad"), "20")
	wantLimited(t, "no token over the budget", get(api, "192.0.2.1", ""), "20")
	wantLimited(t, "a good token from the address", get(api, "192.0.2.1", "good:ops"), "20")
	if n := v.calls.Load(); n != checked {
		t.Errorf("%d tokens checked while the address was refused", n-checked)
	}
	if w := get(api, "192.0.2.2", "good:ops"); w.Code != 200 {
		t.Errorf("a good token from another address: %d %s", w.Code, w.Body)
	}
	clk.t = clk.t.Add(20 * time.Second) // one failure's worth refilled
	if w := get(api, "192.0.2.1", "good:ops"); w.Code != 200 {
		t.Errorf("a good token after Retry-After: %d %s", w.Code, w.Body)
	}
	if w := get(api, "192.0.2.1", "bad"); w.Code != 401 {
		t.Errorf("one bad token after Retry-After: %d", w.Code)
	}
	get(api, "192.0.2.1", "bad") // over again
	wantLimited(t, "over the budget again", get(api, "192.0.2.1", "bad"), "20")
}

// Authenticated requests are limited per caller.
func TestRateLimitPerCaller(t *testing.T) {
	clk := &clock{time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	api, _ := newLimitedAPI(t, clk, ratelimit.NewMemory(0, clk.now), Limits{PerCaller: Rate{5, time.Minute}})
	for i := range 5 {
		if w := get(api, "192.0.2.1", "good:ops"); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	wantLimited(t, "the 6th request of ops", get(api, "192.0.2.9", "good:ops"), "12")
	if w := get(api, "192.0.2.1", "good:other"); w.Code != 200 {
		t.Errorf("another client from the same address: %d", w.Code)
	}
	clk.t = clk.t.Add(12 * time.Second)
	if w := get(api, "192.0.2.1", "good:ops"); w.Code != 200 {
		t.Errorf("ops after Retry-After: %d", w.Code)
	}
}

// A limiter that cannot decide refuses authenticated requests with 503
// (fail closed), never lets them through unlimited.
func TestRateLimiterDown(t *testing.T) {
	clk := &clock{time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	api, _ := newLimitedAPI(t, clk, failingLimiter{}, Limits{})
	w := get(api, "192.0.2.1", "good:ops")
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"code":"unavailable"`) {
		t.Errorf("limiter down: %d %q %s, want 503 unavailable with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := get(api, "192.0.2.1", "bad"); w.Code != 401 {
		t.Errorf("a bad token with the limiter down: %d, want 401", w.Code)
	}
}
