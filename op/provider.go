// Package op is Gatehouse's OpenID Connect side: it builds a zitadel/oidc
// provider on top of storage.Store and package keys, and serves the endpoints
// the library leaves to us or gets wrong for our purposes (authorize with
// RFC 9207 iss and strict PKCE, discovery, JWKS, userinfo, introspection,
// end_session).
package op

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/op/clientkeys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Config holds what the provider needs; cmd fills it from settings.
type Config struct {
	Issuer string // absolute URL, no trailing slash
	// NoPasskeys: passkeys are off (an IP-address issuer), so discovery
	// does not offer the phishing-resistant acr nobody could reach.
	NoPasskeys bool
	// CryptoKey encrypts opaque access tokens and authorization codes.
	CryptoKey [32]byte
	// RefreshKey derives a refresh token's successor (see successorRefreshToken).
	RefreshKey [32]byte
	// BindingKey binds authorization requests to the browser (binding.go).
	BindingKey [32]byte
	// RequestKey seals pending authorization requests (pending.go).
	RequestKey [32]byte

	AccessTokenTTL    time.Duration // default 1h
	IDTokenTTL        time.Duration // default 1h
	RefreshTokenTTL   time.Duration // absolute lifetime of a grant's refresh tokens; default 720h
	RefreshReuseGrace time.Duration // 0 disables; default set by cmd (10s)
	CodeTTL           time.Duration // default 60s
	AuthRequestTTL    time.Duration // default 30m
	ClientCacheTTL    time.Duration // default 30s: changes by another process show within it
	// HintMaxAge bounds how old an id_token_hint may be at end_session (the SSO
	// session's absolute lifetime); 0 means no bound.
	HintMaxAge time.Duration
	// SessionIdle is the SSO session's idle timeout: using a refresh token
	// counts as activity in the session that issued it and moves its idle
	// expiry (never its absolute one); 0 leaves sessions alone.
	SessionIdle time.Duration
	// AccessTokenAudience is the aud of access tokens whose request named no
	// resource and whose client registered none; default the issuer.
	AccessTokenAudience string
	// AdminRole is the role whose users administer Gatehouse: only their
	// tokens may carry storage.ScopeAdmin (admin.go); default "ADMIN".
	AdminRole string
	// DPoPNonce: DPoP proofs must carry a server nonce (RFC 9449 §8), made
	// and checked statelessly under DPoPNonceKey (dpop.go).
	// StrictAssertionAudience: a private_key_jwt assertion's aud must be the
	// issuer as a single string (clientassertion.go), not also an endpoint's
	// URL or an array.
	StrictAssertionAudience bool
	DPoPNonce               bool
	DPoPNonceKey            [32]byte

	LoginPath  string // default "/login"
	LogoutPath string // default "/logout"

	Now    func() time.Time
	Logger *slog.Logger
	// ClientIP is the client's address for the audit trail (cmd passes the
	// login UI's trusted-proxy rule); nil means the TCP peer.
	ClientIP func(*http.Request) string
	// Metrics counts issued tokens, refresh reuse and back-channel logout
	// deliveries; nil counts nothing.
	Metrics *Metrics

	// Pushed authorization requests (RFC 9126, par.go).
	//
	// RequirePAR: every client must push its authorization requests
	// (GATEHOUSE_REQUIRE_PAR); a client's own RequirePAR asks it of one.
	RequirePAR bool
	// RequirePKCE: every client must send a PKCE challenge (S256) at
	// /authorize (GATEHOUSE_REQUIRE_PKCE); public clients always must.
	RequirePKCE bool
	// Device authorization grant (RFC 8628, device.go): how long a device
	// code lives (default 10m) and the least time between polls (default
	// 5s, whole seconds).
	DeviceCodeTTL      time.Duration
	DevicePollInterval time.Duration
	// Limiter rate-limits the endpoints clients call unauthenticated or in
	// bulk (the device authorization and PAR endpoints); nil limits
	// nothing. A limiter that cannot decide refuses with 503.
	Limiter ratelimit.Limiter
	// RegistrationEndpoint is the dynamic client registration endpoint
	// (RFC 7591) discovery lists; "" when registration is off.
	RegistrationEndpoint string
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, time.Hour)
	def(&c.IDTokenTTL, time.Hour)
	def(&c.RefreshTokenTTL, 720*time.Hour)
	def(&c.CodeTTL, time.Minute)
	def(&c.AuthRequestTTL, 30*time.Minute)
	def(&c.ClientCacheTTL, 30*time.Second)
	def(&c.DeviceCodeTTL, 10*time.Minute)
	def(&c.DevicePollInterval, 5*time.Second)
	c.DevicePollInterval = max(c.DevicePollInterval.Truncate(time.Second), time.Second)
	if c.LoginPath == "" {
		c.LoginPath = "/login"
	}
	if c.LogoutPath == "" {
		c.LogoutPath = "/logout"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AdminRole == "" {
		c.AdminRole = "ADMIN"
	}
	if c.AccessTokenAudience == "" {
		c.AccessTokenAudience = c.Issuer
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Provider is the OIDC provider. It is an http.Handler serving every OIDC
// endpoint, and it implements login.Flow (PendingRequest, Finish, Fail, …).
type Provider struct {
	cfg     Config
	store   storage.Store
	keys    *keys.Manager
	log     *slog.Logger
	zp      *zop.Provider
	handler http.Handler
	// requests seals pending authorization requests (pending.go).
	requests *gcmCrypto

	clientsMu sync.RWMutex
	clients   map[string]cachedClient

	metaMu    sync.Mutex // guards discovery and jwks
	discovery cachedDoc
	jwks      cachedDoc

	originsMu sync.Mutex
	origins   cachedOrigins

	// pages renders the pages a person may see (errors, the home page) in
	// the sign-in UI's look; nil uses a plain built-in page (SetPages).
	pages PageRenderer
	// silent is the sign-in UI's one-request SSO decision (finish.go).
	silent SilentSignIn

	// Back-channel logout (logout.go).
	logoutMinter *backchannel.Minter
	logoutWorker *backchannel.Worker
	sessions     *SessionEnder
	// touched throttles refresh-driven session touches (sessions.go).
	touched sessionTouches

	// jwksFetcher fetches private_key_jwt clients' jwks_uri documents.
	jwksFetcher *clientkeys.Fetcher
}

// SetPages hands the provider the sign-in UI's page renderer. The UI is
// built after the provider (it needs the provider as its Flow), so this is
// set once, after both exist and before serving.
func (p *Provider) SetPages(pr PageRenderer) { p.pages = pr }

type cachedClient struct {
	c       *client
	expires time.Time
}

// New builds the provider. keys must have been initialised (keys.Manager.Init).
func New(cfg Config, store storage.Store, km *keys.Manager) (*Provider, error) {
	cfg.setDefaults()
	if cfg.Issuer == "" {
		return nil, errors.New("op: issuer is required")
	}
	if cfg.BindingKey == ([32]byte{}) || cfg.RequestKey == ([32]byte{}) {
		return nil, errors.New("op: binding and request keys are required")
	}
	if cfg.DPoPNonce && cfg.DPoPNonceKey == ([32]byte{}) {
		return nil, errors.New("op: DPoP nonces need a key")
	}
	requests, err := newSealer(cfg.RequestKey, requestAD, maxHandle)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:      cfg,
		store:    store,
		keys:     km,
		log:      cfg.Logger,
		clients:  make(map[string]cachedClient),
		requests: requests,
	}
	p.jwksFetcher = clientkeys.NewFetcher(clientkeys.FetcherConfig{Now: p.now})
	p.logoutMinter = backchannel.NewMinter(cfg.Issuer, km, p.now, 0)
	p.logoutWorker = backchannel.NewWorker(outboxAdapter{store}, backchannel.WorkerConfig{
		Minter:  p.logoutMinter,
		Logger:  cfg.Logger, // the worker adds component=backchannel-logout
		Metrics: logoutMetrics{cfg.Metrics},
		Now:     p.now,
		Guard: func(ctx context.Context, fn func(ctx context.Context) error) (bool, error) {
			return store.WithLock(ctx, "backchannel-logout", fn)
		},
	})
	p.sessions = NewSessionEnder(store, p.logoutMinter, p.now, cfg.Logger, p.logoutWorker.Wake)
	zcfg := &zop.Config{
		CryptoKey:             cfg.CryptoKey,
		CryptoKeyId:           "gh1",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedClaims:       supportedClaims,
		SupportedScopes:       supportedScopes,
	}
	crypto, err := newGCMCrypto(cfg.CryptoKey)
	if err != nil {
		return nil, err
	}
	// zitadel's own verifiers (JWT access tokens at userinfo and
	// introspection, id_token_hint at /authorize and end_session) accept
	// RS256, ES256 and PS256 unless told otherwise; a client's tokens may be
	// EdDSA.
	var algs []string
	for _, a := range km.Algorithms() {
		algs = append(algs, string(a))
	}
	opts := []zop.Option{
		zop.WithCORSOptions(p.corsOptions()),
		zop.WithCrypto(crypto),
		zop.WithAccessTokenVerifierOpts(zop.WithSupportedAccessTokenSigningAlgorithms(algs...)),
		zop.WithIDTokenHintVerifierOpts(zop.WithSupportedIDTokenHintSigningAlgorithms(algs...)),
	}
	if isHTTP(cfg.Issuer) {
		opts = append(opts, zop.WithAllowInsecure())
	}
	zp, err := zop.NewProvider(zcfg, opStorage{p}, zop.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("op: build provider: %w", err)
	}
	p.zp = zp
	p.handler = p.routes()
	return p, nil
}

func (p *Provider) now() time.Time { return p.cfg.Now().UTC() }

// ServeHTTP serves every OIDC endpoint.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// client returns a client from a short-lived cache: zitadel asks for the same
// client several times per request, and the token path must not hit the
// database for it every time. Unknown IDs are not cached, so the cache holds
// at most the registered clients.
func (p *Provider) client(ctx context.Context, id string) (*client, error) {
	now := p.now()
	p.clientsMu.RLock()
	e, ok := p.clients[id]
	p.clientsMu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	sc, err := p.store.GetClient(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load client %q: %w", id, err)
	}
	c := &client{c: sc, loginURL: p.cfg.Issuer + p.cfg.LoginPath, idTokenTTL: p.cfg.IDTokenTTL}
	p.clientsMu.Lock()
	p.clients[id] = cachedClient{c: c, expires: now.Add(p.cfg.ClientCacheTTL)}
	p.clientsMu.Unlock()
	return c, nil
}

// ForgetClient drops a client from the cache (after a change in this process).
func (p *Provider) ForgetClient(id string) {
	p.clientsMu.Lock()
	delete(p.clients, id)
	p.clientsMu.Unlock()
}

// newAccessToken is the record of a new access token, bound to the DPoP key
// jkt unless it is "".
func (p *Provider) newAccessToken(grantID, clientID, jkt string, scopes, audience []string, now, exp time.Time) string {
	t := accessToken{
		ID: randomToken(16), GrantID: grantID, ClientID: clientID,
		IssuedAt: now.Unix(), Expiry: exp.Unix(), Scopes: scopes, Audience: audience, JKT: jkt,
	}
	return t.encode()
}

// ErrTokenInactive is returned for expired, revoked or unknown access tokens
// (by VerifyAccessToken too, for callers outside the package).
var ErrTokenInactive = errors.New("access token is not active")

// activeUser loads the user tokens are issued for or read about. A disabled
// account is storage.ErrNotFound like a deleted one: it gets no tokens, no
// refresh, no userinfo and no active introspection, whatever grant it still
// holds (disabling ends its grants too; this covers a code or refresh in
// flight at that moment).
func (p *Provider) activeUser(ctx context.Context, id string) (*storage.User, error) {
	memo, _ := ctx.Value(userMemoKey{}).(*userMemo)
	u := memo.get(id)
	if u == nil {
		var err error
		if u, err = p.store.GetUser(ctx, id); err != nil {
			return nil, err
		}
		memo.put(u)
	}
	if u.Disabled() {
		return nil, fmt.Errorf("user %s is disabled: %w", id, storage.ErrNotFound)
	}
	return u, nil
}

// rememberUser puts u, read with something else, in the request's memo, so
// that activeUser need not read it again.
func rememberUser(ctx context.Context, u *storage.User) {
	memo, _ := ctx.Value(userMemoKey{}).(*userMemo)
	memo.put(u)
}

// userMemo keeps the users one request has read: a token request checks
// the user is active and then reads the same user for the ID token's
// claims, and a second read could only return the same row a moment
// later. It lives in the request's context (withUserMemo), never longer.
type userMemo struct {
	mu    sync.Mutex
	users map[string]*storage.User
}

type userMemoKey struct{}

// withUserMemo gives each request to next its own userMemo.
func withUserMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userMemoKey{}, &userMemo{})))
	})
}

func (m *userMemo) get(id string) *storage.User {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.users[id]
}

func (m *userMemo) put(u *storage.User) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = make(map[string]*storage.User, 1)
	}
	m.users[u.ID] = u
}

// validAccessToken decodes the token ID of a decrypted or verified access
// token and checks it is live: not expired, not on the deny-list, its grant not
// revoked. These are reads only; nothing is written per token.
func (p *Provider) validAccessToken(ctx context.Context, tokenID string) (*accessToken, *storage.Grant, error) {
	at, err := decodeAccessToken(tokenID)
	if err != nil {
		return nil, nil, ErrTokenInactive
	}
	if !p.now().Before(at.expiresAt()) {
		return nil, nil, ErrTokenInactive
	}
	denied, err := p.store.IsAccessTokenDenied(ctx, at.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("check deny-list: %w", err)
	}
	if denied {
		return nil, nil, ErrTokenInactive
	}
	if at.GrantID == "" {
		return at, nil, nil
	}
	g, err := p.store.GetGrant(ctx, at.GrantID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil, ErrTokenInactive
		}
		return nil, nil, fmt.Errorf("load grant: %w", err)
	}
	if g.RevokedAt != nil {
		return nil, nil, ErrTokenInactive
	}
	return at, g, nil
}

// userInfoFor fills userinfo for a live user access token and its grant
// (both from validAccessToken).
func (p *Provider) userInfoFor(ctx context.Context, ui *oidc.UserInfo, at *accessToken, g *storage.Grant) error {
	if g == nil {
		return ErrTokenInactive // client_credentials tokens have no user
	}
	u, err := p.activeUser(ctx, g.UserID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrTokenInactive
		}
		return fmt.Errorf("load user: %w", err)
	}
	setUserClaims(ui, u, at.Scopes)
	return nil
}

// introspectionFor fills an RFC 7662 response for a live token and its grant
// (nil for client_credentials tokens).
func (p *Provider) introspectionFor(ctx context.Context, resp *oidc.IntrospectionResponse, at *accessToken, g *storage.Grant, subject string) error {
	resp.Active = true
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.TokenType = tokenType(at.JKT)
	if at.JKT != "" {
		// The resource server checks the proof itself against this (RFC 9449 §6.2).
		resp.Claims = map[string]any{"cnf": confirmation{JKT: at.JKT}}
	}
	resp.Expiration = oidc.FromTime(at.expiresAt())
	resp.IssuedAt = oidc.FromTime(time.Unix(at.IssuedAt, 0))
	resp.Issuer = p.cfg.Issuer
	resp.JWTID = at.ID
	resp.Audience = oidc.Audience(at.Audience)
	if len(at.Audience) == 0 { // minted before tokens named their resource
		resp.Audience = oidc.Audience{at.ClientID}
	}
	resp.Subject = subject
	if g == nil {
		return nil
	}
	u, err := p.activeUser(ctx, g.UserID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrTokenInactive
		}
		return fmt.Errorf("load user: %w", err)
	}
	ui := new(oidc.UserInfo)
	setUserClaims(ui, u, at.Scopes)
	resp.SetUserInfo(ui)
	resp.Subject = u.ID
	resp.AuthTime = oidc.FromTime(g.AuthTime)
	resp.AuthenticationMethodsReferences = authn.ClaimAMR(g.AMR)
	return nil
}

// signatureAlgorithms are the algorithms tokens are signed with, the
// default first (discovery's id_token_signing_alg_values_supported).
func (p *Provider) signatureAlgorithms() []jose.SignatureAlgorithm {
	return p.keys.Algorithms()
}

func isHTTP(u string) bool { return len(u) >= 7 && u[:7] == "http://" }

var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

var supportedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "sid",
	"email", "email_verified", "name", "role", "idp",
}
