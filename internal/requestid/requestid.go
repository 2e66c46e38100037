// Package requestid gives every HTTP request an ID that is sent back in the
// X-Request-Id response header, shown on error pages and in error
// descriptions, and attached to every log line written with the request's
// context. A client or user who reports a failure quotes the ID; the operator
// finds the detail in the log. Clients never see the detail itself.
//
// An ID arriving in the request is not trusted (a client could forge one to
// confuse log searches); each request gets a fresh random one.
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

// Middleware gives each request an ID, in its context and in the response
// header.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := New()
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
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
