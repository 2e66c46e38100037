// Package adminapi is the admin API: JSON over HTTP under /admin/api/v1/,
// a front end of the admin service (package admin) like the CLI. Requests
// carry a bearer access token from Gatehouse itself with the scope
// gatehouse:admin (storage.ScopeAdmin); errors are RFC 9457 problem details
// whose code is the admin.Error code or one of this package's.
//
// Imports point one way: adminapi uses admin, storage and the rate limiter
// of internal/ratelimit (through the Config's Limiter); the token check
// is the Verifier interface, which cmd wires to op.Provider, so this
// package does not import op.
package adminapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
)

// Prefix is where the API is mounted.
const Prefix = "/admin/api/v1"

// Token is who a verified access token is for.
type Token struct {
	ClientID string
	// UserID is the user the token acts for; "" for a client_credentials
	// token.
	UserID    string
	Scopes    []string
	ExpiresAt time.Time
}

// ErrInvalidToken: the token is unknown, expired, revoked or its user
// gone; the Verifier returns it (wrapped or not) for all of these.
var ErrInvalidToken = errors.New("adminapi: invalid access token")

// ErrDPoPBoundToken: the token is live but bound to a DPoP key (RFC 9449).
// The admin API takes bearer tokens only, so it refuses it, saying why
// rather than "invalid". It wraps ErrInvalidToken.
var ErrDPoPBoundToken = fmt.Errorf("%w: bound to a DPoP key", ErrInvalidToken)

// Verifier checks a bearer access token (op.Provider.VerifyAccessToken).
type Verifier interface {
	Verify(ctx context.Context, token string) (*Token, error)
}

// Config wires the API.
type Config struct {
	Service  *admin.Service
	Verifier Verifier
	// ClientIP is the request's client address for the audit trail (it
	// knows the trusted proxies).
	ClientIP func(*http.Request) string
	// Limiter limits the API's requests (Limits): the limiter of the
	// sign-in pages, memory or Redis. nil: no limits.
	Limiter ratelimit.Limiter
	Limits  Limits
	// Now is the time for the limits; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// AdminRole is the role a user's token needs besides the scope, checked
	// on every request (a demoted user's token stops at once); default
	// "ADMIN".
	AdminRole string
}

// API serves the admin API.
type API struct {
	svc    *admin.Service
	verify Verifier
	ip     func(*http.Request) string
	log    *slog.Logger
	limits *limits // nil: no limits
	router chi.Router

	// adminRole: see Config.AdminRole.
	adminRole string
}

//go:embed openapi.json
var openAPI []byte

// New returns the API for cfg.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil || cfg.Verifier == nil || cfg.ClientIP == nil {
		return nil, errors.New("adminapi: Service, Verifier and ClientIP are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AdminRole == "" {
		cfg.AdminRole = "ADMIN"
	}
	a := &API{svc: cfg.Service, verify: cfg.Verifier, adminRole: cfg.AdminRole, ip: cfg.ClientIP, log: cfg.Logger.With("component", "adminapi")}
	a.limits = newLimits(a, cfg)
	a.router = a.routes()
	return a, nil
}

// routes are every route of the API; openapi.json documents each (a test
// walks them).
func (a *API) routes() chi.Router {
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not_found", "Not found", "no such resource")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", "this resource does not support "+r.Method)
	})
	r.Route(Prefix, func(r chi.Router) {
		r.Get("/openapi.json", serveOpenAPI)
		r.Group(func(r chi.Router) {
			r.Use(a.limits.limitAuth, a.authorize, a.limits.limitCaller)
			r.Get("/users", a.listUsers)
			r.Post("/users", a.createUser)
			r.Get("/users/{id}", a.getUser)
			r.Patch("/users/{id}", a.patchUser)
			r.Delete("/users/{id}", a.deleteUser)
			r.Post("/users/{id}/password", a.setPassword)
			r.Get("/users/{id}/sessions", a.listSessions)
			r.Delete("/users/{id}/sessions", a.signOut)
			r.Delete("/users/{id}/sessions/{sid}", a.signOut)
			r.Get("/clients", a.listClients)
			r.Post("/clients", a.createClient)
			r.Get("/clients/{id}", a.getClient)
			r.Patch("/clients/{id}", a.patchClient)
			r.Delete("/clients/{id}", a.deleteClient)
			r.Post("/clients/{id}/secret", a.rotateSecret)
			r.Get("/keys", a.listKeys)
			r.Post("/keys/rotate", a.rotateKeys)
		})
	})
	return r
}

// ServeHTTP serves the API; the answers are never cached by shared caches.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.router.ServeHTTP(w, r)
}

// Routes is the router, for a test that checks it against the document.
func (a *API) Routes() chi.Routes { return a.router }

// OpenAPI is the OpenAPI 3.1 document served at Prefix/openapi.json.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
