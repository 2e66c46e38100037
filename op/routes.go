package op

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/cors"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/httpobs"
)

// maxBodyBytes caps request bodies on every OIDC endpoint: a client mistake
// (or abuse) gets a 4xx, not an unbounded read.
const maxBodyBytes = 64 << 10

// Endpoint paths, relative to the issuer.
const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathAuthorize  = "/authorize"
	pathCallback   = "/authorize/callback"
	pathToken      = "/oauth/token"
	pathIntrospect = "/oauth/introspect"
	pathRevoke     = "/revoke"
	pathUserinfo   = "/userinfo"
	pathEndSession = "/end_session"
	pathKeys       = "/keys"
	pathFormPostJS = "/oidc/form_post.js"
	pathPAR        = "/oauth/par" // pushed authorization requests (RFC 9126)
)

func (p *Provider) routes() http.Handler {
	endpoints := zop.Endpoints{
		Authorization: zop.NewEndpoint(strings.TrimPrefix(pathAuthorize, "/")),
		Token:         zop.NewEndpoint(strings.TrimPrefix(pathToken, "/")),
		Introspection: zop.NewEndpoint(strings.TrimPrefix(pathIntrospect, "/")),
		Userinfo:      zop.NewEndpoint(strings.TrimPrefix(pathUserinfo, "/")),
		Revocation:    zop.NewEndpoint(strings.TrimPrefix(pathRevoke, "/")),
		EndSession:    zop.NewEndpoint(strings.TrimPrefix(pathEndSession, "/")),
		JwksURI:       zop.NewEndpoint(strings.TrimPrefix(pathKeys, "/")),
	}
	legacy := &server{LegacyServer: zop.NewLegacyServer(p.zp, endpoints), p: p}
	// zitadel serves the token and revocation endpoints (and health probes);
	// the routes registered below take precedence for everything else.
	zh := zop.RegisterLegacyServer(legacy, p.callback, zop.WithServerCORSOptions(nil))

	r := chi.NewRouter()
	r.Use(httpobs.ChiRoute, p.withIssuer, limitBody, p.withRequestInfo)
	r.Get(pathDiscovery, p.serveDiscovery)
	r.Get(pathKeys, p.serveJWKS)
	r.Get(pathAuthorize, p.authorize)
	r.Post(pathAuthorize, p.authorize)
	r.Get(pathCallback, p.callback)
	r.Get(pathUserinfo, p.userinfo)
	r.Post(pathUserinfo, p.userinfo)
	r.With(refuseRepeatedParams).Post(pathIntrospect, p.introspect)
	r.Get(pathEndSession, p.endSession)
	r.Post(pathEndSession, p.endSession)
	r.Get(pathFormPostJS, serveFormPostJS)
	r.Get("/", p.home)
	r.Handle(pathToken, noStore(withWWWAuthenticate(refuseRepeatedParams(requireClientAuth(p.withDPoP(withUserMemo(zh)))))))
	r.With(noStore, withWWWAuthenticate, refuseRepeatedParams, requireClientAuth).Post(pathDeviceAuthorization, p.deviceAuthorization)
	r.Handle(pathRevoke, noStore(withWWWAuthenticate(refuseRepeatedParams(requireClientAuth(zh)))))
	// The PAR endpoint authenticates clients as the token endpoint does.
	r.With(noStore, withWWWAuthenticate, refuseRepeatedParams, requireClientAuth).Post(pathPAR, p.pushAuthorization)
	r.Handle("/healthz", zh)
	r.Get("/readyz", p.ready)
	r.Get("/ready", p.ready)
	return cors.New(*p.corsOptions()).Handler(r)
}

// withIssuer puts the issuer into the request context, where zitadel's
// verifiers and token builders read it.
func (p *Provider) withIssuer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(zop.ContextWithIssuer(r.Context(), p.cfg.Issuer)))
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// withWWWAuthenticate adds the challenge RFC 6749 §5.2 requires on a 401
// invalid_client (zitadel sets the status but no header), and Retry-After on
// a 503.
func withWWWAuthenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

// noStore marks token responses uncacheable (RFC 6749 §5.1).
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// requireClientAuth answers a request that carries no client authentication
// at all with 401 invalid_client (RFC 6749 §5.2); zitadel would say
// invalid_request.
func requireClientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Authorization") == "" {
			if err := r.ParseForm(); err == nil && r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
				writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "client authentication is required"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuseRepeatedParams answers a request that repeats a parameter, or puts
// any in the URL query, with 400 invalid_request (RFC 6749 §3.2): which value
// counts would otherwise be up to whichever parser looks first.
func refuseRepeatedParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed request body"})
			return
		}
		if name := repeatedParam(r.Form); name != "" {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "the parameter " + name + " is repeated"})
			return
		}
		if r.URL.RawQuery != "" {
			// Codes, tokens and secrets belong in the body (RFC 6749 §3.2),
			// not in a URL that proxies and access logs keep.
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "send the parameters in the request body, not the URL"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (c *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && c.Header().Get("WWW-Authenticate") == "" {
		c.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
	}
	if code == http.StatusServiceUnavailable { // publicError's 503: say when to retry
		c.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	c.ResponseWriter.WriteHeader(code)
}

// corsOptions allow browser apps to call the token, userinfo, discovery and
// JWKS endpoints from the origins of registered redirect URIs only (zitadel's
// default allows every origin with credentials).
func (p *Provider) corsOptions() *cors.Options {
	return &cors.Options{
		AllowOriginVaryRequestFunc: func(r *http.Request, origin string) (bool, []string) {
			return p.originAllowed(r, origin), nil
		},
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "DPoP"},
		// A browser app reads the DPoP nonce and the challenge (RFC 9449 §8, §7.1).
		ExposedHeaders:   []string{"DPoP-Nonce", "WWW-Authenticate"},
		AllowCredentials: false,
		MaxAge:           600,
	}
}

type cachedOrigins struct {
	set     map[string]bool
	expires time.Time
}

func (p *Provider) originAllowed(r *http.Request, origin string) bool {
	p.originsMu.Lock()
	defer p.originsMu.Unlock()
	now := p.now()
	if p.origins.set == nil || !now.Before(p.origins.expires) {
		clients, err := p.store.ListClients(r.Context())
		if err != nil {
			p.log.ErrorContext(r.Context(), "list clients for CORS", "err", err)
			return false
		}
		set := make(map[string]bool)
		for _, c := range clients {
			for _, u := range c.RedirectURIs {
				if pu, err := url.Parse(u); err == nil && pu.Scheme != "" && pu.Host != "" {
					set[pu.Scheme+"://"+pu.Host] = true
				}
			}
		}
		p.origins = cachedOrigins{set: set, expires: now.Add(p.cfg.ClientCacheTTL)}
	}
	return p.origins.set[origin]
}

// Patterns are the http.ServeMux patterns the provider serves; cmd routes
// them here and everything else to the login UI.
func Patterns() []string {
	return []string{
		pathDiscovery, pathKeys, pathAuthorize, pathCallback, pathToken, pathIntrospect,
		pathRevoke, pathUserinfo, pathEndSession, pathFormPostJS, pathPAR, "/healthz", "/readyz", "/ready", "/{$}",
		pathDeviceAuthorization,
	}
}
