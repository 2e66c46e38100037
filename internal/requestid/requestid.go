// Package requestid gives every HTTP request an ID that is sent back in the
// X-Request-Id response header, shown on error pages and in error
// descriptions, and attached to every log line written with the request's
// context. A client or user who reports a failure quotes the ID; the operator
// finds the detail in the log. Clients never see the detail itself.
//
// An ID arriving in the request is not trusted by default (a client could
// forge one to confuse log searches); each request gets a fresh random one.
// Behind a reverse proxy that sets X-Request-Id, NewMiddleware with a trust
// function keeps the proxy's ID, so one ID follows the request through both
// logs.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net/http"
)

// Header is the response header carrying the ID.
const Header = "X-Request-Id"

type ctxKey struct{}

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a random ID: 10 bytes, 16 base32 characters, unique enough to
// find one request in a log.
func New() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return encoding.EncodeToString(b[:])
}

// Middleware gives each request a fresh ID, in its context and in the
// response header; an ID in the request is ignored.
func Middleware(next http.Handler) http.Handler { return NewMiddleware(nil)(next) }

// NewMiddleware is Middleware that keeps the request's own X-Request-Id when
// trust(r) says it comes from a trusted proxy and the ID is well-formed
// (1–64 characters of A–Z, a–z, 0–9, '.', '_', '-': nothing that could break
// a log line). A nil trust trusts no request.
func NewMiddleware(trust func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(Header)
			if trust == nil || !WellFormed(id) || !trust(r) {
				id = New()
			}
			w.Header().Set(Header, id)
			next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
		})
	}
}

// WellFormed reports whether id is acceptable from a trusted proxy.
func WellFormed(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request ID in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// LogHandler wraps h so that every record logged with a context carrying a
// request ID gets a request_id attribute.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler {
	return logHandler{l.Handler.WithGroup(name)}
}
