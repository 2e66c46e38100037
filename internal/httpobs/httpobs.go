// Package httpobs carries, in a request's context, what the outer HTTP
// middleware (access log and request metrics, in cmd) needs to know about a
// request but only the inner handlers learn: the route pattern that matched
// and the client_id once it is authenticated or validated.
//
// The middleware puts an empty Record in the context before the request is
// routed; op and login fill it in (SetRoute through ChiRoute, SetClientID);
// the middleware reads it when the handler has returned. Code running
// without the middleware (unit tests) finds no record and nothing happens.
package httpobs

import (
	"context"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
)

// Record is what inner handlers report about one request.
type Record struct {
	mu       sync.Mutex
	route    string
	clientID string
}

type ctxKey struct{}

// With returns ctx carrying a new, empty record.
func With(ctx context.Context) (context.Context, *Record) {
	rec := new(Record)
	return context.WithValue(ctx, ctxKey{}, rec), rec
}

func from(ctx context.Context) *Record {
	rec, _ := ctx.Value(ctxKey{}).(*Record)
	return rec
}

// SetRoute records the route pattern (never the raw path) that served the
// request. The first report wins: an inner router nested in another reports
// after it and must not overwrite it.
func SetRoute(ctx context.Context, pattern string) {
	if rec := from(ctx); rec != nil && pattern != "" {
		rec.mu.Lock()
		if rec.route == "" {
			rec.route = pattern
		}
		rec.mu.Unlock()
	}
}

// SetClientID records the client the request is for, once known to be
// registered (authenticated at the token endpoint, validated at authorize).
func SetClientID(ctx context.Context, clientID string) {
	if rec := from(ctx); rec != nil {
		rec.mu.Lock()
		rec.clientID = clientID
		rec.mu.Unlock()
	}
}

// Route returns the reported route pattern, or "".
func (r *Record) Route() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.route
}

// ClientID returns the reported client_id, or "".
func (r *Record) ClientID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clientID
}

// ChiRoute is chi middleware (r.Use) that reports the pattern chi matched.
// chi knows it only after routing, so it is read when the handler returns
// (the routing context is still live then). Put it first, before any
// recoverer, so that a request whose handler panicked is reported too.
//
// The first of chi's RoutePatterns is this router's own pattern. A handler
// that is itself a chi router but not Mounted (zitadel's, behind
// /oauth/token) routes the full path again and appends the same pattern a
// second time, which RoutePattern() would join into "/oauth/token/oauth/token".
// Neither op nor login mounts sub-routers, so the first entry is the route.
func ChiRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rc := chi.RouteContext(r.Context()); rc != nil && len(rc.RoutePatterns) > 0 {
				SetRoute(r.Context(), rc.RoutePatterns[0])
			}
		}()
		next.ServeHTTP(w, r)
	})
}
