// Package registration is the dynamic client registration endpoint (RFC
// 7591) and its management protocol (RFC 7592), at /oauth/register and
// /oauth/register/{client_id}.
//
// Clients are created, changed and deleted through the admin service
// (package admin), so a registered client obeys the rules of a client made
// on the command line (admin.ClientSpec) and every change is audited there.
// What the endpoint adds are its own rules:
//   - GATEHOUSE_CLIENT_REGISTRATION decides who may register: nobody (off,
//     the default: the endpoints answer 404), holders of an initial access
//     token an admin created (token), or also anyone registering a client
//     whose every URI is on the loopback interface (loopback, for
//     development: such a client can only send users' codes back to the
//     user's own machine).
//   - A registered client is a third party: users are always asked for
//     consent, and it can never hold a gatehouse: scope (the admin API).
//   - Its registration access token (RFC 7592), stored hashed, is the only
//     key to read, replace or delete its registration; a client created
//     any other way has none and cannot be managed here.
package registration

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Path is where the endpoint lives; a client's registration is at Path/ID.
const Path = "/oauth/register"

// Mode is who may register clients (GATEHOUSE_CLIENT_REGISTRATION).
type Mode string

// The modes.
const (
	// ModeOff: nobody; the endpoints do not exist (404).
	ModeOff Mode = "off"
	// ModeToken: holders of an initial access token.
	ModeToken Mode = "token"
	// ModeLoopback: holders of a token, and anyone for a client whose every
	// URI is http on a loopback address.
	ModeLoopback Mode = "loopback"
)

// Modes are the valid modes, for the setting's check.
func Modes() []string { return []string{string(ModeOff), string(ModeToken), string(ModeLoopback)} }

// Default rate limits: registrations per client IP, and management calls
// per registered client.
var (
	DefaultPerIP     = ratelimit.Rule{Name: "client-registration-ip", Limit: 20, Period: time.Hour}
	DefaultPerClient = ratelimit.Rule{Name: "client-registration-manage", Limit: 60, Period: time.Hour}
)

// Store is what the endpoint reads and writes beside the admin service:
// the tokens, and a client's secret hash (a PUT may name the secret).
type Store interface {
	storage.RegistrationStore
	GetClient(ctx context.Context, id string) (*storage.Client, error)
}

// Config wires a Handler. Service, Store and Limiter are required unless
// the mode is off.
type Config struct {
	Mode    Mode
	Issuer  string // absolute, no trailing slash
	Service *admin.Service
	Store   Store
	Limiter ratelimit.Limiter
	// PerIP and PerClient override the default rate limits (zero: default).
	PerIP, PerClient ratelimit.Rule
	// ClientIP is the caller's address (cmd passes the trusted-proxy rule).
	ClientIP func(*http.Request) string
	Now      func() time.Time
	Logger   *slog.Logger
}

// Handler serves the registration endpoints.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New returns the handler for cfg.
func New(cfg Config) (*Handler, error) {
	switch cfg.Mode {
	case ModeOff:
	case ModeToken, ModeLoopback:
		if cfg.Service == nil || cfg.Store == nil || cfg.Limiter == nil || cfg.Issuer == "" {
			return nil, errors.New("registration: Issuer, Service, Store and Limiter are required")
		}
	default:
		return nil, fmt.Errorf("registration: unknown mode %q", cfg.Mode)
	}
	if cfg.PerIP.Name == "" {
		cfg.PerIP = DefaultPerIP
	}
	if cfg.PerClient.Name == "" {
		cfg.PerClient = DefaultPerClient
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "registration")}, nil
}

// maxBody bounds a registration request: metadata is a few hundred bytes.
const maxBody = 64 << 10

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Mode == ModeOff {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Description: "client registration is off on this server"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var err error
	switch id, managed := strings.CutPrefix(r.URL.Path, Path+"/"); {
	case r.URL.Path == Path && r.Method == http.MethodPost:
		err = h.register(w, r)
	case r.URL.Path == Path:
		err = notAllowed(w, http.MethodPost)
	case managed && id != "" && !strings.Contains(id, "/"):
		err = h.manage(w, r, id)
	default:
		err = &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such registration endpoint"}
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

func notAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "use " + allow}
}

// Error is an answer of the endpoint other than success: RFC 7591 §3.2.2's
// JSON {error, error_description}.
type Error struct {
	Status      int
	Code        string
	Description string
	retryAfter  time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalidMetadata(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_client_metadata", Description: fmt.Sprintf(format, args...)}
}

func invalidRedirect(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_redirect_uri", Description: fmt.Sprintf(format, args...)}
}

func invalidToken(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}

// fail answers err: the caller's mistake as it is, anything else as our
// failure (503 when the store cannot answer now, else 500), logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		h.log.ErrorContext(r.Context(), "client registration failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "the registration could not be processed"}
		if errors.Is(err, storage.ErrUnavailable) {
			e = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
				Description: "the registration cannot be processed now; try again shortly", retryAfter: 2 * time.Second}
		}
	}
	writeError(w, e)
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+e.Description+`"`)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// limit takes one event of key's budget under rule; over it, a 429. A
// limiter that cannot decide refuses (fail closed, as package ratelimit
// asks).
func (h *Handler) limit(ctx context.Context, rule ratelimit.Rule, key string) error {
	ok, retry, err := h.cfg.Limiter.Allow(ctx, rule, key)
	switch {
	case err != nil:
		h.log.ErrorContext(ctx, "rate limit unavailable", "rule", rule.Name, "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "rate limits cannot be checked now; try again shortly", retryAfter: 2 * time.Second}
	case !ok:
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Description: "too many registration requests; try again later", retryAfter: max(retry, time.Second)}
	}
	return nil
}

// bearer is the token of an Authorization: Bearer header; ok is false when
// there is no such header.
func bearer(r *http.Request) (token string, ok bool) {
	v := r.Header.Get("Authorization")
	if v == "" {
		return "", false
	}
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(token), true
}

// decode reads the metadata of a request body: a JSON object. Members it
// does not know are ignored (RFC 7591 §2).
func decode(r *http.Request) (*Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&m); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, invalidMetadata("the request body is larger than %d bytes", maxBody)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, invalidMetadata("%s: expected %s", typeErr.Field, jsonType(typeErr.Type.Kind().String()))
		}
		return nil, invalidMetadata("the body must be a JSON object of client metadata")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidMetadata("the body must be one JSON object of client metadata, with nothing after it")
	}
	return &m, nil
}

// jsonType names a Go kind in JSON's terms.
func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "an array of strings"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	return "another type"
}

// adminError turns the admin service's verdict on a client into the
// endpoint's: a URI of the redirect kind is invalid_redirect_uri, any other
// mistake invalid_client_metadata; anything else is our failure.
func adminError(err error) error {
	var e *admin.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Field {
	case "redirect_uris", "post_logout_redirect_uris":
		return invalidRedirect("%s", e.Message)
	}
	return invalidMetadata("%s", strings.ReplaceAll(e.Message, "--public", "token_endpoint_auth_method none"))
}

// sameHash compares two hashes in constant time.
func sameHash(a, b []byte) bool { return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1 }
