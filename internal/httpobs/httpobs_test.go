package httpobs

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestChiRoute: the pattern, not the path, is reported; a chi router nested
// without Mount (as zitadel's is in op) does not double it; a request no
// route matches reports nothing; without a record nothing happens.
func TestChiRoute(t *testing.T) {
	inner := chi.NewRouter()
	inner.Post("/oauth/token", func(w http.ResponseWriter, r *http.Request) { SetClientID(r.Context(), "app") })
	r := chi.NewRouter()
	r.Use(ChiRoute)
	r.Get("/static/*", func(http.ResponseWriter, *http.Request) {})
	r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	r.Handle("/oauth/token", inner)

	for _, c := range []struct{ method, path, route, client string }{
		{http.MethodGet, "/static/css/site.css", "/static/*", ""},
		{http.MethodGet, "/users/42", "/users/{id}", ""},
		{http.MethodPost, "/oauth/token", "/oauth/token", "app"},
		{http.MethodGet, "/nowhere", "", ""},
		{http.MethodPost, "/users/42", "", ""}, // method not allowed
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		ctx, rec := With(req.Context())
		r.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
		if rec.Route() != c.route || rec.ClientID() != c.client {
			t.Errorf("%s %s: route %q client %q, want %q %q", c.method, c.path, rec.Route(), rec.ClientID(), c.route, c.client)
		}
	}
	// No record: no panic, nothing to report.
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/users/1", nil))
}
